"""A small, fictional directory for the page and browser tests.

Every practitioner gets their status the way production does: a ``LookupResult`` handed to
``record_check``. Each one stands for one badge state (green, red for each adverse status,
amber for stale, pending and unreadable), so the tests can name the state they look at.
All names, numbers and clinics are fictional.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from directory.listings.models import Clinic, Listing, Service
from directory.registry.checks import new_practitioner
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome
from directory.search.backend import (
    ClinicRef,
    FacetValue,
    QueryError,
    SearchHit,
    SearchQuery,
    SearchResults,
)
from directory.util.clock import utcnow

SOURCE = "web test fixture (fictional)"

SERVICES: list[dict] = [
    {
        "slug": "mesotherapy",
        "name": "Mesotherapy",
        "description": "Many tiny injections into the middle layer of the skin (fictional text).",
        "synonyms": ["meso"],
    },
    {
        "slug": "botulinum-toxin",
        "name": "Botulinum toxin",
        "description": "Injections that relax the muscles behind some wrinkles (fictional text).",
        "synonyms": ["botox"],
    },
    {
        "slug": "fat-reduction",
        "name": "Fat reduction",
        "description": "Treatments for small pockets of fat (fictional text).",
        "synonyms": ["fat dissolving", "lipolysis"],
    },
    {
        "slug": "hair-regrowth",
        "name": "Hair regrowth",
        "description": "Treatments for thinning hair (fictional text).",
        "synonyms": ["hair loss"],
    },
]

CLINICS: list[dict] = [
    {
        "slug": "fictional-harbour-skin-clinic",
        "name": "Fictional Harbour Skin Clinic",
        "city": "Cape Town",
        "province": "Western Cape",
        "postal_code": "8001",
        "street_address": "1 Example Quay",
        "phone": "+27 21 555 0101",
        "email": "hello@harbour.example",
        "website": "https://harbour.example",
        "description": "A fictional skin clinic on the waterfront.",
    },
    {
        "slug": "fictional-table-view-wellness",
        "name": "Fictional Table View Wellness",
        "city": "Cape Town",
        "province": "Western Cape",
        "postal_code": "7441",
        "website": "javascript:alert(1)",
        "description": "Fictional wellness rooms.",
    },
    {
        "slug": "fictional-rosebank-aesthetics",
        "name": "Fictional Rosebank Aesthetics",
        "city": "Johannesburg",
        "province": "Gauteng",
        "postal_code": "2196",
        "description": "Fictional aesthetic practice.",
    },
    {
        "slug": "fictional-umhlanga-rooms",
        "name": "Fictional Umhlanga Rooms",
        "city": "Durban",
        "province": "KwaZulu-Natal",
        "postal_code": "4319",
        "description": "Fictional consulting rooms.",
    },
]


@dataclass(frozen=True)
class Person:
    key: str  # how tests name this badge state
    number: str
    title: str
    surname: str
    full_names: str
    rows: tuple[tuple[str, str], ...]  # (category, raw status) as the register writes them
    # Each step: (days ago, outcome) answered by the register for this number.
    steps: tuple[tuple[float, Outcome], ...]
    listings: tuple[tuple[str, tuple[str, ...], str], ...] = field(default=())


PEOPLE: list[Person] = [
    Person(
        "active",
        "MP0900001",
        "DR",
        "FICTIONAL-MOKOENA",
        "AYANDA EXAMPLE",
        (("INDEPENDENT PRACTICE", "ACTIVE"), ("INTERN", "INACTIVE")),
        ((2, Outcome.OK),),
        (
            (
                "fictional-harbour-skin-clinic",
                ("mesotherapy", "botulinum-toxin"),
                "Mesotherapy for skin rejuvenation and fictional botox consultations.",
            ),
            ("fictional-rosebank-aesthetics", ("mesotherapy",), "Visiting on Fridays."),
        ),
    ),
    Person(
        "active_second",
        "MP0900002",
        "DR",
        "FICTIONAL-BEUKES",
        "LIZE SAMPLE",
        (("INDEPENDENT PRACTICE", "ACTIVE"),),
        ((5, Outcome.OK),),
        (
            (
                "fictional-table-view-wellness",
                ("mesotherapy", "fat-reduction"),
                "Meso and fat dissolving injections.",
            ),
        ),
    ),
    Person(
        "active_durban",
        "MP0900003",
        "DR",
        "FICTIONAL-PILLAY",
        "KAVITHA DEMO",
        (("INDEPENDENT PRACTICE", "ACTIVE"),),
        ((1, Outcome.OK),),
        (("fictional-umhlanga-rooms", ("mesotherapy", "hair-regrowth"), "Hair loss clinic."),),
    ),
    Person(
        "suspended",
        "MP0900004",
        "DR",
        "FICTIONAL-SUSPENDED",
        "JOHAN PLACEHOLDER",
        (("INDEPENDENT PRACTICE", "SUSPENDED"),),
        ((3, Outcome.OK),),
        (("fictional-harbour-skin-clinic", ("mesotherapy",), "Mesotherapy sessions."),),
    ),
    Person(
        "erased",
        "MP0900005",
        "DR",
        "FICTIONAL-ERASED",
        "PETER MOCK",
        (("INDEPENDENT PRACTICE", "ERASED - DISCIPLINARY"),),
        ((3, Outcome.OK),),
        (("fictional-umhlanga-rooms", ("mesotherapy",), "Mesotherapy."),),
    ),
    Person(
        "deceased",
        "MP0900006",
        "DR",
        "FICTIONAL-DECEASED",
        "SAM SPECIMEN",
        (("INDEPENDENT PRACTICE", "DECEASED"),),
        ((3, Outcome.OK),),
    ),
    Person(
        "not_found",
        "MP0900007",
        "DR",
        "",
        "",
        (),
        ((3, Outcome.NOT_FOUND),),
    ),
    Person(
        "stale",
        "MP0900008",
        "DR",
        "FICTIONAL-STALE",
        "NOMSA EXAMPLE",
        (("INDEPENDENT PRACTICE", "ACTIVE"),),
        ((60, Outcome.OK),),
        (("fictional-harbour-skin-clinic", ("mesotherapy",), "Mesotherapy on request."),),
    ),
    Person(
        "pending",
        "MP0900009",
        "DR",
        "FICTIONAL-PENDING",
        "THABO DEMO",
        (("INDEPENDENT PRACTICE", "ACTIVE"),),
        ((4, Outcome.OK), (0.01, Outcome.NOT_FOUND)),
        (("fictional-rosebank-aesthetics", ("botulinum-toxin",), "Botox."),),
    ),
    Person(
        "unreadable",
        "MP0900010",
        "DR",
        "FICTIONAL-UNREADABLE",
        "ZANELE TEST",
        (("INDEPENDENT PRACTICE", "PROVISIONALLY ACTIVE PENDING REVIEW"),),
        ((2, Outcome.OK),),
    ),
    Person(
        "active_then_error",
        "MP0900011",
        "DR",
        "FICTIONAL-FLAKY",
        "ANNA PLACEHOLDER",
        (("INDEPENDENT PRACTICE", "ACTIVE"),),
        ((6, Outcome.OK), (0.02, Outcome.ERROR)),
        (("fictional-rosebank-aesthetics", ("hair-regrowth",), "Hair regrowth."),),
    ),
]

BY_KEY = {p.key: p for p in PEOPLE}


def lookup(person: Person, outcome: Outcome, observed_at: datetime) -> LookupResult:
    """What the register would have answered for this person at ``observed_at``."""
    if outcome is Outcome.OK:
        rows = tuple(
            RegisterRow(
                registration_number=person.number,
                title=person.title,
                surname=person.surname,
                full_names=person.full_names,
                city=None,
                postal_code=None,
                category=category,
                status=raw,
            )
            for category, raw in person.rows
        )
        return LookupResult(person.number, outcome, observed_at, SOURCE, rows=rows)
    if outcome is Outcome.NOT_FOUND:
        return LookupResult(person.number, outcome, observed_at, SOURCE)
    return LookupResult(
        person.number,
        outcome,
        observed_at,
        SOURCE,
        error="the register answered HTTP 503",
        transient=True,
    )


def build_directory(
    session: Session,
    policy: RegistryPolicy,
    *,
    now: datetime | None = None,
    people: Iterable[Person] = PEOPLE,
) -> dict[str, Practitioner]:
    """Services, clinics and practitioners (each through ``record_check``), committed."""
    now = now or utcnow()
    services = {s["slug"]: Service(**s) for s in SERVICES}
    clinics = {c["slug"]: Clinic(**c) for c in CLINICS}
    session.add_all([*services.values(), *clinics.values()])
    made: dict[str, Practitioner] = {}
    for person in people:
        practitioner = new_practitioner(person.number)
        for days_ago, outcome in person.steps:
            at = now - timedelta(days=days_ago)
            record_check(session, practitioner, lookup(person, outcome, at), policy, now=at)
        for clinic_slug, service_slugs, description in person.listings:
            session.add(
                Listing(
                    practitioner=practitioner,
                    clinic=clinics[clinic_slug],
                    services=[services[s] for s in service_slugs],
                    description=description,
                )
            )
        made[person.key] = practitioner
    session.commit()
    return made


class StubBackend:
    """A stand-in engine for tests of the pages' own logic (how they read the query string,
    show a QueryError, a "did you mean", facets, pagination). It records every query."""

    def __init__(
        self,
        results: SearchResults | None = None,
        *,
        error: str | None = None,
    ) -> None:
        self.results = results
        self.error = error
        self.queries: list[SearchQuery] = []

    def search(self, query: SearchQuery) -> SearchResults:
        self.queries.append(query)
        if self.error is not None:
            raise QueryError(self.error)
        if self.results is not None:
            return self.results
        return SearchResults(hits=[], total=0, page=query.page, per_page=query.per_page)

    def update_practitioners(self, practitioner_ids) -> None:  # pragma: no cover - unused
        pass

    def rebuild(self) -> None:  # pragma: no cover - unused
        pass


def hit_for(practitioner: Practitioner, *, verified_in_index: bool = True) -> SearchHit:
    """A hit as an engine might return it (``verified_in_index`` may be out of date)."""
    return SearchHit(
        registration_number=practitioner.registration_number,
        name=practitioner.display_name,
        status=practitioner.status,
        verified=verified_in_index,
        verified_at=practitioner.verified_at,
        services=("mesotherapy",),
        service_names=("Mesotherapy",),
        clinics=(
            ClinicRef(
                "fictional-harbour-skin-clinic",
                "Fictional Harbour Skin Clinic",
                "Cape Town",
                "Western Cape",
            ),
        ),
        snippet="<mark>Mesotherapy</mark> for skin &amp; <script>alert(1)</script>",
    )


def results_with(
    hits: list[SearchHit], *, total: int | None = None, page: int = 1, per_page: int = 20, **extra
) -> SearchResults:
    return SearchResults(
        hits=hits,
        total=len(hits) if total is None else total,
        page=page,
        per_page=per_page,
        facets=extra.pop(
            "facets",
            {
                "services": [FacetValue("mesotherapy", "Mesotherapy", len(hits))],
                "cities": [FacetValue("Cape Town", "Cape Town", len(hits))],
            },
        ),
        **extra,
    )
