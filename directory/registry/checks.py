"""The rules: how one answer (or failure) from a register changes what the system believes.

Every source (a live look-up, a snapshot row, a recheck) ends here, so these rules hold
whatever asked the register:

1. A failure (``Outcome.ERROR``) is recorded and never changes the status or ``verified_at``.
2. A not-found for a registration the register had confirmed takes effect only when a
   second not-found at least ``NOT_FOUND_CONFIRM_AFTER`` later confirms it; until then the
   status is kept and marked pending (and the practitioner is not shown as verified).
3. "Verified" is decided in ``verification.py`` from the state written here.
4. Several category rows combine as ``statuses.combine`` says.

An answer older than the newest answer the current belief rests on (an old snapshot imported
after a live check, or a slow look-up overtaken by a faster one) is recorded in the history but
changes nothing at all. An answer dated in the future (a wrong ``--as-of``) counts as given now:
no answer can make a registration look confirmed later than the moment it was recorded.

``decide`` is the pure form of the rules (plain values in, plain values out);
``directory.registry.recording`` applies the decisions, the one entry point for register
answers: ``apply_answer`` one answer to the registration's row as it is when the answer is
applied (locked and read again), ``apply_answers`` a batch with bulk statements (a snapshot
import's), so every answer goes through one set of rules.

An undated answer (a snapshot imported without ``--as-of``, dated by its file's modification
time) counts as older than any answer when it would lift an adverse or pending status
(``_would_lift``), and so changes nothing: it can add a registration, confirm one that
agrees (without making its confirmation any younger), and record adverse news, never more.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from directory.registry import numbers
from directory.registry.lookups import LookupResult
from directory.registry.models import (
    Practitioner,
    RegistrationCategory,
    StatusEvent,
    VerificationCheck,
)
from directory.registry.policy import CLOCK_SKEW, RegistryPolicy
from directory.registry.statuses import Outcome, Status, combine, map_raw_status
from directory.registry.verification import ADVERSE
from directory.util.clock import as_utc


def _lengths(table: Any) -> dict[str, int | None]:
    """Each column's length (None when it has none), looked up once, not per value."""
    return {column.name: getattr(column.type, "length", None) for column in table.columns}


_PRACTITIONER_LENGTHS = _lengths(Practitioner.__table__)
_CATEGORY_LENGTHS = _lengths(RegistrationCategory.__table__)
_CHECK_LENGTHS = _lengths(VerificationCheck.__table__)
_EVENT_LENGTHS = _lengths(StatusEvent.__table__)


@dataclass(frozen=True)
class Belief:
    """The part of a registration the rules read and write."""

    status: str = Status.UNKNOWN.value
    status_as_of: datetime | None = None
    status_changed_at: datetime | None = None
    verified_at: datetime | None = None
    not_found_pending_since: datetime | None = None
    consecutive_failures: int = 0
    last_outcome: str | None = None
    last_checked_at: datetime | None = None
    next_check_at: datetime | None = None
    last_answer_at: datetime | None = None

    FIELDS = (
        "status", "status_as_of", "status_changed_at", "verified_at", "not_found_pending_since",
        "consecutive_failures", "last_outcome", "last_checked_at", "next_check_at",
        "last_answer_at",
    )  # fmt: skip

    @classmethod
    def of(cls, row: Any) -> Belief:
        """From a ``Practitioner`` or any row with the same attribute names."""
        values = {name: getattr(row, name) for name in cls.FIELDS}
        values["consecutive_failures"] = values["consecutive_failures"] or 0
        values["status"] = values["status"] or Status.UNKNOWN.value
        return cls(**values)

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def _from_values(cls, values: dict[str, Any]) -> Belief:
        """A belief with exactly these field values (every field), as ``Belief(**values)``
        makes it but without the frozen ``__init__``'s per-field ``object.__setattr__``:
        ``decide`` makes one for every row of a bulk import."""
        belief = object.__new__(cls)
        belief.__dict__.update(values)
        return belief

    @property
    def as_of(self) -> datetime | None:
        """When the newest register answer this belief rests on was given.

        Not-founds count, pending ones included: an older "active" must never clear a newer
        "not found" (``last_answer_at``; the other two cover rows written before it existed).
        """
        times = [
            t
            for t in (self.last_answer_at, self.status_as_of, self.not_found_pending_since)
            if t is not None
        ]
        return max(times) if times else None


