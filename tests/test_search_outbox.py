"""The index follows the database through the outbox: written on flush in the writer's
transaction, applied after commit without waiting on the index lock, drained by sync."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from whoosh import index as whoosh_index

from directory import create_app
from directory.extensions import db
from directory.listings.models import Clinic, Listing, Service
from directory.registry.models import Practitioner
from directory.search import SearchQuery, get_index_keeper, get_search_backend
from directory.search.models import SearchOutbox
from directory.search.outbox import enqueue_practitioners
from directory.search.whoosh import store
from directory.search.whoosh.documents import CURSOR_DOC_ID
from directory.search.whoosh.following import Cursor, apply_pending, read_cursor
from directory.util.clock import utcnow
from tests.test_search_support import numbers_of, register_says, seed

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL (ids commit out of order there)."""
    return either_app


@pytest.fixture
def directory(app):
    with app.app_context():
        seed()
        backend = get_search_backend()
        backend.search(SearchQuery())  # builds the first generation
        yield backend


def find(backend, text="", **kwargs):
    return numbers_of(backend.search(SearchQuery(text=text, include_unverified=True, **kwargs)))


def practitioner(number: str) -> Practitioner:
    return db.session.scalar(select(Practitioner).where(Practitioner.registration_number == number))


def outbox_count() -> int:
    return db.session.scalar(select(db.func.count(SearchOutbox.id)))


def current_index(app):
    return whoosh_index.open_dir(
        str(store.current_generation(Path(app.config["SEARCH_INDEX_DIR"])))
    )


def test_status_change_appears_after_commit(directory):
    assert "MP0910002" in numbers_of(directory.search(SearchQuery(text="botox")))
    register_says("MP0910002", "SUSPENDED")
    db.session.commit()
    assert "MP0910002" not in numbers_of(directory.search(SearchQuery(text="botox")))
    hit = directory.search(SearchQuery(text="Sampleton", include_unverified=True)).hits[0]
    assert hit.status == "suspended" and hit.verified is False


def test_listing_added_changed_and_removed(directory):
    clinic = db.session.scalar(select(Clinic).where(Clinic.slug == "garden-route"))
    acne = db.session.scalar(select(Service).where(Service.slug == "acne"))
    listing = Listing(
        practitioner=practitioner("MP0910003"),
        clinic=clinic,
        services=[acne],
        description="Teen acne evenings, zebrawood waiting room.",
    )
    db.session.add(listing)
    db.session.commit()
    assert find(directory, "zebrawood") == ["MP0910003"]
    assert "MP0910003" in find(directory, service="acne", city="George")

    listing.description = "Quiet rooms with a koi pond."
    db.session.commit()
    assert find(directory, "zebrawood") == []
    assert find(directory, "koi") == ["MP0910003"]

    listing.services.append(db.session.scalar(select(Service).where(Service.slug == "prp")))
    db.session.commit()
    assert "MP0910003" in find(directory, service="prp")

    db.session.delete(listing)
    db.session.commit()
    assert find(directory, "koi") == []
    assert "MP0910003" not in find(directory, service="acne")


def test_a_practitioner_losing_every_listing_leaves_the_index(directory):
    for listing in db.session.scalars(
        select(Listing).where(Listing.practitioner_id == practitioner("MP0910012").id)
    ):
        db.session.delete(listing)
    db.session.commit()
    assert find(directory, "Peelman") == []


def test_clinic_rename_move_and_delete(directory):
    clinic = db.session.scalar(select(Clinic).where(Clinic.slug == "jacaranda-care"))
    clinic.name = "Quokka Rooms (fictional)"
    clinic.city = "Polokwane"  # not Centurion: a suburb of Pretoria is found as Pretoria
    db.session.commit()
    assert set(find(directory, "quokka")) == {"MP0910006", "MP0910009", "MP0910012"}
    assert set(find(directory, city="Polokwane")) == {"MP0910006", "MP0910009", "MP0910012"}
    assert find(directory, city="Pretoria") == []

    db.session.delete(clinic)
    db.session.commit()
    assert find(directory, "quokka") == []
    assert find(directory, "Peelman") == []  # that was their only clinic


