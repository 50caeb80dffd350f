"""``flask search sync | reindex | check | query``, and reindexing while searches run."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import select, update
from whoosh import index as whoosh_index

from directory.extensions import db
from directory.registry.models import Practitioner
from directory.search import SearchQuery, get_index_keeper, get_search_backend
from directory.search.whoosh import store
from directory.search.whoosh.documents import build_documents
from tests.test_search_support import numbers_of, register_says, seed


@pytest.fixture
def directory(app):
    with app.app_context():
        seed()
        backend = get_search_backend()
        backend.search(SearchQuery())
        yield backend


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def index_root(app) -> Path:
    return Path(app.config["SEARCH_INDEX_DIR"])


def test_help_lists_the_commands(runner):
    result = runner.invoke(args=["search", "--help"])
    assert result.exit_code == 0
    for command in ("sync", "reindex", "check", "query"):
        assert command in result.output


def test_sync_reports_what_it_applied(app, runner, directory):
    result = runner.invoke(args=["search", "sync", "--json"])
    assert result.exit_code == 0, result.output
    (record,) = lines(result.output)
    assert record["event"] == "sync" and record["rows"] == 0
    with db.engine.begin() as conn:  # a write the ORM did not see, then its outbox row
        from directory.search.outbox import enqueue_practitioners

        enqueue_practitioners(conn, [1, 2, 3])
    result = runner.invoke(args=["search", "sync"])
    assert result.exit_code == 0
    assert "3 outbox rows applied" in result.output


def test_reindex_switches_generation_and_keeps_two(app, runner, directory):
    root = index_root(app)
    first = store.current_generation(root)
    for _ in range(3):
        result = runner.invoke(args=["search", "reindex", "--json"])
        assert result.exit_code == 0, result.output
        (record,) = lines(result.output)
        assert record["documents"] == 11
    now = store.current_generation(root)
    assert now != first and now.name == record["generation"]
    assert len(store.generations(root)) == 2  # the current one and the one before
    assert (root / "CURRENT").read_text().strip() == now.name
    assert numbers_of(directory.search(SearchQuery(text="mesotherapy"))) == [
        "MP0910001",
        "MP0910002",
    ]


def test_reindex_removes_leftovers_of_a_build_that_died(app, runner, directory):
    leftover = index_root(app) / "gen-20200101T000000000000-dead00"
    leftover.mkdir()
    (leftover / "_MAIN_1.toc.partial").write_text("")
    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert not leftover.exists()
    assert len(store.generations(index_root(app))) == 2


def test_reindex_refuses_to_run_twice_at_once(app, runner, directory):
    with store.build_lock(index_root(app), blocking=False):
        result = runner.invoke(args=["search", "reindex", "--json"])
    assert result.exit_code == 2
    assert "another process" in lines(result.output)[0]["error"]


def test_searches_keep_working_while_reindexing(app, directory):
    """A thread searches continuously (its own searcher, as a worker would) while two
    rebuilds switch generations under it: no error, the same answer every time."""
    errors: list[BaseException] = []
    answers: set[tuple] = set()
    stop = threading.Event()

    def searching() -> None:
        with app.app_context():
            backend = get_search_backend()
            while not stop.is_set():
                try:
                    results = backend.search(SearchQuery(text="botox", include_unverified=True))
                    answers.add((results.total, tuple(sorted(numbers_of(results)))))
                except BaseException as exc:  # the test reports it
                    errors.append(exc)
                    return

    thread = threading.Thread(target=searching)
    thread.start()
    try:
        for _ in range(2):
            get_index_keeper().rebuild()
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors, errors
    assert answers == {(4, ("MP0910002", "MP0910004", "MP0910005", "MP0910011"))}


def test_a_change_during_a_rebuild_is_not_lost(app, directory, monkeypatch):
    """A commit that lands while a rebuild reads the database is caught up by the new
    generation's cursor (the old generation got it after commit)."""
    import directory.search.whoosh.index as indexer_module

    original = indexer_module.iter_all_documents

    def slow_read(conn, *args, **kwargs):
        yield from original(conn, *args, **kwargs)
        # Another writer commits after the build has read everything.
        with app.app_context():
            register_says("MP0910012", surname="Duringrebuild")
            db.session.commit()

    monkeypatch.setattr(indexer_module, "iter_all_documents", slow_read)
    get_index_keeper().rebuild()
    monkeypatch.undo()
    results = directory.search(SearchQuery(text="Duringrebuild"))
    assert numbers_of(results) == ["MP0910012"]
    assert not get_index_keeper().check().drift


