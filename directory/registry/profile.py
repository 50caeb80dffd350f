"""One read of a registration's profile: the practitioner's page, the API and
``flask registry show`` all take what they show from ``read_profile``.

Also the one place the link to the official iRegister record is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from directory.extensions import db
from directory.registry import numbers
from directory.registry.models import Practitioner, StatusEvent, VerificationCheck
from directory.registry.verification import Verdict, verdict


def register_record_url(canonical: str) -> str:
    """The registration on the official iRegister, the number spelt as the register writes
    it (``MP   0000123``, the spaces percent-encoded so the link is a valid URL)."""
    spelt = quote(numbers.register_format(canonical), safe="")
    return current_app.config["HPCSA_PUBLIC_RECORD_URL"].format(number=spelt)


@dataclass(frozen=True)
class Profile:
    """What the system holds about one registration, read in one go, judged by ``verdict``."""

    practitioner: Practitioner  # with its category rows loaded
    verdict: Verdict
    history: list[VerificationCheck]  # newest first
    checks_total: int
    status_events: list[StatusEvent]  # newest first
    record_url: str  # the official iRegister record

    @property
    def registration_number(self) -> str:
        return self.practitioner.registration_number

    @property
    def register_spelling(self) -> str:
        return numbers.register_format(self.registration_number)

    @property
    def register_name(self) -> str | None:
        return numbers.register_name(self.practitioner.prefix)

    @property
    def register_as_of(self) -> datetime | None:
        """When the register last said what the status rests on."""
        return self.practitioner.status_as_of or self.practitioner.verified_at


def find_practitioner(canonical: str) -> Practitioner | None:
    """The registration with this canonical number, its category rows loaded."""
    return db.session.scalar(
        select(Practitioner)
        .where(Practitioner.registration_number == canonical)
        .options(selectinload(Practitioner.categories))
    )


def read_profile(
    canonical: str, *, history: int = 20, status_events: int = 0, now: datetime | None = None
) -> Profile | None:
    """The profile of the registration ``canonical`` (a canonical number), or None when the
    system holds none: the ``history`` newest checks and ``status_events`` newest changes."""
    found = find_practitioner(canonical)
    if found is None:
        return None
    checks = (
        db.session.scalars(
            select(VerificationCheck)
            .where(VerificationCheck.practitioner_id == found.id)
            .order_by(VerificationCheck.id.desc())
            .limit(history)
        ).all()
        if history
        else []
    )
    total = db.session.scalar(
        select(func.count(VerificationCheck.id)).where(
            VerificationCheck.practitioner_id == found.id
        )
    )
    events = (
        db.session.scalars(
            select(StatusEvent)
            .where(StatusEvent.practitioner_id == found.id)
            .order_by(StatusEvent.id.desc())
            .limit(status_events)
        ).all()
        if status_events
        else []
    )
    return Profile(
        practitioner=found,
        verdict=verdict(found, now=now),
        history=list(checks),
        checks_total=int(total or 0),
        status_events=list(events),
        record_url=register_record_url(canonical),
    )
