"""The snapshot import's two passes: pass 2 works on the rows pass 1 read and validated.

All data is fictional.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from directory.extensions import db
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from importers.snapshot_import import Note, SnapshotImporter, _ReadRows, scan
from importers.sources.snapshot import RowProblem, Snapshot, SnapshotError

HEADER = "Title,Surname,Fullname,Registration,City,Postal Code,Category,Status"


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


def row(number: str, status: str = "ACTIVE", category: str = "INDEPENDENT PRACTICE") -> str:
    return f"DR,FICTIONAL-{number},TEST PERSON,{number},CAPE TOWN,8001,{category},{status}"


def test_kept_rows_come_back_as_the_file_gave_them(tmp_path):
    path = tmp_path / "snapshot.csv"
    lines = [HEADER, row("MP 0000001"), row("MPO012345"), "", row("MP0000002", "  SUSPENDED ")]
    lines += [row(f"DP{i:07d}") for i in range(1, 10_000)]  # several chunks
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    snapshot = Snapshot.open(path)
    kept = _ReadRows()
    try:
        for line, item in snapshot.rows():
            kept.add(line, item)
        kept.finish()
        again = list(kept.rows())
    finally:
        kept.close()
    assert again == list(snapshot.rows())
    assert isinstance(again[1][1], RowProblem) and again[1][0] == 3


def test_pass_2_imports_what_pass_1_read_even_if_the_file_changes_in_between(app, tmp_path):
    path = tmp_path / "snapshot.csv"
    rows = [row("MP0000001"), row("MP0000002"), row("MP0000001", "INACTIVE", "INTERN")]
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    notes: list[Note] = []
    with app.app_context():
        snapshot = Snapshot.open(path)
        importer = SnapshotImporter(
            db.session,
            RegistryPolicy.from_config(app.config),
            as_of=datetime(2024, 3, 1, tzinfo=UTC),
            source="snapshot:snapshot.csv",
            note=notes.append,
            batch_rows=2,
        )
        with importer:
            digest = importer.scan(snapshot)
            # Overwritten between the passes: pass 2 must not mix two files.
            path.write_text(HEADER + "\n" + row("MP0000999") + "\n", encoding="utf-8")
            summary = importer.run(snapshot, digest)
            assert importer._read_rows is None  # the temporary file is closed after pass 2
        stored = db.session.scalars(select(Practitioner.registration_number)).all()
    assert sorted(stored) == ["MP0000001", "MP0000002"]
    assert (summary.rows_read, summary.rows_imported, summary.registrations) == (3, 3, 2)
    assert notes == []


def test_garbage_collection_is_as_before_after_an_import(app, tmp_path):
    import gc

    path = tmp_path / "snapshot.csv"
    path.write_text(HEADER + "\n" + row("MP0000001") + "\n", encoding="utf-8")
    gc.unfreeze()  # an earlier import with workers froze the heap before forking them
    threshold = gc.get_threshold()
    with app.app_context():
        snapshot = Snapshot.open(path)
        importer = SnapshotImporter(
            db.session,
            RegistryPolicy.from_config(app.config),
            as_of=datetime(2024, 3, 1, tzinfo=UTC),
            source="snapshot:snapshot.csv",
        )
        with importer:
            importer.run(snapshot, importer.scan(snapshot))
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0


def test_a_heap_frozen_before_the_import_stays_frozen():
    """Frozen before forking workers: unfreezing it would let a full collection touch (and
    so copy) every page the workers share."""
    import gc

    from importers.snapshot_import import _rare_collections

    gc.freeze()
    frozen = gc.get_freeze_count()
    try:
        with _rare_collections():
            pass
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()


def _importer(app, workers: int) -> SnapshotImporter:
    return SnapshotImporter(
        db.session,
        RegistryPolicy.from_config(app.config),
        as_of=datetime(2024, 3, 1, tzinfo=UTC),
        source="snapshot:snapshot.csv",
        workers=workers,
    )


def test_with_workers_pass_1_reads_ahead_in_another_process_and_learns_the_same(app, tmp_path):
    """With workers, a forked process reads and validates the file while this one digests
    it: the digest and the rows kept for pass 2 are those of the one-process pass 1."""
    path = tmp_path / "snapshot.csv"
    lines = [HEADER, row("MP 0000001"), row("MPO012345"), "", row("MP0000002", "  SUSPENDED ")]
    lines += [row(f"DP{i:07d}") for i in range(1, 9_000)]  # several chunks
    lines += [row("MP0000001", "INACTIVE", "INTERN"), row("MP0000002", "ACTIVE")]  # contradictions
    lines += [row("DP0000005"), "DR,,TEST PERSON,DP0000007,CAPE TOWN,8001,INTERN,ACTIVE"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    snapshot = Snapshot.open(path)
    kept = _ReadRows()
    try:
        expected = scan(snapshot, kept)
        expected_rows = list(kept.rows())
    finally:
        kept.close()
    assert expected.conflicts and expected.duplicates and expected.problems == 2
    with app.app_context(), _importer(app, workers=2) as importer:
        digest = importer.scan(snapshot)
        assert importer._read_rows is not None
        assert list(importer._read_rows.rows()) == expected_rows
    assert digest == expected


@pytest.mark.parametrize("workers", [1, 2])
def test_an_undecodable_byte_late_in_the_file_stops_pass_1_either_way(app, tmp_path, workers):
    path = tmp_path / "snapshot.csv"
    body = "\n".join([HEADER, *(row(f"DP{i:07d}") for i in range(1, 6_000))]) + "\n"
    path.write_bytes(
        body.encode() + b"DR,FICTIONAL-\xff,X,MP0000001,CAPE TOWN,8001,INTERN,ACTIVE\n"
    )
    with (
        app.app_context(),
        _importer(app, workers) as importer,
        pytest.raises(SnapshotError, match="not UTF-8"),
    ):
        importer.scan(Snapshot.open(path))


def _wal_autocheckpoint_of_this_worker() -> int:
    from importers.snapshot_import import workers

    session = workers._worker_writer.session
    return session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()


def test_workers_checkpoint_the_wal_less_often_and_only_they_do(sqlite_app):
    """SQLite's write-ahead log (PostgreSQL has no such setting per connection)."""
    from importers.snapshot_import import WORKER_WAL_AUTOCHECKPOINT

    app = sqlite_app

    with app.app_context(), _importer(app, workers=2) as importer:
        in_worker = importer._pool.apply(_wal_autocheckpoint_of_this_worker)
        here = db.session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        db.session.rollback()
    assert in_worker == WORKER_WAL_AUTOCHECKPOINT == 10_000
    assert here == 1000  # SQLite's default, for every other connection


def test_pass_1_tells_repeats_from_contradictions_and_keeps_every_contradicting_row(tmp_path):
    """``rules``: a repeat is one row; a contradiction (another status for a category, other
    names) stays in the number's answer, with a warning naming the earlier line."""
    path = tmp_path / "snapshot.csv"
    lines = [
        HEADER,
        row("MP0000001"),  # 2
        row("MP0000001", "SUSPENDED"),  # 3: another status for line 2's category
        row("MP0000001"),  # 4: repeats line 2
        row("MP0000001", "INACTIVE", "INTERN"),  # 5: another category
        "PROF,FICTIONAL-MP0000001,TEST PERSON,MP0000001,CAPE TOWN,8001,INTERN,ACTIVE",  # 6
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    digest = scan(Snapshot.open(path))
    assert digest.duplicates == {4: 2}
    assert sorted(digest.conflicts) == [3, 6]
    assert "another status than line 2" in digest.conflicts[3]
    assert "other names" not in digest.conflicts[3]
    assert "another status than line 5" in digest.conflicts[6]
    assert "other names than line 2" in digest.conflicts[6]
    from importers.snapshot_import.digest import number_key

    assert digest.row_count(number_key("MP0000001")) == 4  # every row but the repeat
