"""``flask registry recheck`` in-process, over real HTTP against the fake iRegister."""

from __future__ import annotations

import bisect
import time
import uuid
from collections.abc import Iterator
from email.utils import formatdate

import pytest
from sqlalchemy import select, text

from directory.extensions import db
from directory.registry.models import Practitioner, StatusEvent, VerificationCheck
from directory.registry.statuses import Status, combine, map_raw_status
from directory.registry.verification import verdict
from directory.util.clock import utcnow
from tests.fake_iregister import FAULTS
from tests.test_recheck_support import (
    FAST,
    assert_consistent,
    checks_per_number,
    events,
    invoke,
    json_lines,
    leases_held,
    make_due,
    practitioners,
    seed,
    summary_of,
)

FIXTURE_NUMBERS = [
    "MP0000101",
    "MP0000102",
    "MP0000103",
    "MP0000104",
    "MP0000105",
    "MP0000106",
]
# The transient failures: always retried.
TRANSIENT = ["500", "429", "invalid_json", "html_200", "drop", "timeout"]
# Answers that are plainly wrong: whatever the client makes of them, never a status.
UNUSABLE = ["error_field", "wrong_number", "missing_column", "not_json_object"]


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL (claims, leases and history rows)."""
    return either_app


@pytest.fixture
def app_config(app_config):
    return {**app_config, **FAST, "HPCSA_TIMEOUT": 0.5}


@pytest.fixture
def register(fake_iregister):
    return fake_iregister.register


def truth(register, number: str) -> Status:
    """What the fake register says now, through the same status rules."""
    rows = register.records.get(number)
    if not rows:
        return Status.NOT_FOUND
    return combine(map_raw_status(row[7]) for row in rows)


def established(app, register, numbers) -> None:
    """Registrations the register confirmed once already (a first clean run)."""
    seed(app, numbers)
    result = invoke(app, "--json")
    assert result.exit_code == 0, result.output
    assert summary_of(result.output)["checked"] == len(numbers)
    register.requests.clear()


def test_a_run_checks_everything_due_and_records_each_once(app, register):
    numbers = [*FIXTURE_NUMBERS, "MP0999999"]  # the last is not on the register
    seed(app, numbers)
    result = invoke(app, "--json")
    assert result.exit_code == 0, result.output
    summary = summary_of(result.output)
    assert summary["checked"] == 7 and summary["errors"] == 0 and summary["skipped"] == 0
    assert summary["not_found"] == 1 and summary["remaining_due"] == 0
    assert checks_per_number(app) == {n: 1 for n in numbers}
    stored = practitioners(app)
    for number in numbers:
        assert stored[number].status == truth(register, number)
    assert leases_held(app) == []
    assert_consistent(app)
    # Nothing is due any more: a second run asks the register nothing.
    register.requests.clear()
    again = invoke(app, "--json")
    assert summary_of(again.output)["checked"] == 0 and register.requests == []


def test_a_suspension_writes_history_and_an_event_and_ends_verified(app, register):
    established(app, register, ["MP0000101", "MP0000106"])
    with app.app_context():
        p = db.session.scalar(
            select(Practitioner).where(Practitioner.registration_number == "MP0000101")
        )
        assert verdict(p).verified
    register.set_status("MP0000101", "SUSPENDED")
    make_due(app)
    result = invoke(app, "--json")
    summary = summary_of(result.output)
    assert summary["changed"] == {"active->suspended": 1}
    assert summary["unchanged"] == 1
    assert events(app) == [("MP0000101", "active", "suspended")]
    lookup = next(
        line for line in json_lines(result.output) if line.get("registration_number") == "MP0000101"
    )
    assert lookup["from"] == "active" and lookup["to"] == "suspended"
    assert lookup["effect"] == "changed"
    with app.app_context():
        p = db.session.scalar(
            select(Practitioner).where(Practitioner.registration_number == "MP0000101")
        )
        assert p.status == "suspended" and not verdict(p).verified
        history = db.session.scalars(
            select(VerificationCheck.effect)
            .where(VerificationCheck.practitioner_id == p.id)
            .order_by(VerificationCheck.id)
        ).all()
        assert history == ["unchanged", "changed"]
        # Recently changed: checked again tomorrow.
        assert 0.9 < (p.next_check_at - utcnow()).total_seconds() / 86400 < 1.1
    assert_consistent(app)


def test_a_not_found_needs_confirmation(app, register):
    app.config["NOT_FOUND_CONFIRM_AFTER"] = "1s"
    established(app, register, ["MP0000101"])
    register.remove("MP0000101")
    make_due(app)
    first = summary_of(invoke(app, "--json").output)
    assert first["pending_not_found"] == 1 and first["changed"] == {}
    p = practitioners(app)["MP0000101"]
    assert p.status == "active" and p.not_found_pending_since is not None
    with app.app_context():
        assert not verdict(db.session.merge(p)).verified  # pending: never shown verified
    time.sleep(1.1)  # the confirmation delay passes; the schedule makes it due again
    second = summary_of(invoke(app, "--json").output)
    assert second["changed"] == {"active->not_found": 1}
    assert events(app) == [("MP0000101", "active", "not_found")]


def quick_faults(register) -> None:
    """A slow body slower than the client's timeout (0.5 s here) fails at its first piece."""
    register.slow_body_delay = 0.6


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_every_fault_kind_alone_never_gives_a_wrong_status(app, register, kind):
    """Whatever the fake can do (faults and odd but valid shapes), once: the run ends
    with the register's real answer, a recorded failure, or a pending not-found, and
    never with a status the register did not give."""
    quick_faults(register)
    established(app, register, ["MP0000101"])
    register.set_status("MP0000101", "SUSPENDED")
    register.fail_next(kind, 1, number="MP0000101")
    make_due(app)
    result = invoke(app, "--json")
    assert result.exit_code == 0, result.output
    (lookup,) = [line for line in json_lines(result.output) if line["type"] == "lookup"]
    p = practitioners(app)["MP0000101"]
    if lookup["outcome"] == "error":
        assert p.status == "active" and events(app) == []
        assert lookup["attempts"] in (1, 4)  # not retried, or retried to the bound
    elif lookup["effect"] == "pending_not_found":
        assert p.status == "active" and p.not_found_pending_since is not None
    else:
        assert lookup["to"] == p.status == "suspended"
        assert events(app) == [("MP0000101", "active", "suspended")]
    assert len(register.requests_for("MP0000101")) == lookup["attempts"]
    assert leases_held(app) == []
    assert_consistent(app)