def test_check_reports_drift_and_exits_non_zero(app, runner, directory):
    result = runner.invoke(args=["search", "check", "--json"])
    assert result.exit_code == 0, result.output
    assert lines(result.output)[-1]["drift"] is False

    generation = store.current_generation(index_root(app))
    ix = whoosh_index.open_dir(str(generation))
    people = {p.registration_number: p.id for p in db.session.scalars(select(Practitioner))}
    # missing: a document deleted behind the outbox's back
    # extra: a document for a practitioner with no listing
    # stale: a database change that bypassed the outbox (a Core update)
    with db.engine.connect() as conn:
        doc_for_unlisted = build_documents(conn, [people["MP0910003"]])[people["MP0910003"]]
    writer = ix.writer()
    writer.delete_by_term("number", "MP0910007")
    writer.add_document(**{**doc_for_unlisted, "pid": str(people["MP0910010"]),
                           "number": "MP0910010"})  # fmt: skip
    writer.commit()
    with db.engine.begin() as conn:
        conn.execute(
            update(Practitioner)
            .where(Practitioner.registration_number == "MP0910008")
            .values(surname="Bypassed")
        )

    result = runner.invoke(args=["search", "check", "--json"])
    assert result.exit_code == 1
    records = lines(result.output)
    assert {"event": "missing", "registration_number": "MP0910007"} in records
    assert {"event": "extra", "registration_number": "MP0910010"} in records
    assert {"event": "stale", "registration_number": "MP0910008"} in records
    summary = records[-1]
    assert summary["event"] == "summary"
    assert (summary["missing"], summary["extra"], summary["stale"]) == (1, 1, 1)

    human = runner.invoke(args=["search", "check"])
    assert human.exit_code == 1
    assert "missing: 1 (MP0910007)" in human.output
    assert "drift found" in human.output

    fixed = runner.invoke(args=["search", "check", "--fix", "--json"])
    assert fixed.exit_code == 1  # it reports what it found, then fixes
    again = runner.invoke(args=["search", "check", "--json"])
    assert again.exit_code == 0, again.output
    assert numbers_of(directory.search(SearchQuery(text="Bypassed"))) == ["MP0910008"]


def test_check_without_an_index(app, runner):
    with app.app_context():
        seed()
    result = runner.invoke(args=["search", "check", "--json"])
    assert result.exit_code == 1
    summary = lines(result.output)[-1]
    assert summary["generation"] is None and summary["missing"] == 11


def test_query_command(app, runner, directory):
    result = runner.invoke(args=["search", "query", "mesotheraphy", "--json"])
    assert result.exit_code == 0, result.output
    records = lines(result.output)
    assert [r["registration_number"] for r in records if r["event"] == "hit"] == [
        "MP0910001",
        "MP0910002",
    ]
    assert records[-1]["did_you_mean"] == "mesotherapy"
    human = runner.invoke(args=["search", "query", "botox", "--place", "Cape Town", "--everyone"])
    assert "MP0910004" in human.output and "1 results" in human.output
    bad = runner.invoke(args=["search", "query", "x", "--per-page", "0"])
    assert bad.exit_code == 1 and "error:" in bad.output and "Traceback" not in bad.output


def _query_shows_the_database_badge(app, runner, directory) -> None:
    app.config["SEARCH_APPLY_AFTER_COMMIT"] = False
    register_says("MP0910012", "SUSPENDED")
    db.session.commit()
    assert directory.search(SearchQuery(text="Peelman", include_unverified=True)).hits[0].verified

    result = runner.invoke(args=["search", "query", "Peelman", "--everyone", "--json"])
    assert result.exit_code == 0, result.output
    hit = next(r for r in lines(result.output) if r["event"] == "hit")
    assert (hit["registration_number"], hit["verified"], hit["status"]) == (
        "MP0910012",
        False,
        "suspended",
    )
    human = runner.invoke(args=["search", "query", "Peelman", "--everyone"])
    assert "[suspended]" in human.output and "[verified]" not in human.output


def test_query_prints_the_database_badge_not_the_index_copy(app, runner, directory):
    """An index that has not caught up still holds "verified"; the command, like the site,
    shows what the database says now."""
    _query_shows_the_database_badge(app, runner, directory)


@pytest.mark.postgres
def test_query_prints_the_database_badge_on_postgresql(pg_app):
    with pg_app.app_context():
        seed()
        backend = get_search_backend()
        backend.search(SearchQuery())
        _query_shows_the_database_badge(pg_app, pg_app.test_cli_runner(), backend)
