"""``GET /api/v1/services`` and ``GET /api/v1/services/<slug>``: the treatments vocabulary."""

from __future__ import annotations

from flask import url_for

from directory.api.base import ApiBlueprint
from directory.api.problems import ApiProblem
from directory.api.schemas import ServiceDetailSchema, ServiceListSchema
from directory.api.search import NOT_READY, result_items, run_search
from directory.extensions import db
from directory.listings.models import Service
from directory.search.backend import SearchQuery

FIRST_PRACTITIONERS = 20

services_api = ApiBlueprint(
    "services",
    __name__,
    url_prefix="/api/v1",
    description="The treatments patients search for, with the words they use for them.",
)

SLUG_PARAMETER = {
    "in": "path",
    "name": "slug",
    "description": "The service's slug, e.g. `mesotherapy`",
    "schema": {"type": "string", "minLength": 1, "maxLength": 80},
}


def service_fields(service: Service) -> dict:
    return {
        "slug": service.slug,
        "name": service.name,
        "description": service.description or "",
        "synonyms": list(service.synonyms or []),
    }


@services_api.route("/services")
@services_api.response(200, ServiceListSchema)
def services():
    """Every service, by name"""
    rows = db.session.scalars(db.select(Service).order_by(Service.name)).all()
    return {"services": [service_fields(s) for s in rows]}


@services_api.route("/services/<slug>", parameters=[SLUG_PARAMETER])
@services_api.response(200, ServiceDetailSchema)
@services_api.alt_response(503, response="SERVICE_UNAVAILABLE", description=NOT_READY)
def service(slug: str):
    """A service, and the first currently verified practitioners offering it"""
    found = db.session.scalar(db.select(Service).where(Service.slug == slug.strip().lower()))
    if found is None:
        raise ApiProblem(404, "No service with this slug; GET /api/v1/services lists them all.")
    shown = run_search(SearchQuery(service=found.slug, per_page=FIRST_PRACTITIONERS))
    return {
        **service_fields(found),
        "total_practitioners": shown.results.total,
        "practitioners": result_items(shown),
        "search_url": url_for("search.search", service=found.slug, _external=True),
    }