@pytest.mark.parametrize("kind", TRANSIENT)
def test_a_transient_fault_is_retried_and_the_answer_recorded(app, register, kind):
    established(app, register, ["MP0000101"])
    register.set_status("MP0000101", "SUSPENDED")
    register.fail_next(kind, 1, number="MP0000101")
    make_due(app)
    result = invoke(app, "--json")
    assert result.exit_code == 0, result.output
    (lookup,) = [line for line in json_lines(result.output) if line["type"] == "lookup"]
    assert lookup["attempts"] == 2 and lookup["outcome"] == "ok"
    assert lookup["to"] == "suspended"
    assert len(register.requests_for("MP0000101")) == 2
    assert events(app) == [("MP0000101", "active", "suspended")]
    assert checks_per_number(app) == {"MP0000101": 2}  # the first run's and this one
    assert_consistent(app)


@pytest.mark.parametrize("kind", [*UNUSABLE, "500", "drop"])
def test_a_persistent_fault_is_recorded_as_a_failure_and_moves_nothing(app, register, kind):
    established(app, register, ["MP0000101"])
    register.set_status("MP0000101", "SUSPENDED")
    register.fail_next(kind, 10, number="MP0000101")
    make_due(app)
    result = invoke(app, "--json")
    assert result.exit_code == 0, result.output
    summary = summary_of(result.output)
    assert summary["errors"] == 1 and summary["changed"] == {}
    assert len(register.requests_for("MP0000101")) <= 4  # HPCSA_RETRY_ATTEMPTS
    p = practitioners(app)["MP0000101"]
    assert p.status == "active" and p.last_outcome == "error" and p.consecutive_failures == 1
    minutes = (p.next_check_at - utcnow()).total_seconds() / 60
    assert 14 < minutes <= 15  # errors back off from 15 minutes
    assert events(app) == []
    assert_consistent(app)