_NO_BELIEF = Belief()  # what a registration seen for the first time starts from
assert set(_NO_BELIEF.__dict__) == set(Belief.FIELDS), "Belief.FIELDS lists every field"
assert not hasattr(Belief, "__post_init__"), "Belief._from_values skips __init__"


@dataclass(frozen=True)
class Decision:
    """What one check does to a belief; ``event_from`` is set when a status event is due."""

    effect: str  # changed | unchanged | pending_not_found | ignored_stale | no_effect | created
    before: Belief | None  # None for a registration seen for the first time
    after: Belief
    answer_status: Status | None  # what the answer itself says (for the history row)
    category_statuses: tuple[Status, ...]  # one per result row, for copying register facts
    copy_register_facts: bool
    event_from: str | None = None
    event_due: bool = False
    unknown_raw_statuses: tuple[str, ...] = ()
    # When the answer counts as given (``result.observed_at``, never later than ``now``).
    observed_at: datetime | None = None
    # The register now lists no rows for the number (a not-found that took effect): the
    # stored category rows and raw status are the register's no longer, so they go.
    clear_register_rows: bool = False


def decide(
    before: Belief | None,
    result: LookupResult,
    policy: RegistryPolicy,
    *,
    now: datetime,
    rng: random.Random | None = None,
) -> Decision:
    """The rules, as a pure function of the current belief and one register answer."""
    now = as_utc(now)
    observed_at = min(as_utc(result.observed_at), now)
    belief = before or _NO_BELIEF
    previous = belief.status
    first_answer = belief.status_as_of is None
    belief_as_of = belief.as_of
    at = observed_at  # the time this answer's belief fields take

    stale = (
        result.outcome is not Outcome.ERROR
        and belief_as_of is not None
        and observed_at < belief_as_of
    )
    contested = stale and _contested(belief, result, observed_at, belief_as_of)
    if contested:
        at = belief_as_of  # applied as if given together with the answer it contradicts
    elif stale:
        # Older than what we already know: history only, the belief stays exactly as it is.
        return _ignored(before, belief, result, observed_at)
    if result.undated and not first_answer and _would_lift(belief, result):
        # An undated snapshot may be older than the adverse or pending answer the belief
        # rests on: it counts as older (history only), whatever its estimated date.
        return _ignored(before, belief, result, observed_at)

    # The fields this check changes, applied to the belief once at the end (bulk imports run
    # this for every row, so it avoids building intermediate beliefs).
    changes: dict[str, Any] = {"last_checked_at": now, "last_outcome": result.outcome.value}
    if result.outcome is not Outcome.ERROR:
        changes["last_answer_at"] = at
    statuses: tuple[Status, ...] = ()
    answer_status: Status | None = None
    copy_facts = False
    clear_rows = False
    event_due = False
    unknown_raw: tuple[str, ...] = ()

    def move_to(status: Status) -> bool:
        """Set the status from this answer; a real change (not a first sighting) is an event."""
        changes["status"] = status.value
        changes["status_as_of"] = at
        is_event = not first_answer and previous != status.value
        if is_event:
            changes["status_changed_at"] = at
        return is_event

    if result.outcome is Outcome.ERROR:
        changes["consecutive_failures"] = belief.consecutive_failures + 1
        effect = "no_effect"
    elif result.outcome is Outcome.OK and result.rows:
        statuses = tuple([map_raw_status(row.status) for row in result.rows])
        if Status.UNKNOWN in statuses:
            unknown_raw = tuple(
                row.status
                for row, s in zip(result.rows, statuses, strict=True)
                if s is Status.UNKNOWN
            )
        answer_status = combine(statuses)
        copy_facts = True
        verified_at = belief.verified_at
        if verified_at is None or at > verified_at:
            verified_at = at
        changes.update(
            consecutive_failures=0, not_found_pending_since=None, verified_at=verified_at
        )
        event_due = move_to(answer_status)
        effect = "changed" if event_due else "unchanged"
    else:  # Outcome.NOT_FOUND (or an "ok" without rows, which says the same)
        answer_status = Status.NOT_FOUND
        changes["consecutive_failures"] = 0
        confirmed_before = belief.verified_at is not None and previous != Status.NOT_FOUND
        pending = belief.not_found_pending_since
        if not confirmed_before:
            event_due = move_to(Status.NOT_FOUND)
            effect = "changed" if event_due else "unchanged"
            clear_rows = True
        elif pending is None:
            changes["not_found_pending_since"] = at
            effect = "pending_not_found"
        elif at - pending >= policy.not_found_confirm_after:
            changes["not_found_pending_since"] = None
            event_due = move_to(Status.NOT_FOUND)
            effect = "changed"
            clear_rows = True
        else:
            effect = "pending_not_found"

    if result.undated and effect == "unchanged" and not first_answer:
        # An undated snapshot that agrees is in the history, but its date is only an upper
        # bound (a copied file is "modified" when copied): it makes no confirmation younger
        # and moves no answer's time, so a stale registration stays amber.
        for name in ("verified_at", "status_as_of", "last_answer_at"):
            changes[name] = getattr(belief, name)

    if before is None and effect in ("changed", "unchanged"):
        effect = "created"

    after_values = {**belief.__dict__, **changes}  # the new belief (next_check_at follows)
    next_check_at = policy.next_check_at(
        now=now,
        status=after_values["status"],
        last_outcome=after_values["last_outcome"],
        consecutive_failures=after_values["consecutive_failures"],
        status_changed_at=after_values["status_changed_at"],
        not_found_pending_since=after_values["not_found_pending_since"],
        rng=rng,
    )
    if result.outcome is Outcome.ERROR and result.retry_after:
        # The register asked us to wait: never sooner than it said (up to the backoff cap).
        wait = min(timedelta(seconds=result.retry_after), policy.error_backoff_max)
        next_check_at = max(next_check_at, now + wait)
    if contested:
        next_check_at = min(next_check_at, now + CLOCK_SKEW)  # a later answer settles it
    after_values["next_check_at"] = next_check_at
    after = Belief._from_values(after_values)
    return Decision(
        effect=effect,
        before=before,
        after=after,
        answer_status=answer_status,
        category_statuses=statuses,
        copy_register_facts=copy_facts,
        event_from=previous if event_due else None,
        event_due=event_due,
        unknown_raw_statuses=unknown_raw,
        observed_at=observed_at,
        clear_register_rows=clear_rows,
    )