def test_service_rename_reaches_every_listing_offering_it(directory):
    service = db.session.scalar(select(Service).where(Service.slug == "chemical-peels"))
    service.name = "Chemical peels and glowfacials"
    db.session.commit()
    assert set(find(directory, "glowfacials")) == {"MP0910002", "MP0910009", "MP0910012"}


def test_service_deleted(directory):
    service = db.session.scalar(select(Service).where(Service.slug == "pigmentation"))
    db.session.delete(service)
    db.session.commit()
    hit = directory.search(SearchQuery(text="Peelman")).hits[0]
    assert "pigmentation" not in hit.services


def test_practitioner_deleted(directory):
    db.session.delete(practitioner("MP0910007"))
    db.session.commit()
    assert find(directory, "knee") == []


def test_rollback_writes_no_outbox_rows(directory):
    before = outbox_count()
    register_says("MP0910002", "ERASED")
    db.session.flush()
    assert outbox_count() == before + 1  # written in the same transaction...
    db.session.rollback()
    assert outbox_count() == before  # ...and gone with it
    assert "MP0910002" in numbers_of(directory.search(SearchQuery(text="botox")))


def test_changes_that_do_not_touch_documents_write_nothing(directory):
    before = outbox_count()
    listed = practitioner("MP0910002")
    listed.last_checked_at = utcnow()
    listed.next_check_at = utcnow() + timedelta(days=7)
    listed.consecutive_failures = 3
    register_says("MP0910010", "SUSPENDED")  # in the register, not in the directory
    db.session.add(Practitioner(registration_number="MP0919999", prefix="MP", status="active"))
    db.session.commit()
    assert outbox_count() == before


def test_lock_held_by_another_writer_never_fails_or_waits_and_sync_lands_it(app, directory):
    app.config["SEARCH_RETRY_DELAY"] = 3600  # no in-process retry during this test
    get_index_keeper().retry_delay = 3600
    holder = current_index(app).writer()  # another process's writer, as far as we know
    try:
        started = time.monotonic()
        register_says("MP0910002", "SUSPENDED")
        db.session.commit()  # must neither raise nor wait for the lock
        waited = time.monotonic() - started
        assert waited < 10, waited  # whoosh's own default would wait for the lock
        assert get_index_keeper().apply_pending(blocking=False).state == "locked"
    finally:
        holder.cancel()
    # Nothing applied yet: the row waits for the next attempt.
    assert "MP0910002" in numbers_of(directory.search(SearchQuery(text="botox")))
    result = app.test_cli_runner().invoke(args=["search", "sync", "--json"])
    assert result.exit_code == 0, result.output
    assert '"rows": 1' in result.output
    assert "MP0910002" not in numbers_of(directory.search(SearchQuery(text="botox")))


def test_a_lock_collision_is_retried_in_process(app, directory):
    get_index_keeper().retry_delay = 0.2
    holder = current_index(app).writer()
    register_says("MP0910002", "SUSPENDED")
    db.session.commit()
    holder.cancel()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "MP0910002" not in numbers_of(directory.search(SearchQuery(text="botox"))):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the deferred retry did not apply the change")


def test_a_failed_apply_leaves_the_rows_pending(app, directory, monkeypatch):
    import directory.search.whoosh.following as following_module

    def broken(conn, ids):
        raise RuntimeError("database went away mid-apply")

    monkeypatch.setattr(following_module, "build_documents", broken)
    register_says("MP0910002", "SUSPENDED")
    db.session.commit()  # the commit itself succeeds; the apply failure is only logged
    assert "MP0910002" in numbers_of(directory.search(SearchQuery(text="botox")))
    monkeypatch.undo()
    assert get_index_keeper().apply_pending(blocking=True).rows == 1
    assert "MP0910002" not in numbers_of(directory.search(SearchQuery(text="botox")))


