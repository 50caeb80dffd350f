"""Real ``flask registry recheck`` processes: overlapping runs (SQLite and PostgreSQL), a run
killed with SIGKILL and resumed, SIGTERM mid-run, and ``--every`` stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from directory.extensions import db
from directory.registry.models import Practitioner, VerificationCheck
from directory.registry.statuses import combine, map_raw_status
from directory.util.clock import utcnow
from tests.test_recheck_support import (
    assert_consistent,
    checks_per_number,
    leases_held,
    practitioners,
    seed,
    start_recheck,
    subprocess_env,
)

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


@pytest.fixture
def register(fake_iregister):
    return fake_iregister.register


def env_for(app, fake, tmp_path, **settings) -> dict:
    return subprocess_env(app.config["SQLALCHEMY_DATABASE_URI"], fake.url, tmp_path, **settings)


def summary_from(stdout: str) -> dict:
    lines = [json.loads(x) for x in stdout.splitlines() if x.startswith("{")]
    assert lines and lines[-1]["type"] == "summary", stdout
    return lines[-1]


def recorded_checks(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(VerificationCheck.id))) or 0


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class LineReader:
    """Reads a process's stdout lines on a thread, so a test can wait for one."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.put(line)

    def wait_json(self, predicate, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no such line; seen:\n" + "".join(self.seen[-20:]))
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if line.startswith("{"):
                obj = json.loads(line)
                if predicate(obj):
                    return obj

    def rest(self) -> str:
        self._thread.join(10)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "".join(self.seen)


def truth(register, number: str) -> str:
    rows = register.records.get(number)
    return combine(map_raw_status(r[7]) for r in rows).value if rows else "not_found"


@pytest.mark.parametrize("runs", [2, 3])
def test_overlapping_runs_share_the_work_and_check_nothing_twice(
    db_app, fake_iregister, register, tmp_path, runs
):
    numbers = register.generate(90)
    seed(db_app, numbers)
    register.latency = 0.05
    env = env_for(db_app, fake_iregister, tmp_path, RECHECK_CLAIM_BATCH=4)
    processes = [
        start_recheck(env, "--json", "--rate", "20", "--concurrency", "3") for _ in range(runs)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    for p, (_out, err) in zip(processes, outputs, strict=True):
        assert p.returncode == 0, err
    summaries = [summary_from(out) for out, _ in outputs]
    # Every registration checked exactly once, by one run, with one request.
    assert sum(s["checked"] for s in summaries) == 90
    assert checks_per_number(db_app) == {n: 1 for n in numbers}
    assert Counter(r.number for r in register.requests) == {n: 1 for n in numbers}
    # All runs made progress (none was starved or stuck behind another's locks).
    assert all(s["checked"] > 0 for s in summaries), [s["checked"] for s in summaries]
    assert len({s["owner"] for s in summaries}) == runs
    assert leases_held(db_app) == []
    assert_consistent(db_app)


def test_sigkill_mid_run_then_resume_loses_nothing(db_app, fake_iregister, register, tmp_path):
    numbers = register.generate(60)
    for number in numbers[::4]:
        register.set_status(number, "SUSPENDED")
    seed(db_app, numbers)
    register.latency = 0.1
    env = env_for(db_app, fake_iregister, tmp_path, RECHECK_LEASE="2s")
    victim = start_recheck(env, "--json", "--rate", "20", "--concurrency", "4")
    try:
        wait_for(lambda: recorded_checks(db_app) >= 15, 60, "15 recorded checks")
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL

    # Right after the kill: whatever was recorded is whole, nothing is recorded twice.
    assert_consistent(db_app)
    done = checks_per_number(db_app)
    assert 15 <= len(done) < 60 and set(done.values()) == {1}
    with db_app.app_context():
        held = db.session.scalars(
            select(Practitioner.lease_expires_at).where(Practitioner.lease_owner.is_not(None))
        ).all()
    assert held, "the killed run held work"
    assert all(expiry <= utcnow() + timedelta(seconds=2.5) for expiry in held)  # they expire

    time.sleep(max(0.0, (max(held) - utcnow()).total_seconds()) + 0.2)
    again = start_recheck(env, "--json", "--rate", "50", "--concurrency", "4")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert summary_from(out)["checked"] == 60 - len(done)
    # Every due registration checked, each exactly once in the history.
    assert checks_per_number(db_app) == {n: 1 for n in numbers}
    assert leases_held(db_app) == []
    assert_consistent(db_app)
    for number, p in practitioners(db_app).items():
        assert p.status == truth(register, number), number


def test_sigterm_mid_run_finishes_what_is_in_flight_and_releases_the_rest(
    app, fake_iregister, register, tmp_path
):
    numbers = register.generate(100)
    seed(app, numbers)
    register.latency = 0.05
    process = start_recheck(
        env_for(app, fake_iregister, tmp_path), "--json", "--rate", "5", "--concurrency", "2"
    )
    reader = LineReader(process)
    seen = 0
    while seen < 5:
        reader.wait_json(lambda obj: obj["type"] == "lookup", 60)
        seen += 1
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    summary = summary_from(reader.rest())
    assert summary["stop_reason"] == "signal"
    assert 5 <= summary["checked"] < 100
    assert summary["remaining_due"] == 100 - summary["checked"]
    assert summary["skipped"] > 0  # claimed but not started: released
    assert leases_held(app) == []
    assert sum(checks_per_number(app).values()) == summary["checked"]
    assert_consistent(app)


def test_every_keeps_running_and_stops_cleanly_on_sigterm(app, fake_iregister, register, tmp_path):
    first = register.generate(10)
    seed(app, first)
    process = start_recheck(
        env_for(app, fake_iregister, tmp_path), "--json", "--every", "1s", "--rate", "50"
    )
    reader = LineReader(process)
    summary = reader.wait_json(lambda obj: obj["type"] == "summary", 60)
    assert summary["checked"] == 10
    # New work arrives between runs: the next run (a second later) takes it.
    later = register.generate(5, start=500)
    seed(app, later)
    reader.wait_json(lambda obj: obj["type"] == "summary" and obj["checked"] == 5, 30)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    reader.rest()
    assert checks_per_number(app) == {n: 1 for n in first + later}
    assert leases_held(app) == []