def _would_lift(belief: Belief, result: LookupResult) -> bool:
    """True when ``result`` would move a belief that is not plainly active (adverse,
    unknown, or with a not-found pending) to a status that is not adverse: red or amber
    towards green. Adverse news, and an answer that agrees with the status, never lift."""
    answer = _answer_status(result)
    if answer is None or answer in ADVERSE:
        return False
    if belief.not_found_pending_since is not None:
        return True
    return belief.status != Status.ACTIVE.value and belief.status != answer.value


def _ignored(
    before: Belief | None, belief: Belief, result: LookupResult, observed_at: datetime
) -> Decision:
    """An answer that changes nothing: recorded in the history only (``ignored_stale``)."""
    return Decision(
        effect="ignored_stale",
        before=before,
        after=belief,
        answer_status=_answer_status(result),
        category_statuses=(),
        copy_register_facts=False,
        observed_at=observed_at,
    )


def _answer_status(result: LookupResult) -> Status | None:
    """What an answer says on its own (for the history row of an answer that changed nothing)."""
    if result.outcome is Outcome.ERROR:
        return None
    return combine(tuple([map_raw_status(row.status) for row in result.rows]))  # none: not_found


def _contested(
    belief: Belief, result: LookupResult, observed_at: datetime, belief_as_of: datetime
) -> bool:
    """An answer that does not say "active", dated before a belief that does, by no more
    than ``CLOCK_SKEW``: it is not discarded as stale.

    The hosts that record answers may have clocks up to ``CLOCK_SKEW`` apart, so an answer
    dated that little earlier may well be the newer one. Of two such answers that disagree,
    the adverse one (or the not-found, or the one we cannot read) is applied, as if given
    together with the answer it contradicts (as rows of one answer combine: adverse wins);
    a not-found is pending, as usual. The number is looked up again within ``CLOCK_SKEW``.
    """
    if belief_as_of - observed_at > CLOCK_SKEW:
        return False
    if belief.status != Status.ACTIVE.value or belief.not_found_pending_since is not None:
        return False  # the belief already withholds "verified"
    return not (
        result.outcome is Outcome.OK and result.rows and _answer_status(result) is Status.ACTIVE
    )


