"""What running in production adds: settings refused at start-up, and the proxy in front.

- ``ENV = "production"`` refuses to start (with every reason at once) with a missing or
  development ``SECRET_KEY``, with debug on, or with neither ``PUBLIC_BASE_URL`` nor
  ``TRUSTED_HOSTS`` set (absolute URLs would then come from whatever Host a client sends).
- ``PROXY_HOPS = n`` trusts ``X-Forwarded-For/-Proto/-Host/-Port`` from the ``n`` proxies in
  front (werkzeug's ``ProxyFix``); 0, the default, trusts none of them, so that a client
  talking to gunicorn directly cannot claim another address, scheme or host.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

ENVIRONMENTS = ("development", "production")
DEVELOPMENT_SECRET_KEY = "dev-only-not-secret"  # config/settings.py's default
MIN_SECRET_KEY_LENGTH = 16


def production_problems(config) -> list[str]:
    """Why this configuration must not serve the public (empty: nothing against it)."""
    problems = []
    key = config.get("SECRET_KEY")
    if not key:
        problems.append("SECRET_KEY is not set: set DIRECTORY_SECRET_KEY to a long random value")
    elif key == DEVELOPMENT_SECRET_KEY:
        problems.append(
            "SECRET_KEY is the development default: set DIRECTORY_SECRET_KEY to a long random "
            'value (python3 -c "import secrets; print(secrets.token_urlsafe(48))")'
        )
    elif len(str(key)) < MIN_SECRET_KEY_LENGTH:
        problems.append(
            f"SECRET_KEY is shorter than {MIN_SECRET_KEY_LENGTH} characters: use a long "
            "random value"
        )
    if config.get("DEBUG"):
        problems.append("debug is on (DEBUG / FLASK_DEBUG): it must be off in production")
    if not config.get("PUBLIC_BASE_URL") and not config.get("TRUSTED_HOSTS"):
        problems.append(
            "neither PUBLIC_BASE_URL nor TRUSTED_HOSTS is set: set DIRECTORY_PUBLIC_BASE_URL "
            "(e.g. https://directory.example.org) so that no link is built from a client's "
            "Host header"
        )
    return problems


def init_app(app: Flask) -> None:
    env = app.config.get("ENV")
    if env not in ENVIRONMENTS:
        raise RuntimeError(f"invalid setting: ENV must be one of {ENVIRONMENTS}, not {env!r}")
    if env == "production":
        problems = production_problems({**app.config, "DEBUG": app.debug})
        if problems:
            raise RuntimeError("refusing to start with ENV=production: " + "; ".join(problems))
    hops = app.config.get("PROXY_HOPS")
    if isinstance(hops, bool) or not isinstance(hops, int) or not 0 <= hops <= 5:
        raise RuntimeError(f"invalid setting: PROXY_HOPS must be a whole number 0-5, not {hops!r}")
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
