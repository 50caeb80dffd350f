"""Per-client rate limits: the site's one Flask-Limiter, for pages, the API and search, and
for the sign-in throttle (``directory.accounts``).

Every request counts against one bucket per client address: ``pages`` (``RATE_LIMIT_PAGES``)
or ``api`` (``RATE_LIMIT_API``, everything under ``/api/``), and a search (the results page,
``/api/v1/search``) against ``search`` too (``RATE_LIMIT_SEARCH``). ``/healthz``, ``/readyz``,
``/metrics`` and static files count against nothing. A client over a limit gets 429 with
``Retry-After``: an HTML page for pages, a problem document for the API.

The client is ``request.remote_addr``: the proxy's ``X-Forwarded-For`` only when
``PROXY_HOPS`` trusts it (``directory.deployment``), so a client cannot pick its own key. An
IPv6 client counts by its /64 (one subscriber's network), an IPv4 one by its address.

The counts live in ``RATELIMIT_STORAGE_URI``: ``memory://`` (each process counts alone), or
Redis (``redis://...``), shared by every worker and host. When Redis does not answer, no
request fails for it: the counts go to this process's memory for ``STORAGE_RETRY_SECONDS``
(a warning is logged once per outage), then Redis is tried again. A limit is then kept per
process instead of site-wide, never dropped and never a 500.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse, parse_many
from limits.errors import ConfigurationError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter, RateLimiter

log = logging.getLogger(__name__)

EXTENSION = "ratelimits"
LIMIT_SETTINGS = {
    "pages": "RATE_LIMIT_PAGES",
    "api": "RATE_LIMIT_API",
    "search": "RATE_LIMIT_SEARCH",
}
# Endpoints that count against nothing: probes, metrics, files (and blueprints' "static").
EXEMPT_ENDPOINTS = frozenset(
    {"health.healthz", "health.readyz", "metrics.metrics_view", "api-docs.swagger_ui_asset"}
)
SEARCH_ENDPOINTS = frozenset({"web.search", "search.search"})
API_PREFIX = "/api/"
# A Redis that does not answer is left alone this long before it is tried again.
STORAGE_RETRY_SECONDS = 30.0
# A Redis that hangs must not hold a request: connect and answer within this (seconds).
STORAGE_TIMEOUT = 0.5


def client_key() -> str:
    """The client's address as the proxy (``PROXY_HOPS``) reported it; an IPv6 /64 whole."""
    address = request.remote_addr or "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class ResilientCounts(RateLimiter):
    """The configured strategy over the configured storage, falling back to this process's
    memory while the storage does not answer. Same interface as ``limits``' strategies
    (``hit``, ``test``, ``get_window_stats``, ``clear``), so callers need not know."""

    def __init__(self, primary: RateLimiter, base_exceptions, prefix: str = "") -> None:
        super().__init__(primary.storage)
        self.primary = primary
        self.prefix = (prefix,) if prefix else ()  # before every key: several sites, one Redis
        self.fallback = FixedWindowRateLimiter(MemoryStorage())
        self.base_exceptions = base_exceptions
        self.down_until = 0.0

    def _call(self, name: str, item: RateLimitItem, *identifiers: str, **kwargs):
        args = (item, *self.prefix, *identifiers)
        if time.monotonic() >= self.down_until:
            try:
                return getattr(self.primary, name)(*args, **kwargs)
            except self.base_exceptions as exc:
                self.down_until = time.monotonic() + STORAGE_RETRY_SECONDS
                log.warning(
                    "rate-limit storage did not answer (%s: %s): counting in this process's "
                    "memory for %.0f s; limits hold per process, not site-wide",
                    type(exc).__name__,
                    exc,
                    STORAGE_RETRY_SECONDS,
                )
        return getattr(self.fallback, name)(*args, **kwargs)

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return self._call("hit", item, *identifiers, cost=cost)

    def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return self._call("test", item, *identifiers, cost=cost)

    def get_window_stats(self, item: RateLimitItem, *identifiers: str):
        return self._call("get_window_stats", item, *identifiers)

    def clear(self, item: RateLimitItem, *identifiers: str) -> None:
        return self._call("clear", item, *identifiers)


class SiteLimiter(Limiter):
    """Flask-Limiter's ``Limiter`` whose ``limiter`` (the strategy every count goes through,
    its decorators' and the sign-in throttle's alike) never fails for a storage outage."""

    _resilient: ResilientCounts | None = None

    def init_app(self, app: Flask) -> None:
        """Flask-Limiter's own ``RATELIMIT_ENABLED = False`` would leave it with no storage,
        and the sign-in throttle with nothing to count in: here that setting turns off the
        per-client limits only (``buckets_for_request``), and the throttle counts on."""
        enabled = app.config.get("RATELIMIT_ENABLED", True)
        app.config["RATELIMIT_ENABLED"] = True
        try:
            super().init_app(app)
        finally:
            app.config["RATELIMIT_ENABLED"] = enabled

    @property
    def limiter(self) -> RateLimiter:
        if self._resilient is None:
            self._resilient = ResilientCounts(
                super().limiter, getattr(self.storage, "base_exceptions", ()), self._key_prefix
            )
        return self._resilient


