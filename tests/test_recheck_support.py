"""Helpers shared by the recheck tests (no tests here): seeding registrations, running the
command in-process or as a real ``flask`` subprocess, and reading what the database holds.

Setting ``next_check_at`` or lease columns directly is test set-up (making work due, or
simulating another run's claim); statuses are only ever set through ``record_check``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from directory.extensions import db
from directory.registry.checks import new_practitioner
from directory.registry.models import Practitioner, StatusEvent, VerificationCheck
from directory.util.clock import utcnow

ROOT = Path(__file__).resolve().parent.parent
FLASK = ROOT / ".venv" / "bin" / "flask"

# Quick retries and a fast rate for tests; every key can be overridden per test.
FAST = {
    "HPCSA_TIMEOUT": 1.0,
    "RECHECK_RATE": 100.0,
    "RECHECK_RATE_LIMIT": 1000.0,
    "HPCSA_MAX_RATE": 1000.0,
    "HPCSA_RETRY_BASE": 0.01,
    "HPCSA_RETRY_MAX_DELAY": 0.05,
    "RECHECK_PROGRESS_EVERY": 0.2,
}


def seed(app, numbers: Iterable[str]) -> None:
    """Registrations known by number only (as an import of numbers leaves them): due now."""
    with app.app_context():
        for number in numbers:
            db.session.add(new_practitioner(number))
        db.session.commit()


def make_due(app, numbers: Iterable[str] | None = None) -> None:
    with app.app_context():
        stmt = update(Practitioner).values(next_check_at=utcnow() - timedelta(minutes=1))
        if numbers is not None:
            stmt = stmt.where(Practitioner.registration_number.in_(list(numbers)))
        db.session.execute(stmt)
        db.session.commit()


def invoke(app, *args: str):
    """``flask registry recheck ARGS`` in this process (over real HTTP to the fake)."""
    return app.test_cli_runner().invoke(args=["registry", "recheck", *args])


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def summary_of(output: str) -> dict:
    lines = json_lines(output)
    assert lines and lines[-1]["type"] == "summary", output
    return lines[-1]


def practitioners(app) -> dict[str, Practitioner]:
    with app.app_context():
        rows = db.session.scalars(select(Practitioner)).all()
        db.session.expunge_all()
        return {p.registration_number: p for p in rows}


def checks_per_number(app) -> Counter:
    with app.app_context():
        rows = db.session.execute(
            select(Practitioner.registration_number, func.count(VerificationCheck.id))
            .join(VerificationCheck, VerificationCheck.practitioner_id == Practitioner.id)
            .group_by(Practitioner.registration_number)
        ).all()
        return Counter(dict(rows))


def events(app) -> list[tuple[str, str | None, str]]:
    with app.app_context():
        return [
            (e.registration_number, e.from_status, e.to_status)
            for e in db.session.scalars(select(StatusEvent).order_by(StatusEvent.id))
        ]


def leases_held(app) -> list[tuple[str, str | None]]:
    with app.app_context():
        return db.session.execute(
            select(Practitioner.registration_number, Practitioner.lease_owner).where(
                Practitioner.lease_owner.is_not(None)
            )
        ).all()


def assert_consistent(app) -> None:
    """Nothing half-written: every practitioner's bookkeeping matches its last history row."""
    with app.app_context():
        for p in db.session.scalars(select(Practitioner)):
            last = db.session.scalars(
                select(VerificationCheck)
                .where(VerificationCheck.practitioner_id == p.id)
                .order_by(VerificationCheck.id.desc())
                .limit(1)
            ).first()
            if last is None:
                assert p.last_checked_at is None, p
                continue
            assert p.last_checked_at == last.recorded_at, p
            assert p.last_outcome == last.outcome, p
            assert p.next_check_at is not None and p.next_check_at >= last.recorded_at, p
            if last.outcome == "ok" and last.effect != "ignored_stale":
                assert p.status == last.status, p


def subprocess_env(database_url: str, hpcsa_url: str, tmp_path: Path, **settings) -> dict:
    env = dict(os.environ)
    env.update(
        FLASK_APP="wsgi:app",
        DIRECTORY_SQLALCHEMY_DATABASE_URI=database_url,
        DIRECTORY_HPCSA_URL=hpcsa_url,
        DIRECTORY_SEARCH_INDEX_DIR=str(tmp_path / "search-index"),
        PYTHONUNBUFFERED="1",
    )
    for key, value in {**FAST, **settings}.items():
        env[f"DIRECTORY_{key}"] = str(value)
    return env


def start_recheck(env: dict, *args: str) -> subprocess.Popen:
    """A real ``flask registry recheck`` process."""
    return subprocess.Popen(
        [str(FLASK), "registry", "recheck", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