def test_transient_faults_until_the_bound_record_a_failure(app, register):
    established(app, register, ["MP0000101"])
    register.set_status("MP0000101", "ERASED")
    register.fail_next("500", 10, number="MP0000101")
    make_due(app)
    summary = summary_of(invoke(app, "--json").output)
    assert summary["errors"] == 1 and summary["requests"] == 4  # HPCSA_RETRY_ATTEMPTS
    assert practitioners(app)["MP0000101"].status == "active"


def test_mixed_faults_never_produce_a_wrong_status(app, register):
    numbers = FIXTURE_NUMBERS + register.generate(30)
    established(app, register, numbers)
    before = {n: p.status for n, p in practitioners(app).items()}
    for number in numbers[::3]:
        register.set_status(number, "SUSPENDED")
    register.failure_rate = 0.35
    register.failure_kinds = (*TRANSIENT[:-1], *UNUSABLE)  # not "timeout": keep it quick
    app.config["HPCSA_RETRY_ATTEMPTS"] = 3
    app.config["RECHECK_BREAKER_CONSECUTIVE"] = 1000
    app.config["RECHECK_BREAKER_RATIO"] = 0.99
    make_due(app)
    result = invoke(app, "--json", "--concurrency", "6")
    assert result.exit_code == 0, result.output
    summary = summary_of(result.output)
    assert summary["checked"] == len(numbers)
    assert summary["errors"] > 0  # the faults did bite
    for number, p in practitioners(app).items():
        if p.last_outcome == "error":
            assert p.status == before[number], number
        else:
            assert p.status == truth(register, number), number
    for number, _from, to in events(app):
        assert to == truth(register, number)
    assert leases_held(app) == []
    assert_consistent(app)


def requests_in_any_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + window) - i for i, t in enumerate(times))


def test_the_rate_seen_by_the_register_never_exceeds_the_limit(app, register):
    numbers = register.generate(32)
    seed(app, numbers)
    register.latency = 0.02
    result = invoke(app, "--json", "--rate", "8", "--concurrency", "4")
    assert summary_of(result.output)["checked"] == 32
    arrivals = [r.at for r in register.requests]
    assert len(arrivals) == 32
    assert requests_in_any_window(arrivals) <= 8


def test_a_429_slows_the_whole_run_and_retry_after_seconds_is_honoured(app, register):
    numbers = register.generate(8)
    seed(app, numbers)
    app.config["HPCSA_RATE_RECOVERY"] = "2s"  # back to full speed soon after the pause
    register.retry_after = "1"
    register.fail_next("429", 1)
    result = invoke(app, "--json", "--rate", "4", "--concurrency", "3")
    summary = summary_of(result.output)
    assert summary["checked"] == 8 and summary["errors"] == 0 and summary["rate_limited"] == 1
    first, *rest = sorted(r.at for r in register.requests)
    # The 429 was the first request: nothing, from any worker, until Retry-After passed.
    assert all(t >= first + 0.95 for t in rest), [round(t - first, 3) for t in rest]


def test_retry_after_as_an_http_date_is_honoured(app, register):
    seed(app, ["MP0000101"])
    register.retry_after = formatdate(time.time() + 3, usegmt=True)
    register.fail_next("429", 1)
    result = invoke(app, "--json")
    assert summary_of(result.output)["checked"] == 1
    first, second = (r.at for r in register.requests_for("MP0000101"))
    assert second - first >= 1.5  # the date is whole seconds: between 2 and 3 s ahead


