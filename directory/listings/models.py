"""Clinics, services and listings. Everything here is the clinic's own words, not the register's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Float, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from directory.extensions import db
from directory.registry.models import Practitioner
from directory.util.clock import UTCDateTime, utcnow

listing_services = Table(
    "listing_services",
    db.metadata,
    Column("listing_id", ForeignKey("listings.id", ondelete="CASCADE"), primary_key=True),
    Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
)


class Service(db.Model):
    """A treatment patients search for, with the words they use for it."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    synonyms: Mapped[list[str]] = mapped_column(JSON, default=list)


class Clinic(db.Model):
    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(200))
    website: Mapped[str | None] = mapped_column(String(300))
    street_address: Mapped[str | None] = mapped_column(String(300))
    city: Mapped[str] = mapped_column(String(120), index=True)
    province: Mapped[str] = mapped_column(String(60), index=True)
    postal_code: Mapped[str | None] = mapped_column(String(10))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    opening_hours: Mapped[str | None] = mapped_column(Text)  # as the clinic writes them
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Bumped by every update: an edit names the version it was based on (stale -> refused).
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # Set and cleared only through ``directory.listings.standing``: while ``suspended_at`` is
    # set the clinic has no listings and is not shown; once ``claimed_at`` is set the clinic
    # keeps its own record and a bulk import no longer changes it.
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    listings: Mapped[list[Listing]] = relationship(
        back_populates="clinic", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version}


class Listing(db.Model):
    """A practitioner from the register working at a clinic and offering services there."""

    __tablename__ = "listings"

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1, server_default="1")  # as Clinic.version

    practitioner: Mapped[Practitioner] = relationship()
    clinic: Mapped[Clinic] = relationship(back_populates="listings")
    services: Mapped[list[Service]] = relationship(
        secondary=listing_services, order_by=Service.name
    )

    __table_args__ = (UniqueConstraint("practitioner_id", "clinic_id"),)
    __mapper_args__ = {"version_id_col": version}
