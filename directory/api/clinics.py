"""``GET /api/v1/clinics/<slug>``: a clinic, in its own words, and whom it lists."""

from __future__ import annotations

from sqlalchemy.orm import selectinload

from directory.api.base import ApiBlueprint
from directory.api.present import (
    clinic_ref,
    practitioner_url,
    scoped_service_refs,
    verification_fields,
)
from directory.api.problems import ApiProblem
from directory.api.schemas import ClinicSchema
from directory.extensions import db
from directory.listings.models import Clinic, Listing
from directory.registry.verification import verdict
from directory.util.clock import utcnow

clinics_api = ApiBlueprint(
    "clinics",
    __name__,
    url_prefix="/api/v1",
    description="Clinics and the practitioners they list.",
)

SLUG_PARAMETER = {
    "in": "path",
    "name": "slug",
    "description": "The clinic's slug, as in search results",
    "schema": {"type": "string", "minLength": 1, "maxLength": 120},
}


def find_clinic(slug: str) -> Clinic:
    wanted = slug.strip().lower()
    clinic = db.session.scalar(
        db.select(Clinic)
        .where(Clinic.slug == wanted)
        .options(
            selectinload(Clinic.listings).selectinload(Listing.practitioner),
            selectinload(Clinic.listings).selectinload(Listing.services),
        )
    )
    if clinic is None:
        raise ApiProblem(404, "No clinic with this slug is in the directory.")
    return clinic


@clinics_api.route("/clinics/<slug>", parameters=[SLUG_PARAMETER])
@clinics_api.response(200, ClinicSchema)
def clinic(slug: str):
    """A clinic

    Contact details, address and description are the clinic's own words. Every practitioner
    it lists is shown with the register's status and `verified`, verified or not.
    """
    found = find_clinic(slug)
    now = utcnow()
    practitioners = []
    for listing in sorted(found.listings, key=lambda li: li.practitioner.display_name):
        judged = verdict(listing.practitioner, now=now)
        practitioners.append(
            {
                **verification_fields(listing.practitioner, judged),
                "headline": judged.headline,
                "services": scoped_service_refs(listing.services, listing.practitioner),
                "description": listing.description or "",
                "url": practitioner_url(listing.practitioner.registration_number),
            }
        )
    return {
        **clinic_ref(found),
        "description": found.description,
        "phone": found.phone,
        "email": found.email,
        "website": found.website,
        "street_address": found.street_address,
        "postal_code": found.postal_code,
        "latitude": found.latitude,
        "longitude": found.longitude,
        "practitioners": practitioners,
    }
