"""The one "verified" decision. Pages, the API, the CLI and the search index all ask here.

A practitioner counts as verified only while the register's last answer said ``active``,
that answer is younger than ``VERIFICATION_MAX_AGE``, and no unconfirmed not-found is
pending. Anything else is "not verified", with the reason and the date of the last
confirmation, never "verified".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.statuses import PATIENT_MEANING, Status
from directory.util.clock import utcnow

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


def max_age() -> timedelta:
    return RegistryPolicy.from_config(current_app.config).verification_max_age


def verdict(
    practitioner: Practitioner, *, now: datetime | None = None, max_age_: timedelta | None = None
) -> Verdict:
    now = now or utcnow()
    limit = max_age_ if max_age_ is not None else max_age()
    status = Status(practitioner.status or Status.UNKNOWN)
    verified_at = practitioner.verified_at
    days = (now - verified_at).days if verified_at else None
    since = verified_at.strftime("%-d %B %Y") if verified_at else None

    if status is Status.ACTIVE and verified_at is not None:
        if practitioner.not_found_pending_since is not None:
            return Verdict(
                False,
                "pending",
                f"Being re-confirmed: not confirmed since {since}",
                "The register's latest answer did not list this number. Until a second "
                "look-up confirms or clears that, this directory does not vouch for it.",
                status,
                verified_at,
                days,
            )
        if now - verified_at < limit:
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
            f"Not confirmed since {since}",
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
    headline = f"Not verified since {since}" if since else "Not verified"
    return Verdict(
        False, "unknown", headline, PATIENT_MEANING[Status.UNKNOWN], status, verified_at, days
    )


def is_verified(practitioner: Practitioner, *, now: datetime | None = None) -> bool:
    return verdict(practitioner, now=now).verified
