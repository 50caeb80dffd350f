"""Reads of listings that several surfaces share (the practitioner's page and the API)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from directory.extensions import db
from directory.listings.models import Clinic, Listing


def listings_of_practitioner(practitioner_id: int) -> list[Listing]:
    """The practitioner's listings with their clinic and services, by clinic city and name."""
    return list(
        db.session.scalars(
            select(Listing)
            .join(Clinic)
            .where(Listing.practitioner_id == practitioner_id)
            .options(selectinload(Listing.clinic), selectinload(Listing.services))
            .order_by(Clinic.city, Clinic.name)
        ).all()
    )
