"""A host serves searches only from an index it may trust: none is served from a missing
index (a new host builds one in the background and answers 503 with Retry-After meanwhile),
and a host that was away longer than the search outbox's retention rebuilds by itself
instead of serving an index that missed changes. On SQLite and on PostgreSQL: two apps on
one database with their own index directories are two hosts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from directory import create_app
from directory.extensions import db
from directory.search import SearchQuery, get_index_keeper, get_search_backend
from directory.search.interfaces import IndexBehind, NoIndex
from directory.search.models import SearchOutbox
from directory.search.outbox import prune_outbox
from directory.search.whoosh import index as whoosh_keeper
from directory.search.whoosh import store
from directory.search.whoosh.following import Cursor, missed_pruned_rows
from directory.util.clock import utcnow
from tests.test_search_support import numbers_of, register_says, seed

DAY = timedelta(days=1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def second_host(app, tmp_path, name: str = "host-b", **config):
    """Another web host on the same database, with its own (empty) index directory."""
    other = create_app(
        {**app.config, "SEARCH_INDEX_DIR": str(tmp_path / name / "search-index"), **config}
    )
    return other


def age_outbox(days: float) -> None:
    """Every outbox row written so far was written ``days`` ago."""
    db.session.execute(update(SearchOutbox).values(created_at=utcnow() - timedelta(days=days)))
    db.session.commit()


def outbox_ids() -> list[int]:
    return list(db.session.scalars(select(SearchOutbox.id).order_by(SearchOutbox.id)))


def hold_builds(monkeypatch) -> threading.Event:
    """Builds wait for the returned event: the test sees the host while it builds."""
    release = threading.Event()
    real = whoosh_keeper.WhooshIndex._rebuild_locked

    def held(self):
        assert release.wait(30), "the test never let the build go on"
        return real(self)

    monkeypatch.setattr(whoosh_keeper.WhooshIndex, "_rebuild_locked", held)
    return release


def poll(client, path: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(path)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        assert response.headers.get("Retry-After") or path == "/readyz"
        time.sleep(0.1)


# --- pruning keeps its horizon ----------------------------------------------------------------


def test_pruning_keeps_the_newest_old_row_and_ids_never_restart(db_app):
    with db_app.app_context():
        seed()
        before = outbox_ids()
        assert len(before) >= 3
        age_outbox(10)
        with db.engine.begin() as conn:
            pruned = prune_outbox(conn, utcnow() - 7 * DAY)
        assert pruned == len(before) - 1
        assert outbox_ids() == [before[-1]]  # the horizon: the newest of the pruned rows
        with db.engine.begin() as conn:  # pruning again removes nothing more
            assert prune_outbox(conn, utcnow() - 7 * DAY) == 0
        register_says("MP0910002", "SUSPENDED")
        db.session.commit()
        assert min(outbox_ids()[1:]) > before[-1]  # SQLite hands out no pruned id again


def test_a_cursor_is_behind_only_when_it_may_have_missed_a_pruned_row(db_app):
    with db_app.app_context():
        seed()
        age_outbox(10)
        ids = outbox_ids()
        horizon = ids[-1]
        retention = 7 * DAY
        with db.engine.connect() as conn:
            assert missed_pruned_rows(conn, Cursor(low=0), retention)
            assert missed_pruned_rows(conn, Cursor(low=horizon - 1), retention)
            # applied everything up to the horizon: nothing it needs can be gone
            assert not missed_pruned_rows(conn, Cursor(low=horizon), retention)
            assert not missed_pruned_rows(
                conn, Cursor(low=0, seen=set(range(1, horizon + 1))), retention
            )
            # rows newer than the retention are never a reason: they are still there
            assert not missed_pruned_rows(conn, Cursor(low=0), 30 * DAY)


# --- a new host ------------------------------------------------------------------------------


def test_a_new_host_answers_503_until_its_index_is_built_then_serves(db_app, tmp_path, monkeypatch):
    with db_app.app_context():
        seed()
    host = second_host(db_app, tmp_path, SEARCH_BUILD_WAIT=0)
    client = host.test_client()
    release = hold_builds(monkeypatch)

    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert "being built" in not_ready.get_json()["checks"]["index"]["error"]
    for path in ("/api/v1/search?q=botox", "/search?q=botox", "/api/v1/services/acne"):
        answer = client.get(path)
        assert answer.status_code == 503, path
        assert answer.headers["Retry-After"] == str(NoIndex.RETRY_AFTER)
        assert answer.headers["Cache-Control"] == "no-store"
        assert b"MP0910002" not in answer.data  # never a result while there is no index
    problem = client.get("/api/v1/search?q=botox")
    assert problem.mimetype == "application/problem+json"
    assert problem.get_json()["code"] == "index_not_ready"
    assert b"being prepared" in client.get("/search?q=botox").data

    release.set()
    assert poll(client, "/readyz").status_code == 200
    found = client.get("/api/v1/search?q=botox").get_json()
    assert "MP0910002" in [r["registration_number"] for r in found["results"]]
    with host.app_context():
        assert get_index_keeper().check().drift is False


def test_warming_in_gunicorns_master_never_starts_a_build(app, tmp_path):
    """The master warms the caches just before it forks; a build thread running then would
    leave its locks held in every worker (they hung on their first search after it)."""
    with app.app_context():
        seed()
    host = second_host(app, tmp_path)
    with host.app_context(), pytest.raises(NoIndex):
        get_search_backend().warm()
    assert not [t for t in threading.enumerate() if t.name == "search-index-build"]
    assert store.current_generation(tmp_path / "host-b" / "search-index") is None


def test_a_first_search_waits_for_a_small_build_instead_of_failing(db_app, tmp_path):
    """Within SEARCH_BUILD_WAIT the first search gets its answer (as before)."""
    with db_app.app_context():
        seed()
    host = second_host(db_app, tmp_path, SEARCH_BUILD_WAIT="20s")
    response = host.test_client().get("/api/v1/search?q=botox")
    assert response.status_code == 200
    assert "MP0910002" in [r["registration_number"] for r in response.get_json()["results"]]


# --- a host away longer than the retention ---------------------------------------------------


def test_a_host_away_longer_than_the_retention_rebuilds_instead_of_serving_stale(
    db_app, tmp_path, monkeypatch
):
    # host A and host B both follow the database
    host_b = second_host(db_app, tmp_path, SEARCH_BUILD_WAIT=0)
    with db_app.app_context():
        seed()
        get_search_backend().search(SearchQuery())
    with host_b.app_context():
        get_index_keeper().rebuild()
        assert "MP0910002" in numbers_of(get_search_backend().search(SearchQuery(text="botox")))

    # host B goes away; meanwhile a suspension is applied by host A, and 8 days later (the
    # retention is 7) host A's `flask search sync` prunes the rows host B never applied
    with db_app.app_context():
        register_says("MP0910002", "SUSPENDED")
        db.session.commit()
        assert "MP0910002" not in numbers_of(get_search_backend().search(SearchQuery(text="botox")))
        age_outbox(8)
        result = db_app.test_cli_runner().invoke(args=["search", "sync", "--json"])
        assert result.exit_code == 0, result.output
        assert db.session.scalar(select(func.count(SearchOutbox.id))) == 1

    # host B comes back (a new process, its old index): it must not show the suspended
    # practitioner from the index that missed the suspension
    host_b = second_host(db_app, tmp_path, SEARCH_BUILD_WAIT=0)
    release = hold_builds(monkeypatch)
    client = host_b.test_client()
    with host_b.app_context():
        with pytest.raises(IndexBehind):
            get_index_keeper().ready()
        # a commit on host B applies nothing to the stale index (its cursor stays behind)
        assert get_index_keeper().apply_pending(blocking=False).state == "behind"
    readyz = client.get("/readyz")
    assert readyz.status_code == 503
    assert "retention" in readyz.get_json()["checks"]["index"]["error"]
    stale = client.get("/api/v1/search?q=botox")
    assert stale.status_code == 503 and stale.headers["Retry-After"]
    assert b"MP0910002" not in stale.data

    release.set()  # the rebuild host B started by itself goes on
    assert poll(client, "/readyz").status_code == 200
    fresh = client.get("/api/v1/search?q=botox")
    assert fresh.status_code == 200
    assert "MP0910002" not in [r["registration_number"] for r in fresh.get_json()["results"]]
    with host_b.app_context():
        assert get_index_keeper().check().drift is False


def suspended_while_b_was_away(app, tmp_path, days: float) -> str:
    """Host B builds its index and goes away; the register suspends MP0910002 (host A
    applies it), the outbox rows become ``days`` old and host A's sync prunes what it may.
    Returns host B's generation from before."""
    with app.app_context():
        seed()
    with second_host(app, tmp_path).app_context():
        generation = get_index_keeper().rebuild().generation
    with app.app_context():
        register_says("MP0910002", "SUSPENDED")
        db.session.commit()
        age_outbox(days)
        assert app.test_cli_runner().invoke(args=["search", "sync"]).exit_code == 0
    return generation


