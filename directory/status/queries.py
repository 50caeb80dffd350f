"""What the status pages show, read from the history of checks in bounded windows.

Only look-ups count (checks whose source is not a ``snapshot:`` file): they are the times the
directory asked the register. Every query is one aggregate over ``recorded_at`` in a window
of days (indexed, migration 0010), so a page costs the same with 250,000 registrations as
with 25. Registrations by verification age and the outboxes come from
``directory.observability.state``, which ``/metrics`` reads too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, not_, select

from directory.extensions import db
from directory.registry.models import VerificationCheck
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow

OPERATORS_DAYS = 30  # the operators' page: the last 30 days, day by day
PUBLIC_DAYS = 7  # the public page: the last week
RECENT = timedelta(hours=24)  # "recently", on the public page
LATEST_LOOKUPS = 20  # the operators' page: how the newest look-ups went
# The share of failed look-ups over RECENT from which the public page says the register is
# hard to reach (and, from the lower one, that some look-ups fail).
TROUBLE_SHARE, SOME_FAILURES_SHARE = 0.5, 0.1


def _is_lookup():
    return not_(VerificationCheck.source.startswith("snapshot:"))


@dataclass
class Counts:
    ok: int = 0
    not_found: int = 0
    error: int = 0
    duration_sum: int = 0  # milliseconds, over the look-ups that were timed
    timed: int = 0
    longest_ms: int | None = None

    @property
    def total(self) -> int:
        return self.ok + self.not_found + self.error

    @property
    def answered(self) -> int:
        return self.ok + self.not_found

    @property
    def error_percent(self) -> float | None:
        return None if not self.total else round(100 * self.error / self.total, 1)

    @property
    def mean_ms(self) -> float | None:
        return None if not self.timed else round(self.duration_sum / self.timed, 1)

    def add(self, outcome: str, count: int, duration_sum, timed: int, longest) -> None:
        if outcome in (Outcome.OK, Outcome.NOT_FOUND, Outcome.ERROR):
            setattr(self, str(outcome), getattr(self, str(outcome)) + count)
        self.duration_sum += int(duration_sum or 0)
        self.timed += timed
        if longest is not None:
            self.longest_ms = max(self.longest_ms or 0, int(longest))


@dataclass
class DayCounts:
    day: date
    counts: Counts = field(default_factory=Counts)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def lookups_by_day(days: int, now: datetime | None = None) -> list[DayCounts]:
    """Look-ups per UTC day, oldest first, the last ``days`` days up to today (days without
    any included, as zeros): one grouped query over the window."""
    now = now or utcnow()
    first = now.date() - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
    day = func.date(VerificationCheck.recorded_at)
    rows = _lookup_counts(since, now, day)
    by_day = {first + timedelta(days=n): DayCounts(first + timedelta(days=n)) for n in range(days)}
    for when, outcome, count, duration_sum, timed, longest in rows:
        entry = by_day.get(_as_date(when))
        if entry is not None:
            entry.counts.add(outcome, count, duration_sum, timed, longest)
    return list(by_day.values())


def _within(since: datetime, until: datetime):
    """Recorded from ``since`` up to ``until`` (now): a row stamped in the future by a host
    whose clock runs ahead is not "recent" and not the register's last answer (it would
    stay so, and be shown to patients as a future time, until the clocks caught up)."""
    return VerificationCheck.recorded_at.between(since, until)


def _lookup_counts(since: datetime, until: datetime, *group_by):
    """Look-ups recorded from ``since`` to ``until`` by ``group_by`` and outcome: each row is
    the group's values, the outcome, the count, the sum, count and maximum of the timed
    durations."""
    check = VerificationCheck
    return db.session.execute(
        select(
            *group_by,
            check.outcome,
            func.count(),
            func.sum(check.duration_ms),
            func.count(check.duration_ms),
            func.max(check.duration_ms),
        )
        .where(_within(since, until), _is_lookup())
        .group_by(*group_by, check.outcome)
    )


def lookups_since(since: datetime, until: datetime) -> Counts:
    counts = Counts()
    for outcome, count, duration_sum, timed, longest in _lookup_counts(since, until):
        counts.add(outcome, count, duration_sum, timed, longest)
    return counts


def last_answer_at(since: datetime, until: datetime) -> datetime | None:
    """When the register last answered a look-up (rows or "not found"), within the window."""
    check = VerificationCheck
    return db.session.execute(
        select(func.max(check.recorded_at)).where(
            _within(since, until), _is_lookup(), check.outcome != Outcome.ERROR
        )
    ).scalar()


def latest_lookups(limit: int = LATEST_LOOKUPS) -> list[tuple[datetime, str]]:
    """The newest look-ups' times and outcomes, newest first (the index, read backwards)."""
    check = VerificationCheck
    rows = db.session.execute(
        select(check.recorded_at, check.outcome)
        .where(_is_lookup())
        .order_by(check.recorded_at.desc())
        .limit(limit)
    )
    return [(when, outcome) for when, outcome in rows]


@dataclass(frozen=True)
class RegisterHealth:
    """What the public page says about reaching the register recently."""

    state: str  # "ok", "some_failures", "trouble", "quiet"
    headline: str
    recent: Counts
    last_answer: datetime | None
    days: list[DayCounts]


HEADLINES = {
    "ok": "The directory is reaching the HPCSA register normally.",
    "some_failures": "Some look-ups at the HPCSA register failed recently; most got an answer.",
    "trouble": "The directory is having trouble reaching the HPCSA register.",
    "quiet": "The directory has not asked the HPCSA register anything in the last 24 hours.",
}


def register_health(
    now: datetime | None = None, days: list[DayCounts] | None = None
) -> RegisterHealth:
    """``days``: the last PUBLIC_DAYS of ``lookups_by_day`` when the caller has them."""
    now = now or utcnow()
    recent = lookups_since(now - RECENT, now)
    if not recent.total:
        state = "quiet"
    elif recent.error >= TROUBLE_SHARE * recent.total:
        state = "trouble"
    elif recent.error >= SOME_FAILURES_SHARE * recent.total:
        state = "some_failures"
    else:
        state = "ok"
    return RegisterHealth(
        state=state,
        headline=HEADLINES[state],
        recent=recent,
        last_answer=last_answer_at(now - timedelta(days=PUBLIC_DAYS), now),
        days=days[-PUBLIC_DAYS:] if days is not None else lookups_by_day(PUBLIC_DAYS, now),
    )
