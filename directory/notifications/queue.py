"""Queueing: every new ``StatusEvent`` gets its feed entry and its notifications in the
same transaction as the status change itself (a transactional outbox).

The registry's one write path announces each write's new events through
``registrations_changed`` (``directory/registry/signals.py``); ``on_registrations_changed``
adds the rows with Core statements on the writer's own connection, so a rollback queues
nothing and a commit never lacks them; a batch of answers (``recording.apply_answers``, a
snapshot import's) announces its events the same way. (Status events written any other
way, by raw SQL say, are out of reach: do not; ``queue_for_events(connection, app, None)``
repairs such rows.)
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from flask import Flask, current_app, has_app_context, has_request_context, request
from sqlalchemy import Connection, Engine, Row, insert, select
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from directory.accounts.models import User
from directory.listings.models import Clinic, Listing
from directory.notifications.models import (
    ChangeFeedEntry,
    Channel,
    DeliveryState,
    NotificationOutbox,
)
from directory.notifications.settings import FALLBACK_BASE_URL, NotifySettings
from directory.registry.models import Practitioner, StatusEvent
from directory.util.clock import as_utc, utcnow

log = logging.getLogger(__name__)

EXTENSION = "notifications"
# Which app an engine belongs to, for sessions made outside an app context.
_APPS_BY_ENGINE: weakref.WeakKeyDictionary[Engine, weakref.ref[Flask]] = weakref.WeakKeyDictionary()


def register_engine(engine: Engine, app: Flask) -> None:
    _APPS_BY_ENGINE[engine] = weakref.ref(app)


# A plain mailbox (local@domain.tld), nothing a header could be smuggled in with.
_MAILBOX = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str | None


def email_recipients(
    connection: Connection, practitioner_ids: Collection[int]
) -> dict[int, list[Recipient]]:
    """Who is emailed about a change to each practitioner's registration.

    The clinic admins (accounts with the ``clinic_admin`` role) of each clinic listing the
    practitioner; for a clinic nobody has claimed yet, the clinic's address on record (the
    one a claim link goes to). One message per distinct address.
    """
    found: dict[int, dict[str, Recipient]] = {}
    ids = sorted(set(practitioner_ids))
    for chunk in _chunks(ids):
        admins: dict[int, list[str]] = {}
        for clinic_id, email in connection.execute(
            select(User.clinic_id, User.email)
            .join(Listing, Listing.clinic_id == User.clinic_id)
            .where(Listing.practitioner_id.in_(chunk), User.role == "clinic_admin")
            .order_by(User.clinic_id, User.email)
        ):
            admins.setdefault(clinic_id, []).append(email)
        rows = connection.execute(
            select(Listing.practitioner_id, Clinic.id, Clinic.name, Clinic.email)
            .join(Clinic, Listing.clinic_id == Clinic.id)
            .where(Listing.practitioner_id.in_(chunk))
            .order_by(Listing.practitioner_id, Clinic.id)
        )
        for practitioner_id, clinic_id, name, public_email in rows:
            addresses = admins.get(clinic_id) or ([public_email] if public_email else [])
            for email in addresses:
                address = parseaddr(email or "")[1].strip()
                controls = any(ord(ch) < 32 or ord(ch) == 127 for ch in email or "")
                if controls or not _MAILBOX.fullmatch(address) or len(address) > 254:
                    log.warning(
                        "clinic %r has an unusable email address %r: not emailed", name, email
                    )
                    continue
                found.setdefault(practitioner_id, {}).setdefault(
                    address.lower(), Recipient(address, name)
                )
    return {pid: list(by_address.values()) for pid, by_address in found.items()}


def _chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def public_base_url(settings: NotifySettings) -> str:
    """PUBLIC_BASE_URL; else the host of the request being served; else the local default."""
    if settings.public_base_url:
        return settings.public_base_url
    if has_request_context():
        return request.host_url.rstrip("/")
    return FALLBACK_BASE_URL


def practitioner_url(app: Flask, registration_number: str) -> str:
    """The absolute address of a practitioner's public page."""
    settings: NotifySettings = app.extensions[EXTENSION]
    try:
        path = app.url_map.bind("localhost").build(
            "web.practitioner", {"number": registration_number}
        )
    except BuildError:  # pragma: no cover - only if the web blueprint renames its route
        path = f"/practitioners/{registration_number}"
    return public_base_url(settings) + path


def isoformat(value) -> str:
    return as_utc(value).isoformat(timespec="seconds").replace("+00:00", "Z")


def event_payload(app: Flask, status_event: StatusEvent | Row) -> dict[str, Any]:
    """The webhook body (and the facts every email states), for one status change."""
    return {
        "event_id": status_event.event_id,
        "registration_number": status_event.registration_number,
        "from": status_event.from_status,
        "to": status_event.to_status,
        "occurred_at": isoformat(status_event.occurred_at),
        "practitioner_url": practitioner_url(app, status_event.registration_number),
    }


