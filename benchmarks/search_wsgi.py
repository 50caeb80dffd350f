"""The production app plus one benchmark-only route, ``/bench/search``: the search backend
over HTTP without the JSON API's own work (re-reading each hit's practitioner from the
database, marshmallow, ETag). Served by ``search_load.py --backend-route`` next to
``/api/v1/search`` and ``/healthz`` in the same gunicorn run, so the figures separate what
the search costs from what the API around it costs. Never used outside benchmarks.
"""

from __future__ import annotations

from flask import jsonify, request

from directory.search import QueryError, SearchQuery, get_search_backend
from wsgi import app


@app.get("/bench/search")
def bench_search():
    args = request.args
    try:
        results = get_search_backend().search(
            SearchQuery(
                text=args.get("q", ""),
                place=args.get("where", ""),
                service=args.get("service") or None,
                city=args.get("city") or None,
                province=args.get("province") or None,
                status=args.get("status") or None,
                include_unverified=args.get("include_unverified") == "true",
                sort=args.get("sort", "relevance"),
                page=int(args.get("page", 1)),
                per_page=int(args.get("per_page", 20)),
            )
        )
    except QueryError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(
        total=results.total,
        page=results.page,
        did_you_mean=results.did_you_mean,
        results=[
            {
                "registration_number": h.registration_number,
                "name": h.name,
                "status": h.status,
                "verified": h.verified,
                "verified_at": h.verified_at.isoformat() if h.verified_at else None,
                "services": list(h.services),
                "clinics": [c.slug for c in h.clinics],
                "snippet": str(h.snippet),
            }
            for h in results.hits
        ],
        facets={
            name: [{"value": f.value, "label": f.label, "count": f.count} for f in values]
            for name, values in results.facets.items()
        },
    )
