"""Keeping a whoosh index (``IndexKeeper``): rebuild into a new generation, apply the
outbox, check for drift. The query side (``search.py``) follows what happens here through
``applied_at``; nothing here calls it."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from whoosh import index as whoosh_index

from directory.search.interfaces import (
    ApplyResult,
    DriftReport,
    IndexBehind,
    IndexStatus,
    NoIndex,
    RebuildReport,
)
from directory.search.whoosh import store
from directory.search.whoosh.bulk import BulkWriter
from directory.search.whoosh.documents import (
    CURSOR_DOC_ID,
    build_documents,
    documents_read_beside,
    iter_all_documents,
)
from directory.search.whoosh.following import (
    Cursor,
    RetryTimer,
    apply_pending,
    missed_pruned_rows,
    outbox_backlog,
    read_cursor,
    start_cursor,
)
from directory.util.clock import utcnow
from directory.util.durations import parse_duration

log = logging.getLogger(__name__)

NO_INDEX = "no search index has been built on this host yet (it is being built now)"
BEHIND = (
    "this host's search index is older than the search outbox's retention and may have "
    "missed changes: it is being rebuilt"
)
# A host found able to serve is asked again after this long (seconds): one cheap query.
READY_RECHECK_SECONDS = 30.0


def _remember_missing_length_columns() -> None:
    """When whoosh writes a segment it asks, for every posting, for the document's length in
    the field; for a field that stores no lengths (the keyword and ID fields: ``words``,
    ``service``, ``strength``...) its per-document reader looks for the column file again
    each time: one ``stat`` per posting, 40 % of a rebuild (profile: docs/benchmarks.md).
    A segment's files never change, so "no such column" is remembered per reader."""
    from whoosh.codec.whoosh3 import W3PerDocReader

    original = W3PerDocReader._cached_reader
    if getattr(original, "remembers_missing", False):
        return

    def _cached_reader(self, fieldname, column):
        readers = self._readers
        if fieldname in readers:
            return readers[fieldname]
        found = original(self, fieldname, column)
        if found is None:
            readers[fieldname] = None
        return found

    _cached_reader.remembers_missing = True  # type: ignore[attr-defined]
    W3PerDocReader._cached_reader = _cached_reader


_remember_missing_length_columns()


