"""The one "verified" decision. Pages, the API, the CLI and the search index all ask here.

A practitioner counts as verified only while the register's last answer said ``active``,
that answer is younger than ``VERIFICATION_MAX_AGE``, and no unconfirmed not-found is
pending. Anything else is "not verified", with the reason and the date of the last
confirmation, never "verified".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Protocol

from flask import current_app
from sqlalchemy import Select, bindparam, select

from directory.extensions import db
from directory.registry.models import Practitioner, format_display_name
from directory.registry.policy import CLOCK_SKEW
from directory.registry.statuses import PATIENT_MEANING, Status
from directory.util.clock import as_utc, local_date, utcnow
from directory.util.durations import parse_duration

ADVERSE = {Status.SUSPENDED, Status.ERASED, Status.DECEASED, Status.NOT_FOUND, Status.INACTIVE}


@dataclass(frozen=True)
class Verdict:
    verified: bool
    # "verified" (green), "adverse" (red), "stale" / "pending" / "unknown" (amber)
    tone: str
    headline: str
    explanation: str
    status: str
    verified_at: datetime | None
    days_since_confirmed: int | None

    @property
    def badge(self) -> str:
        return {"verified": "green", "adverse": "red"}.get(self.tone, "amber")

    @property
    def not_verified_since(self) -> str | None:
        """``"Not verified since 3 March 2026"`` (or ``"Never verified"``); None when verified.

        Every screen that does not show "verified" can show this line: it is what the
        system says instead, with the date of the register's last confirmation.
        """
        if self.verified:
            return None
        if self.verified_at is None:
            return "Never verified"
        return f"Not verified since {local_date(self.verified_at)}"


class RegistrationState(Protocol):
    """What ``verdict`` reads: a ``Practitioner``, a row of those columns, or the search
    index's copy of them."""

    @property
    def status(self) -> str | None: ...
    @property
    def verified_at(self) -> datetime | None: ...
    @property
    def not_found_pending_since(self) -> datetime | None: ...


_STATUS_BY_VALUE = {status.value: status for status in Status}


def _status_of(practitioner: RegistrationState) -> Status:
    # A value no rule writes is never read as anything but unknown.
    return _STATUS_BY_VALUE.get(practitioner.status or "", Status.UNKNOWN)


def max_age() -> timedelta:
    """VERIFICATION_MAX_AGE of the current app (checked at start-up; parsed once per value,
    since every badge on every page asks)."""
    return _max_age(current_app.config["VERIFICATION_MAX_AGE"])


_max_age = lru_cache(maxsize=16)(parse_duration)


@dataclass(frozen=True)
class VerifiedWindow:
    """When a registration counts as verified at one moment, as data an index can apply to
    many at once: the register's last answer said ``status``, no not-found is pending, and
    that answer was given after ``after`` and no later than ``until``. ``verdict`` decides
    with this very window; a search index filters with it (and never restates it)."""

    status: Status
    after: datetime  # exclusive: exactly VERIFICATION_MAX_AGE old is too old
    until: datetime  # inclusive: a confirmation "from the future" beyond CLOCK_SKEW is a wrong date

    def contains(self, verified_at: datetime) -> bool:
        return self.after < as_utc(verified_at) <= self.until


def verified_window(
    now: datetime | None = None, max_age_: timedelta | None = None
) -> VerifiedWindow:
    """The window of ``now`` (default: the current time) for a ``VERIFICATION_MAX_AGE`` of
    ``max_age_`` (default: the current app's)."""
    now = as_utc(now) if now is not None else utcnow()
    limit = max_age_ if max_age_ is not None else max_age()
    return _window(now, limit)


@lru_cache(maxsize=64)
def _window(now: datetime, limit: timedelta) -> VerifiedWindow:
    # Built once per moment: a page of search hits judges every row at the same ``now``.
    return VerifiedWindow(Status.ACTIVE, now - limit, now + CLOCK_SKEW)