def test_the_breaker_stops_the_run_leaves_the_rest_due_and_exits_3(app, register):
    numbers = register.generate(40)
    seed(app, numbers)
    register.fail_next("500", 10_000)
    result = invoke(app, "--json", "--concurrency", "4")
    assert result.exit_code == 3, result.output
    summary = summary_of(result.output)
    assert summary["stop_reason"] == "breaker"
    assert "20 requests in a row failed" in summary["breaker"]
    assert "register looks down" in result.output  # the plain message
    # It stopped promptly: 20 failures, plus at most what was already in flight.
    assert len(register.requests) <= 20 + 3
    stored = practitioners(app)
    errored = [n for n, p in stored.items() if p.last_outcome == "error"]
    untouched = [n for n, p in stored.items() if p.last_checked_at is None]
    assert len(errored) + len(untouched) == 40
    assert len(untouched) >= 30 and summary["remaining_due"] == len(untouched)
    assert all(p.status == "unknown" for p in stored.values())
    assert leases_held(app) == []
    assert_consistent(app)


def test_limit_and_max_duration_leave_the_rest_due(app, register):
    numbers = register.generate(30)
    seed(app, numbers)
    limited = summary_of(invoke(app, "--json", "--limit", "4").output)
    assert limited["checked"] == 4 and limited["remaining_due"] == 26
    timed = invoke(app, "--json", "--rate", "5", "--max-duration", "1")
    assert timed.exit_code == 0
    summary = summary_of(timed.output)
    assert summary["stop_reason"] == "max_duration"
    assert 1 <= summary["checked"] <= 8
    assert summary["remaining_due"] == 26 - summary["checked"]
    assert leases_held(app) == []
    assert_consistent(app)


def test_all_checks_registrations_that_are_not_due(app, register):
    established(app, register, FIXTURE_NUMBERS)
    assert summary_of(invoke(app, "--json").output)["checked"] == 0
    everything = summary_of(invoke(app, "--json", "--all").output)
    assert everything["checked"] == len(FIXTURE_NUMBERS)
    assert checks_per_number(app) == {n: 2 for n in FIXTURE_NUMBERS}


