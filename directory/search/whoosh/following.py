"""Following the database: applying ``search_outbox`` rows to a whoosh index.

Under the index's whoosh write lock, taken WITHOUT waiting on the request path (a held lock
leaves the rows for the next attempt), the rows past the index's cursor are read, each
named practitioner's document is rebuilt from the current database state (or deleted), and
the cursor advances in the same whoosh commit as the documents (it is a document of the
index), so a crash never records rows as applied that were not. Applying is idempotent, so
re-applying is always safe.

The cursor is a low-water mark plus the ids seen above it. Ids may commit out of order
(PostgreSQL assigns them at insert, a slower transaction commits later), so the mark only
passes rows older than ``SEARCH_OUTBOX_WINDOW``; every row newer than that is re-read on
each pass and skipped when already seen. A transaction open longer than the window could
be missed; ``flask search check`` reports such drift and ``reindex`` repairs it. Each index
directory (each host, each generation) has its own cursor, so any number of hosts can
follow one outbox, and a rebuilt generation starts from a mark one window before its build.

Rows older than ``SEARCH_OUTBOX_RETENTION`` are pruned (``outbox.prune_outbox``). An index
whose mark is below the newest such row, with some row between never applied (a host down
for longer than the retention), may have missed rows that are gone: it is *behind*
(``missed_pruned_rows``). A pass on it applies nothing and answers ``behind``, so its
cursor never moves past what it missed; the keeper rebuilds it (``whoosh/index.py``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from whoosh.index import LockError
from whoosh.writing import MERGE_SMALL

from directory.search.interfaces import ApplyResult
from directory.search.models import SearchOutbox
from directory.search.whoosh.documents import CURSOR_DOC_ID, build_documents, epoch_us
from directory.util.clock import utcnow

log = logging.getLogger(__name__)

# Merge small segments on each apply (never the largest: see ``merge_keeping_largest``).
# Tests switch it off to keep small indexes in several segments.
MERGE_ON_APPLY = True


@dataclass
class Cursor:
    """Everything at or below ``low`` is applied; ``seen`` are the applied ids above it."""

    low: int = 0
    seen: set[int] = field(default_factory=set)
    synced_at: int = 0  # epoch microseconds of the last pass

    def to_payload(self) -> dict[str, Any]:
        return {"low": self.low, "seen": sorted(self.seen), "synced_at": self.synced_at}

    @classmethod
    def from_payload(cls, payload: dict[str, Any] | None) -> Cursor:
        if not payload:
            return cls()
        return cls(int(payload["low"]), set(payload.get("seen", ())), payload.get("synced_at", 0))

    def document(self) -> dict[str, Any]:
        return {"pid": CURSOR_DOC_ID, "kind": "cursor", "payload": self.to_payload()}


def read_cursor(searcher) -> Cursor:
    stored = searcher.document(pid=CURSOR_DOC_ID)
    return Cursor.from_payload(stored.get("payload") if stored else None)


def start_cursor(conn: Connection, window: timedelta, now: datetime | None = None) -> Cursor:
    """The cursor of a generation about to be built from the database: every row visible
    now is committed, so the build (which reads the database after this) reflects it. Rows
    not yet visible (an older id still in flight) are applied later, like any other."""
    cutoff = (now or utcnow()) - window
    low = conn.execute(
        select(func.max(SearchOutbox.id)).where(SearchOutbox.created_at < cutoff)
    ).scalar()
    low = int(low or 0)
    seen = set(conn.execute(select(SearchOutbox.id).where(SearchOutbox.id > low)).scalars())
    return Cursor(low=low, seen=seen)


def missed_pruned_rows(
    conn: Connection, cursor: Cursor, retention: timedelta, now: datetime | None = None
) -> bool:
    """Whether rows this cursor never applied may have been pruned: its low-water mark is
    below the newest row older than the retention (pruning keeps that row: ``prune_outbox``)
    and some id between them was never applied. An index that passed within the last
    ``retention - window`` always has its mark at or above that row, so only a host that
    was away for about the retention (or longer) is ever behind."""
    cutoff = (now or utcnow()) - retention
    horizon = conn.execute(
        select(func.max(SearchOutbox.id)).where(SearchOutbox.created_at < cutoff)
    ).scalar()
    if horizon is None or cursor.low >= horizon:
        return False
    return any(i not in cursor.seen for i in range(cursor.low + 1, int(horizon) + 1))


def apply_pending(
    engine: Engine,
    ix,
    *,
    blocking: bool,
    window: timedelta,
    retention: timedelta | None = None,
    batch: int = 5000,
    max_passes: int = 1000,
    now: datetime | None = None,
) -> ApplyResult:
    """Apply outbox rows past ``ix``'s cursor. Non-blocking: returns ``locked`` at once
    when another writer holds the index. With ``retention``: returns ``behind``, applying
    nothing, when the index may have missed pruned rows (see ``missed_pruned_rows``)."""
    total = ApplyResult("idle")
    for _ in range(max_passes):
        result = _apply_one_pass(
            engine, ix, blocking=blocking, window=window, retention=retention, batch=batch,
            now=now,
        )  # fmt: skip
        if result.state in ("locked", "behind"):
            return result if total.passes == 0 else total
        total.passes += 1
        total.cursor = result.cursor
        if result.state == "idle":
            break
        total.state = "applied"
        for name in ("rows", "practitioners", "upserted", "deleted"):
            setattr(total, name, getattr(total, name) + getattr(result, name))
    return total


def _apply_one_pass(engine, ix, *, blocking, window, retention, batch, now) -> ApplyResult:
    try:
        writer = ix.writer(timeout=30.0 if blocking else 0.0)
    except LockError:
        return ApplyResult("locked")
    try:
        with writer.searcher() as searcher:
            cursor = read_cursor(searcher)
        now = now or utcnow()
        cutoff_us = epoch_us(now - window)
        with engine.connect() as conn:
            if retention is not None and missed_pruned_rows(conn, cursor, retention, now):
                writer.cancel()
                return ApplyResult("behind", cursor=cursor.low)
            fresh, new_low = _scan(conn, cursor, cutoff_us, batch)
            ids = {pid for _, pid in fresh}
            docs = build_documents(conn, ids) if ids else {}
        if not fresh and new_low == cursor.low:
            writer.cancel()
            return ApplyResult("idle", cursor=cursor.low)
        for pid in ids:
            doc = docs.get(pid)
            if doc is None:
                writer.delete_by_term("pid", str(pid))
            else:
                writer.update_document(**doc)
        seen = {i for i in cursor.seen | {row_id for row_id, _ in fresh} if i > new_low}
        writer.update_document(**Cursor(new_low, seen, epoch_us(now)).document())
        if MERGE_ON_APPLY:
            writer.commit(mergetype=merge_keeping_largest)
        else:
            writer.commit(merge=False)
    except BaseException:
        writer.cancel()
        raise
    return ApplyResult(
        "applied" if fresh else "idle",
        rows=len(fresh),
        practitioners=len(ids),
        upserted=len(docs),
        deleted=len(ids) - len(docs),
        passes=1,
        cursor=new_low,
    )


def merge_keeping_largest(writer, segments):
    """whoosh's MERGE_SMALL over every segment but the largest, and segments whose every
    document is deleted dropped. The largest (a rebuilt index: nearly every document) keeps
    its files, so the search caches built on it survive commits; its deletions accumulate
    until the next ``flask search reindex``."""
    if len(segments) < 2:
        return segments
    largest = max(segments, key=lambda segment: segment.doc_count_all())
    others = [
        segment
        for segment in segments
        if segment is not largest and segment.deleted_count() < segment.doc_count_all()
    ]
    kept = {id(segment) for segment in MERGE_SMALL(writer, others)}
    return [segment for segment in segments if segment is largest or id(segment) in kept]


def _scan(
    conn: Connection, cursor: Cursor, cutoff_us: int, batch: int
) -> tuple[list[tuple[int, int]], int]:
    """Unapplied rows past the cursor (at most ``batch``), and the new low-water mark: the
    last row scanned that is older than the window (everything up to it is now applied)."""
    fresh: list[tuple[int, int]] = []
    scanned_to = new_low = cursor.low
    while len(fresh) < batch:
        rows = conn.execute(
            select(SearchOutbox.id, SearchOutbox.practitioner_id, SearchOutbox.created_at)
            .where(SearchOutbox.id > scanned_to)
            .order_by(SearchOutbox.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        for row_id, pid, created_at in rows:
            if row_id not in cursor.seen:
                fresh.append((row_id, pid))
            if epoch_us(created_at) < cutoff_us:
                new_low = row_id
            scanned_to = row_id
            if len(fresh) >= batch:
                break
    return fresh, new_low


class RetryTimer:
    """One deferred retry per process after a lock collision, so a change does not wait
    for the next cron ``sync`` when the other writer finishes a moment later."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = False

    def schedule(self, delay: float, fn) -> None:
        with self._lock:
            if self._pending:
                return
            self._pending = True

        def run() -> None:
            with self._lock:
                self._pending = False
            try:
                fn()
            except Exception:
                log.exception("deferred search outbox apply failed; left for the next sync")

        timer = threading.Timer(delay, run)
        timer.daemon = True
        timer.start()


def outbox_backlog(conn: Connection, cursor: Cursor) -> int:
    """Rows the index has not applied yet (what ``sync`` would do now)."""
    rows = conn.execute(select(SearchOutbox.id).where(SearchOutbox.id > cursor.low)).scalars()
    return sum(1 for row_id in rows if row_id not in cursor.seen)
