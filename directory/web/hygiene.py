"""Raw control characters in the query string never reach a page.

The API refuses them (400, ``schemas.no_control_characters``); a page cannot refuse a pasted
tab, so before any page view reads ``request.args`` the C0, DEL and C1 controls are taken
out: tabs, newlines and the other whitespace controls become a space (they separated words),
every other control character is dropped. The cleaned values are what the page reads, shows
and writes into its own links.
"""

from __future__ import annotations

import re

from flask import request
from werkzeug.datastructures import ImmutableMultiDict

from directory.web.views import web

_WHITESPACE_CONTROLS = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85]")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def without_controls(text: str) -> str:
    return _CONTROLS.sub("", _WHITESPACE_CONTROLS.sub(" ", text))


@web.before_request
def _drop_control_characters() -> None:
    args = request.args
    if not any(_CONTROLS.search(key) or _CONTROLS.search(value) for key, value in args.items(True)):
        return
    request.args = ImmutableMultiDict(
        [(without_controls(key), without_controls(value)) for key, value in args.items(True)]
    )
