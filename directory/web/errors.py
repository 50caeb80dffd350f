"""HTML error pages: a 400, 404 or 500 is a page with the site's header, a plain sentence
and a way on (search, the home page), never a stack trace.

Handlers are registered twice: on the blueprint (they win for the pages' own views, even if
another blueprint later registers app-wide handlers) and app-wide for URLs no view matched.
Paths under ``/api/`` are left alone: the API answers in ``application/problem+json``.
"""

from __future__ import annotations

import logging

from flask import make_response, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from directory.extensions import db
from directory.search.interfaces import NoIndex
from directory.web.views import web

log = logging.getLogger(__name__)

TITLES: dict[int, str] = {
    400: "That request could not be understood",
    404: "Page not found",
    405: "That is not allowed here",
    429: "Too many requests",
    500: "Something went wrong on our side",
    503: "Search is being prepared",
}
EXPLANATIONS: dict[int, str] = {
    400: "Something in the address or the form could not be read. Try the search again.",
    404: "There is no page at this address. It may have moved, or the address may be mistyped.",
    405: "This address only answers ordinary page requests.",
    429: "Too many pages were asked for from your address in a short time. Please wait a "
    "minute and try again.",
    500: (
        "The directory could not show this page. Nothing you typed caused it and nothing was "
        "changed. Please try again in a moment."
    ),
    503: (
        "This server is still preparing the directory's search and cannot answer it yet. "
        "Nothing is wrong with what you asked: please try again in a minute."
    ),
}


def _rollback() -> None:
    """A crash may leave the session mid-transaction; the error page must not trip on it."""
    try:
        db.session.rollback()
    except Exception:  # pragma: no cover - the database itself may be what failed
        log.exception("rolling back after an error failed")


def error_page(code: int, description: str | None):
    """The site's error page for ``code`` (also the rate limits' 429): (body, code)."""
    title = TITLES.get(code, "Something went wrong")
    explanation = description or EXPLANATIONS.get(code, "")
    try:
        return render_template("error.html", code=code, title=title, explanation=explanation), code
    except Exception:  # pragma: no cover - the last resort must not fail in turn
        log.exception("the error page itself failed")
        return f"{title}. {explanation}", code, {"Content-Type": "text/plain; charset=utf-8"}


def _description(error: HTTPException) -> str | None:
    """A description a view set on purpose, not Werkzeug's generic English."""
    default = type(error).description
    return error.description if error.description and error.description != default else None


@web.errorhandler(HTTPException)
def page_error(error: HTTPException):
    if error.code is None or error.code < 400:
        return error
    return error_page(error.code, _description(error))


@web.errorhandler(InternalServerError)
def page_crash(error: InternalServerError):
    _rollback()
    return error_page(500, None)


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


@web.app_errorhandler(400)
@web.app_errorhandler(404)
@web.app_errorhandler(405)
def site_error(error: HTTPException):
    if _is_api(request.path):
        return error
    return error_page(error.code or 500, _description(error))


@web.app_errorhandler(500)
def site_crash(error: InternalServerError):
    if _is_api(request.path):
        return error
    _rollback()
    return error_page(500, None)


@web.app_errorhandler(NoIndex)
def index_not_ready(error: NoIndex):
    """A search on a host whose index is still being built (or rebuilt): 503 and when to
    come back, never results from a missing or stale index (under ``/api/`` the problem
    net turns it into a problem document, keeping ``Retry-After``)."""
    response = make_response(error_page(503, None))
    response.headers["Retry-After"] = str(NoIndex.RETRY_AFTER)
    response.headers["Cache-Control"] = "no-store"
    return response
