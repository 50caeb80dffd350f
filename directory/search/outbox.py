"""The search outbox, written: one ``search_outbox`` row per practitioner whose index
document may have changed, inserted on the writer's connection so that it commits or rolls
back with the change (a transactional outbox). Nothing here knows an engine.

- register answers: the one write path sends ``registrations_changed``
  (``directory/registry/signals.py``) and ``on_registrations_changed`` queues the listed
  practitioners among them;
- listings, clinics and services: session events look at every flush and resolve a changed
  listing, clinic or service to the practitioners whose documents it touches. Statements
  that bypass the ORM unit of work (Core ``insert``/``update``) are not seen: call
  ``enqueue_practitioners`` next to them.

A practitioner row edited outside the write path (an operator's script) is not queued:
``flask search check --fix`` finds and repairs such drift.

A session that wrote rows is marked; after its commit, ``directory/search/__init__.py``
asks the app's ``IndexKeeper`` to apply them (``take_written`` clears the mark). How an
engine applies rows and remembers which it has applied is the engine's business
(``whoosh/following.py``). Rows older than ``SEARCH_OUTBOX_RETENTION`` are pruned by
``flask search sync`` (``prune_outbox``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, event, func, insert, inspect, select
from sqlalchemy.orm import Session

from directory.listings.models import Clinic, Listing, Service, listing_services
from directory.registry.models import Practitioner
from directory.search.models import SearchOutbox
from directory.util.clock import utcnow

# What a practitioner's search document is built from: a change to any of these columns
# queues the practitioners it touches (the engines build their documents from them).
INDEXED_PRACTITIONER_COLUMNS = (
    "registration_number",
    "title",
    "surname",
    "full_names",
    "category",
    "status",
    "verified_at",
    "not_found_pending_since",
)
INDEXED_CLINIC_COLUMNS = (
    "slug", "name", "city", "province", "postal_code", "latitude", "longitude",
)  # fmt: skip
INDEXED_SERVICE_COLUMNS = ("slug", "name", "synonyms")

_PENDING_KEY = "search_outbox_written"
_DELETED_KEY = "search_outbox_deleted"
outbox = SearchOutbox.__table__


def enqueue_practitioners(conn: Connection, ids: Iterable[int], reason: str = "bulk") -> int:
    """Record that these practitioners' documents may have changed (same transaction as
    ``conn``). For code that writes with Core statements; ORM flushes do this on their own."""
    now = utcnow()
    rows = [{"practitioner_id": int(i), "reason": reason, "created_at": now} for i in set(ids)]
    if rows:
        conn.execute(insert(outbox), rows)
    return len(rows)


def _changed(obj: Any, columns: Iterable[str]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in columns)


def _listing_practitioners(conn: Connection, *, clinic_ids=(), service_ids=()) -> set[int]:
    found: set[int] = set()
    if clinic_ids:
        found.update(
            conn.execute(
                select(Listing.practitioner_id).where(Listing.clinic_id.in_(list(clinic_ids)))
            ).scalars()
        )
    if service_ids:
        found.update(
            conn.execute(
                select(Listing.practitioner_id)
                .join(listing_services, listing_services.c.listing_id == Listing.id)
                .where(listing_services.c.service_id.in_(list(service_ids)))
            ).scalars()
        )
    return found


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, flush_context, instances) -> None:
    """Deleted clinics and services: find their practitioners while the rows still exist."""
    clinic_ids = [o.id for o in session.deleted if isinstance(o, Clinic) and o.id is not None]
    service_ids = [o.id for o in session.deleted if isinstance(o, Service) and o.id is not None]
    if not clinic_ids and not service_ids:
        return
    affected = _listing_practitioners(
        session.connection(), clinic_ids=clinic_ids, service_ids=service_ids
    )
    session.info.setdefault(_DELETED_KEY, set()).update(affected)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context) -> None:
    """Write one outbox row per practitioner whose document this flush may have changed."""
    reasons: dict[int, str] = {pid: "deleted" for pid in session.info.pop(_DELETED_KEY, ())}
    clinic_ids: set[int] = set()
    service_ids: set[int] = set()

    for obj in session.new:
        if isinstance(obj, Listing) and obj.practitioner_id is not None:
            reasons[obj.practitioner_id] = "listing"
    for obj in session.dirty:
        if isinstance(obj, Listing):
            if session.is_modified(obj, include_collections=True):
                history = inspect(obj).attrs.practitioner_id.history
                for pid in (*history.added, *history.unchanged, *history.deleted):
                    if pid is not None:
                        reasons[pid] = "listing"
        elif isinstance(obj, Clinic):
            if _changed(obj, INDEXED_CLINIC_COLUMNS):
                clinic_ids.add(obj.id)
        elif isinstance(obj, Service) and _changed(obj, INDEXED_SERVICE_COLUMNS):
            service_ids.add(obj.id)
    for obj in session.deleted:
        if isinstance(obj, Practitioner) and obj.id is not None:
            reasons[obj.id] = "practitioner"
        elif isinstance(obj, Listing) and obj.practitioner_id is not None:
            reasons[obj.practitioner_id] = "listing"

    if not (reasons or clinic_ids or service_ids):
        return
    conn = session.connection()
    for pid in _listing_practitioners(conn, clinic_ids=clinic_ids):
        reasons.setdefault(pid, "clinic")
    for pid in _listing_practitioners(conn, service_ids=service_ids):
        reasons.setdefault(pid, "service")
    if not reasons:
        return
    now = utcnow()
    conn.execute(
        insert(outbox),
        [
            {"practitioner_id": pid, "reason": why, "created_at": now}
            for pid, why in reasons.items()
        ],
    )
    session.info[_PENDING_KEY] = True


def on_registrations_changed(app, *, session: Session, changes) -> None:
    """``registrations_changed``: queue the listed ones among the registrations a write
    touched (an unlisted practitioner has no document), in the writer's transaction."""
    if not changes.practitioner_ids:
        return
    conn = session.connection()
    listed = sorted(
        conn.execute(
            select(Listing.practitioner_id)
            .where(Listing.practitioner_id.in_(sorted(changes.practitioner_ids)))
            .distinct()
        ).scalars()
    )
    if listed:
        reason = "snapshot" if changes.source.startswith("snapshot:") else "practitioner"
        enqueue_practitioners(conn, listed, reason=reason)
        session.info[_PENDING_KEY] = True


def take_written(session: Session) -> bool:
    """Whether the transaction ``session`` just committed wrote outbox rows (asked once:
    the mark is cleared)."""
    return bool(session.info.pop(_PENDING_KEY, False))


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_DELETED_KEY, None)


def prune_outbox(conn: Connection, older_than: datetime) -> int:
    """Delete rows older than the retention, all but the newest of them. That one stays as
    the prune horizon: an index whose cursor is below it may have missed pruned rows and
    must be rebuilt (``whoosh/following.py``, ``missed_pruned_rows``); and the table is
    never emptied, so SQLite never hands out an id again after a prune."""
    newest = select(func.max(outbox.c.id)).where(outbox.c.created_at < older_than).scalar_subquery()
    result = conn.execute(
        outbox.delete().where(outbox.c.created_at < older_than, outbox.c.id < newest)
    )
    return result.rowcount or 0
