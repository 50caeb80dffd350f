"""Watching it: /healthz, /readyz, Prometheus metrics at /metrics (in-process and across
gunicorn workers), JSON request logs with a request id, and no secret in any log."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from directory import create_app
from directory.extensions import db
from directory.observability.logs import JsonFormatter, RedactingFilter
from directory.registry.models import Practitioner
from directory.search import get_index_keeper
from directory.util.clock import utcnow
from importers.recheck.breaker import CircuitBreaker
from importers.sources.hpcsa import HpcsaClient
from tests.test_api import build_directory
from tests.test_deploy_proxy import ROOT, free_port, start_gunicorn, wait_for_port


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_app(app_config):
    app = create_app({**app_config, "METRICS_ENABLED": True})
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- health ---------------------------------------------------------------------------------


def poll_until_ready(client, timeout: float = 30.0):
    """``/readyz`` until it says 200 (a host builds its own index once asked)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_healthz_is_alive_and_readyz_waits_for_the_index(app, monkeypatch):
    from directory.search.whoosh import index as whoosh_keeper

    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    building = threading.Event()
    real_rebuild = whoosh_keeper.WhooshIndex._rebuild_locked

    def slow_rebuild(self):  # the build is held until the first answer has been seen
        assert building.wait(10)
        return real_rebuild(self)

    monkeypatch.setattr(whoosh_keeper.WhooshIndex, "_rebuild_locked", slow_rebuild)
    not_yet = client.get("/readyz")
    assert not_yet.status_code == 503 and not_yet.headers["Cache-Control"] == "no-store"
    body = not_yet.get_json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["index"]["ok"] is False
    assert "being built" in body["checks"]["index"]["error"]
    building.set()  # the build /readyz started goes on by itself
    ready = poll_until_ready(client)
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"


def test_readyz_answers_within_its_bound_when_the_database_hangs(app, monkeypatch):
    from directory.observability import state

    with app.app_context():
        get_index_keeper().rebuild()
    app.config["READY_TIMEOUT"] = 0.3
    monkeypatch.setattr(state, "database_answers", lambda: time.sleep(2))
    started = time.monotonic()
    response = app.test_client().get("/readyz")
    assert time.monotonic() - started < 1.0
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == {
        "ok": False,
        "error": "no answer within 0.3 s",
    }


