"""``GET /api/v1/search``: the directory's search, through the search-backend interface."""

from __future__ import annotations

from typing import Any

from directory.api.base import ApiBlueprint
from directory.api.present import json_response, practitioner_urls, verification_fields
from directory.api.problems import ApiProblem
from directory.api.schemas import SearchArgsSchema, SearchResponseSchema
from directory.search.backend import QueryError, SearchQuery, SearchResults
from directory.search.results import hits_with_standings

search_api = ApiBlueprint(
    "search",
    __name__,
    url_prefix="/api/v1",
    description="Find practitioners by treatment, place and name.",
)


def _blank_to_none(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def search_query_from(args: dict[str, Any]) -> SearchQuery:
    return SearchQuery(
        text=args["q"].strip(),
        place=args["where"].strip(),
        service=_blank_to_none(args.get("service")),
        city=_blank_to_none(args.get("city")),
        province=_blank_to_none(args.get("province")),
        clinic=_blank_to_none(args.get("clinic")),
        status=args.get("status"),
        include_unverified=args["include_unverified"],
        sort=args["sort"],
        page=args["page"],
        per_page=args["per_page"],
    )


def run_search(query: SearchQuery) -> SearchResults:
    from directory.search import get_search_backend  # the engine is chosen at run time

    try:
        return get_search_backend().search(query)
    except QueryError as exc:
        raise ApiProblem(400, str(exc), code="invalid_query") from exc


def result_items(results: SearchResults, *, include_unverified: bool) -> list[dict[str, Any]]:
    """The page of hits, with name, status and ``verified`` from the database now
    (``hits_with_standings``), never the index's copy. A hit no longer verified is dropped
    when only verified ones were asked for, never shown as verified."""
    url_of = practitioner_urls()
    items = []
    for hit, standing in hits_with_standings(results.hits):
        judged = standing.verdict
        if not judged.verified and not include_unverified:
            continue
        items.append(
            {
                **verification_fields(standing, judged),
                "services": [
                    {"slug": slug, "name": name}
                    for slug, name in zip(hit.services, hit.service_names, strict=False)
                ],
                # ClinicRef has exactly the schema's fields; orjson and marshmallow read
                # dataclasses as they are.
                "clinics": hit.clinics,
                "snippet": str(hit.snippet),  # Markup: a str subclass orjson refuses
                "url": url_of(standing.registration_number),
            }
        )
    return items


@search_api.route("/search")
@search_api.arguments(SearchArgsSchema(), location="query")
@search_api.response(200, SearchResponseSchema)
def search(args: dict[str, Any]):
    """Search the directory

    Free text (`q`) and a place (`where`) as a person types them, plus exact filters. By
    default only practitioners the register currently confirms are listed; with
    `include_unverified=true` everyone is, each with `status` and `verified`.
    """
    query = search_query_from(args)
    results = run_search(query)
    return json_response(
        {
            "results": result_items(results, include_unverified=query.include_unverified),
            "total": results.total,
            "page": results.page,
            "per_page": results.per_page,
            "pages": results.pages,
            "facets": results.facets,  # FacetValue: value, label, count, as documented
            "did_you_mean": results.did_you_mean,
            "understood": dict(results.understood),
        }
    )