def _clip(value: str | None, length: int | None) -> str | None:
    """A register value cut to its column's length (the register is not trusted to be short)."""
    if value is None:
        return None
    return value[:length] if length else value


# The practitioner columns an answer sets only when the register gave a value.
_NAME_AND_PLACE = tuple(
    (name, _PRACTITIONER_LENGTHS[name])
    for name in ("title", "surname", "full_names", "city", "postal_code")
)


def register_facts(result: LookupResult) -> dict[str, Any]:
    """The practitioner columns an answer with rows sets (the first row's names and place)."""
    first = result.rows[0]
    facts = {}
    for name, length in _NAME_AND_PLACE:
        value = getattr(first, name)
        if value:
            facts[name] = value[:length] if length else value
    lengths = _PRACTITIONER_LENGTHS
    facts["category"] = _clip(first.category, lengths["category"])
    facts["raw_status"] = _clip(
        " / ".join([row.status for row in result.rows]), lengths["raw_status"]
    )
    return facts


def category_rows(result: LookupResult, decision: Decision) -> list[dict[str, Any]]:
    """One dict per category the register listed, in the register's order.

    Every row is kept: when the register repeats a category, that category's statuses
    combine (``statuses.combine``) and its raw strings are joined, so nothing it said is lost.
    """
    lengths = _CATEGORY_LENGTHS
    rows, statuses = result.rows, decision.category_statuses
    if len(rows) == 1 and len(statuses) == 1:  # the usual case, without the grouping
        return [
            {
                "position": 0,
                "category": _clip(rows[0].category, lengths["category"]),
                "raw_status": _clip(" / ".join([rows[0].status]), lengths["raw_status"]),
                "status": combine(statuses).value,
            }
        ]
    grouped: dict[str, dict[str, Any]] = {}
    for position, (row, status) in enumerate(zip(rows, statuses, strict=True)):
        name = _clip(row.category, lengths["category"])
        entry = grouped.setdefault(
            name, {"position": position, "category": name, "raw": [], "statuses": []}
        )
        if row.status not in entry["raw"]:
            entry["raw"].append(row.status)
        entry["statuses"].append(status)
    return [
        {
            "position": entry["position"],
            "category": entry["category"],
            "raw_status": _clip(" / ".join(entry["raw"]), lengths["raw_status"]),
            "status": combine(tuple(entry["statuses"])).value,
        }
        for entry in grouped.values()
    ]


def history_values(result: LookupResult, decision: Decision, now: datetime) -> dict[str, Any]:
    """The columns of the history row every check appends."""
    lengths = _CHECK_LENGTHS
    return {
        "checked_at": decision.observed_at or result.observed_at,
        "recorded_at": now,
        "source": _clip(result.source, lengths["source"]),
        "outcome": result.outcome.value,
        "raw_status": _clip(" / ".join([r.status for r in result.rows]), lengths["raw_status"])
        or None,
        "status": decision.answer_status.value if decision.answer_status else None,
        "response_digest": _clip(result.digest, lengths["response_digest"]),
        "error": result.error,
        "duration_ms": result.duration_ms,
        "effect": decision.effect,
    }


def event_values(registration_number: str, result: LookupResult, decision: Decision) -> dict:
    return {
        "registration_number": registration_number,
        "from_status": decision.event_from,
        "to_status": decision.after.status,
        "occurred_at": decision.observed_at or result.observed_at,
        "source": _clip(result.source, _EVENT_LENGTHS["source"]),
    }


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
    # The registration as written (``recording``), for callers that report on it.
    practitioner: Practitioner | None = field(default=None, compare=False, repr=False)

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