def test_readyz_on_a_database_that_is_gone(app_config, tmp_path):
    app = create_app(
        {**app_config, "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://x@127.0.0.1:1/none"}
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"]["ok"] is False


@pytest.mark.postgres
def test_readyz_on_postgresql(pg_app):
    client = pg_app.test_client()
    assert client.get("/readyz").status_code == 503  # no index on this host yet...
    assert poll_until_ready(client).status_code == 200  # ...until the build it started ends


# --- metrics --------------------------------------------------------------------------------


def test_metrics_are_off_by_default(client):
    assert client.get("/metrics").status_code == 404


def test_request_latency_is_per_route_not_per_url(metrics_app):
    client = metrics_app.test_client()
    before = samples(client.get("/metrics").get_data(as_text=True))
    for number in ("MP0000101", "MP0000102", "MP0000103"):
        client.get(f"/practitioners/{number}")
    client.get("/no-such-page")
    found = samples(client.get("/metrics").get_data(as_text=True))
    name = "directory_http_request_duration_seconds_count"
    route = {"route": "/practitioners/<number>", "method": "GET", "status": "404"}
    assert value(found, name, **route) - value(before, name, **route) == 3
    unmatched = {"route": "(unmatched)", "method": "GET", "status": "404"}
    assert value(found, name, **unmatched) - value(before, name, **unmatched) == 1
    assert not any("MP0000101" in str(key) for key in found)


def test_register_lookups_by_outcome_and_latency(metrics_app, fake_iregister):
    client = metrics_app.test_client()
    before = samples(client.get("/metrics").get_data(as_text=True))
    with HpcsaClient.from_config(metrics_app.config) as register:
        register.lookup("MP0000101")  # in the fixture register
        register.lookup("MP0999999")  # not in it
        fake_iregister.register.fail_next("500")
        register.lookup("MP0000101")
    found = samples(client.get("/metrics").get_data(as_text=True))
    for outcome in ("ok", "not_found", "error"):
        for name in ("directory_register_lookups_total",
                     "directory_register_lookup_duration_seconds_count"):  # fmt: skip
            assert value(found, name, outcome=outcome) - value(before, name, outcome=outcome) == 1


def test_breaker_state(metrics_app):
    client = metrics_app.test_client()
    breaker = CircuitBreaker(consecutive=2, window=10, ratio=0.5)
    metric = "directory_register_breaker_open"
    assert value(samples(client.get("/metrics").get_data(as_text=True)), metric) == 0
    breaker.record(False, "timeout")
    breaker.record(False, "timeout")
    assert breaker.is_open
    assert value(samples(client.get("/metrics").get_data(as_text=True)), metric) == 1
    CircuitBreaker()  # the next run starts closed
    assert value(samples(client.get("/metrics").get_data(as_text=True)), metric) == 0


def test_registrations_by_verification_age_outbox_backlog_and_index_age(metrics_app):
    build_directory(metrics_app)
    client = metrics_app.test_client()
    with metrics_app.app_context():
        verified = [p.verified_at for p in db.session.scalars(db.select(Practitioner))]
        now = utcnow()
        expected = {
            "under_1d": sum(1 for v in verified if v and now - v < timedelta(days=1)),
            "never": sum(1 for v in verified if v is None),
        }
        stale = sum(1 for v in verified if v and now - v >= timedelta(days=30))
    found = samples(client.get("/metrics").get_data(as_text=True))
    for bucket, count in expected.items():
        assert value(found, "directory_registrations", verification_age=bucket) == count
    assert value(found, "directory_registrations", verification_age="30d_or_more") == stale
    assert stale >= 1 and expected["under_1d"] >= 1  # build_directory has a stale one
    assert value(found, "directory_outbox_backlog", outbox="search") == 0
    assert 0 <= value(found, "directory_search_index_age_seconds") < 120
    assert value(found, "directory_search_index_documents") >= 1
    # An edit this host has not applied shows as backlog and lag.
    metrics_app.config["SEARCH_APPLY_AFTER_COMMIT"] = False
    with metrics_app.app_context():
        from directory.search.outbox import enqueue_practitioners

        ids = list(db.session.scalars(db.select(Practitioner.id)))[:2]
        enqueue_practitioners(db.session.connection(), ids)
        db.session.commit()
    time.sleep(0.05)
    found = samples(client.get("/metrics").get_data(as_text=True))
    assert value(found, "directory_outbox_backlog", outbox="search") == 2
    assert value(found, "directory_search_index_lag_seconds") > 0


@pytest.mark.postgres
def test_metrics_on_postgresql(pg_database_url, app_config):
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": pg_database_url,
                      "METRICS_ENABLED": True})  # fmt: skip
    with app.app_context():
        db.create_all()
    try:
        build_directory(app)
        found = samples(app.test_client().get("/metrics").get_data(as_text=True))
        with app.app_context():
            total = db.session.scalar(db.select(db.func.count()).select_from(Practitioner))
        ages = sum(v for (name, _), v in found.items() if name == "directory_registrations")
        assert ages == total > 0
        assert value(found, "directory_outbox_backlog", outbox="search") == 0
    finally:
        with app.app_context():
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


# --- logs -----------------------------------------------------------------------------------


def test_no_secret_survives_into_a_log_line():
    secrets = ("k9V2-a-long-random-production-key", "webhook-shared-secret")
    record = logging.makeLogRecord({
        "name": "directory.test", "levelno": logging.WARNING, "levelname": "WARNING",
        "msg": "posting to %s with key %s failed; retry https://x.example/s?token=%s&n=2 "
               "db postgresql://user:pg-password@db/x; password=hunter22 reset_token: abc123",
        "args": ("https://hooks.example/in", secrets[0], "tok-456"),
    })  # fmt: skip
    RedactingFilter(secrets).filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    for secret in (*secrets, "tok-456", "pg-password", "hunter22", "abc123"):
        assert secret not in line
    assert "https://hooks.example/in" in entry["msg"] and "n=2" in entry["msg"]


