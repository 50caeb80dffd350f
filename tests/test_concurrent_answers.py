"""Issue 9, hole 6: two look-ups of one number at once never leave a mixed record.

A slow ``flask registry verify`` (the register answers it ACTIVE, slowly) and a fast one
(SUSPENDED) of the same number, as two real processes against the fake iRegister on
loopback, on SQLite and PostgreSQL. Each answer is applied to the registration as it is
when the answer is applied (``recording.apply_answer`` locks the row and reads it again), so
afterwards the status, the category rows, the raw status, the newest history row and the
next check all come from one answer: the SUSPENDED one, which the register gave last.
All data is fictional.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from directory.extensions import db
from directory.registry.checks import new_practitioner
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import Practitioner, StatusEvent, VerificationCheck
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import apply_answer, record_check
from directory.registry.statuses import Outcome
from directory.registry.verification import verdict
from tests.test_recheck_support import FLASK, ROOT, start_recheck, subprocess_env

NUMBER = "MP0000101"  # one category row in the fixture register: INDEPENDENT PRACTICE
# The register answers the first look-up only once it has answered the second (however long
# that one's process takes to start on a busy machine: up to HOLD seconds), and SETTLE
# seconds later still, so that the fast look-up's answer is applied first.
HOLD = 90.0
SETTLE = 4.0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def confirmed_weeks_ago(app) -> None:
    """The register confirmed the number as active 20 days ago: a settled registration."""
    at = datetime.now(UTC) - timedelta(days=20)
    row = RegisterRow(
        NUMBER, "DR", "FICTIONAL", "THANDI", "CAPE TOWN", "8001", "INDEPENDENT PRACTICE", "ACTIVE"
    )
    with app.app_context():
        policy = RegistryPolicy.from_config(app.config)
        result = LookupResult(NUMBER, Outcome.OK, at, "test", rows=(row,))
        record_check(db.session, new_practitioner(NUMBER), result, policy, now=at)
        db.session.commit()


def start_verify(app, fake, tmp_path) -> subprocess.Popen:
    env = subprocess_env(
        app.config["SQLALCHEMY_DATABASE_URI"], fake.url, tmp_path, HPCSA_TIMEOUT=HOLD + 30
    )
    return subprocess.Popen(
        [str(FLASK), "registry", "verify", NUMBER, "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result_of(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate(timeout=HOLD + 90)
    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    (result,) = [line for line in lines if line["type"] == "result"]
    return result


def wait_until_asked(register, timeout: float = 60.0) -> None:
    """Return once the register has received the first look-up of NUMBER.

    The second look-up starts only then, so the one the register answers first is also the
    one that went out first: each look-up is dated when its request went out, and two
    processes starting together could otherwise send in one order and arrive in the other
    (a few milliseconds apart), which makes the later-dated answer the first one given.
    """
    deadline = time.monotonic() + timeout
    while not register.requests_for(NUMBER):
        assert time.monotonic() < deadline, "the first look-up never reached the register"
        time.sleep(0.02)


def assert_overlapped(register) -> None:
    first, second = register.requests_for(NUMBER)
    assert second.at < first.at + HOLD, "the look-ups did not overlap: the machine is too slow"


@pytest.mark.slow
def test_a_slow_active_and_a_fast_suspended_look_up_leave_one_answer(
    db_app, fake_iregister, tmp_path
):
    app, register = db_app, fake_iregister.register
    confirmed_weeks_ago(app)
    # the first look-up is answered ACTIVE, slowly; the second, asked while the first
    # waits, is answered SUSPENDED at once
    register.answer_next(NUMBER, "ACTIVE", delay=SETTLE, hold=HOLD)
    register.answer_next(NUMBER, "SUSPENDED")

    first = start_verify(app, fake_iregister, tmp_path)
    wait_until_asked(register)
    processes = [first, start_verify(app, fake_iregister, tmp_path)]
    lines = [result_of(process) for process in processes]
    assert_overlapped(register)

    # the ACTIVE answer was given before the SUSPENDED one: it changes nothing
    assert sorted(line["effect"] for line in lines) == ["changed", "ignored_stale"]
    for line in lines:  # each reports the registration as it is, not a copy read before
        assert line["status"] == "suspended" and line["verified"] is False

    with app.app_context():
        policy = RegistryPolicy.from_config(app.config)
        p = db.session.scalar(select(Practitioner).filter_by(registration_number=NUMBER))
        history = db.session.scalars(
            select(VerificationCheck)
            .where(VerificationCheck.practitioner_id == p.id)
            .order_by(VerificationCheck.id)
        ).all()
        events = db.session.scalars(select(StatusEvent)).all()

        assert p.status == "suspended" and not verdict(p).verified
        assert p.raw_status == "SUSPENDED"
        assert [(c.category, c.raw_status, c.status) for c in p.categories] == [
            ("INDEPENDENT PRACTICE", "SUSPENDED", "suspended")
        ]
        assert [(e.from_status, e.to_status) for e in events] == [("active", "suspended")]
        # the newest answer in the history (by when the register gave it) is the one the
        # registration rests on; anything recorded after it changed nothing
        newest = max(history, key=lambda check: check.checked_at)
        assert (newest.status, newest.raw_status, newest.effect) == (
            "suspended",
            "SUSPENDED",
            "changed",
        )
        assert all(c.effect == "ignored_stale" for c in history if c.id > newest.id)
        assert p.status_as_of == newest.checked_at == p.last_answer_at
        # the next check is the one the SUSPENDED answer set (daily after a change)
        assert p.next_check_at == newest.recorded_at + policy.recently_changed_every


@pytest.mark.slow
def test_a_slow_recheck_and_a_fast_verify_of_one_number_leave_one_answer(
    db_app, fake_iregister, tmp_path
):
    """The same race with the recheck job as the slow look-up."""
    app, register = db_app, fake_iregister.register
    confirmed_weeks_ago(app)  # due: its weekly recheck is two weeks late
    register.answer_next(NUMBER, "ACTIVE", delay=SETTLE, hold=HOLD)
    register.answer_next(NUMBER, "SUSPENDED")

    env = subprocess_env(
        app.config["SQLALCHEMY_DATABASE_URI"],
        fake_iregister.url,
        tmp_path,
        HPCSA_TIMEOUT=HOLD + 30,
    )
    recheck = start_recheck(env, "--json")
    wait_until_asked(register)
    verify_line = result_of(start_verify(app, fake_iregister, tmp_path))
    stdout, stderr = recheck.communicate(timeout=HOLD + 90)
    assert recheck.returncode == 0, stderr
    assert_overlapped(register)
    looked_up = [json.loads(x) for x in stdout.splitlines() if x.startswith("{")]
    (recheck_line,) = [x for x in looked_up if x.get("type") == "lookup"]
    assert sorted([recheck_line["effect"], verify_line["effect"]]) == [
        "changed",
        "ignored_stale",
    ]
    assert verify_line["status"] == "suspended" and verify_line["verified"] is False

    with app.app_context():
        p = db.session.scalar(select(Practitioner).filter_by(registration_number=NUMBER))
        assert p.status == "suspended" and p.raw_status == "SUSPENDED"
        assert [c.status for c in p.categories] == ["suspended"]
        assert p.lease_owner is None


def test_an_answer_is_judged_against_the_row_as_it_is_when_applied(db_app):
    """In-process: a session that read the registration before its look-up applies its
    answer after another session changed the row; it decides on the row as it is then
    (``record_check``, kept for existing callers, locks and reads again like
    ``apply_answer``)."""
    app = db_app
    confirmed_weeks_ago(app)
    now = datetime.now(UTC)
    row = RegisterRow(
        NUMBER, "DR", "FICTIONAL", "THANDI", "CAPE TOWN", "8001", "INDEPENDENT PRACTICE", "X"
    )

    def answer(status: str, at: datetime) -> LookupResult:
        rows = (replace(row, status=status),)
        return LookupResult(NUMBER, Outcome.OK, at, "test", rows=rows)

    with app.app_context():
        policy = RegistryPolicy.from_config(app.config)
        early = db.session.scalar(select(Practitioner).filter_by(registration_number=NUMBER))
        assert early.status == "active" and early.categories[0].status == "active"

        with app.app_context():  # another look-up, in its own session, records SUSPENDED
            other = db.session.scalar(select(Practitioner).filter_by(registration_number=NUMBER))
            record_check(db.session, other, answer("SUSPENDED", now), policy)
            db.session.commit()

        # this look-up's answer was given 2 s before the other one
        effect = record_check(
            db.session, early, answer("ACTIVE", now - timedelta(seconds=2)), policy
        )
        db.session.commit()
        assert effect.effect == "ignored_stale" and effect.from_status == "suspended"

    with app.app_context():
        p = db.session.scalar(select(Practitioner).filter_by(registration_number=NUMBER))
        assert p.status == "suspended"
        assert [(c.raw_status, c.status) for c in p.categories] == [("SUSPENDED", "suspended")]


def test_a_look_up_is_dated_when_its_request_went_out(fake_iregister):
    """Of two overlapping look-ups, the one asked later counts as the newer answer, however
    slowly the other was answered: an answer is dated when its request was sent."""
    from importers.sources.hpcsa import HpcsaClient

    fake_iregister.register.answer_next(NUMBER, "ACTIVE", delay=1.0)
    config = {"HPCSA_URL": fake_iregister.url, "HPCSA_TIMEOUT": 5.0, "CONTACT_URL": "x"}
    with HpcsaClient.from_config(config) as client:
        before = datetime.now(UTC)
        result = client.lookup(NUMBER)
        after = datetime.now(UTC)
    assert result.outcome is Outcome.OK and after - before >= timedelta(seconds=1)
    assert before <= result.observed_at < before + timedelta(seconds=0.5)


def test_two_first_look_ups_of_a_new_number_at_once_make_one_registration(db_app):
    """The second waits for the first one's transaction, then applies its answer to the
    registration the first one created (no duplicate, no integrity error)."""
    app, number = db_app, "MP0000777"
    now = datetime.now(UTC)

    def answer(status: str, at: datetime) -> LookupResult:
        row = RegisterRow(number, "DR", "FICTIONAL", "LERATO", "DURBAN", "4001", "INTERN", status)
        return LookupResult(number, Outcome.OK, at, "test", rows=(row,))

    seen: dict[str, object] = {}

    def second_look_up() -> None:
        with app.app_context():
            try:
                policy = RegistryPolicy.from_config(app.config)
                effect = apply_answer(db.session, number, answer("SUSPENDED", now), policy)
                seen["effect"] = (effect.effect, effect.from_status, effect.to_status)
                db.session.commit()
            except Exception as exc:  # reported below, on the test's thread
                seen["error"] = exc

    with app.app_context():
        policy = RegistryPolicy.from_config(app.config)
        earlier = now - timedelta(seconds=1)
        first = apply_answer(db.session, number, answer("ACTIVE", earlier), policy)
        db.session.flush()
        assert first.effect == "created"
        other = threading.Thread(target=second_look_up)
        other.start()
        other.join(1.0)
        assert other.is_alive(), "the second look-up must wait for the first transaction"
        db.session.commit()
    other.join(30)
    assert "error" not in seen, seen.get("error")
    assert seen["effect"] == ("changed", "active", "suspended")
    with app.app_context():
        rows = db.session.scalars(select(Practitioner).filter_by(registration_number=number))
        (p,) = rows.all()
        assert p.status == "suspended" and p.raw_status == "SUSPENDED"
        history = db.session.scalars(
            select(VerificationCheck.effect).where(VerificationCheck.practitioner_id == p.id)
        ).all()
        assert sorted(history) == ["changed", "created"]
