"""One report of concern, as a patient sent it. Nothing identifies who sent it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from directory.extensions import db
from directory.listings.models import Clinic
from directory.registry.models import Practitioner
from directory.util.clock import UTCDateTime, utcnow


class ConcernReport(db.Model):
    """A patient's report about one practitioner or one clinic (exactly one of the two)."""

    __tablename__ = "concern_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int | None] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    clinic_id: Mapped[int | None] = mapped_column(
        ForeignKey("clinics.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(String(32))  # a key of services.REASONS
    message: Mapped[str] = mapped_column(Text, default="")  # plain text, escaped on output
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    handled_by: Mapped[str | None] = mapped_column(String(254))

    practitioner: Mapped[Practitioner | None] = relationship()
    clinic: Mapped[Clinic | None] = relationship()

    __table_args__ = (Index("ix_concern_reports_open", "handled_at", "id"),)
