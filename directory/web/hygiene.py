"""Raw control characters in the query string never reach a page; NUL characters and ids
past the database's integers never reach a query.

The API refuses them (400, ``schemas.no_control_characters``); a page cannot refuse a pasted
tab, so before any page view reads ``request.args`` the C0, DEL and C1 controls are taken
out: tabs, newlines and the other whitespace controls become a space (they separated words),
every other control character is dropped. The cleaned values are what the page reads, shows
and writes into its own links.
"""

from __future__ import annotations

from flask import abort, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.routing import IntegerConverter

from directory.util.controls import CONTROLS, one_line
from directory.web.views import web


@web.before_request
def _drop_control_characters() -> None:
    args = request.args
    if not any(CONTROLS.search(key) or CONTROLS.search(value) for key, value in args.items(True)):
        return
    request.args = ImmutableMultiDict(
        [(one_line(key), one_line(value)) for key, value in args.items(True)]
    )


# --- every request, site and API alike --------------------------------------------------

# The largest id a route can name: the tables' integer keys are 32-bit on PostgreSQL, which
# refuses a larger number in a query (an error, not "no such row").
LARGEST_ID = 2**31 - 1


class BoundedIntegerConverter(IntegerConverter):
    """``<int:...>`` for row ids: a number past ``LARGEST_ID`` matches no route (404)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", LARGEST_ID)
        super().__init__(map, *args, **kwargs)


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _refuse_nul_characters() -> None:
    """A NUL character can be stored by no database (PostgreSQL refuses it in text): in the
    path it names no page (404); in a form or a JSON body it is refused (400), before any
    view reads it."""
    if "\x00" in request.path:
        abort(404)
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    form = request.form if request.mimetype in _FORM_TYPES else None
    if form is not None and any(_has_nul(k) or _has_nul(v) for k, v in form.items(True)):
        abort(400, description="The form holds a NUL character, which no field may contain.")
    if request.is_json and _has_nul(request.get_json(silent=True)):
        abort(400, description="The body holds a NUL character, which no field may contain.")


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def init_app(app) -> None:
    """Before any blueprint is registered: bounded ``<int:...>`` ids, and NUL characters
    refused on every route."""
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_nul_characters)