def test_core_writes_use_enqueue(directory):
    """Bulk paths that bypass the ORM call ``enqueue_practitioners`` in their transaction."""
    p = practitioner("MP0910002")
    with db.engine.begin() as conn:
        conn.execute(update(Practitioner).where(Practitioner.id == p.id).values(status="erased"))
        enqueue_practitioners(conn, [p.id])
    get_index_keeper().apply_pending(blocking=True)
    db.session.expire_all()
    assert "MP0910002" not in numbers_of(directory.search(SearchQuery(text="botox")))


def test_out_of_order_ids_inside_the_window_are_not_lost(app, directory):
    """PostgreSQL hands out ids at insert time: a row with a lower id can become visible
    after a higher one was applied. The window re-reads it."""
    ix = current_index(app)
    p_late, p_early = practitioner("MP0910003"), practitioner("MP0910012")
    window = timedelta(hours=1)
    with db.engine.begin() as conn:
        high = conn.execute(select(db.func.max(SearchOutbox.id))).scalar() + 10
        conn.execute(
            update(Practitioner).where(Practitioner.id == p_early.id).values(surname="Laterthanyou")
        )
        conn.execute(
            insert(SearchOutbox),
            [{"id": high, "practitioner_id": p_early.id, "reason": "test", "created_at": utcnow()}],
        )
    assert apply_pending(db.engine, ix, blocking=True, window=window).rows == 1
    # Now a row with a LOWER id commits (it was in flight all along).
    with db.engine.begin() as conn:
        conn.execute(
            update(Practitioner).where(Practitioner.id == p_late.id).values(surname="Inflightson")
        )
        conn.execute(
            insert(SearchOutbox),
            [
                {
                    "id": high - 5,
                    "practitioner_id": p_late.id,
                    "reason": "test",
                    "created_at": utcnow(),
                }
            ],
        )
    result = apply_pending(db.engine, ix, blocking=True, window=window)
    assert result.rows == 1
    assert find(directory, "Inflightson") == ["MP0910003"]
    assert find(directory, "Laterthanyou") == ["MP0910012"]
    with ix.searcher() as searcher:
        cursor = read_cursor(searcher)
    assert {high - 5, high} <= cursor.seen  # inside the window: remembered, not re-applied
    assert apply_pending(db.engine, ix, blocking=True, window=window).state == "idle"


def test_the_low_water_mark_passes_rows_older_than_the_window(app, directory):
    ix = current_index(app)
    with db.engine.begin() as conn:
        conn.execute(update(SearchOutbox).values(created_at=utcnow() - timedelta(hours=2)))
    enqueue_practitioners_in_tx = practitioner("MP0910002").id
    with db.engine.begin() as conn:
        enqueue_practitioners(conn, [enqueue_practitioners_in_tx])
    apply_pending(db.engine, ix, blocking=True, window=timedelta(hours=1))
    with ix.searcher() as searcher:
        cursor = read_cursor(searcher)
    old_max = db.session.scalar(
        select(db.func.max(SearchOutbox.id)).where(
            SearchOutbox.created_at < utcnow() - timedelta(hours=1)
        )
    )
    assert cursor.low == old_max  # every row older than the window is below the mark
    assert all(i > cursor.low for i in cursor.seen)  # only recent ids are remembered


def test_the_cursor_commits_with_the_documents(app, directory):
    ix = current_index(app)
    with ix.searcher() as searcher:
        stored = searcher.document(pid=CURSOR_DOC_ID)
        before = Cursor.from_payload(stored["payload"])
    register_says("MP0910002", surname="Cursorwatch")
    db.session.commit()
    ix = current_index(app)
    with ix.searcher() as searcher:
        after = read_cursor(searcher)
        assert searcher.document(number="MP0910002")["payload"]["name"].endswith("Cursorwatch")
    assert after.seen - before.seen  # the new row is accounted for in the same commit


