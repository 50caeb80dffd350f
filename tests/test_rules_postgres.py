"""``record_check`` round trips on PostgreSQL: the SQL is portable and PostgreSQL's stricter
types (time zones) hold what the rules write, read back in a new session.

The rest of the rules' database side (columns' lengths, the history's guards and triggers)
runs on SQLite and PostgreSQL in tests/test_rules.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from directory.extensions import db
from directory.registry.checks import new_practitioner
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import (
    Practitioner,
    StatusEvent,
    VerificationCheck,
)
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome
from directory.registry.verification import verdict
from importers.sources.hpcsa import HpcsaClient

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _load(number: str) -> Practitioner:
    db.session.expire_all()
    return db.session.scalar(select(Practitioner).where(Practitioner.registration_number == number))


def test_a_live_look_up_round_trips_through_postgresql(pg_app, fake_iregister, policy):
    with pg_app.app_context():
        assert db.engine.dialect.name == "postgresql"
        with HpcsaClient.from_config(pg_app.config) as source:
            for number in ("MP0000102", "PS0000301", "MP0000107"):
                record_check(db.session, new_practitioner(number), source.lookup(number), policy)
            db.session.commit()
        db.session.remove()

        p = _load("MP0000102")
        assert p.status == "erased"  # ACTIVE + INACTIVE + ERASED - NON PAYMENT
        assert [(c.position, c.category, c.status) for c in p.categories] == [
            (0, "INDEPENDENT PRACTICE", "active"),
            (1, "PUBLIC SERVICE", "inactive"),
            (2, "INTERN", "erased"),
        ]
        assert p.verified_at.tzinfo is UTC
        ps = _load("PS0000301")
        assert ps.status == "active" and verdict(ps).verified
        assert _load("MP0000107").status == "deceased"
        checks = db.session.scalars(select(VerificationCheck)).all()
        assert len(checks) == 3 and all(len(c.response_digest) == 64 for c in checks)


def test_the_rules_round_trip_through_postgresql(pg_app, policy):
    number = "MP0000101"

    def row(status: str) -> RegisterRow:
        return RegisterRow(number, "DR", "FICTIONAL-NDLOVU", "THANDI", "JOHANNESBURG", "2001",
                           "INDEPENDENT PRACTICE", status)  # fmt: skip

    results = [
        LookupResult(number, Outcome.OK, T0, "test", rows=(row("ACTIVE"),)),
        LookupResult(number, Outcome.ERROR, T0 + timedelta(hours=1), "test", error="HTTP 500"),
        LookupResult(number, Outcome.NOT_FOUND, T0 + timedelta(hours=2), "test"),
        LookupResult(
            number,
            Outcome.OK,
            T0 + timedelta(minutes=30),
            "snapshot:old.csv",
            rows=(row("SUSPENDED"),),
        ),  # an old snapshot row: stale
        LookupResult(number, Outcome.NOT_FOUND, T0 + timedelta(hours=3), "test"),
    ]
    with pg_app.app_context():
        p = new_practitioner(number)
        effects = []
        for result in results:
            effects.append(
                record_check(db.session, p, result, policy, now=T0 + timedelta(hours=3)).effect
            )
            db.session.commit()
            p = _load(number)
        assert effects == [
            "created", "no_effect", "pending_not_found", "ignored_stale", "changed",
        ]  # fmt: skip
        assert p.status == "not_found" and p.categories == []
        assert p.verified_at == T0 and p.status_changed_at == T0 + timedelta(hours=3)
        (event,) = db.session.scalars(select(StatusEvent)).all()
        assert (event.from_status, event.to_status) == ("active", "not_found")
        assert len(event.event_id) == 36
        history = db.session.scalars(select(VerificationCheck).order_by(VerificationCheck.id))
        assert [c.checked_at for c in history] == [r.observed_at for r in results]
