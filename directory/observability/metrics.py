"""Every Prometheus collector of the service, in one place (docs/deploy.md, "Watching it").

Other code records through the small functions here, never by creating collectors:

- ``observe_request(route, method, status, seconds)``: the app's request hook;
- ``observe_register_lookup(result)``: every look-up at the register (the importers' clients
  call it; ``directory`` never imports ``importers``);
- ``set_breaker_open(is_open)``: the recheck run's circuit breaker.

What the database and the index hold (registrations by verification age, the outboxes'
backlog, the index's age) is read when ``/metrics`` is scraped (``StateCollector``), so it is
right whichever process or host changed it.

Under gunicorn, several worker processes serve ``/metrics`` in turn: with
``PROMETHEUS_MULTIPROC_DIR`` set (``config/gunicorn.conf.py`` does it when metrics are on)
each process writes its samples there and a scrape adds them up. A recheck run or an import
with the same ``PROMETHEUS_MULTIPROC_DIR`` on the same host shows in that host's ``/metrics``.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Iterator
from typing import Any


def _usable_multiprocess_dir() -> bool:
    """prometheus_client reads PROMETHEUS_MULTIPROC_DIR when it is imported and fails at the
    first sample if the folder is missing: a job started where the web service (which makes
    the folder) is not running must still run, only without shared metrics."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return False
    try:
        os.makedirs(folder, exist_ok=True)
        return os.access(folder, os.W_OK)
    except OSError:
        return False


MULTIPROCESS = _usable_multiprocess_dir()
if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not MULTIPROCESS:
    logging.getLogger(__name__).warning(
        "PROMETHEUS_MULTIPROC_DIR=%s cannot be written: this process's metrics stay in memory",
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR"),
    )

from prometheus_client import (  # noqa: E402  (after the folder is settled)
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

# This process's collectors (not prometheus_client's global registry, which would also
# export the Python process's own metrics, wrong under gunicorn).
PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)

# Pages and API answers: most in milliseconds, a slow search in a second or two.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The register: a few hundred milliseconds when well, the client's timeout when not.
LOOKUP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0)

REQUEST_SECONDS = Histogram(
    "directory_http_request_duration_seconds",
    "Time to answer a request, by route (the URL rule, not the URL), method and status.",
    ["route", "method", "status"],
    buckets=REQUEST_BUCKETS,
    registry=PROCESS_REGISTRY,
)
REGISTER_LOOKUPS = Counter(
    "directory_register_lookups",
    "Look-ups at the HPCSA register by outcome (ok, not_found, error).",
    ["outcome"],
    registry=PROCESS_REGISTRY,
)
REGISTER_LOOKUP_SECONDS = Histogram(
    "directory_register_lookup_duration_seconds",
    "How long the register took to answer (or to fail), by outcome.",
    ["outcome"],
    buckets=LOOKUP_BUCKETS,
    registry=PROCESS_REGISTRY,
)
BREAKER_OPEN = Gauge(
    "directory_register_breaker_open",
    "1 while a running recheck's circuit breaker is open (the register looks down), else 0.",
    multiprocess_mode="livemax",
    registry=PROCESS_REGISTRY,
)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(route, method, str(status)).observe(seconds)


def observe_register_lookup(result: Any) -> Any:
    """Count one look-up (a ``LookupResult``); returns it, so a client can ``return`` through."""
    outcome = getattr(result.outcome, "value", str(result.outcome))
    REGISTER_LOOKUPS.labels(outcome).inc()
    if result.duration_ms is not None:
        REGISTER_LOOKUP_SECONDS.labels(outcome).observe(result.duration_ms / 1000)
    return result


def set_breaker_open(is_open: bool) -> None:
    BREAKER_OPEN.set(1 if is_open else 0)


def breaker_open() -> bool | None:
    """Whether a running recheck's breaker is open, as far as this host can tell: the
    recheck runs sharing this host's ``PROMETHEUS_MULTIPROC_DIR`` write their gauge there
    (False: none of them has it open). None without that folder: this process cannot see
    other processes' breakers."""
    if not MULTIPROCESS:
        return None
    from prometheus_client import multiprocess

    shared = CollectorRegistry()
    multiprocess.MultiProcessCollector(shared)
    return any(
        sample.value
        for family in shared.collect()
        if family.name == BREAKER_OPEN._name
        for sample in family.samples
    )


if MULTIPROCESS:  # a process's "live" gauges leave with it (gunicorn workers: child_exit)

    @atexit.register
    def _forget_live_gauges() -> None:  # pragma: no cover - runs at interpreter exit
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


# --- read at scrape time -----------------------------------------------------------------


class StateCollector(Collector):
    """Gauges read from the database and this host's index when scraped."""

    def __init__(self, app) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from directory.observability.state import index_state, registrations_by_age

        with self.app.app_context():
            ages = GaugeMetricFamily(
                "directory_registrations",
                "Registrations by how long ago the register last confirmed them active "
                "(never: not confirmed active yet, or not active).",
                labels=["verification_age"],
            )
            for bucket, count in registrations_by_age().items():
                ages.add_metric([bucket], count)
            yield ages
            state = index_state()
            backlog = GaugeMetricFamily(
                "directory_outbox_backlog",
                "Rows waiting: index changes this host has not applied (search), status "
                "changes not yet delivered (notifications).",
                labels=["outbox"],
            )
            backlog.add_metric(["search"], state.backlog)
            backlog.add_metric(["notifications"], state.notifications_pending)
            yield backlog
            yield GaugeMetricFamily(
                "directory_search_index_age_seconds",
                "Seconds since this host's index last changed (built or updated); -1 when "
                "this host has no index.",
                value=-1 if state.age_seconds is None else state.age_seconds,
            )
            yield GaugeMetricFamily(
                "directory_search_index_lag_seconds",
                "Age of the oldest index change this host has not applied (0: up to date).",
                value=state.lag_seconds,
            )
            yield GaugeMetricFamily(
                "directory_search_index_documents",
                "Documents in this host's index.",
                value=state.documents,
            )


def render(app) -> tuple[bytes, str]:
    """The exposition for ``/metrics``: this process's (or every worker's) samples, then
    what the database and index hold now."""
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        samples = CollectorRegistry()
        multiprocess.MultiProcessCollector(samples)
    else:
        samples = PROCESS_REGISTRY
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector(app))
    return generate_latest(samples) + generate_latest(state), CONTENT_TYPE_LATEST
