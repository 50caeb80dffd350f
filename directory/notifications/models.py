"""Tables for the change feed and the notification outbox.

All three are written in the same transaction as the ``StatusEvent`` they belong to (see
``queue.py``), so a rolled-back change leaves no trace here and a committed one is never
without its feed entry and its queued notifications.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from directory.extensions import db
from directory.registry.models import StatusEvent
from directory.util.clock import UTCDateTime, utcnow


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    DELIVERED = "delivered"  # a receiver accepted it
    FAILED = "failed"  # gave up after NOTIFY_MAX_ATTEMPTS; `flask notifications retry`


class ChangeFeedEntry(db.Model):
    """The public change feed's position of one ``StatusEvent``.

    ``txid`` is the writing PostgreSQL transaction's id (0 on SQLite, where writers are
    serialised and ids commit in order). The feed is ordered by ``(txid, id)`` and only
    hands out entries of transactions that have all finished, so a transaction that
    commits late can never be skipped by a reader's cursor (see ``feed.py``).
    """

    __tablename__ = "change_feed"

    id: Mapped[int] = mapped_column(primary_key=True)
    status_event_id: Mapped[int] = mapped_column(
        ForeignKey("status_events.id", ondelete="CASCADE"), unique=True
    )
    txid: Mapped[int] = mapped_column(BigInteger, default=0)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    event: Mapped[StatusEvent] = relationship(lazy="joined")

    __table_args__ = (Index("ix_change_feed_position", "txid", "id"),)


class NotificationOutbox(db.Model):
    """One notification to deliver: one event, one channel, one target (URL or address).

    Rows are claimed by ``deliver_pending`` with a lease (``lease_owner`` until
    ``lease_expires_at``), so several senders never send the same row at the same time,
    and a sender that dies mid-way only delays its rows until the lease expires.
    """

    __tablename__ = "notification_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    status_event_id: Mapped[int] = mapped_column(
        ForeignKey("status_events.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(String(36))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    event: Mapped[StatusEvent] = relationship()
    deliveries: Mapped[list[NotificationDelivery]] = relationship(
        back_populates="outbox", order_by="NotificationDelivery.id", passive_deletes=True
    )

    __table_args__ = (
        UniqueConstraint("event_id", "channel", "target", name="uq_notification_outbox_target"),
        Index("ix_notification_outbox_due", "state", "next_attempt_at"),
    )

    def __repr__(self) -> str:
        return f"<NotificationOutbox {self.id} {self.channel} {self.state} {self.event_id}>"


class NotificationDelivery(db.Model):
    """One delivery attempt of an outbox row: the delivery log (append-only)."""

    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(
        ForeignKey("notification_outbox.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    # The receiver's HTTP status or SMTP reply code, when there was one.
    response_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)

    outbox: Mapped[NotificationOutbox] = relationship(back_populates="deliveries")