@pytest.mark.slow
def test_under_gunicorn_metrics_add_up_across_workers_and_logs_are_json(app, tmp_path):
    """Two workers, each serving its share: /metrics counts every request whichever worker
    answers the scrape; each request is one JSON log line with its id and duration, and no
    line holds a signed link's token or the secret key."""
    with app.app_context():
        get_index_keeper().rebuild()
    port = free_port()
    secret = "k9V2-a-long-random-production-key"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DIRECTORY_", "PROMETHEUS"))},
        "DIRECTORY_SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "DIRECTORY_SEARCH_INDEX_DIR": app.config["SEARCH_INDEX_DIR"],
        "DIRECTORY_MAIL_FILE_DIR": app.config["MAIL_FILE_DIR"],
        "DIRECTORY_INCLUDES": "[]",
        "DIRECTORY_ENV": "production",
        "DIRECTORY_SECRET_KEY": secret,
        "DIRECTORY_PUBLIC_BASE_URL": "https://directory.example.org",
        "DIRECTORY_METRICS_ENABLED": "true",
        "DIRECTORY_LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "2",  # threaded workers keep connections alive: spread requests
    }
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_999999.db").write_bytes(b"stale")  # a previous run's
    log_path = tmp_path / "gunicorn.log"
    server = start_gunicorn(env, log_path)
    try:
        wait_for_port(port, server, log_path)
        base = f"http://127.0.0.1:{port}"
        for _ in range(40):
            urllib.request.urlopen(f"{base}/healthz").read()
        signed = f"{base}/check?number=MP0000101&token=signed-link-token-{'x' * 8}&sig=abcdef"
        request = urllib.request.Request(signed, headers={"X-Request-Id": "from-nginx-0123456789"})
        with pytest.raises(urllib.error.HTTPError) as answered:  # 404: never checked
            urllib.request.urlopen(request)
        assert answered.value.headers["X-Request-Id"] == "from-nginx-0123456789"
        totals = set()
        for _ in range(6):  # whichever worker answers, the sum is the same
            text = urllib.request.urlopen(f"{base}/metrics").read().decode()
            found = samples(text)
            name = "directory_http_request_duration_seconds_count"
            totals.add(value(found, name, route="/healthz", method="GET", status="200"))
        assert totals == {40.0}
        assert (tmp_path / "metrics" / "counter_999999.db").exists() is False
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(15)
    lines = [line for line in log_path.read_text().splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    requests = [e for e in entries if e.get("msg") == "request"]
    assert len([e for e in requests if e["path"] == "/healthz"]) == 40
    check = next(e for e in requests if e["path"] == "/check")
    assert check["request_id"] == "from-nginx-0123456789" and check["status"] == 404
    assert check["duration_ms"] > 0 and check["route"] == "/check"
    assert len({e["request_id"] for e in requests}) == len(requests)
    whole = log_path.read_text()
    assert "signed-link-token" not in whole and "abcdef" not in whole and secret not in whole


RECORD_A_LOOKUP = """
from types import SimpleNamespace
from directory.observability import metrics
ok = SimpleNamespace(value="ok")
metrics.observe_register_lookup(SimpleNamespace(outcome=ok, duration_ms=120))
metrics.set_breaker_open(True)
print(metrics.MULTIPROCESS)
"""
READ_THE_FOLDER = """
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
print(generate_latest(registry).decode())
"""


def test_a_jobs_lookups_reach_the_hosts_metrics_folder_and_a_missing_one_is_no_crash(tmp_path):
    """A recheck run with the web service's PROMETHEUS_MULTIPROC_DIR adds its look-ups to what
    /metrics shows (its breaker gauge leaves with it); a folder that cannot be made (the web
    service is not running on this host) costs the job only its shared metrics."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS")}
    folder = tmp_path / "metrics"

    def run(code: str, where: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={**env, "PROMETHEUS_MULTIPROC_DIR": str(where)},
        )  # fmt: skip

    job = run(RECORD_A_LOOKUP, folder)
    assert job.returncode == 0 and job.stdout.strip() == "True", job.stderr
    found = samples(run(READ_THE_FOLDER, folder).stdout)
    assert value(found, "directory_register_lookups_total", outcome="ok") == 1
    assert value(found, "directory_register_lookup_duration_seconds_count", outcome="ok") == 1
    assert value(found, "directory_register_breaker_open") == 0  # the run is over
    (tmp_path / "a-file").write_text("")
    job = run(RECORD_A_LOOKUP, tmp_path / "a-file" / "metrics")
    assert job.returncode == 0 and job.stdout.strip() == "False", job.stderr
    assert "cannot be written" in job.stderr