def test_sync_on_a_host_behind_the_retention_rebuilds_it(db_app, tmp_path):
    """The search-sync timer alone brings such a host back (no web request needed)."""
    suspended_while_b_was_away(db_app, tmp_path, days=8)
    host_b = second_host(db_app, tmp_path)  # back, as a new process
    with host_b.app_context():
        before = get_index_keeper().status().generation
        result = host_b.test_cli_runner().invoke(args=["search", "sync", "--json"])
        assert result.exit_code == 0, result.output
        assert get_index_keeper().status().generation != before
        get_index_keeper().ready()
        hits = get_search_backend().search(SearchQuery(text="botox"))
        assert "MP0910002" not in numbers_of(hits)
        assert get_index_keeper().check().drift is False


def test_a_host_away_for_less_than_the_retention_just_catches_up(db_app, tmp_path):
    # 6 days: older than the window, younger than the retention
    first = suspended_while_b_was_away(db_app, tmp_path, days=6)
    host_b = second_host(db_app, tmp_path)
    with host_b.app_context():
        get_index_keeper().ready()
        assert get_index_keeper().apply_pending(blocking=False).state == "applied"
        assert get_index_keeper().status().generation == first  # no rebuild was needed
        assert "MP0910002" not in numbers_of(get_search_backend().search(SearchQuery(text="botox")))