def counts() -> RateLimiter:
    """The current app's counters (for a throttle of its own: sign-in, reports, live checks),
    resilient to a storage outage as every limit here is."""
    return current_app.extensions[EXTENSION]["limiter"].limiter


def room(keys: Iterable[tuple[str, ...]], *, count: bool = True) -> bool:
    """Whether every ``(limit, *key)`` still has room (a limit as text, such as "5 per 15
    minutes"); with ``count``, one is counted against each, only when all have room: an
    attempt refused by one limit uses up none of the others. For the throttles of their own
    (sign-in, resets, claims, reports, live checks)."""
    strategy = counts()
    checks = [(parse(limit), *key) for limit, *key in keys]
    if not all(strategy.test(limit, *key) for limit, *key in checks):
        return False
    if count:
        for limit, *key in checks:
            strategy.hit(limit, *key)
    return True


def count_against(keys: Iterable[tuple[str, ...]]) -> None:
    """Count one against every ``(limit, *key)`` (a failed sign-in, after the fact)."""
    strategy = counts()
    for limit, *key in keys:
        strategy.hit(parse(limit), *key)


@dataclass(frozen=True)
class Bucket:
    name: str
    limits: tuple[RateLimitItem, ...]


def parse_limits(key: str, value) -> tuple[RateLimitItem, ...]:
    """A setting's limits ("300 per minute", "10 per second; 300 per minute"); None or ""
    limits nothing. RuntimeError naming the setting otherwise."""
    if value is None or value == "":
        return ()
    try:
        items = tuple(parse_many(str(value)))
    except ValueError as exc:
        raise RuntimeError(
            f"invalid setting: {key}: {value!r} is not a rate such as '300 per minute' "
            "(or null for no limit)"
        ) from exc
    if not items or any(item.amount < 1 for item in items):
        raise RuntimeError(f"invalid setting: {key}: at least one request must be allowed")
    return items


def check_storage_uri(config) -> str:
    uri = str(config.get("RATELIMIT_STORAGE_URI") or "memory://")
    try:
        storage_from_string(uri)
    except (ConfigurationError, ValueError) as exc:
        raise RuntimeError(
            f"invalid setting: RATELIMIT_STORAGE_URI: {uri!r}: use memory:// or a redis:// "
            f"URL ({exc})"
        ) from exc
    return uri


def buckets_for_request() -> list[Bucket]:
    """The buckets this request counts against (none for probes, metrics and files)."""
    endpoint = request.endpoint or ""
    if endpoint in EXEMPT_ENDPOINTS or endpoint == "static" or endpoint.endswith(".static"):
        return []
    buckets: dict[str, Bucket] = current_app.extensions[EXTENSION]["buckets"]
    names = ["api" if request.path.startswith(API_PREFIX) else "pages"]
    if endpoint in SEARCH_ENDPOINTS:
        names.append("search")
    return [buckets[name] for name in names if buckets[name].limits]


def too_many_requests(retry_after: int) -> Response:
    """429 with ``Retry-After``: a problem document under ``/api/``, a page elsewhere."""
    from directory.api.problems import is_api_request, problem_response

    wait = f"{retry_after} second{'s' if retry_after != 1 else ''}"
    headers = {"Retry-After": str(retry_after), "Cache-Control": "no-store"}
    if is_api_request():
        return problem_response(
            429,
            f"Too many requests from your address. Try again in {wait}.",
            headers=headers,
        )
    from directory.web.errors import error_page

    body, status = error_page(
        429,
        f"Too many pages were asked for from your address in a short time. Please wait "
        f"{wait} and try again.",
    )
    response = current_app.make_response((body, status))
    response.headers.update(headers)
    return response


def _limit_request() -> Response | None:
    buckets = buckets_for_request()
    if not buckets:
        return None
    counts = current_app.extensions[EXTENSION]["limiter"].limiter
    key = client_key()
    waits = []
    for bucket in buckets:
        for item in bucket.limits:
            if not counts.hit(item, bucket.name, key):
                reset = counts.get_window_stats(item, bucket.name, key).reset_time
                waits.append(max(1, math.ceil(reset - time.time())))
    return too_many_requests(max(waits)) if waits else None


def init_app(app: Flask) -> SiteLimiter:
    """The site's Limiter and the per-client limits on every request. Call before any
    blueprint's own before-request hooks."""
    uri = check_storage_uri(app.config)
    enabled = app.config.get("RATELIMIT_ENABLED", True)
    if not isinstance(enabled, bool):
        raise RuntimeError(
            f"invalid setting: RATELIMIT_ENABLED must be true or false, not {enabled!r}"
        )
    buckets = {
        name: Bucket(name, parse_limits(key, app.config.get(key)) if enabled else ())
        for name, key in LIMIT_SETTINGS.items()
    }
    options = {}
    if uri.startswith(("redis://", "rediss://", "redis+")):
        options = {"socket_connect_timeout": STORAGE_TIMEOUT, "socket_timeout": STORAGE_TIMEOUT}
    limiter = SiteLimiter(
        client_key,
        app=app,
        storage_uri=uri,
        storage_options=options,
        key_prefix=str(app.config.get("RATELIMIT_KEY_PREFIX") or ""),
        default_limits=[],
    )
    app.extensions[EXTENSION] = {"limiter": limiter, "buckets": buckets}
    app.before_request(_limit_request)
    return limiter
