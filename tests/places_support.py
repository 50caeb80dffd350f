"""A small fictional directory with coordinates, for the place and distance tests (no test
functions here). Every name, clinic and number is invented (numbers MP0920xxx); the towns
and their coordinates are real public geography."""

from __future__ import annotations

from directory.extensions import db
from directory.listings.models import Clinic, Listing, Service
from directory.listings.vocabulary import sync_services
from tests.test_search_support import NOW, P, make_practitioner

CLINICS = [
    # slug, name, city as the clinic wrote it, province, latitude, longitude
    ("bay-old-name", "Bay Rooms (fictional)", "Port Elizabeth", "Eastern Cape", -33.99, 25.65),
    ("bay-new-name", "Nelson Bay Demo", "Gqeberha", "Eastern Cape", -33.96, 25.60),
    ("sandton-sample", "Sandton Sample Rooms", "Sandton", "Gauteng", -26.1076, 28.0567),
    ("cbd-example", "CBD Example Clinic", "Johannesburg", "Gauteng", -26.2041, 28.0473),
    ("randburg-mock", "Randburg Mock Practice", "Randburg", "Gauteng", -26.0941, 28.0012),
    ("unplaced-demo", "Unplaced Demo Rooms", "Johannesburg", "Gauteng", None, None),
    ("mother-city-demo", "Mother City Demo", "Cape Town", "Western Cape", -33.9249, 18.4241),
    ("jacaranda-mock", "Jacaranda Mock", "Pretoria", "Gauteng", -25.7479, 28.2293),
]
LISTINGS = [
    # number, clinic, services
    ("MP0920001", "bay-old-name", ["dermal-fillers"]),
    ("MP0920002", "bay-new-name", ["dermal-fillers"]),
    ("MP0920003", "sandton-sample", ["botulinum-toxin"]),
    ("MP0920004", "cbd-example", ["botulinum-toxin"]),
    ("MP0920005", "randburg-mock", ["botulinum-toxin"]),
    ("MP0920006", "unplaced-demo", ["botulinum-toxin"]),
    ("MP0920007", "mother-city-demo", ["botulinum-toxin"]),
    ("MP0920008", "jacaranda-mock", ["botulinum-toxin"]),
    ("MP0920009", "mother-city-demo", ["dermal-fillers"]),
]
SURNAMES = {
    "MP0920001": "Baysample", "MP0920002": "Newnameton", "MP0920003": "Sandmock",
    "MP0920004": "Centreville-Demo", "MP0920005": "Randexample", "MP0920006": "Nowhere-Sample",
    "MP0920007": "Capemock", "MP0920008": "Jacarandademo", "MP0920009": "Fillerton",
}  # fmt: skip


def seed_places() -> None:
    """Load the directory (caller is inside an app context)."""
    sync_services(db.session)
    db.session.flush()
    services = {s.slug: s for s in db.session.scalars(db.select(Service))}
    people = {
        number: make_practitioner(P(number, surname, "Demo"), NOW)
        for number, surname in SURNAMES.items()
    }
    db.session.add_all(people.values())
    clinics = {
        slug: Clinic(
            slug=slug, name=name, city=city, province=province, latitude=lat, longitude=lon
        )
        for slug, name, city, province, lat, lon in CLINICS
    }
    db.session.add_all(clinics.values())
    db.session.flush()
    for number, clinic, slugs in LISTINGS:
        db.session.add(
            Listing(
                practitioner=people[number],
                clinic=clinics[clinic],
                services=[services[s] for s in slugs],
                description=f"{services[slugs[0]].name} by appointment (fictional text).",
            )
        )
    db.session.commit()


def places_app(base, database_url: str | None = None):
    """An app over this directory (SQLite under ``base`` unless ``database_url``), its
    tables created and seeded; the caller disposes of it with ``drop_places_app``."""
    from directory import create_app

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "places-test",
            "SQLALCHEMY_DATABASE_URI": database_url or f"sqlite:///{base / 'places.sqlite3'}",
            "SEARCH_INDEX_DIR": str(base / "ix"),
            "HPCSA_URL": "http://127.0.0.1:9/never-called",
            "MAIL_FILE_DIR": str(base / "mail"),
        }
    )
    with app.app_context():
        db.create_all()
        seed_places()
    return app


def drop_places_app(app) -> None:
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
