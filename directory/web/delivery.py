"""How responses travel: compressed, cached for as long as is safe, assets under names that
change with their content.

- **Compression** (flask-compress: brotli, else gzip) for the types worth it (HTML, CSS,
  JavaScript, JSON, XML, SVG) above ``COMPRESS_MIN_SIZE`` bytes, never for a response marked
  ``private`` or ``no-store`` (the /account/ pages: a secret such as a CSRF token beside
  reflected input is what BREACH-style attacks need), and after every other hook has set its
  headers (the API's strong ETag gains the encoding's suffix and stays conditional).
- **Pages**: a public page answered 200 to a GET is ``public, max-age=PAGE_CACHE_MAX_AGE``,
  except the pages that show a badge (practitioner, clinic, results, treatment), which are
  ``public, no-cache`` with an ETag: a cache keeps them but asks each time, and an unchanged
  page is a 304; a badge is never older than the request. A page asked with a session
  cookie, or that set one or wrote the session (a form with a CSRF token, someone signed
  in) is ``private, no-cache``; one that set its own Cache-Control keeps it.
- **Assets**: ``asset_url("site.css")`` is ``/assets/site.<12 hex of its SHA-256>.css``,
  served with ``public, max-age=31536000, immutable``; a name with an old digest redirects to
  the current one. ``/assets/site.css`` still works (nginx serves both from disk).
"""

from __future__ import annotations

import hashlib
import mimetypes
from functools import lru_cache
from pathlib import Path

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    redirect,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_compress import Compress
from werkzeug.routing import BaseConverter
from werkzeug.security import safe_join

from directory.web.views import web

STATIC = Path(__file__).parent / "static"
# Pages that show a practitioner's badge: never served from a cache without asking.
BADGE_PAGES = frozenset({"web.practitioner", "web.clinic", "web.search", "web.service"})
IMMUTABLE = "public, max-age=31536000, immutable"
DIGEST_LENGTH = 12
COMPRESSED_TYPES = [
    "text/html",
    "text/css",
    "text/plain",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/problem+json",
    "application/xml",
    "text/xml",
    "application/atom+xml",
    "image/svg+xml",
]
COMPRESS_DEFAULTS = {
    "COMPRESS_MIMETYPES": COMPRESSED_TYPES,
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    "COMPRESS_ALGORITHM_STREAMING": ["br", "gzip"],
    "COMPRESS_MIN_SIZE": 1024,  # a smaller answer fits in one packet anyway
    "COMPRESS_BR_LEVEL": 5,
    "COMPRESS_LEVEL": 6,
    "COMPRESS_REGISTER": False,  # registered below, to run after every other hook
    # Plain-named static files stream from disk: their ETag gains the encoding too, so the
    # conditional request is answered after compressing.
    "COMPRESS_STREAMING_ENDPOINT_CONDITIONAL": ["web.static"],
}

compress = Compress()


# --- Fingerprinted assets ---------------------------------------------------------------------


class FingerprintConverter(BaseConverter):
    regex = rf"[0-9a-f]{{{DIGEST_LENGTH}}}"


@lru_cache(maxsize=64)
def _content(path: str, mtime_ns: int) -> tuple[bytes, str]:
    data = Path(path).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:DIGEST_LENGTH]


def asset(filename: str) -> tuple[bytes, str] | None:
    """The bytes of a static file and their digest (re-read when the file changes)."""
    path = safe_join(str(STATIC), filename)
    if path is None or not Path(path).is_file():
        return None
    return _content(path, Path(path).stat().st_mtime_ns)


def asset_url(filename: str, *, external: bool = False) -> str:
    """The fingerprinted address of a file in ``static/`` (for templates: ``asset_url``)."""
    found = asset(filename)
    if found is None:  # a template naming a missing file is a bug: fail loudly in tests
        raise FileNotFoundError(f"no static file {filename!r}")
    stem, _, ext = filename.rpartition(".")
    return url_for("web.fingerprinted", stem=stem, digest=found[1], ext=ext, _external=external)


web.add_app_template_global(asset_url, "asset_url")

# Before the route below is added: its rule needs the converter.
web.record_once(
    lambda state: state.app.url_map.converters.setdefault("fingerprint", FingerprintConverter)
)


@web.get("/assets/<stem>.<fingerprint:digest>.<ext>")
def fingerprinted(stem: str, digest: str, ext: str):
    filename = f"{stem}.{ext}"
    found = asset(filename)
    if found is None:
        abort(404)
    data, current = found
    if digest != current:  # an old page's link: send it to today's file, never cache that
        response = redirect(asset_url(filename), code=302)
        response.headers["Cache-Control"] = "no-cache"
        return response
    response = Response(data, mimetype=mimetypes.guess_type(filename)[0])
    response.headers["Cache-Control"] = IMMUTABLE
    response.set_etag(digest)
    return response.make_conditional(request)


@web.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico whatever a page says."""
    response = send_from_directory(STATIC, "favicon.ico", max_age=86400)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


# --- Cache lifetimes of pages -----------------------------------------------------------------


def page_cache_headers(response: Response) -> Response:
    """``after_request`` of the public pages' blueprint (see the module's docstring)."""
    if "Cache-Control" in response.headers or request.method not in ("GET", "HEAD"):
        return response
    if response.status_code != 200:
        return response
    # Every page reads the session (Flask-Login's current_user), so "accessed" says nothing;
    # a session cookie sent or set, or a session written (a CSRF token), does.
    signed = request.cookies.get(current_app.config["SESSION_COOKIE_NAME"])
    if signed or session.modified or response.headers.getlist("Set-Cookie"):
        response.headers["Cache-Control"] = "private, no-cache"
        return response
    if request.endpoint in BADGE_PAGES:
        # A badge is what the register says now (docs/pages.md, rule 2): a cache may keep the
        # page but must ask again each time; an unchanged page costs a 304, not the page.
        response.headers["Cache-Control"] = "public, no-cache"
        response.add_etag()
        return response.make_conditional(request)
    max_age = int(current_app.config["PAGE_CACHE_MAX_AGE"])
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response


web.after_request(page_cache_headers)


# --- Compression ------------------------------------------------------------------------------


def compress_response(response: Response) -> Response:
    cache_control = response.headers.get("Cache-Control", "")
    if "private" in cache_control or "no-store" in cache_control:
        return response
    if "Content-Range" in response.headers:  # a part of a file is sent as it is
        return response
    return compress.after_request(response)


def init_app(app: Flask) -> None:
    for key, value in COMPRESS_DEFAULTS.items():
        app.config.setdefault(key, value)
    compress.init_app(app)
    # after_request hooks run last-registered first: at the front, this one runs after the
    # others (security headers, the API's ETag) have shaped the response it compresses.
    app.after_request_funcs.setdefault(None, []).insert(0, compress_response)