def test_two_hosts_each_with_its_own_index_follow_one_outbox(app, directory, tmp_path):
    other = create_app({**app.config, "SEARCH_INDEX_DIR": str(tmp_path / "host-b-index")})
    with other.app_context():
        host_b = get_search_backend()
        assert find(host_b, "Peelman") == ["MP0910012"]  # builds its own generation
    with app.app_context():
        register_says("MP0910012", surname="Twohostson")
        db.session.commit()  # applied to host A's index after commit
        assert find(directory, "Twohostson") == ["MP0910012"]
    with other.app_context():
        assert find(host_b, "Twohostson") == []  # host B has not synced yet
        assert get_index_keeper().apply_pending(blocking=True).rows >= 1
        assert find(host_b, "Twohostson") == ["MP0910012"]


WRITER = textwrap.dedent(
    """
    import os, sys
    from sqlalchemy import select
    from directory import create_app
    from directory.extensions import db
    from directory.listings.models import Listing
    app = create_app()
    worker, rounds = sys.argv[1], int(sys.argv[2])
    with app.app_context():
        listings = db.session.scalars(select(Listing).order_by(Listing.id)).all()
        mine = [l for i, l in enumerate(listings) if i % 3 == int(worker)]
        for n in range(rounds):
            listing = mine[n % len(mine)]
            listing.description = f"{listing.description} tokw{worker}r{n}x"
            db.session.commit()
    """
)


def test_concurrent_writers_in_separate_processes_lose_nothing(app, directory):
    """Three processes (think: two gunicorn workers and the recheck job) commit at once;
    each commit tries to apply without waiting. After one sync every change is indexed."""
    env = {
        **os.environ,
        "DIRECTORY_SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "DIRECTORY_SEARCH_INDEX_DIR": app.config["SEARCH_INDEX_DIR"],
        "DIRECTORY_SEARCH_RETRY_DELAY": "3600",
        "PYTHONPATH": str(ROOT),
    }
    rounds = 12
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(worker), str(rounds)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for worker in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()[-2000:]
    get_index_keeper().apply_pending(blocking=True)
    for worker in range(3):
        for n in range(rounds):
            assert find(directory, f"tokw{worker}r{n}x"), (worker, n)
    report = get_index_keeper().check()
    assert not report.drift, report.as_dict()


def test_applies_merge_small_segments_but_never_the_largest(app, directory):
    """The largest segment (a rebuilt index) keeps its files, so the per-segment search
    caches on it survive commits; small segments are merged, fully deleted ones dropped."""
    get_index_keeper().rebuild()

    def segments():
        ix = current_index(app)
        return {s.segment_id(): (s.doc_count_all(), s.deleted_count()) for s in ix._segments()}

    (largest,) = segments()
    for n in range(12):
        register_says("MP0910002", surname=f"Mergeson{n}")
        db.session.commit()
    now = segments()
    assert largest in now
    assert max(now, key=lambda s: now[s][0]) == largest
    assert all(deleted < count for count, deleted in now.values())
    assert len(now) < 12  # small ones were merged
    assert find(directory, "Mergeson11") == ["MP0910002"]
    assert not get_index_keeper().check().drift


def test_a_new_generation_reuses_open_segments_with_their_new_deletions(
    app, directory, monkeypatch, caplog
):
    import directory.search.whoosh.following as following_module

    monkeypatch.setattr(following_module, "MERGE_ON_APPLY", False)
    get_index_keeper().rebuild()
    directory.search(SearchQuery(text="Sampleton"))
    before = directory._state().searcher.reader()
    first = next(iter(before.leaf_readers()))[0]
    register_says("MP0910002", surname="Reusedreader")
    db.session.commit()
    with caplog.at_level("WARNING"):
        assert find(directory, "Sampleton") == []  # the old version is deleted...
        assert find(directory, "Reusedreader") == ["MP0910002"]  # ...the new one found
    assert "reusing segment readers failed" not in caplog.text
    after = directory._state().searcher.reader()
    reused = next(iter(after.leaf_readers()))[0]
    assert reused is not first and reused._terms is first._terms  # files shared, not reopened
    assert reused.deleted_docs_set and not first.deleted_docs_set
