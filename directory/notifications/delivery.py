"""Sending after commit: claim due outbox rows with a lease, send each, record the attempt.

Safe to run in several processes at once: rows are claimed by one conditional UPDATE
(on PostgreSQL its row pick is ``FOR UPDATE SKIP LOCKED``), so two senders never hold the
same row; a sender that dies mid-way only delays its rows until their lease expires.
Delivery is at least once: a crash after a receiver accepted a message but before the
row was marked delivered sends it again after the lease, with the same event id, which is
what receivers drop repeats by.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from directory.extensions import db
from directory.notifications.models import (
    DeliveryState,
    NotificationDelivery,
    NotificationOutbox,
)
from directory.notifications.queue import EXTENSION, isoformat
from directory.notifications.settings import NotifySettings
from directory.notifications.transports import SendResult, Transport, transports_for
from directory.util.clock import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryRecord:
    """What one attempt did (one ``--json`` line)."""

    outbox_id: int
    event_id: str
    channel: str
    target: str
    attempt: int
    ok: bool
    state: str
    response_code: int | None
    error: str | None
    next_attempt_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"type": "delivery", **asdict(self)}


@dataclass
class DeliverySummary:
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0  # failed this time, queued again with backoff
    failed: int = 0  # failed for the last allowed time: state ``failed``
    lost_lease: int = 0  # sent, but another sender had taken the row over meanwhile
    duration_s: float = 0.0
    records: list[DeliveryRecord] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "records"}
        data["duration_s"] = round(self.duration_s, 3)
        return {"type": "summary", **data}


def worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def backoff(
    attempt: int,
    settings: NotifySettings,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> timedelta:
    """Exponential from NOTIFY_RETRY_FIRST, capped at NOTIFY_RETRY_MAX, with "equal" jitter
    (between half and all of the step) so a receiver's outage does not end in a stampede;
    never sooner than the receiver's own Retry-After (within the cap)."""
    step = settings.retry_first * (2 ** min(max(attempt - 1, 0), 30))
    step = min(step, settings.retry_max)
    delay = step / 2 + step / 2 * (rng or random).random()
    if retry_after is not None:
        delay = max(delay, min(timedelta(seconds=retry_after), settings.retry_max))
    return delay


def _due(now: datetime, after_id: int):
    o = NotificationOutbox
    return and_(
        o.state == DeliveryState.PENDING.value,
        o.next_attempt_at <= now,
        or_(o.lease_expires_at.is_(None), o.lease_expires_at <= now),
        o.id > after_id,
    )


