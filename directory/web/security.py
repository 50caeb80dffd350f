"""Site-wide protections every response gets, pages and API alike.

- Security headers: a Content-Security-Policy without ``unsafe-inline`` (the site's pages
  use no inline script or style; the API's Swagger UI page gets the hash of its own inline
  start-up script, and nothing else), X-Content-Type-Options, frame-ancestors and
  X-Frame-Options, Referrer-Policy, Permissions-Policy, and HSTS over HTTPS.
- Absolute URLs never come from a client's Host header: with PUBLIC_BASE_URL set, every
  request is seen with that scheme and host (so ``url_for(..., _external=True)`` and every
  link in an email use it); otherwise Flask's TRUSTED_HOSTS refuses (400) any other Host.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request

CSP = (
    "default-src 'self'; script-src 'self'{script_hashes}; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(self), payment=(), usb=(), "
    "interest-cohort=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def _script_hashes(response: Response) -> str:
    """The hashes of the inline scripts of the generated API docs page (our own template,
    never user content): the one page that needs them."""
    body = response.get_data()
    return "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(body)
    )


def add_security_headers(response: Response) -> Response:
    hashes = ""
    config = current_app.config
    docs = "/{}/{}".format(
        str(config.get("OPENAPI_URL_PREFIX") or "").strip("/"),
        str(config.get("OPENAPI_SWAGGER_UI_PATH") or "docs").strip("/"),
    )
    if request.path == docs and response.mimetype == "text/html":
        hashes = _script_hashes(response)
    response.headers.setdefault("Content-Security-Policy", CSP.format(script_hashes=hashes))
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


class PublicHostMiddleware:
    """Every request is seen with PUBLIC_BASE_URL's scheme and host, whatever Host it sent."""

    def __init__(self, wsgi_app, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.wsgi_app = wsgi_app
        self.scheme = parts.scheme
        self.host = parts.netloc
        self.prefix = parts.path.rstrip("/")

    def __call__(self, environ, start_response):
        environ["wsgi.url_scheme"] = self.scheme
        environ["HTTP_HOST"] = self.host
        environ.pop("HTTP_X_FORWARDED_HOST", None)
        if self.prefix:
            environ["SCRIPT_NAME"] = self.prefix
        return self.wsgi_app(environ, start_response)


# Without PUBLIC_BASE_URL or TRUSTED_HOSTS, only these (any port) are answered.
LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "::1"]


def init_app(app: Flask) -> None:
    base = app.config.get("PUBLIC_BASE_URL")
    if base:
        app.wsgi_app = PublicHostMiddleware(app.wsgi_app, base)
    elif not app.config.get("TRUSTED_HOSTS"):
        app.config["TRUSTED_HOSTS"] = list(LOOPBACK_HOSTS)
    app.after_request(add_security_headers)