# --- the follower: flask search sync --every ---------------------------------------------------


def test_the_follower_builds_follows_and_stops_cleanly_on_sigterm(app, tmp_path):
    """``flask search sync --every``: builds a new host's index, applies what another host
    writes, reports only passes that did something, and exits 0 on SIGTERM."""
    from tests.test_recheck_support import FLASK, ROOT

    with app.app_context():
        seed()
    host = second_host(app, tmp_path, name="follower")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIRECTORY_")},
        "FLASK_APP": "wsgi:app",
        "PYTHONUNBUFFERED": "1",
        "DIRECTORY_SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "DIRECTORY_SEARCH_INDEX_DIR": host.config["SEARCH_INDEX_DIR"],
        "DIRECTORY_INCLUDES": "[]",
    }
    follower = subprocess.Popen(
        [str(FLASK), "search", "sync", "--every", "0.2s", "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with host.app_context():
            wait_until(lambda: store.current_generation(Path(host.config["SEARCH_INDEX_DIR"])))
        with app.app_context():  # "host A" writes
            register_says("MP0910002", "SUSPENDED")
            db.session.commit()
        with host.app_context():
            wait_until(lambda: get_index_keeper().status().backlog == 0)
            assert get_index_keeper().status().documents > 0
            hits = get_search_backend().search(SearchQuery(text="botox", include_unverified=True))
            assert {h.registration_number: h.status for h in hits.hits}["MP0910002"] == "suspended"
    finally:
        follower.send_signal(signal.SIGTERM)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    passes = [json.loads(line) for line in out.splitlines()]
    assert passes and all(p["event"] == "sync" and p["rows"] for p in passes), passes


def test_the_follower_keeps_trying_with_one_clear_line_while_the_database_is_down(tmp_path):
    """A follower started while the database is down (or losing it later) neither exits nor
    floods the log with a traceback a pass: one line naming the cause, then it tries again;
    SIGTERM still stops it cleanly."""
    from tests.test_recheck_support import FLASK, ROOT

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIRECTORY_")},
        "FLASK_APP": "wsgi:app",
        "PYTHONUNBUFFERED": "1",
        "DIRECTORY_SQLALCHEMY_DATABASE_URI": "postgresql://postgres@127.0.0.1:1/nothing-here",
        "DIRECTORY_SEARCH_INDEX_DIR": str(tmp_path / "search-index"),
        "DIRECTORY_INCLUDES": "[]",
    }
    follower = subprocess.Popen(
        [str(FLASK), "search", "sync", "--every", "0.2s"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        lines: list[str] = []
        while sum("trying again" in line for line in lines) < 3:
            assert time.monotonic() < deadline, "".join(lines)
            assert follower.poll() is None, "the follower exited"
            lines.append(follower.stderr.readline())
    finally:
        follower.send_signal(signal.SIGTERM)
        _, rest = follower.communicate(timeout=30)
    assert follower.returncode == 0, rest
    failures = [line for line in lines if "trying again" in line]
    assert all("the database did not answer" in line for line in failures), failures
    assert not any(line.startswith("Traceback") for line in lines + rest.splitlines())


def test_the_follower_refuses_a_bad_interval(runner):
    for bad in ("0", "soon", "-1s"):
        result = runner.invoke(args=["search", "sync", "--every", bad])
        assert result.exit_code == 2 and "--every" in result.output, result.output


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