def claim(
    session: Session, token: str, *, after_id: int, size: int, lease: timedelta
) -> list[NotificationOutbox]:
    """Lease up to ``size`` due rows (ids above ``after_id``) to ``token``, atomically."""
    o = NotificationOutbox
    now = utcnow()
    due = _due(now, after_id)
    # A plain read first: when nothing is due (the usual case) no write lock is taken.
    if session.execute(select(o.id).where(due).limit(1)).first() is None:
        session.rollback()
        return []
    pick = select(o.id).where(due).order_by(o.id).limit(size)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    # The ids first, then the update: as a subquery of the UPDATE, PostgreSQL may run the
    # pick again for each row and, the rows it leased no longer due, lease ``size`` more.
    picked = list(session.scalars(pick))
    session.execute(
        update(o)
        .where(o.id.in_(picked), due)
        .values(lease_owner=token, lease_expires_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return list(session.scalars(select(o).where(o.lease_owner == token).order_by(o.id)))


def deliver_pending(
    limit: int | None = None,
    *,
    worker: str | None = None,
    on_delivery: Callable[[DeliveryRecord], None] | None = None,
) -> DeliverySummary:
    """Send the due notifications (at most ``limit`` attempts); needs an app context.

    Uses its own session and commits after each row, so it never touches the caller's
    session. Each due row is tried at most once per call; a failure waits its backoff.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be 0 or more")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings: NotifySettings = app.extensions[EXTENSION]
    summary = DeliverySummary()
    started = time.monotonic()
    owner = (worker or worker_id())[:100]
    transports: dict[str, Transport] | None = None
    after_id = 0
    claims = 0
    try:
        with Session(db.engine, expire_on_commit=False) as session:
            while limit is None or summary.attempted < limit:
                size = settings.batch_size
                if limit is not None:
                    size = min(size, limit - summary.attempted)
                claims += 1
                token = f"{owner}/{claims}"
                rows = claim(session, token, after_id=after_id, size=size, lease=settings.lease)
                if not rows:
                    break
                if transports is None:
                    transports = transports_for(settings, _user_agent(app))
                for row in rows:
                    after_id = max(after_id, row.id)
                    record = _deliver_one(session, row, token, transports, settings)
                    _count(summary, record)
                    if on_delivery is not None:
                        on_delivery(record)
    finally:
        for transport in (transports or {}).values():
            transport.close()
        summary.duration_s = time.monotonic() - started
    return summary


def _user_agent(app) -> str:
    return f"hpcsa-directory-notifications/1 (+{app.config.get('CONTACT_URL', '')})"


def _count(summary: DeliverySummary, record: DeliveryRecord) -> None:
    summary.attempted += 1
    summary.records.append(record)
    if record.error == "lease lost":
        summary.lost_lease += 1
    elif record.ok:
        summary.delivered += 1
    elif record.state == DeliveryState.FAILED:
        summary.failed += 1
    else:
        summary.retrying += 1


def _deliver_one(
    session: Session,
    row: NotificationOutbox,
    token: str,
    transports: dict[str, Transport],
    settings: NotifySettings,
) -> DeliveryRecord:
    attempt = (row.attempts or 0) + 1
    started_at = utcnow()
    t0 = time.monotonic()
    transport = transports.get(row.channel)
    try:
        if transport is None:
            result = SendResult(False, error=f"unknown channel {row.channel!r}")
        else:
            result = transport.send(row, attempt)
    except Exception as exc:  # a bug must not stop the other rows; it is recorded
        log.exception("notification %s could not be sent", row.id)
        result = SendResult(False, error=f"{type(exc).__name__}: {exc}"[:500])
    duration_ms = int((time.monotonic() - t0) * 1000)
    finished = utcnow()

    values: dict[str, Any] = {
        "attempts": attempt,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_error": result.error,
    }
    next_at: datetime | None = None
    if result.ok:
        state = DeliveryState.DELIVERED
        values.update(state=state.value, delivered_at=finished)
    elif attempt >= settings.max_attempts:
        state = DeliveryState.FAILED
        values.update(state=state.value)
        log.error(
            "giving up on %s notification %s to %s after %d attempts: %s",
            row.channel,
            row.event_id,
            row.target,
            attempt,
            result.error,
        )
    else:
        state = DeliveryState.PENDING
        next_at = finished + backoff(attempt, settings, result.retry_after)
        values.update(next_attempt_at=next_at)
        log.warning(
            "%s notification %s to %s failed (attempt %d), retrying at %s: %s",
            row.channel,
            row.event_id,
            row.target,
            attempt,
            isoformat(next_at),
            result.error,
        )
    o = NotificationOutbox
    updated = session.execute(
        update(o)
        .where(o.id == row.id, o.lease_owner == token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.add(
        NotificationDelivery(
            outbox_id=row.id,
            attempt=attempt,
            worker=token[:120],
            started_at=started_at,
            duration_ms=duration_ms,
            ok=result.ok,
            response_code=result.response_code,
            error=result.error,
        )
    )
    session.commit()
    lost = updated.rowcount == 0
    if lost:
        log.warning("lease on notification %s expired while it was being sent", row.id)
    return DeliveryRecord(
        outbox_id=row.id,
        event_id=row.event_id,
        channel=row.channel,
        target=row.target,
        attempt=attempt,
        ok=result.ok,
        state=state.value,
        response_code=result.response_code,
        error="lease lost" if lost else result.error,
        next_attempt_at=isoformat(next_at) if next_at else None,
    )


def retry_failed(session: Session, event_id: str | None = None) -> int:
    """Queue given-up rows again (all, or one event's), with a fresh attempt budget."""
    o = NotificationOutbox
    query = update(o).where(o.state == DeliveryState.FAILED.value)
    if event_id is not None:
        query = query.where(o.event_id == event_id)
    result = session.execute(
        query.values(
            state=DeliveryState.PENDING.value, attempts=0, next_attempt_at=utcnow()
        ).execution_options(synchronize_session=False)
    )
    return result.rowcount


def prune_delivered(session: Session, older_than: datetime) -> tuple[int, int]:
    """Delete notifications delivered before ``older_than``, and their delivery log.

    Pending and given-up rows are kept whatever their age: the first are still owed to a
    receiver, the second wait for an operator (``flask notifications retry``). The change
    feed and the status events are history and are never pruned. Returns (notifications,
    delivery log rows) deleted.
    """
    o, d = NotificationOutbox, NotificationDelivery
    old = select(o.id).where(o.state == DeliveryState.DELIVERED.value, o.delivered_at < older_than)
    attempts = session.execute(
        delete(d).where(d.outbox_id.in_(old)).execution_options(synchronize_session=False)
    ).rowcount
    notifications = session.execute(
        delete(o).where(o.id.in_(old)).execution_options(synchronize_session=False)
    ).rowcount
    return notifications, attempts


def outbox_counts(session: Session) -> dict[str, dict[str, int]]:
    """Rows per channel and state, for ``flask notifications status``."""
    o = NotificationOutbox
    counts: dict[str, dict[str, int]] = {}
    rows = session.execute(select(o.channel, o.state, func.count()).group_by(o.channel, o.state))
    for channel, state, count in rows:
        counts.setdefault(channel, {})[state] = count
    return counts