def verdict(
    practitioner: RegistrationState,
    *,
    now: datetime | None = None,
    max_age_: timedelta | None = None,
) -> Verdict:
    """What every screen says about one registration: verified, or why not and since when."""
    now = as_utc(now) if now is not None else utcnow()
    window = verified_window(now, max_age_)
    status = _status_of(practitioner)
    verified_at = as_utc(practitioner.verified_at) if practitioner.verified_at else None
    days = max((now - verified_at).days, 0) if verified_at else None

    if status is window.status and verified_at is not None:
        if practitioner.not_found_pending_since is not None:
            return Verdict(
                False,
                "pending",
                f"Not verified since {local_date(verified_at)}: being re-confirmed",
                "The register's latest answer did not list this number. Until a second "
                "look-up confirms or clears that, this directory does not vouch for it.",
                status,
                verified_at,
                days,
            )
        # A confirmation "from the future" is a wrong date, not a confirmation.
        if window.contains(verified_at):
            ago = "today" if days == 0 else ("1 day ago" if days == 1 else f"{days} days ago")
            return Verdict(
                True,
                "verified",
                f"Registered with the HPCSA: active, last confirmed {ago}",
                PATIENT_MEANING[status],
                status,
                verified_at,
                days,
            )
        return Verdict(
            False,
            "stale",
            f"Not verified since {local_date(verified_at)}",
            "The register listed this practitioner as active then, but this directory has "
            "not been able to confirm it recently. Check it at the source before treatment.",
            status,
            verified_at,
            days,
        )
    if status in ADVERSE:
        label = status.value.replace("_", " ")
        return Verdict(
            False,
            "adverse",
            f"HPCSA register: {label}",
            PATIENT_MEANING[status],
            status,
            verified_at,
            days,
        )
    headline = f"Not verified since {local_date(verified_at)}" if verified_at else "Not verified"
    return Verdict(
        False, "unknown", headline, PATIENT_MEANING[Status.UNKNOWN], status, verified_at, days
    )


def is_verified(practitioner: RegistrationState, *, now: datetime | None = None) -> bool:
    return verdict(practitioner, now=now).verified


@lru_cache(maxsize=128)
def _standings_query(count: int) -> Select:
    """The columns ``verdict`` and a result card need, for ``count`` numbers (``n0``...).

    Built once per page size: a page of hits asks on every search request, and a fixed
    list of parameters spares SQLAlchemy re-rendering an expanding ``IN`` each time.
    """
    return select(
        Practitioner.registration_number,
        Practitioner.title,
        Practitioner.full_names,
        Practitioner.surname,
        Practitioner.category,
        Practitioner.status,
        Practitioner.verified_at,
        Practitioner.not_found_pending_since,
    ).where(Practitioner.registration_number.in_([bindparam(f"n{i}") for i in range(count)]))


@dataclass(frozen=True)
class Standing:
    """One registration as the database has it now: what a search result shows of it."""

    registration_number: str
    display_name: str
    verdict: Verdict
    category: str | None = None  # the register's (first) category: with the prefix, the
    # profession and the scope of practice


def current_standings(
    numbers: Iterable[str], *, now: datetime | None = None
) -> dict[str, Standing]:
    """The database's current word on a page of search hits, judged by ``verdict``.

    A search index may lag the database by a moment, and cannot know that a confirmation
    has just grown too old; so every page of hits, on the site and in the API, takes its
    names and badges from here (one query, only the columns needed) and never from the
    index. A number no longer in the database is absent from the answer.
    """
    wanted = list(dict.fromkeys(numbers))
    if not wanted:
        return {}
    now = as_utc(now) if now is not None else utcnow()
    limit = max_age()
    # Its own short connection, not the request's session: what is committed is what
    # counts, and a search request needs no session of its own (3 % of its time).
    with db.engine.connect() as connection:
        rows = connection.execute(
            _standings_query(len(wanted)), {f"n{i}": n for i, n in enumerate(wanted)}
        ).all()
    return {
        row.registration_number: Standing(
            row.registration_number,
            format_display_name(row.title, row.full_names, row.surname) or row.registration_number,
            verdict(row, now=now, max_age_=limit),
            row.category,
        )
        for row in rows
    }
