"""``GET /api/v1/practitioners/<registration_number>``: one registration, as the register
says and as the clinics list it."""

from __future__ import annotations

from directory.api.base import ApiBlueprint
from directory.api.present import (
    listing_fields,
    practitioner_url,
    union_of_services,
    verdict_fields,
    verification_fields,
)
from directory.api.problems import ApiProblem
from directory.api.schemas import PractitionerSchema
from directory.listings.queries import listings_of_practitioner
from directory.registry import numbers
from directory.registry.presenters import registration_facts
from directory.registry.profile import read_profile

HISTORY_LENGTH = 20

practitioners_api = ApiBlueprint(
    "practitioners",
    __name__,
    url_prefix="/api/v1",
    description="One registration: the register's facts, the verdict, the checks behind it.",
)

# Longer than any way of writing a number (spaces and all).
MAX_NUMBER_LENGTH = 40
NUMBER_PARAMETER = {
    "in": "path",
    "name": "registration_number",
    "description": "The registration number in any usual spelling: `MP0012345`, `mp 12345`, "
    "`MP   0012345`",
    "example": "MP0000101",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_NUMBER_LENGTH},
}


def canonical_number(text: str) -> str:
    if len(text) > MAX_NUMBER_LENGTH:  # refused before reading, and not quoted back
        raise ApiProblem(
            400,
            "That is too long to be a registration number: a number is 2 to 4 letters and up "
            "to 7 digits, e.g. MP0012345.",
            code="invalid_registration_number",
        )
    try:
        return numbers.normalise(text)
    except numbers.RegistrationNumberError as exc:
        raise ApiProblem(
            400,
            str(exc),
            code="invalid_registration_number",
            suggestion=exc.suggestion,
        ) from exc


@practitioners_api.route("/practitioners/<registration_number>", parameters=[NUMBER_PARAMETER])
@practitioners_api.response(200, PractitionerSchema)
@practitioners_api.alt_response(
    400, response="BAD_REQUEST", description="Not a registration number; `detail` says why"
)
def practitioner(registration_number: str):
    """One practitioner's registration

    `verified` is the same decision as the badge on the practitioner's page: true only while
    the register's latest answer said active and is recent enough.
    """
    canonical = canonical_number(registration_number)
    profile = read_profile(canonical, history=HISTORY_LENGTH)
    if profile is None:
        raise ApiProblem(
            404,
            f"No practitioner with registration number {canonical} is in this directory. "
            "It may still be on the HPCSA register: check it at the source.",
        )
    found, judged = profile.practitioner, profile.verdict
    listings = sorted(listings_of_practitioner(found.id), key=lambda listing: listing.clinic.name)
    # PractitionerSchema picks its fields from these; the API's own verification fields (as in
    # every API answer) and fuller verdict replace the facts' stored ones.
    return {
        **registration_facts(found, judged),
        **verification_fields(found, judged),
        "headline": judged.headline,
        "verdict": verdict_fields(judged),
        "register_record_url": profile.record_url,
        "history": [
            {
                "checked_at": c.checked_at,
                "source": c.source,
                "outcome": c.outcome,
                "status": c.status,
                "raw_status": c.raw_status,
                "effect": c.effect,
            }
            for c in profile.history
        ],
        "clinics": [listing_fields(listing) for listing in listings],
        "services": union_of_services(found, listings),
        "url": practitioner_url(canonical),
    }
