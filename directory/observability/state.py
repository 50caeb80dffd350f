"""What the database and this host's index hold now: for ``/metrics`` and ``/readyz``.

Each function is one or two cheap queries; none writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import case, func, select, text

from directory.extensions import db
from directory.util.clock import utcnow

# Buckets of "the register last answered for this registration ... ago" (verified_at).
AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("under_1d", timedelta(days=1)),
    ("under_7d", timedelta(days=7)),
    ("under_30d", timedelta(days=30)),
)
OLDER, NEVER = "30d_or_more", "never"


def registrations_by_age() -> dict[str, int]:
    """Registrations by the age of the register's last answer for them (``verified_at``)."""
    from directory.registry.models import Practitioner

    now = utcnow()
    column = Practitioner.verified_at
    bucket = case(
        (column.is_(None), NEVER),
        *[(column >= now - age, name) for name, age in AGE_BUCKETS],
        else_=OLDER,
    )
    counts = {name: 0 for name, _ in AGE_BUCKETS} | {OLDER: 0, NEVER: 0}
    for name, count in db.session.execute(select(bucket, func.count()).group_by(bucket)):
        counts[name] = count
    return counts


@dataclass
class IndexState:
    generation: str | None = None
    documents: int = 0
    backlog: int = 0  # search outbox rows this index has not applied
    age_seconds: float | None = None  # since the index last changed (its newest commit)
    lag_seconds: float = 0.0  # age of the oldest outbox row not applied yet (0: none)
    notifications_pending: int = 0


def database_answers() -> None:
    db.session.execute(text("SELECT 1")).scalar()


def index_answers() -> int:
    """Open this host's current index generation and count its documents (raises if none)."""
    from whoosh import index as whoosh_index

    from directory.search import store

    generation = store.current_generation(Path(current_app.config["SEARCH_INDEX_DIR"]))
    if generation is None:
        raise LookupError("no search index has been built on this host (flask search reindex)")
    return whoosh_index.open_dir(str(generation)).doc_count()


def index_state() -> IndexState:
    from whoosh import index as whoosh_index

    from directory.notifications.models import DeliveryState, NotificationOutbox
    from directory.search import store
    from directory.search.models import SearchOutbox
    from directory.search.outbox import CURSOR_DOC_ID, read_cursor

    state = IndexState()
    pending = select(func.count()).where(NotificationOutbox.state == DeliveryState.PENDING)
    state.notifications_pending = db.session.execute(pending).scalar() or 0
    generation = store.current_generation(Path(current_app.config["SEARCH_INDEX_DIR"]))
    if generation is None:
        return state
    state.generation = generation.name
    ix = whoosh_index.open_dir(str(generation))
    with ix.searcher() as searcher:
        cursor = read_cursor(searcher)
        bookkeeping = 1 if searcher.document(pid=CURSOR_DOC_ID) else 0
        state.documents = searcher.doc_count() - bookkeeping
    rows = db.session.execute(
        select(SearchOutbox.id, SearchOutbox.created_at).where(SearchOutbox.id > cursor.low)
    )
    waiting = [created for row_id, created in rows if row_id not in cursor.seen]
    state.backlog = len(waiting)
    now = utcnow()
    if waiting:
        state.lag_seconds = round(max(0.0, (now - min(waiting)).total_seconds()), 3)
    commits = [p.stat().st_mtime for p in generation.glob("*.toc")]
    if commits:
        state.age_seconds = round(max(0.0, now.timestamp() - max(commits)), 3)
    return state
