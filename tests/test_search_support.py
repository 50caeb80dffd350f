"""A small fictional directory for the search tests (no test functions here).

Every name, clinic and registration number is invented (numbers in the MP09xxxxx range).
Practitioners are written directly with the fields the "verified" rule reads, because these
tests need exact control of time; ``verdict`` still decides what is verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from directory.extensions import db
from directory.listings.models import Clinic, Listing, Service
from directory.listings.vocabulary import sync_services
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow

NOW = utcnow()


@dataclass(frozen=True)
class P:
    number: str
    surname: str
    names: str
    status: str = "active"
    verified_days_ago: float | None = 2
    pending: bool = False


PRACTITIONERS = [
    # The mesotherapy specialist: offers it at two clinics and writes about it.
    P("MP0910001", "Examplestein", "Anna Meso"),
    # Offers mesotherapy among many services, never mentions it.
    P("MP0910002", "Sampleton", "Ben"),
    P("MP0910003", "Naidoo-Fictional", "Chandra"),
    P("MP0910004", "Van der Testhuizen", "Dirk", verified_days_ago=45),  # stale
    P("MP0910005", "Suspendedsson", "Erin", status="suspended", verified_days_ago=None),
    P("MP0910006", "Pendingova", "Fatima", pending=True),
    P("MP0910007", "Müller-Demo", "Gérard"),
    P("MP0910008", "Botha-Mock", "Hendrik"),
    P("MP0910009", "Dlamini-Placeholder", "Isla", verified_days_ago=29.9),
    P("MP0910010", "Unlisted", "Jo"),  # in the register, no listing: never in the index
    P("MP0910011", "Khumalo-Example", "Kea", status="erased", verified_days_ago=400),
    P("MP0910012", "Peelman", "Lwazi"),
]

CLINICS = [
    # slug, name, city, province, postal code
    ("harbour-skin", "Harbour Skin Rooms (fictional)", "Cape Town", "Western Cape", "8001"),
    ("berea-wellness", "Berea Wellness Demo", "Durban", "KwaZulu-Natal", "4001"),
    ("sandton-aesthetic", "Sandton Aesthetic Example", "Johannesburg", "Gauteng", "2196"),
    ("jacaranda-care", "Jacaranda Care Sample", "Pretoria", "Gauteng", "0002"),
    ("garden-route", "Garden Route Family Practice (fictional)", "George", "Western Cape", "6529"),
]

LISTINGS = [
    # number, clinic slug, services (slugs), description
    (
        "MP0910001",
        "harbour-skin",
        ["mesotherapy", "fat-reduction"],
        "Mesotherapy for stubborn fat and cellulite. I explain exactly what is injected.",
    ),
    (
        "MP0910001",
        "berea-wellness",
        ["mesotherapy", "hair-regrowth"],
        "Mesotherapy sessions for thinning hair on Fridays.",
    ),
    (
        "MP0910002",
        "sandton-aesthetic",
        [
            "mesotherapy",
            "botulinum-toxin",
            "dermal-fillers",
            "chemical-peels",
            "acne",
            "skin-rejuvenation",
            "wrinkle-reduction",
            "prp",
        ],
        "A full aesthetic menu. Walk-ins welcome.",
    ),
    (
        "MP0910003",
        "berea-wellness",
        ["general-practice", "weight-loss"],
        "Family doctor. Weight loss programmes with regular check-ins.",
    ),
    (
        "MP0910004",
        "harbour-skin",
        ["botulinum-toxin", "dermal-fillers"],
        "Botox and fillers, natural results.",
    ),
    ("MP0910005", "sandton-aesthetic", ["botulinum-toxin"], "Anti-wrinkle injections."),
    (
        "MP0910006",
        "jacaranda-care",
        ["prp", "hair-regrowth"],
        "PRP for hair loss; the vampire facial on request.",
    ),
    (
        "MP0910007",
        "harbour-skin",
        ["sports-injuries", "pain-management"],
        "Knee and shoulder sports injuries, joint injections, <b>pain</b> clinic.",
    ),
    (
        "MP0910008",
        "garden-route",
        ["general-practice", "vaccinations"],
        "General practice in George: chronic medication, travel vaccines.",
    ),
    (
        "MP0910009",
        "jacaranda-care",
        ["acne", "chemical-peels", "scar-improvement"],
        "Acne scars and chemical peels for teenagers and adults.",
    ),
    ("MP0910011", "berea-wellness", ["botulinum-toxin"], "Botox."),
    (
        "MP0910012",
        "jacaranda-care",
        ["chemical-peels", "pigmentation"],
        "Chemical peels for pigmentation and melasma; a glycolic peel starts at low strength.",
    ),
]


def make_practitioner(spec: P, now: datetime = NOW) -> Practitioner:
    verified_at = (
        now - timedelta(days=spec.verified_days_ago) if spec.verified_days_ago is not None else None
    )
    return Practitioner(
        registration_number=spec.number,
        prefix=spec.number[:2],
        title="Dr",
        surname=spec.surname,
        full_names=spec.names,
        category="Medical Practitioner",
        status=spec.status,
        raw_status=spec.status.upper(),
        status_as_of=verified_at,
        verified_at=verified_at,
        not_found_pending_since=now - timedelta(hours=2) if spec.pending else None,
        last_checked_at=verified_at,
    )


def seed(now: datetime = NOW) -> dict[str, Practitioner]:
    """Load the fictional directory (caller is inside an app context); returns by number."""
    sync_services(db.session)
    db.session.flush()
    services = {s.slug: s for s in db.session.scalars(db.select(Service))}
    people = {spec.number: make_practitioner(spec, now) for spec in PRACTITIONERS}
    db.session.add_all(people.values())
    clinics = {}
    for slug, name, city, province, postal in CLINICS:
        clinics[slug] = Clinic(
            slug=slug, name=name, city=city, province=province, postal_code=postal
        )
    db.session.add_all(clinics.values())
    db.session.flush()
    for number, clinic, slugs, description in LISTINGS:
        db.session.add(
            Listing(
                practitioner=people[number],
                clinic=clinics[clinic],
                services=[services[s] for s in slugs],
                description=description,
            )
        )
    db.session.commit()
    return people


def register_says(
    number: str, raw_status: str = "ACTIVE", *, at: datetime | None = None, **facts: str
) -> None:
    """The register answers for ``number`` through the one write path (``record_check``):
    the practitioner's current names and place with ``facts`` changed, and ``raw_status``.
    Not committed (the caller commits, as a job would). ``at`` defaults to the real now: a
    test that searches ``now=NOW`` passes ``at=NOW`` (a confirmation more than
    ``CLOCK_SKEW`` after the search's moment counts as from the future)."""
    practitioner = db.session.scalar(
        db.select(Practitioner).where(Practitioner.registration_number == number)
    )
    values = {
        name: facts.get(name, getattr(practitioner, name))
        for name in ("title", "surname", "full_names", "city", "postal_code")
    }
    row = RegisterRow(
        number, category=facts.get("category", "INDEPENDENT PRACTICE"), status=raw_status,
        **values,
    )  # fmt: skip
    result = LookupResult(number, Outcome.OK, at or utcnow(), "test", rows=(row,))
    record_check(db.session, practitioner, result, RegistryPolicy.from_config(current_app.config))


def numbers_of(results) -> list[str]:
    return [hit.registration_number for hit in results.hits]