class WhooshIndex:
    """``IndexKeeper`` for the whoosh index under ``SEARCH_INDEX_DIR``."""

    def __init__(self, app) -> None:
        config = app.config
        self.app = app
        self.root = Path(config["SEARCH_INDEX_DIR"])
        # Monotonic time of this process's last write: the query side looks for a new
        # generation at once, and reloads names, after it.
        self.applied_at = 0.0
        self.window = parse_duration(config["SEARCH_OUTBOX_WINDOW"])
        self.retention = parse_duration(config["SEARCH_OUTBOX_RETENTION"])
        self.keep = int(config["SEARCH_KEEP_GENERATIONS"])
        self.retry_delay = float(config["SEARCH_RETRY_DELAY"])
        self._retry = RetryTimer()
        self._indexes: dict[Path, Any] = {}
        self._builder: threading.Thread | None = None
        self._builder_lock = threading.Lock()
        self._ready_until = 0.0  # monotonic time until which "can serve" is trusted

    @property
    def engine(self) -> Engine:
        from directory.extensions import db

        with self.app.app_context():
            return db.engine

    def _note_applied(self) -> None:
        self.applied_at = time.monotonic()

    def _open(self, generation: Path):
        ix = self._indexes.get(generation)
        if ix is None:
            ix = whoosh_index.open_dir(str(generation))
            self._indexes = {generation: ix}  # only the current one is worth keeping
        return ix

    # --- what it holds -----------------------------------------------------------------

    def servable(self) -> Path:
        """The current generation if it may serve searches; raises ``NoIndex`` when there
        is none and ``IndexBehind`` when it may have missed pruned outbox rows."""
        generation = store.current_generation(self.root)
        if generation is None:
            raise NoIndex(NO_INDEX)
        with self._open(generation).searcher() as searcher:
            cursor = read_cursor(searcher)
        with self.engine.connect() as conn:
            if missed_pruned_rows(conn, cursor, self.retention):
                raise IndexBehind(BEHIND)
        return generation

    def ready(self, *, wait: float = 0.0) -> None:
        """``IndexKeeper.ready``: the build runs in a thread of this process, so no request
        ever waits on it longer than ``wait`` (or a worker timeout)."""
        if time.monotonic() < self._ready_until:
            return
        try:
            self.servable()
        except NoIndex:
            builder = self._build_in_background()
            if wait > 0:
                builder.join(wait)
            self.servable()  # still raises while the build runs
        self._ready_until = time.monotonic() + READY_RECHECK_SECONDS

    def _build_in_background(self) -> threading.Thread:
        with self._builder_lock:
            if self._builder is None or not self._builder.is_alive():
                self._builder = threading.Thread(
                    target=self._build_quietly, name="search-index-build", daemon=True
                )
                self._builder.start()
            return self._builder

    def _build_quietly(self) -> None:
        try:
            self.ensure_index()
        except Exception:
            log.exception("building the search index failed; the next request tries again")

    def status(self, *, backlog: bool = True) -> IndexStatus:
        from sqlalchemy import select

        from directory.search.models import SearchOutbox

        generation = store.current_generation(self.root)
        if generation is None:
            raise NoIndex("no search index has been built on this host (flask search reindex)")
        ix = whoosh_index.open_dir(str(generation))
        with ix.searcher() as searcher:
            cursor = read_cursor(searcher)
            bookkeeping = 1 if searcher.document(pid=CURSOR_DOC_ID) else 0
            state = IndexStatus(generation.name, searcher.doc_count() - bookkeeping)
        now = utcnow()
        if backlog:
            with self.engine.connect() as connection:
                rows = connection.execute(
                    select(SearchOutbox.id, SearchOutbox.created_at).where(
                        SearchOutbox.id > cursor.low
                    )
                )
                waiting = [created for row_id, created in rows if row_id not in cursor.seen]
            state.backlog = len(waiting)
            if waiting:
                oldest = min(waiting)
                state.lag_seconds = round(max(0.0, (now - oldest).total_seconds()), 3)
        commits = [p.stat().st_mtime for p in generation.glob("*.toc")]
        if commits:
            state.age_seconds = round(max(0.0, now.timestamp() - max(commits)), 3)
        return state

    # --- building ----------------------------------------------------------------------

    def ensure_index(self) -> Path:
        """The current generation, building one first if there is none or it is behind
        the outbox's retention (waits for a build another process is running)."""
        try:
            return self.servable()
        except NoIndex:
            pass
        with store.build_lock(self.root, blocking=True):
            try:
                return self.servable()
            except NoIndex as why:
                log.warning("building the search index: %s", why)
                self._rebuild_locked()
        generation = store.current_generation(self.root)
        assert generation is not None
        return generation

    def rebuild(self) -> RebuildReport:
        """Build a new generation from the database and switch to it atomically. Raises
        ``store.BuildInProgress`` when another process is already rebuilding."""
        with store.build_lock(self.root, blocking=False):
            return self._rebuild_locked()

    def _rebuild_locked(self) -> RebuildReport:
        started = time.monotonic()
        engine = self.engine
        path, ix = store.new_generation(self.root)
        count = 0
        try:
            with engine.connect() as conn:
                cursor = start_cursor(conn, self.window)
            writer = BulkWriter(ix.writer())
            try:
                documents = documents_read_beside(engine, iter_all_documents)
                with contextlib.closing(documents):
                    for doc in documents:
                        writer.add_document(**doc)
                        count += 1
                writer.add_document(**cursor.document())
                writer.commit(optimize=True)
            except BaseException:
                writer.cancel()
                raise
            # Catch up with what changed while building, then switch, then once more.
            apply_pending(engine, ix, blocking=True, window=self.window)
        except BaseException:
            store.shutil.rmtree(path, ignore_errors=True)
            raise
        store.switch_to(self.root, path, keep=self.keep)
        caught_up = apply_pending(engine, ix, blocking=True, window=self.window)
        self._note_applied()
        seconds = time.monotonic() - started
        log.info("search index rebuilt: %s documents in %.1fs (%s)", count, seconds, path.name)
        return RebuildReport(path.name, count, seconds, caught_up.as_dict())

    # --- following the database --------------------------------------------------------

    def apply_pending(self, *, blocking: bool, retries: int = 3) -> ApplyResult:
        """Apply pending outbox rows to the current generation. Non-blocking: a held lock
        returns ``locked`` at once (and schedules one quiet retry in this process), no
        index returns ``no-index``. Blocking: builds the first generation if there is none,
        then waits for the lock."""
        if blocking:
            generation = self.ensure_index()
        else:
            generation = store.current_generation(self.root)
            if generation is None:
                return ApplyResult("no-index")
        result = apply_pending(
            self.engine,
            self._open(generation),
            blocking=blocking,
            window=self.window,
            retention=self.retention,
        )
        result.generation = generation.name
        if result.state == "behind":  # never applied to: rebuilt, here or in the background
            self._ready_until = 0.0
            if blocking and retries > 0:
                return self.apply_pending(blocking=True, retries=retries - 1)
            if not blocking:
                self._build_in_background()
        if result.state == "locked" and not blocking and retries > 0:
            app = self.app

            def retry() -> None:
                with app.app_context():
                    self.apply_pending(blocking=False, retries=retries - 1)

            self._retry.schedule(self.retry_delay, retry)
        if result.state == "applied":
            self._note_applied()
        return result

    def update_practitioners(self, practitioner_ids: Iterable[int]) -> int:
        """Rewrite these practitioners' documents now (waits for the lock)."""
        ids = {int(i) for i in practitioner_ids}
        if not ids:
            return 0
        ix = self._open(self.ensure_index())
        with self.engine.connect() as conn:
            docs = build_documents(conn, ids)
        writer = ix.writer(timeout=30.0)
        try:
            for pid in ids:
                if pid in docs:
                    writer.update_document(**docs[pid])
                else:
                    writer.delete_by_term("pid", str(pid))
            writer.commit()
        except BaseException:
            writer.cancel()
            raise
        self._note_applied()
        return len(ids)

    # --- checking ----------------------------------------------------------------------

    def check(self, *, fix: bool = False) -> DriftReport:
        """Compare every document the database implies with what the index holds."""
        generation = store.current_generation(self.root)
        report = DriftReport(generation.name if generation else None)
        with self.engine.connect() as conn:
            expected = {doc["pid"]: doc for doc in iter_all_documents(conn)}
            report.documents_expected = len(expected)
            if generation is None:
                report.missing = sorted(d["number"] for d in expected.values())
                return report
            ix = whoosh_index.open_dir(str(generation))
            with ix.searcher() as searcher:
                indexed: dict[str, tuple[str, str]] = {}
                cursor = Cursor()
                for stored in searcher.all_stored_fields():
                    if stored.get("pid") == CURSOR_DOC_ID:
                        cursor = Cursor.from_payload(stored.get("payload"))
                        continue
                    indexed[stored["pid"]] = (stored.get("number", ""), stored.get("digest", ""))
                cursor = read_cursor(searcher) if cursor.low == 0 else cursor
            report.outbox_backlog = outbox_backlog(conn, cursor)
        report.documents_indexed = len(indexed)
        if cursor.synced_at:
            synced = utcnow().timestamp() - cursor.synced_at / 1_000_000
            report.last_sync_age_seconds = round(synced, 1)
        for pid, doc in expected.items():
            if pid not in indexed:
                report.missing.append(doc["number"])
            elif indexed[pid][1] != doc["digest"]:
                report.stale.append(doc["number"])
        report.extra = sorted(indexed[pid][0] or pid for pid in set(indexed) - set(expected))
        report.missing.sort()
        report.stale.sort()
        if fix and report.drift:
            ids = [int(pid) for pid in expected if pid not in indexed]
            ids += [int(pid) for pid, doc in expected.items() if pid in indexed
                    and indexed[pid][1] != doc["digest"]]  # fmt: skip
            ids += [int(pid) for pid in set(indexed) - set(expected) if pid.isdigit()]
            self.update_practitioners(ids)
        return report