def app_for(engine: Engine | None) -> Flask | None:
    """The app whose engine this is; else the current app (if it has notifications)."""
    ref = _APPS_BY_ENGINE.get(engine) if engine is not None else None
    app = ref() if ref else None
    if app is None and has_app_context() and EXTENSION in current_app.extensions:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    return app


def current_txid(connection: Connection) -> int:
    """The writing transaction's id on PostgreSQL (0 elsewhere): the feed's ordering key."""
    if connection.dialect.name != "postgresql":
        return 0
    modern = (connection.dialect.server_version_info or (0,)) >= (13,)
    sql = "SELECT pg_current_xact_id()::text" if modern else "SELECT txid_current()::text"
    return int(connection.exec_driver_sql(sql).scalar_one())


def queue_for_events(
    connection: Connection, app: Flask | None, event_ids: Sequence[str] | None
) -> int:
    """Add the feed entry and the outbox rows of status events just inserted on
    ``connection`` (in its transaction). ``event_ids`` None: every event that has no feed
    entry yet. Events already queued are skipped, so calling twice is harmless.
    Returns how many events were queued."""
    se = StatusEvent.__table__
    feed = ChangeFeedEntry.__table__
    unqueued = (
        select(
            se.c.id,
            se.c.event_id,
            se.c.practitioner_id,
            se.c.registration_number,
            se.c.from_status,
            se.c.to_status,
            se.c.occurred_at,
        )
        .outerjoin(feed, feed.c.status_event_id == se.c.id)
        .where(feed.c.id.is_(None))
    )
    if event_ids is None:
        events = list(connection.execute(unqueued))
    else:
        ids = sorted(set(event_ids))
        events = [
            row
            for chunk in _chunks(ids)
            for row in connection.execute(unqueued.where(se.c.event_id.in_(chunk)))
        ]
    if not events:
        return 0
    events.sort(key=lambda row: row.id)
    now = utcnow()
    txid = current_txid(connection)
    connection.execute(
        insert(feed),
        [{"status_event_id": e.id, "txid": txid, "recorded_at": now} for e in events],
    )
    if app is None:
        log.error("%d status event(s) recorded outside any app: no notifications queued",
                  len(events))  # fmt: skip
        return len(events)
    rows = _outbox_rows(connection, app, events, now)
    if rows:
        connection.execute(insert(NotificationOutbox.__table__), rows)
    return len(events)


def _outbox_rows(connection: Connection, app: Flask, events: list[Row], now) -> list[dict]:
    settings: NotifySettings = app.extensions[EXTENSION]
    recipients: dict[int, list[Recipient]] = {}
    names: dict[int, str] = {}
    if settings.mail_enabled:
        recipients = email_recipients(connection, [e.practitioner_id for e in events])
        names = _display_names(connection, list(recipients))
    rows: list[dict[str, Any]] = []

    def row(ev: Row, channel: Channel, target: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "status_event_id": ev.id,
            "event_id": ev.event_id,
            "channel": channel.value,
            "target": target,
            "payload": body,
            "state": DeliveryState.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }

    for status_event in events:
        payload = event_payload(app, status_event)
        if settings.webhook_url:
            rows.append(row(status_event, Channel.WEBHOOK, settings.webhook_url, payload))
        for recipient in recipients.get(status_event.practitioner_id, []):
            body = {
                **payload,
                "recipient_name": recipient.name,
                "practitioner_name": names.get(status_event.practitioner_id) or None,
            }
            rows.append(row(status_event, Channel.EMAIL, recipient.address, body))
    return rows


def _display_names(connection: Connection, practitioner_ids: list[int]) -> dict[int, str]:
    p = Practitioner.__table__
    names: dict[int, str] = {}
    for chunk in _chunks(sorted(practitioner_ids)):
        query = select(p.c.id, p.c.title, p.c.full_names, p.c.surname).where(p.c.id.in_(chunk))
        for row in connection.execute(query):
            names[row.id] = Practitioner.display_name.fget(row)  # the pages' own wording
    return names


# --- How new status events reach the queue -------------------------------------------------


def on_registrations_changed(app: Flask | None, *, session: Session, changes) -> None:
    """``registrations_changed``: the write just flushed these status events; queue them in
    its transaction."""
    if not changes.event_ids:
        return
    connection = session.connection(bind_arguments={"mapper": StatusEvent.__mapper__})
    if app is None or EXTENSION not in app.extensions:
        app = app_for(connection.engine)
    queue_for_events(connection, app, changes.event_ids)
