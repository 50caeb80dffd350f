"""The worker processes, and the process-level tricks that make a long import cheap.

This module forks the batch workers (only ``rows.py`` forks too, for pass 1's reader),
freezes the heap out of the garbage collector's scans, and tunes SQLite's WAL for the
workers' connections.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from directory.registry.policy import RegistryPolicy
from directory.registry.recording import AppliedAnswer, BatchWriter
from importers.snapshot_import.rows import ReadGroup, snapshot_answer


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Fewer, cheaper cyclic garbage collections while batches are applied.

    What is alive at the start (the app, the models, the digest of pass 1) lives until the
    end: it is frozen out of the collector's scans (``gc.freeze``), and young collections
    run every 20,000 allocations instead of 700. A batch's rows, tuples and dicts are
    freed by reference counting as before; only cycles wait a little longer.
    (What it saves: docs/benchmarks.md, "Why the import's tricks".)
    """
    threshold = gc.get_threshold()
    # Already frozen (before forking the workers): what was frozen stays so, or the
    # next full collection would touch, and so copy, every page the workers share.
    was_frozen = gc.get_freeze_count() > 0
    gc.freeze()
    gc.set_threshold(max(threshold[0], 20_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if not was_frozen:
            gc.unfreeze()


_worker_writer: BatchWriter | None = None
# What every answer of this import shares, set in each worker: (as_of, undated, source).
_worker_answers: tuple[datetime, bool, str] | None = None
# WAL pages after which a worker's commit checkpoints the WAL into the database file (SQLite's
# default: 1,000). Every batch dirties most leaf pages of the random ``next_check_at``
# index, so each checkpoint copies them again and syncs the file twice, inside the write
# lock; fewer checkpoints hold the lock less (a WAL of up to 40 MB on disk, none of it in
# memory; figures in docs/benchmarks.md).
WORKER_WAL_AUTOCHECKPOINT = 10_000


def _checkpoint_less_often(dbapi_connection: Any, _record: Any) -> None:
    """A worker's SQLite connections checkpoint the WAL every ``WORKER_WAL_AUTOCHECKPOINT``
    pages (set as each connects, after the app's own pragmas)."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA wal_autocheckpoint={WORKER_WAL_AUTOCHECKPOINT}")
    cursor.close()


def _worker_start(
    app: Any,
    policy: RegistryPolicy,
    as_of: datetime,
    undated: bool,
    source: str,
    write_lock: Any,
) -> None:
    """In a forked worker: its own connections, app context and session."""
    global _worker_writer, _worker_answers
    _worker_answers = (as_of, undated, source)
    from directory.extensions import db

    with app.app_context():
        db.engine.dispose(close=False)  # the parent's pooled connections are not ours
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _checkpoint_less_often)
    context = app.app_context()
    context.push()
    # What the worker holds now lives as long as it does: keep it out of the collector's
    # scans. (Not the parent's raised young threshold too: it costs the workers memory;
    # see docs/benchmarks.md.)
    gc.freeze()
    _worker_writer = BatchWriter(db.session, policy, write_lock=write_lock)


class BatchFailed(RuntimeError):
    """A batch could not be written (in a worker process); the message says why."""


def _worker_apply(batch: list[tuple[str, tuple[tuple, ...]]]) -> list[AppliedAnswer]:
    assert _worker_writer is not None and _worker_answers is not None
    as_of, undated, source = _worker_answers
    results = [
        snapshot_answer(number, rows, as_of=as_of, undated=undated, source=source)
        for number, rows in batch
    ]
    try:
        return _worker_writer.apply(results)
    except Exception as exc:  # sent back as plain text: not every exception pickles
        _worker_writer.session.rollback()
        raise BatchFailed(f"{type(exc).__name__}: {exc}") from None


def _as_tuples(groups: list[ReadGroup]) -> list[tuple[str, tuple[tuple, ...]]]:
    """Groups as plain tuples: cheap to send to a worker."""
    return [(g.registration_number, g.values) for g in groups]


def start_pool(
    workers: int,
    session: Session,
    policy: RegistryPolicy,
    *,
    as_of: datetime,
    undated: bool,
    source: str,
) -> Any:
    """Fork ``workers`` processes that apply batches (``_worker_apply``), while this process
    is still small; the caller closes (or terminates) and joins the pool."""
    import multiprocessing

    from flask import current_app

    from directory.extensions import db

    session.close()
    db.engine.dispose()  # no open connection may cross the fork
    # Keep the garbage collector off the objects the workers inherit: its
    # bookkeeping writes would copy every shared page into each worker.
    gc.collect()
    gc.freeze()
    context = multiprocessing.get_context("fork")
    return context.Pool(
        workers,
        initializer=_worker_start,
        initargs=(
            current_app._get_current_object(),
            policy,
            as_of,
            undated,
            source,
            context.Lock(),  # the workers' write lock (see recording.BatchWriter)
        ),
    )
