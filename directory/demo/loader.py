"""Load the fictional demo data through the same paths real data takes.

The register's answers go through ``record_check`` (the rules), the clinics and listings
through ``import_listing_records`` (the listings import). Nothing writes a status directly.

Idempotent: a registration already in the table is left alone, so a second run changes
nothing. One exception keeps a long-lived demo database alive: a registration planned as
currently confirmed whose last check came from the demo data and which has since gone stale
gets its planned answer replayed once more (dated as freshly as on the first load).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from directory.demo.generator import (
    FRESH_SCENARIOS,
    SEED,
    SOURCE,
    DemoPractitioner,
    demo_clinic_records,
    demo_practitioners,
)
from directory.listings.imports import ImportReport, import_listing_records
from directory.listings.vocabulary import SyncReport, sync_services
from directory.registry.checks import new_practitioner
from directory.registry.models import Practitioner, VerificationCheck
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import record_check
from directory.registry.verification import verdict
from directory.util.clock import utcnow


@dataclass
class DemoReport:
    practitioners_created: int = 0
    practitioners_refreshed: int = 0
    practitioners_unchanged: int = 0
    checks_recorded: int = 0
    services: SyncReport | None = None
    listings: ImportReport = field(default_factory=ImportReport)

    def summary(self) -> dict[str, Any]:
        listings = self.listings.summary()
        return {
            "type": "summary",
            "practitioners_created": self.practitioners_created,
            "practitioners_refreshed": self.practitioners_refreshed,
            "practitioners_unchanged": self.practitioners_unchanged,
            "checks_recorded": self.checks_recorded,
            "services_created": self.services.created if self.services else 0,
            "services_updated": self.services.updated if self.services else 0,
            **{
                key: listings[key]
                for key in (
                    "clinics_created",
                    "clinics_updated",
                    "clinics_unchanged",
                    "listings_created",
                    "listings_updated",
                    "listings_unchanged",
                    "errors",
                )
            },
        }


def load_demo(
    session: Session, policy: RegistryPolicy, *, now: datetime | None = None, seed: int = SEED
) -> DemoReport:
    """Load (or top up) the demo data. The caller commits."""
    now = now or utcnow()
    report = DemoReport(services=sync_services(session))
    plan = demo_practitioners(seed)
    existing = {
        p.registration_number: p
        for p in session.scalars(
            select(Practitioner).where(
                Practitioner.registration_number.in_([d.registration_number for d in plan])
            )
        )
    }
    for position, demo in enumerate(plan):
        rng = random.Random(seed + position)  # the recheck jitter, reproducible
        practitioner = existing.get(demo.registration_number)
        if practitioner is None:
            practitioner = new_practitioner(demo.registration_number)
            for check in demo.checks:
                _replay(session, practitioner, demo, check, policy, now, rng)
                report.checks_recorded += 1
            report.practitioners_created += 1
        elif _gone_stale(session, practitioner, demo, now):
            _replay(session, practitioner, demo, demo.checks[-1], policy, now, rng)
            report.checks_recorded += 1
            report.practitioners_refreshed += 1
        else:
            report.practitioners_unchanged += 1
    session.flush()
    report.listings = import_listing_records(session, demo_clinic_records(plan, seed))
    return report


def _replay(session, practitioner, demo: DemoPractitioner, check, policy, now, rng) -> None:
    result = demo.result(check, now)
    # Recorded as if the check had been made when the register gave the answer.
    record_check(session, practitioner, result, policy, now=result.observed_at, rng=rng)


def _gone_stale(
    session: Session, practitioner: Practitioner, demo: DemoPractitioner, now: datetime
) -> bool:
    if demo.scenario not in FRESH_SCENARIOS or practitioner.status != "active":
        return False
    if verdict(practitioner, now=now).verified:
        return False
    last_source = session.scalar(
        select(VerificationCheck.source)
        .where(VerificationCheck.practitioner_id == practitioner.id)
        .order_by(VerificationCheck.id.desc())
        .limit(1)
    )
    # Never paper over what a real source said about the number.
    return last_source == SOURCE
