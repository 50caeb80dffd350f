"""HTTP caching for the public API: a strong ETag from the body, a short ``Cache-Control``,
and ``304 Not Modified`` for a matching ``If-None-Match``.

Applied to every successful ``GET``/``HEAD`` under ``/api/`` by one ``after_request`` hook,
so a blueprint a domain adds later gets the same behaviour without doing anything.
"""

from __future__ import annotations

import hashlib

from flask import Flask, Response, current_app, request

from directory.api.problems import is_api_request

CACHEABLE_METHODS = ("GET", "HEAD")
CONDITIONAL_HEADERS = frozenset(
    {"If-None-Match", "If-Match", "If-Modified-Since", "If-Unmodified-Since", "Range"}
)


def add_caching_headers(response: Response) -> Response:
    if (
        request.method not in CACHEABLE_METHODS
        or response.status_code != 200
        or not is_api_request()
        or response.direct_passthrough  # files stream themselves, with their own validators
        or response.is_streamed
    ):
        return response
    if "ETag" not in response.headers:
        # Strong: the same bytes always give the same tag, whichever worker answers.
        response.set_etag(hashlib.sha256(response.get_data()).hexdigest()[:32])
    if "Cache-Control" not in response.headers:
        max_age = int(current_app.config["API_CACHE_MAX_AGE"])
        response.headers["Cache-Control"] = f"public, max-age={max_age}"
    # Answers 304 (headers kept, body dropped) when If-None-Match names this tag. Most
    # requests ask nothing conditional; they skip werkzeug's full check (a tenth of a
    # cached search's time). gunicorn adds the Date header it would have set.
    if CONDITIONAL_HEADERS.isdisjoint(request.headers.keys()):
        return response
    return response.make_conditional(request)


def register_caching(app: Flask) -> None:
    app.after_request(add_caching_headers)
