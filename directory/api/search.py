"""``GET /api/v1/search``: the directory's search, through the search-backend interface."""

from __future__ import annotations

from typing import Any

from directory.api.base import ApiBlueprint
from directory.api.present import json_response, practitioner_urls, verification_fields
from directory.api.problems import ApiProblem
from directory.api.schemas import SearchArgsSchema, SearchResponseSchema
from directory.search.backend import NoOrigin, QueryError, SearchQuery
from directory.search.interfaces import NoIndex
from directory.search.results import Entry, ShownResults, shown_results

# The 503 every endpoint that searches may answer (documented on each).
NOT_READY = (
    "This server's search index is being built (a new or long-absent host): try again "
    "after `Retry-After` seconds"
)

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
        near=args.get("near"),
        radius_km=args.get("radius"),
        sort=args["sort"],
        page=args["page"],
        per_page=args["per_page"],
    )


def run_search(query: SearchQuery) -> ShownResults:
    """The engine's answer to ``query`` as the API shows it (``results.shown_results``, the
    same decision as the pages': who is kept, the total, who is named)."""
    from directory.search import get_search_backend  # the engine is chosen at run time

    backend = get_search_backend()
    try:
        return shown_results(backend, query, backend.search(query))
    except NoOrigin as exc:
        raise ApiProblem(400, str(exc), code="needs_place") from exc
    except QueryError as exc:
        raise ApiProblem(400, str(exc), code="invalid_query") from exc
    except NoIndex as exc:
        raise ApiProblem(
            503,
            "This server's search index is being built; try again after Retry-After seconds.",
            code="index_not_ready",
            headers={"Retry-After": str(NoIndex.RETRY_AFTER)},
        ) from exc


def result_item(entry: Entry, url_of) -> dict[str, Any]:
    """One practitioner of an answer: name, status and ``verified`` from the database now,
    never the index's copy; services, clinics and snippet from the engine's hit."""
    hit = entry.hit
    return {
        **verification_fields(entry.standing, entry.verdict),
        "services": [
            {"slug": slug, "name": name}
            for slug, name in zip(hit.services, hit.service_names, strict=False)
        ]
        if hit
        else [],
        # ClinicRef has exactly the schema's fields; orjson and marshmallow read dataclasses
        # as they are.
        "clinics": hit.clinics if hit else (),
        "distance_km": hit.distance_km if hit else None,
        "snippet": str(hit.snippet) if hit else "",  # Markup: a str subclass orjson refuses
        "url": url_of(entry.registration_number),
    }


def result_items(shown: ShownResults) -> list[dict[str, Any]]:
    """The page's results, as ``shown_results`` kept them."""
    url_of = practitioner_urls()
    return [result_item(entry, url_of) for entry in shown.entries]


def named_items(shown: ShownResults) -> list[dict[str, Any]]:
    """The practitioners the search names, each with the badge's words and why it is shown."""
    url_of = practitioner_urls()
    return [
        {
            **result_item(entry, url_of),
            "headline": entry.verdict.headline,
            "named_by": entry.named_by,
        }
        for entry in shown.named
    ]


@search_api.route("/search")
@search_api.arguments(SearchArgsSchema(), location="query")
@search_api.response(200, SearchResponseSchema)
@search_api.alt_response(503, response="SERVICE_UNAVAILABLE", description=NOT_READY)
def search(args: dict[str, Any]):
    """Search the directory

    Free text (`q`) and a place (`where`) as a person types them, plus exact filters. By
    default only practitioners the register currently confirms are listed in `results`;
    with `include_unverified=true` everyone is, each with `status` and `verified`. When the
    words of `q` name practitioners (a registration number, or a practitioner's names),
    `named` lists them apart on the first page, verified or not.

    Places are understood as people type them: renamed cities (`port elizabeth` is
    Gqeberha), short forms (`jozi`, `cpt`, `pe`) and suburbs (`sandton` finds Johannesburg's
    clinics). When the place has coordinates (or `near` is given), `origin` says where
    distances are measured from, each result has `distance_km`, and `sort=distance` and
    `radius` work; without one they are a 400 problem with code `needs_place`.
    """
    query = search_query_from(args)
    shown = run_search(query)
    results = shown.results
    return json_response(
        {
            "results": result_items(shown),
            "named": named_items(shown),
            "total": results.total,
            "page": results.page,
            "per_page": results.per_page,
            "pages": results.pages,
            "facets": results.facets,  # FacetValue: value, label, count, as documented
            "did_you_mean": results.did_you_mean,
            "understood": dict(results.understood),
            "origin": results.origin,  # Origin: label, latitude, longitude
        }
    )
