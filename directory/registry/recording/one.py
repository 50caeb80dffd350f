"""One register answer at a time, applied to the row as it is now (``apply_answer``).

The one-answer strategy of the one write path (``directory.registry.recording``; a batch
goes through ``bulk.py``, with the same rules and signal).

A look-up takes time (up to a few seconds, or minutes with retries), and two look-ups of one
number can overlap: a ``flask registry verify`` while the recheck job runs, or two operators.
If each decided on a copy of the registration read before its network call, the slower one
would write its rows and history over a status the faster one had already changed, leaving
a registration whose status, category rows, raw status, latest history row and next check
came from different answers. So every live answer goes through ``apply_answer``:

1. lock the registration's row for this transaction and read it again (PostgreSQL:
   ``SELECT ... FOR UPDATE``; SQLite: take the database's write lock first with an ``UPDATE``
   that touches the row, then read): whoever applies an answer next waits for this
   transaction to commit, and then sees what it wrote;
2. ``checks.decide`` judges the answer against that row (the pure rules);
3. the decision is written to the ORM objects (status and belief, register facts, category
   rows, one history row, a status event when one is due): all from the same answer;
4. the rows are flushed and ``signals.registrations_changed`` says what changed, so search
   and notifications write their outbox rows in the same transaction.

The caller owns the transaction: nothing is committed here, and the lock lasts until the
caller commits or rolls back (commit right after, as ``verify`` and the recheck do).
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from directory.registry.checks import (
    Belief,
    CheckEffect,
    category_rows,
    decide,
    event_values,
    history_values,
    new_practitioner,
    register_facts,
)
from directory.registry.lookups import LookupResult
from directory.registry.models import (
    Practitioner,
    RegistrationCategory,
    StatusEvent,
    VerificationCheck,
)
from directory.registry.policy import RegistryPolicy
from directory.registry.signals import announce
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow

_TABLE = Practitioner.__table__


def _dialect(session: Session) -> str:
    return session.connection(bind_arguments={"mapper": Practitioner.__mapper__}).dialect.name


def lock_registration(session: Session, number: str) -> Practitioner | None:
    """The registration ``number`` as committed now, locked until the transaction ends.

    The object in the session (if any) is refreshed, its category rows included, so
    nothing read before this call (before a network call, say) is decided on.
    """
    query = (
        select(Practitioner)
        .where(Practitioner.registration_number == number)
        .options(selectinload(Practitioner.categories))
        .execution_options(populate_existing=True)
    )
    if _dialect(session) == "sqlite":
        # SQLite locks the whole database for writing; a write statement takes that lock
        # (waiting for busy_timeout), even when it matches no row, and the read after it
        # sees every commit before it. ``updated_at`` is set to itself: nothing changes.
        session.execute(
            update(_TABLE)
            .where(_TABLE.c.registration_number == number)
            .values(updated_at=_TABLE.c.updated_at)
        )
    else:
        query = query.with_for_update(of=Practitioner)
    return session.scalars(query).one_or_none()


def _create(session: Session, number: str) -> tuple[Practitioner, bool]:
    """A new registration for ``number``, or the one another process has just created
    (then locked and read like any other): ``(practitioner, is_new)``."""
    practitioner = new_practitioner(number)
    if _dialect(session) == "sqlite":
        session.add(practitioner)  # the write lock is held: nobody else can insert it now
        return practitioner, True
    try:
        with session.begin_nested():  # a savepoint: losing the race rolls back only this
            session.add(practitioner)
            session.flush()
    except IntegrityError:
        existing = lock_registration(session, number)
        if existing is None:  # pragma: no cover - the row that conflicted is committed
            raise
        return existing, False
    return practitioner, True


def apply_answer(
    session: Session,
    number: str,
    result: LookupResult,
    policy: RegistryPolicy,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> CheckEffect | None:
    """Apply one live answer (or failure) for ``number`` to its registration, as it is now.

    A number the system does not hold is stored only when the register lists it (an answer
    with rows); otherwise nothing is written and None is returned. The returned
    ``CheckEffect`` says what changed and carries the registration as written.
    """
    if result.registration_number != number:
        raise ValueError(
            f"a result for {result.registration_number} cannot be recorded for {number}"
        )
    practitioner = lock_registration(session, number)
    is_new = False
    if practitioner is None:
        if result.outcome is not Outcome.OK or not result.rows:
            return None
        practitioner, is_new = _create(session, number)
    return _apply(session, practitioner, result, policy, is_new=is_new, now=now, rng=rng)


def record_check(
    session: Session,
    practitioner: Practitioner,
    result: LookupResult,
    policy: RegistryPolicy,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> CheckEffect:
    """Apply one answer to ``practitioner`` (a new one, from ``new_practitioner``, is added).

    A stored practitioner is locked and read again first, as ``apply_answer`` does.
    """
    if result.registration_number != practitioner.registration_number:
        raise ValueError(
            f"a result for {result.registration_number} cannot be recorded for "
            f"{practitioner.registration_number}"
        )
    is_new = practitioner.id is None and practitioner not in session
    if is_new:
        session.add(practitioner)
    elif practitioner.id is not None:
        locked = lock_registration(session, practitioner.registration_number)
        if locked is not practitioner:  # pragma: no cover - an object from another session
            raise ValueError(f"{practitioner!r} is not this session's registration")
    return _apply(session, practitioner, result, policy, is_new=is_new, now=now, rng=rng)


def _apply(
    session: Session,
    practitioner: Practitioner,
    result: LookupResult,
    policy: RegistryPolicy,
    *,
    is_new: bool,
    now: datetime | None,
    rng: random.Random | None,
) -> CheckEffect:
    """Write ``decide``'s decision for this answer to the ORM objects, flush them and
    announce what changed (``signals.registrations_changed``: search and notifications add
    their outbox rows in this transaction). No commit."""
    now = now or utcnow()
    before = None if is_new else Belief.of(practitioner)
    decision = decide(before, result, policy, now=now, rng=rng)

    for name, value in decision.after.values().items():
        setattr(practitioner, name, value)
    if decision.copy_register_facts:
        for name, value in register_facts(result).items():
            setattr(practitioner, name, value)
        _replace_categories(practitioner, category_rows(result, decision))
    elif decision.clear_register_rows:
        practitioner.raw_status = None
        _replace_categories(practitioner, [])

    event = None
    if decision.event_due:
        event = StatusEvent(
            practitioner=practitioner,
            **event_values(practitioner.registration_number, result, decision),
        )
        session.add(event)
    session.add(
        VerificationCheck(practitioner=practitioner, **history_values(result, decision, now))
    )
    session.flush()
    announce(
        session,
        source=result.source,
        practitioner_ids=[practitioner.id],
        event_ids=[event.event_id] if event is not None else [],
    )
    return CheckEffect(
        registration_number=practitioner.registration_number,
        outcome=result.outcome,
        effect=decision.effect,
        from_status=None if before is None else before.status,
        to_status=decision.after.status,
        event=event,
        unknown_raw_statuses=decision.unknown_raw_statuses,
        practitioner=practitioner,
    )


def _replace_categories(practitioner: Practitioner, rows: list[dict[str, Any]]) -> None:
    wanted = {row["category"]: row for row in rows}
    existing = {c.category: c for c in practitioner.categories}
    for name, cat in existing.items():
        if name not in wanted:
            practitioner.categories.remove(cat)
    for name, row in wanted.items():
        cat = existing.get(name)
        if cat is None:
            cat = RegistrationCategory(category=name)
            practitioner.categories.append(cat)
        cat.position = row["position"]
        cat.raw_status = row["raw_status"]
        cat.status = row["status"]
