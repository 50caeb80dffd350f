"""Turning models and search hits into the API's plain dictionaries.

Every ``verified`` flag here comes from ``verification.verdict``, the function the pages use
for their badge; the search index's own copy of the flag is never trusted for the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from flask import Response, current_app, url_for

from directory.listings.models import Clinic, Listing, Service
from directory.listings.scope import scope_of
from directory.registry.models import Practitioner
from directory.registry.professions import profession_of
from directory.registry.verification import Standing, Verdict


def practitioner_url(registration_number: str) -> str:
    """The absolute address of the practitioner's page."""
    return url_for("web.practitioner", number=registration_number, _external=True)


def practitioner_urls() -> Callable[[str], str]:
    """``practitioner_url`` for a page of canonical numbers, with the route built once.

    Canonical numbers are letters and digits only (``numbers.canonical``), so they go into
    the path as they are.
    """
    marker = "PLACEHOLDER0000000"
    head, _, tail = practitioner_url(marker).partition(marker)
    return lambda number: f"{head}{number}{tail}"


def json_response(body: dict[str, Any]) -> Response:
    """A JSON response for a body built in its schema's shape, without marshmallow.

    For the API's busiest route (a search page is some 400 values): marshmallow's dump
    was a third of the request, and the standard library's encoder half of what remained.
    orjson writes date-times as RFC 3339, as marshmallow's ``DateTime`` does, and
    dataclasses (``FacetValue``, ``ClinicRef``) field by field in C, in field order;
    dictionary keys are sorted, as Flask's own encoder sorts them. flask-smorest passes a
    ``Response`` through unchanged and still documents the schema; ``tests/test_api.py``
    checks that the body is exactly what the schema would have written.
    """
    return current_app.response_class(
        orjson.dumps(body, option=orjson.OPT_SORT_KEYS), mimetype="application/json"
    )


def verification_fields(practitioner: Practitioner | Standing, verdict: Verdict) -> dict[str, Any]:
    return {
        "registration_number": practitioner.registration_number,
        "name": practitioner.display_name or practitioner.registration_number,
        "profession": profession_of(practitioner.registration_number, practitioner.category),
        "status": str(verdict.status),
        "verified": verdict.verified,
        "verified_at": verdict.verified_at,
    }


def verdict_fields(verdict: Verdict) -> dict[str, Any]:
    return {
        "tone": verdict.tone,
        "badge": verdict.badge,
        "headline": verdict.headline,
        "explanation": verdict.explanation,
        "days_since_confirmed": verdict.days_since_confirmed,
    }


def service_refs(services: Iterable[Service]) -> list[dict[str, str]]:
    return [{"slug": s.slug, "name": s.name} for s in services]


def scoped_service_refs(services: Iterable[Service], practitioner: Practitioner) -> list[dict]:
    """The treatments a practitioner is listed for, each with its scope of practice for them
    (``listings.scope``)."""
    return [
        {
            "slug": s.slug,
            "name": s.name,
            "scope": scope_of(
                s.slug, practitioner.registration_number, practitioner.category
            ).as_dict(),
        }
        for s in services
    ]


def clinic_ref(clinic: Clinic) -> dict[str, str]:
    return {
        "slug": clinic.slug,
        "name": clinic.name,
        "city": clinic.city,
        "province": clinic.province,
    }


def listing_fields(listing: Listing) -> dict[str, Any]:
    return {
        **clinic_ref(listing.clinic),
        "services": scoped_service_refs(listing.services, listing.practitioner),
        "description": listing.description or "",
    }


def union_of_services(practitioner: Practitioner, listings: Iterable[Listing]) -> list[dict]:
    by_slug = {s.slug: s for listing in listings for s in listing.services}
    return scoped_service_refs(sorted(by_slug.values(), key=lambda s: s.name), practitioner)
