"""The public change feed: cursor pages (for ``GET /api/v1/changes``) and ``/changes.atom``.

Ordering and cursors. Entries are ordered by ``(txid, id)`` of their ``change_feed`` row and a
cursor is the last position a reader was given. On PostgreSQL, ids are handed out when a
row is inserted but become visible when its transaction commits, so they can commit out of
order: a reader that had moved past id 12 would never see an id 11 committed a moment
later. So each row carries its transaction's id, and a page only includes rows of
transactions older than the oldest transaction still running in this database (the
snapshot's in-progress list, less other databases' transactions): those have all finished,
and any row committed later belongs to a newer transaction, so it sorts after every
position already handed out. The price: a long-running writing transaction in this database
holds the feed back (entries are late, never lost) until it ends; one in another database on
the same server does not. On SQLite writers are serialised, ids commit in order and ``txid``
is 0.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, json, request
from sqlalchemy import BigInteger, and_, literal, or_, select
from sqlalchemy.orm import Session

from directory.extensions import db
from directory.notifications.models import ChangeFeedEntry
from directory.notifications.queue import EXTENSION, isoformat, practitioner_url, public_base_url
from directory.registry.models import StatusEvent
from directory.registry.statuses import PATIENT_MEANING, Status

DEFAULT_PAGE = 100
MAX_PAGE = 500
ATOM_DEFAULT = 50
ATOM_MAX = 200
ATOM_NS = "http://www.w3.org/2005/Atom"
# A cursor is ``<txid>.<id>`` in decimal without leading zeros, each below 10**18 (inside
# PostgreSQL's bigint; both are compared as bigints, though ``id`` is a 32-bit column there).
# The OpenAPI document publishes this very pattern, so every value the document allows is a
# position in the feed (past the end: an empty page), and nothing else is accepted.
CURSOR_PATTERN = r"^(?:0|[1-9][0-9]{0,17})\.(?:0|[1-9][0-9]{0,17})$"
_CURSOR_TEXT = re.compile(CURSOR_PATTERN.replace("(?:", "(", 2))


class CursorError(ValueError):
    """A ``since`` value that is not a cursor this feed handed out."""


@dataclass(frozen=True, order=True)
class FeedPosition:
    txid: int
    id: int

    def encode(self) -> str:
        """Opaque to clients (``CURSOR_PATTERN``)."""
        return f"{self.txid}.{self.id}"

    @classmethod
    def decode(cls, token: str) -> FeedPosition:
        match = _CURSOR_TEXT.fullmatch(token or "")
        if not match:
            raise CursorError("not a cursor from this feed")
        txid, row_id = (int(g) for g in match.groups())
        return cls(txid, row_id)


START = FeedPosition(0, 0)


@dataclass(frozen=True)
class Change:
    event_id: str
    registration_number: str
    from_status: str | None
    to_status: str
    occurred_at: datetime
    recorded_at: datetime
    practitioner_url: str
    position: FeedPosition

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "registration_number": self.registration_number,
            "from": self.from_status,
            "to": self.to_status,
            "occurred_at": isoformat(self.occurred_at),
            "recorded_at": isoformat(self.recorded_at),
            "practitioner_url": self.practitioner_url,
            "cursor": self.position.encode(),
        }


@dataclass(frozen=True)
class ChangesPage:
    changes: list[Change]
    next_cursor: str  # where to continue from: the last change's position, or ``since``
    has_more: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "next": self.next_cursor,
            "has_more": self.has_more,
        }


# The oldest transaction still running that may have written to this database: the smallest
# id in the snapshot's in-progress list, leaving out transactions pg_stat_activity shows
# connected to another database (a backend never changes database, and another database's
# transaction can write no feed entry here); with none left, the snapshot's xmax (the next
# id to be handed out). A transaction the statistics do not show yet is counted: the feed may
# be late, never skip. (``pg_snapshot_xmin`` alone is the cluster's: any open transaction in
# any database on the same server held the feed back.) Ids are compared modulo 2**32, as
# ``backend_xid`` is the 32-bit form of the 64-bit ids the snapshot lists.
_HORIZON_SQL = """
WITH snap AS (SELECT {current}() AS s)
SELECT COALESCE(
    (SELECT min(x::text::bigint)
     FROM snap, {xip}(snap.s) AS x
     WHERE NOT EXISTS (
         SELECT 1 FROM pg_stat_activity a
         WHERE a.backend_xid IS NOT NULL
           AND a.datname IS NOT NULL AND a.datname <> current_database()
           AND a.backend_xid::text::bigint = mod(x::text::bigint, 4294967296))),
    (SELECT {xmax}(s)::text::bigint FROM snap)
)::text
"""
_HORIZON_MODERN = _HORIZON_SQL.format(
    current="pg_current_snapshot", xip="pg_snapshot_xip", xmax="pg_snapshot_xmax"
)
_HORIZON_OLD = _HORIZON_SQL.format(  # before PostgreSQL 13
    current="txid_current_snapshot", xip="txid_snapshot_xip", xmax="txid_snapshot_xmax"
)


def finished_before(session: Session) -> int | None:
    """On PostgreSQL, the oldest transaction id still running that may have written to this
    database: every transaction with a smaller id that wrote here has finished. None where ids
    commit in order anyway (SQLite)."""
    bind = session.get_bind(mapper=ChangeFeedEntry.__mapper__)
    if bind.dialect.name != "postgresql":
        return None
    modern = (bind.dialect.server_version_info or (0,)) >= (13,)
    connection = session.connection(bind_arguments={"mapper": ChangeFeedEntry.__mapper__})
    sql = _HORIZON_MODERN if modern else _HORIZON_OLD
    return int(connection.exec_driver_sql(sql).scalar_one())


def _visible(session: Session):
    horizon = finished_before(session)
    return ChangeFeedEntry.txid < horizon if horizon is not None else True


def _change(entry: ChangeFeedEntry, event: StatusEvent) -> Change:
    return Change(
        event_id=event.event_id,
        registration_number=event.registration_number,
        from_status=event.from_status,
        to_status=event.to_status,
        occurred_at=event.occurred_at,
        recorded_at=entry.recorded_at,
        practitioner_url=practitioner_url(current_app, event.registration_number),
        position=FeedPosition(entry.txid, entry.id),
    )


def changes_since(
    session: Session, since: FeedPosition | None = None, limit: int = DEFAULT_PAGE
) -> ChangesPage:
    """The changes after ``since`` (from the beginning when None), oldest first."""
    since = since or START
    e = ChangeFeedEntry
    # The id as a bigint: a cursor's id may be past the 32-bit column's range (a position
    # beyond the end), which PostgreSQL refuses to compare as an integer.
    after = or_(
        e.txid > since.txid,
        and_(e.txid == since.txid, e.id > literal(since.id, BigInteger)),
    )
    rows = session.execute(
        select(e, StatusEvent)
        .join(StatusEvent, StatusEvent.id == e.status_event_id)
        .where(after, _visible(session))
        .order_by(e.txid, e.id)
        .limit(limit + 1)
    ).all()
    changes = [_change(entry, event) for entry, event in rows[:limit]]
    last = changes[-1].position if changes else since
    return ChangesPage(changes, last.encode(), has_more=len(rows) > limit)


def latest_changes(session: Session, limit: int = ATOM_DEFAULT) -> list[Change]:
    """The newest changes, newest first (the Atom feed)."""
    e = ChangeFeedEntry
    rows = session.execute(
        select(e, StatusEvent)
        .join(StatusEvent, StatusEvent.id == e.status_event_id)
        .where(_visible(session))
        .order_by(e.txid.desc(), e.id.desc())
        .limit(limit)
    ).all()
    return [_change(entry, event) for entry, event in rows]


# --- Atom --------------------------------------------------------------------------------

feed = Blueprint("changes_feed", __name__)


def _problem(status: int, title: str, detail: str) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def _parse_limit(value: str | None, default: int, maximum: int) -> int:
    if value is None:
        return default
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        shown = value if len(value) <= 20 else value[:19] + "…"  # never a 100 kB echo
        raise ValueError(f"limit must be a whole number from 1 to {maximum}, not {shown!r}")
    return int(text)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def _summary(change: Change) -> str:
    try:
        meaning = PATIENT_MEANING[Status(change.to_status)]
    except ValueError:
        meaning = ""
    return (
        f"The HPCSA register's status for {change.registration_number} changed from "
        f"{change.from_status or 'unknown'} to {change.to_status} "
        f"(as of {isoformat(change.occurred_at)}). {meaning}"
    ).strip()


def atom_document(changes: list[Change], base_url: str) -> bytes:
    ET.register_namespace("", ATOM_NS)
    root = ET.Element(f"{{{ATOM_NS}}}feed")
    feed_url = f"{base_url}/changes.atom"
    _sub(root, "id", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, feed_url)}")
    _sub(root, "title", "HPCSA registration status changes")
    _sub(
        root,
        "subtitle",
        "Changes of registration status on the HPCSA register, as this directory "
        "learned of them. Newest first.",
    )
    newest = max((c.recorded_at for c in changes), default=None)
    _sub(root, "updated", isoformat(newest) if newest else "1970-01-01T00:00:00Z")
    _sub(root, "link", rel="self", type="application/atom+xml", href=feed_url)
    _sub(root, "link", rel="alternate", type="application/json", href=f"{base_url}/api/v1/changes")
    author = _sub(root, "author")
    _sub(author, "name", "HPCSA practitioner directory")
    _sub(author, "uri", f"{base_url}/")
    _sub(root, "generator", "hpcsa-directory")
    for change in changes:
        entry = _sub(root, "entry")
        _sub(entry, "id", f"urn:uuid:{change.event_id}")
        _sub(
            entry,
            "title",
            f"{change.registration_number}: {change.from_status or 'unknown'} → {change.to_status}",
        )
        _sub(entry, "updated", isoformat(change.recorded_at))
        _sub(entry, "published", isoformat(change.recorded_at))
        _sub(entry, "link", rel="alternate", type="text/html", href=change.practitioner_url)
        _sub(entry, "category", term=change.to_status)
        _sub(entry, "summary", _summary(change), type="text")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


@feed.get("/changes.atom")
def changes_atom() -> Response:
    try:
        limit = _parse_limit(request.args.get("limit"), ATOM_DEFAULT, ATOM_MAX)
    except ValueError as exc:
        return _problem(400, "Bad Request", str(exc))
    changes = latest_changes(db.session, limit)
    base_url = public_base_url(current_app.extensions[EXTENSION])
    response = Response(atom_document(changes, base_url), mimetype="application/atom+xml")
    response.headers["Cache-Control"] = "public, max-age=60"
    response.add_etag()
    return response.make_conditional(request)
