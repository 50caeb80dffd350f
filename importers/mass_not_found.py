"""The mass not-found guard: a register that answers "no such number" for many numbers it
had confirmed is broken, not a register that removed them all.

An expired session, a renamed form field or a backend down behind the form all give the
same well-formed answer: an empty report. Each one alone reads as a not-found, so without
this guard a recheck would mark every confirmed registration pending, then confirm them
all as not found, delete their category rows and notify every clinic.

The rule (used by ``flask registry recheck`` and ``flask registry verify`` alike): among
the last ``window`` look-ups of registrations the register had confirmed (its rules' view:
``verified_at`` set and the status not ``not_found``), more than ``limit`` answered
not-found trips the guard. Defaults: more than 10 of the last 20. Only a not-found trips
it: an answer with rows never does, so a healthy register recovers by answering.

The window outlives a run: every run (a recheck, ``verify``, a clinic's live look-up) starts
with it filled from the history (``recent_answers``: the last ``window`` answers that count,
newest first in ``verification_checks``). So a run too short to see eleven not-founds by
itself (a small directory, a frequent cron, ``verify`` one number at a time) still trips
when the runs before it saw the pattern.

So that nothing happens before the guard could have seen the pattern, a not-found for a
previously confirmed registration is *held*, not applied: it is released (applied through
the rules as usual) once ``window`` later confirmed look-ups have passed without a trip,
or when the run ends without a trip. When the guard trips, everything held is returned to
the caller to be recorded as a failed look-up with the guard's reason: the history keeps
the answer, no status moves, no pending mark is set, no category row goes, no event is
sent. The caller then stops asking, like an open circuit breaker.

An operator who knows the register really removed many numbers passes ``accept=True``
(``--accept-mass-not-found``): nothing is held and the guard never trips.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, exists, not_, or_, select
from sqlalchemy.orm import Session, aliased

from directory.registry.lookups import LookupResult
from directory.registry.models import VerificationCheck
from directory.registry.statuses import Outcome, Status

T = TypeVar("T")

WINDOW = 20
LIMIT = 10

# How a withheld not-found's failure begins (``as_failure``): the history finds them by it.
WITHHELD = "answered not-found, not applied:"


def previously_confirmed(row: Any) -> bool:
    """The rules' view (``checks.decide``): a not-found for this registration would need a
    second one to take effect, because the register had confirmed it."""
    status = getattr(row, "status", None)
    status = getattr(status, "value", status)
    return getattr(row, "verified_at", None) is not None and status != Status.NOT_FOUND.value


class MassNotFoundGuard(Generic[T]):
    """Counts confirmed registrations' answers; holds their not-founds until judged.

    ``T`` is whatever the caller needs to apply a held answer later (the recheck keeps its
    claim and result, verify its number and result).
    """

    def __init__(self, window: int = WINDOW, limit: int = LIMIT, *, accept: bool = False):
        if window < 1 or not 0 < limit < window:
            raise ValueError("mass not-found guard: window >= 1 and 0 < limit < window")
        self.window = window
        self.limit = limit
        self.accept = accept
        self.reason: str | None = None
        self._recent: deque[bool] = deque(maxlen=window)  # True: a not-found
        self._seen = 0  # confirmed look-ups counted so far
        self._held: deque[tuple[int, T]] = deque()  # (the look-up's position, item)

    def seed(self, answers: list[bool]) -> MassNotFoundGuard[T]:
        """Start from earlier runs' answers (oldest first, True: a not-found), as
        ``recent_answers`` reads them. Seeding never trips the guard: the next not-found may."""
        self._recent.extend(answers)
        return self

    @property
    def tripped(self) -> bool:
        return self.reason is not None

    @property
    def holding(self) -> int:
        return len(self._held)

    def found(self) -> list[T]:
        """A previously confirmed registration was answered with rows. Returns the held
        not-founds that are now safe to apply."""
        return self._count(False)

    def not_found(self, item: T) -> list[T]:
        """A previously confirmed registration was answered not-found. ``item`` is held;
        returns the held items now safe to apply (``[item]`` at once when accepting).
        After a trip, returns nothing: take the held items with ``withhold``."""
        if self.accept:
            return [item]
        self._held.append((self._seen, item))
        return self._count(True)

    def _count(self, not_found: bool) -> list[T]:
        if self.accept:
            return []
        self._recent.append(not_found)
        self._seen += 1
        misses = sum(self._recent)
        if not_found and not self.tripped and misses > self.limit:
            self.reason = (
                f"the register answered not-found for {misses} of the last "
                f"{len(self._recent)} registrations it had confirmed"
            )
        if self.tripped:
            return []
        released = []
        while self._held and self._held[0][0] <= self._seen - self.window:
            released.append(self._held.popleft()[1])
        return released

    def release_all(self) -> list[T]:
        """The run ended without a trip: everything still held is safe to apply."""
        if self.tripped:
            return []
        held = [item for _, item in self._held]
        self._held.clear()
        return held

    def withhold(self) -> list[T]:
        """After a trip: every held item, to be recorded as a failure (``as_failure``)."""
        held = [item for _, item in self._held]
        self._held.clear()
        return held

    def as_failure(self, result: LookupResult) -> LookupResult:
        """A held not-found as the failed look-up it is recorded as once the guard trips."""
        return replace(
            result,
            outcome=Outcome.ERROR,
            rows=(),
            transient=False,
            error=f"{WITHHELD} {self.reason} (a register fault; "
            "--accept-mass-not-found applies such answers)",
        )


def recent_answers(session: Session, window: int = WINDOW) -> list[bool]:
    """The last ``window`` answers the guard counts, from the history, oldest first (True: a
    not-found). They are the look-ups of registrations the register had confirmed: a
    not-found that marked one pending, or that moved one (pending before) to not found; a
    not-found the guard withheld (recorded as a failure, ``WITHHELD``); an answer with rows
    for a registration already held (effect ``unchanged`` or ``changed``). A snapshot's rows
    (source ``snapshot:...``) are a file's content, not the register's answers: not counted."""
    check = aliased(VerificationCheck)
    earlier = aliased(VerificationCheck)
    was_pending = exists(
        select(earlier.id).where(
            earlier.practitioner_id == check.practitioner_id,
            earlier.id < check.id,
            earlier.effect == "pending_not_found",
        )
    )
    missed = or_(
        check.effect == "pending_not_found",
        and_(check.outcome == Outcome.ERROR.value, check.error.startswith(WITHHELD)),
        and_(check.effect == "changed", check.status == Status.NOT_FOUND.value, was_pending),
    )
    counted = or_(
        missed,
        and_(
            check.outcome == Outcome.OK.value,
            check.effect.in_(("unchanged", "changed")),
            check.status != Status.NOT_FOUND.value,
        ),
    )
    rows = session.execute(
        select(missed)
        .where(counted, not_(check.source.startswith("snapshot:")))
        .order_by(check.id.desc())
        .limit(window)
    ).scalars()
    return [bool(miss) for miss in reversed(list(rows))]