def test_dry_run_lists_due_work_in_order_and_changes_nothing(app, register):
    seed(app, ["MP0000103", "MP0000101", "MP0000102"])
    with app.app_context():
        db.session.execute(  # another run holds MP0000102 (test set-up)
            Practitioner.__table__.update()
            .where(Practitioner.registration_number == "MP0000102")
            .values(lease_owner="elsewhere:1:x", lease_expires_at=utcnow().replace(year=2999))
        )
        db.session.commit()
    result = invoke(app, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    lines = json_lines(result.output)
    assert [line["registration_number"] for line in lines[:-1]] == ["MP0000103", "MP0000101"]
    assert lines[-1] == {"type": "summary", "dry_run": True, "would_check": 2, "held_by_runs": 1}
    text = invoke(app, "--dry-run")
    assert "MP0000103" in text.output and "Would check 2 registration(s)" in text.output
    assert register.requests == []
    assert checks_per_number(app) == {}


def test_human_summary(app, register):
    established(app, register, ["MP0000101"])
    register.set_status("MP0000101", "SUSPENDED")
    make_due(app)
    result = invoke(app)
    assert result.exit_code == 0
    assert "1 checked" in result.output
    assert "changed     1  (active->suspended: 1)" in result.output


def test_json_is_one_object_per_lookup_with_the_summary_last(app, register):
    seed(app, FIXTURE_NUMBERS)
    lines = json_lines(invoke(app, "--json").output)
    assert [line["type"] for line in lines] == ["lookup"] * 6 + ["summary"]
    assert sorted(line["registration_number"] for line in lines[:-1]) == FIXTURE_NUMBERS
    assert {"checked", "unchanged", "changed", "not_found", "errors", "skipped"} <= set(lines[-1])
    assert {"duration_s", "lookups_per_s"} <= set(lines[-1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "--limit"),
        (["--limit", "many"], "--limit"),
        (["--concurrency", "0"], "--concurrency"),
        (["--concurrency", "5000"], "--concurrency"),
        (["--rate", "0"], "--rate"),
        (["--rate", "-2"], "--rate"),
        (["--rate", "nan"], "--rate"),
        (["--rate", "inf"], "--rate"),
        (["--rate", "fast"], "--rate"),
        (["--max-duration", "-5"], "--max-duration"),
        (["--max-duration", "soon"], "--max-duration"),
        (["--every", "0"], "--every"),
        (["--every", "daily"], "--every"),
        (["--dry-run", "--every", "1h"], "--every"),
    ],
)
def test_bad_options_are_plain_usage_errors(app, register, args, message):
    seed(app, ["MP0000101"])
    app.config["RECHECK_RATE_LIMIT"] = 50
    result = invoke(app, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert register.requests == [] and checks_per_number(app) == {}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("RECHECK_CONCURRENCY", 0),
        ("RECHECK_RATE", -1),
        ("RECHECK_CLAIM_BATCH", 0),
        ("RECHECK_BREAKER_RATIO", 2),
        ("HPCSA_RETRY_ATTEMPTS", 0),
        ("RECHECK_LEASE", "soon"),
    ],
)
def test_a_bad_setting_is_named_and_nothing_runs(app, register, key, value):
    seed(app, ["MP0000101"])
    app.config[key] = value
    result = invoke(app)
    assert result.exit_code == 1, result.output
    assert "invalid setting" in result.output and "Traceback" not in result.output
    assert register.requests == []


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request, tmp_path) -> Iterator[str]:
    """A database without tables: a SQLite file, or a new PostgreSQL database (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/x.db"
        return
    request.getfixturevalue("pg_database_url")  # skips, saying why, where none answers
    import psycopg

    from tests.conftest import PG_ADMIN_URL

    name = f"directory_empty_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_unmigrated_database_is_a_plain_error(app_config, empty_database_url):
    from directory import create_app

    empty = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    try:
        result = invoke(empty)
    finally:
        with empty.app_context():
            db.engine.dispose()
    assert result.exit_code == 1
    assert "database problem" in result.output and "flask db upgrade" in result.output
    assert "Traceback" not in result.output


def test_a_database_failure_while_recording_stops_the_run_plainly(app, register):
    seed(app, FIXTURE_NUMBERS)
    with app.app_context():  # the history table is gone: no result can be recorded
        db.session.execute(text("DROP TABLE verification_checks"))
        db.session.commit()
    result = invoke(app, "--json")
    assert result.exit_code == 1
    assert "database problem" in result.output and "Traceback" not in result.output
    assert leases_held(app) == []  # given back: the work stays due
    assert all(p.last_checked_at is None for p in practitioners(app).values())


def stub_notifications(monkeypatch, deliver) -> None:
    import importers.recheck.runner as runner_module

    monkeypatch.setattr(runner_module, "deliver_pending", deliver)


def test_notifications_are_delivered_after_a_change(app, register, monkeypatch):
    established(app, register, ["MP0000101"])
    calls: list[int] = []

    def deliver_pending(limit=None):
        with app.app_context():  # called after the commit: the event is there to send
            calls.append(db.session.scalar(select(StatusEvent.id).limit(1)))

    stub_notifications(monkeypatch, deliver_pending)
    register.set_status("MP0000101", "SUSPENDED")
    make_due(app)
    assert summary_of(invoke(app, "--json").output)["changed"] == {"active->suspended": 1}
    assert calls and all(call is not None for call in calls)


def test_a_failing_notification_hook_does_not_fail_the_run(app, register, monkeypatch):
    established(app, register, ["MP0000101"])

    def deliver_pending(limit=None):
        raise RuntimeError("mail server on fire")

    stub_notifications(monkeypatch, deliver_pending)
    register.set_status("MP0000101", "SUSPENDED")
    make_due(app)
    result = invoke(app, "--json")
    assert result.exit_code == 0
    assert summary_of(result.output)["changed"] == {"active->suspended": 1}
    assert practitioners(app)["MP0000101"].status == "suspended"
