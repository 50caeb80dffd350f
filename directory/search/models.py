"""The search outbox: one row per practitioner whose index document may have changed.

Rows are written by session events in the same transaction as the change (so a change and
its outbox row commit or roll back together) and are never updated. Each index directory
keeps its own cursor over this table (see ``outbox.py``), so several hosts, each with its
own index, can follow the same database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from directory.extensions import db
from directory.util.clock import UTCDateTime, utcnow


class SearchOutbox(db.Model):
    __tablename__ = "search_outbox"

    # BigInteger on PostgreSQL (an append-only table outlives 2**31 ids), INTEGER on SQLite
    # so that it is the rowid alias and ids are assigned in commit order there.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    practitioner_id: Mapped[int] = mapped_column(Integer)
    # What triggered it ("practitioner", "listing", "clinic", "service"): for operators only.
    reason: Mapped[str] = mapped_column(String(16), default="practitioner")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
