"""`flask demo load`: enough fictional data for a living directory, loaded through the rules,
and the same database however often it runs."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta

import phonenumbers
import pytest
from sqlalchemy import func, select

from directory import create_app
from directory.demo import generator
from directory.demo.loader import load_demo
from directory.extensions import db
from directory.listings import phones
from directory.listings.models import Clinic, Listing, Service
from directory.listings.places import provinces
from directory.listings.vocabulary import service_terms
from directory.registry.models import (
    Practitioner,
    RegistrationCategory,
    StatusEvent,
    VerificationCheck,
)
from directory.registry.policy import RegistryPolicy
from directory.registry.verification import verdict
from directory.util.clock import utcnow

ARTICLE_SERVICES = (
    "mesotherapy", "fat-reduction", "cellulite", "hair-regrowth", "wrinkle-reduction",
    "skin-rejuvenation", "scar-improvement", "acne", "stretch-marks", "pain-management",
    "arthritis-joint-problems", "sports-injuries", "weight-loss", "botulinum-toxin",
    "dermal-fillers", "prp", "chemical-peels", "general-practice",
)  # fmt: skip


def dump_tables() -> dict[str, list[tuple]]:
    out = {}
    for table in db.metadata.sorted_tables:
        rows = db.session.execute(table.select().order_by(*table.primary_key.columns)).all()
        out[table.name] = [tuple(r) for r in rows]
    return out


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    """One demo database for the read-only tests of this module (a load takes seconds)."""
    tmp = tmp_path_factory.mktemp("demo")
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'demo.sqlite3'}",
            "SEARCH_INDEX_DIR": str(tmp / "search-index"),
            "HPCSA_URL": "http://127.0.0.1:9/never-called",
        }
    )
    with app.app_context():
        db.create_all()
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    assert "320 created" in result.output
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_demo_has_a_living_directory(demo_app):
    with demo_app.app_context():
        assert count(Practitioner) >= 300
        assert count(Clinic) >= 60
        assert count(Listing) >= 200
        assert count(Service) == len(service_terms())
        clinics = db.session.scalars(select(Clinic)).all()
        cities = Counter(c.city for c in clinics)
        for city in ("Johannesburg", "Cape Town", "Durban", "Pretoria", "Gqeberha",
                     "Bloemfontein", "Polokwane", "Mbombela", "Kimberley"):  # fmt: skip
            assert cities[city] >= 1, city
        assert {c.province for c in clinics} <= set(provinces())
        assert len({c.province for c in clinics}) == 9
        offered = Counter(
            s.slug for listing in db.session.scalars(select(Listing)) for s in listing.services
        )
        for slug in ARTICLE_SERVICES:
            assert offered[slug] >= 3, slug
        # Some practitioners work at several clinics.
        per_practitioner = Counter(db.session.scalars(select(Listing.practitioner_id)).all())
        assert any(n >= 2 for n in per_practitioner.values())


def test_demo_has_every_kind_of_register_answer(demo_app):
    with demo_app.app_context():
        practitioners = db.session.scalars(select(Practitioner)).all()
        verdicts = {p.registration_number: verdict(p) for p in practitioners}
        tones = Counter(v.tone for v in verdicts.values())
        statuses = Counter(p.status for p in practitioners)
        assert tones["verified"] >= 250
        assert tones["stale"] >= 10
        assert tones["pending"] >= 3
        assert tones["adverse"] >= 15
        assert statuses["suspended"] >= 5 and statuses["erased"] >= 3
        assert statuses["not_found"] >= 1 and statuses["unknown"] >= 1
        # Several category rows for some numbers.
        several = db.session.execute(
            select(RegistrationCategory.practitioner_id)
            .group_by(RegistrationCategory.practitioner_id)
            .having(func.count() >= 2)
        ).all()
        assert len(several) >= 8
        # Adverse and stale practitioners appear in listings too, so the directory shows them.
        listed = {
            p.registration_number: verdicts[p.registration_number].tone
            for p in db.session.scalars(select(Practitioner).join(Listing))
        }
        listed_tones = Counter(listed.values())
        assert listed_tones["adverse"] >= 3 and listed_tones["stale"] >= 3


def test_demo_goes_through_the_registry_rules(demo_app):
    """Statuses come from recorded checks (with history and events), never direct writes."""
    with demo_app.app_context():
        practitioners = db.session.scalars(select(Practitioner)).all()
        for p in practitioners:
            checks = db.session.scalars(
                select(VerificationCheck).where(VerificationCheck.practitioner_id == p.id)
            ).all()
            assert checks, p.registration_number
            assert {c.source for c in checks} == {"demo-data"}
        suspended = [p for p in practitioners if p.status == "suspended"]
        events = db.session.scalars(select(StatusEvent)).all()
        assert {e.to_status for e in events} >= {"suspended", "erased"}
        assert len(events) >= len([p for p in suspended if p.status_changed_at])
        stale = [p for p in practitioners if verdict(p).tone == "stale"]
        assert all(utcnow() - p.verified_at > timedelta(days=30) for p in stale)
        pending = [p for p in practitioners if verdict(p).tone == "pending"]
        assert all(p.status == "active" and p.not_found_pending_since for p in pending)


def test_demo_data_is_clearly_fictional(demo_app):
    with demo_app.app_context():
        for p in db.session.scalars(select(Practitioner)):
            assert re.fullmatch(r"(MP|PT|DI)09\d{5}", p.registration_number)
            assert p.surname is None or p.surname in generator.SURNAMES  # None: not found
        for clinic in db.session.scalars(select(Clinic)):
            assert "fictional" in clinic.description
            # a phone number only in the unallocated range, which rings no one
            assert clinic.phone is None or phones.is_fictional(clinic.phone)
            assert clinic.phone is None or not phonenumbers.is_valid_number(
                phonenumbers.parse(clinic.phone)
            )
            for address in (clinic.email or "", clinic.website or ""):
                assert address == "" or address.endswith(".example")


def test_demo_load_twice_gives_the_same_database(app, runner):
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    with app.app_context():
        before = dump_tables()
    result = runner.invoke(args=["demo", "load", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])
    assert summary["practitioners_created"] == 0
    assert summary["practitioners_refreshed"] == 0
    assert summary["checks_recorded"] == 0
    assert summary["clinics_created"] == summary["clinics_updated"] == 0
    assert summary["listings_created"] == summary["listings_updated"] == 0
    with app.app_context():
        assert dump_tables() == before


def test_the_generator_is_deterministic():
    first = generator.demo_practitioners()
    second = generator.demo_practitioners()
    assert first == second
    assert generator.demo_clinic_records(first) == generator.demo_clinic_records(second)
    assert len({p.registration_number for p in first}) == len(first) >= 300


def test_a_long_running_demo_database_is_topped_up_not_duplicated(app):
    """Weeks later the planned-fresh registrations have gone stale: one replayed answer each
    brings them back; the planned-stale, adverse and pending ones stay as they were."""
    with app.app_context():
        policy = RegistryPolicy.from_config(app.config)
        weeks_ago = utcnow() - timedelta(days=45)
        load_demo(db.session, policy, now=weeks_ago)
        db.session.commit()
        checks_before = count(VerificationCheck)
        report = load_demo(db.session, policy)
        db.session.commit()
        plan = {p.registration_number: p for p in generator.demo_practitioners()}
        fresh_planned = [p for p in plan.values() if p.scenario in generator.FRESH_SCENARIOS]
        assert report.practitioners_refreshed == len(fresh_planned)
        assert count(VerificationCheck) == checks_before + len(fresh_planned)
        tones = Counter(verdict(p).tone for p in db.session.scalars(select(Practitioner)))
        assert tones["verified"] == len(fresh_planned)
        assert tones["pending"] >= 3
        # And then it is stable again.
        again = load_demo(db.session, policy)
        assert again.practitioners_refreshed == 0


def test_demo_load_without_tables_says_what_to_do(tmp_path, fake_iregister):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
            "SEARCH_INDEX_DIR": str(tmp_path / "index"),
            "HPCSA_URL": fake_iregister.url,
        }
    )
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 2
    assert "flask db upgrade" in result.output
    assert "Traceback" not in result.output


def test_exported_demo_clinics_import_back_unchanged(demo_app, tmp_path):
    """The export is a worked example of the import format: it imports cleanly, as a no-op."""
    runner = demo_app.test_cli_runner()
    path = tmp_path / "clinics.jsonl"
    assert runner.invoke(args=["demo", "export-clinics", str(path)]).exit_code == 0
    assert len(path.read_text(encoding="utf-8").splitlines()) == generator.CLINIC_COUNT
    result = runner.invoke(args=["directory", "import-listings", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])
    assert summary["clinics_unchanged"] == generator.CLINIC_COUNT
    assert summary["listings_created"] == summary["listings_updated"] == 0
    assert summary["errors"] == 0


@pytest.mark.postgres
def test_demo_load_on_postgresql_is_idempotent(pg_app):
    runner = pg_app.test_cli_runner()
    assert runner.invoke(args=["demo", "load"]).exit_code == 0
    with pg_app.app_context():
        before = dump_tables()
        assert count(Practitioner) == generator.PRACTITIONER_COUNT
    result = runner.invoke(args=["demo", "load", "--json"])
    assert result.exit_code == 0, result.output
    with pg_app.app_context():
        assert dump_tables() == before
