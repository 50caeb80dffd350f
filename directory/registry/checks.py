"""The rules: how one answer (or failure) from a register changes what the system believes.

Every source (a live look-up, a snapshot row, a recheck) ends here, so these rules hold
whatever asked the register:

1. A failure (``Outcome.ERROR``) is recorded and never changes the status or ``verified_at``.
2. A not-found for a registration the register had confirmed takes effect only when a
   second not-found at least ``NOT_FOUND_CONFIRM_AFTER`` later confirms it; until then the
   status is kept and marked pending (and the practitioner is not shown as verified).
3. "Verified" is decided in ``verification.py`` from the state written here.
4. Several category rows combine as ``statuses.combine`` says.

An answer older than the one the current belief rests on (an old snapshot imported after a
live check) is recorded in the history but changes nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from directory.registry import numbers
from directory.registry.lookups import LookupResult
from directory.registry.models import (
    Practitioner,
    RegistrationCategory,
    StatusEvent,
    VerificationCheck,
)
from directory.registry.policy import RegistryPolicy
from directory.registry.statuses import Outcome, Status, combine, map_raw_status
from directory.util.clock import utcnow


@dataclass(frozen=True)
class CheckEffect:
    """What recording one check did."""

    registration_number: str
    outcome: Outcome
    effect: str  # changed | unchanged | pending_not_found | ignored_stale | no_effect | created
    from_status: str | None
    to_status: str
    event: StatusEvent | None = None
    unknown_raw_statuses: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.event is not None


def new_practitioner(registration_number: str) -> Practitioner:
    prefix, _ = numbers.split(registration_number)
    return Practitioner(
        registration_number=registration_number,
        prefix=prefix,
        status=Status.UNKNOWN,
        consecutive_failures=0,
    )


def record_check(
    session: Session,
    practitioner: Practitioner,
    result: LookupResult,
    policy: RegistryPolicy,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> CheckEffect:
    """Apply one register answer (or failure) to ``practitioner`` and append its history row.

    The caller owns the transaction: nothing is committed here.
    """
    now = now or utcnow()
    is_new = practitioner.id is None and practitioner not in session
    if is_new:
        session.add(practitioner)
    before = practitioner.status
    event: StatusEvent | None = None
    unknown_raw: tuple[str, ...] = ()
    combined: Status | None = None

    practitioner.last_checked_at = now
    practitioner.last_outcome = result.outcome.value

    if result.outcome is Outcome.ERROR:
        practitioner.consecutive_failures = (practitioner.consecutive_failures or 0) + 1
        effect = "no_effect"
    else:
        practitioner.consecutive_failures = 0
        if practitioner.status_as_of is not None and result.observed_at < practitioner.status_as_of:
            effect = "ignored_stale"
        elif result.outcome is Outcome.OK:
            statuses = [map_raw_status(row.status) for row in result.rows]
            unknown_raw = tuple(
                row.status
                for row, s in zip(result.rows, statuses, strict=True)
                if s is Status.UNKNOWN
            )
            combined = combine(statuses)
            _copy_register_facts(practitioner, result, statuses)
            practitioner.not_found_pending_since = None
            if practitioner.verified_at is None or result.observed_at > practitioner.verified_at:
                practitioner.verified_at = result.observed_at
            event = _set_status(practitioner, combined, result)
            effect = "changed" if event else "unchanged"
        else:  # NOT_FOUND
            confirmed_before = practitioner.verified_at is not None and before != Status.NOT_FOUND
            pending = practitioner.not_found_pending_since
            if not confirmed_before:
                event = _set_status(practitioner, Status.NOT_FOUND, result)
                effect = "changed" if event else "unchanged"
            elif pending is None:
                practitioner.not_found_pending_since = result.observed_at
                effect = "pending_not_found"
            elif result.observed_at - pending >= policy.not_found_confirm_after:
                practitioner.not_found_pending_since = None
                practitioner.raw_status = None
                event = _set_status(practitioner, Status.NOT_FOUND, result)
                effect = "changed"
            else:
                effect = "pending_not_found"
            combined = Status.NOT_FOUND

    if event is not None:
        session.add(event)
    if is_new and effect in ("changed", "unchanged"):
        effect = "created"
    session.add(
        VerificationCheck(
            practitioner=practitioner,
            checked_at=result.observed_at,
            recorded_at=now,
            source=result.source[:200],
            outcome=result.outcome.value,
            raw_status=" / ".join(r.status for r in result.rows)[:200] or None,
            status=combined.value if combined else None,
            response_digest=result.digest,
            error=result.error,
            duration_ms=result.duration_ms,
            effect=effect,
        )
    )
    practitioner.next_check_at = policy.next_check_at(
        now=now,
        status=practitioner.status,
        last_outcome=practitioner.last_outcome,
        consecutive_failures=practitioner.consecutive_failures,
        status_changed_at=practitioner.status_changed_at,
        not_found_pending_since=practitioner.not_found_pending_since,
        rng=rng,
    )
    return CheckEffect(
        registration_number=practitioner.registration_number,
        outcome=result.outcome,
        effect=effect,
        from_status=None if is_new else before,
        to_status=practitioner.status,
        event=event,
        unknown_raw_statuses=unknown_raw,
    )


def _copy_register_facts(
    practitioner: Practitioner, result: LookupResult, statuses: list[Status]
) -> None:
    first = result.rows[0]
    practitioner.title = first.title or practitioner.title
    practitioner.surname = first.surname or practitioner.surname
    practitioner.full_names = first.full_names or practitioner.full_names
    practitioner.city = first.city or practitioner.city
    practitioner.postal_code = first.postal_code or practitioner.postal_code
    practitioner.category = first.category
    practitioner.raw_status = " / ".join(row.status for row in result.rows)[:200]
    wanted = {
        row.category: (i, row, s)
        for i, (row, s) in enumerate(zip(result.rows, statuses, strict=True))
    }
    existing = {c.category: c for c in practitioner.categories}
    for name, cat in existing.items():
        if name not in wanted:
            practitioner.categories.remove(cat)
    for name, (position, row, status) in wanted.items():
        cat = existing.get(name)
        if cat is None:
            cat = RegistrationCategory(category=name)
            practitioner.categories.append(cat)
        cat.position = position
        cat.raw_status = row.status
        cat.status = status.value


def _set_status(
    practitioner: Practitioner, status: Status, result: LookupResult
) -> StatusEvent | None:
    """Move the canonical status; a real change (not a first sighting) becomes an event."""
    previous = practitioner.status
    is_first_answer = practitioner.status_as_of is None
    practitioner.status_as_of = result.observed_at
    if previous == status and not is_first_answer:
        return None
    practitioner.status = status.value
    if is_first_answer:
        return None
    practitioner.status_changed_at = result.observed_at
    return StatusEvent(
        practitioner=practitioner,
        registration_number=practitioner.registration_number,
        from_status=previous,
        to_status=status.value,
        occurred_at=result.observed_at,
        source=result.source[:200],
    )
