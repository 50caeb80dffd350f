"""gunicorn settings for `make run` and production; override with GUNICORN_* below."""

import gc
import multiprocessing
import os
import tempfile
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Load the app once in the master so workers share the read-only pages of code and data.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") == "1"
_json_logs = os.environ.get("DIRECTORY_LOG_FORMAT", "").strip('"') == "json"
# With DIRECTORY_LOG_FORMAT=json the app writes one JSON line per request (with its request
# id); gunicorn's access log would repeat it, so it is off unless asked for.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", None if _json_logs else "-")
errorlog = "-"
# The path without the query string (%(U)s, not %(r)s): a signed link carries its token
# there, and no log may hold one. No referrer either (it is another page's full URL). Last,
# the answering worker's <pid>: which one is stuck, or how requests spread over them.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" %(L)ss %(p)s'
# Bounded, as nginx in front is (deploy/nginx.conf): a request line of 8,190 bytes at most
# (gunicorn's ceiling) is far above the app's own 1,000-character search limit, so a long
# query still gets the app's friendly "cut to 1,000 characters"; longer lines get a 400 at
# once instead of a worker parsing megabytes. Headers: at most 100, each at most 8,190 bytes.
limit_request_line = int(os.environ.get("GUNICORN_LIMIT_REQUEST_LINE", "8190"))
limit_request_fields = int(os.environ.get("GUNICORN_LIMIT_REQUEST_FIELDS", "100"))
limit_request_field_size = int(os.environ.get("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", "8190"))
# An idle keep-alive connection is closed after this many seconds (sync workers do not keep
# connections alive at all; threaded ones do).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# X-Forwarded-* are read by the app (werkzeug's ProxyFix, DIRECTORY_PROXY_HOPS), only from
# the configured proxies; gunicorn must not read X-Forwarded-Proto on its own.
secure_scheme_headers: dict[str, str] = {}
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


# Prometheus metrics from every worker (DIRECTORY_METRICS_ENABLED=true): each process writes
# its samples to files in PROMETHEUS_MULTIPROC_DIR and /metrics adds them up. The variable
# must be set before the app (and prometheus_client) is loaded, and the folder emptied at
# each start: samples of a previous run would otherwise be counted again.
_metrics = os.environ.get("DIRECTORY_METRICS_ENABLED", "").strip('"').lower() in ("true", "1")
if _metrics:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="directory-metrics-")
    _metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    for _stale in _metrics_dir.glob("*.db"):
        _stale.unlink()


def child_exit(server, worker):
    """A dead worker's live gauges stop counting (its counters and histograms stay)."""
    if _metrics:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker):
    """Each worker opens its own database connections: none may cross the fork."""
    from directory.extensions import db

    app = worker.app.wsgi()  # the preloaded app (loaded here, in the worker, otherwise)
    with app.app_context():
        db.engine.dispose(close=False)
    # A search allocates thousands of short-lived containers; with the default thresholds a
    # full collection (150-200 ms of walking every cache, more under load) comes every few
    # hundred requests and lands on whoever is waiting. Rarer collections, same garbage.
    gc.set_threshold(50_000, 20, 20)


_search_warmed = False


def pre_fork(server, worker):
    """With the app preloaded, the master reads once what first searches need (the search
    index's segments, orders, names); every worker forked after starts with it."""
    global _search_warmed
    if not preload_app or _search_warmed:
        return
    _search_warmed = True
    from directory.search import get_search_backend
    from directory.search.interfaces import NoIndex

    app = server.app.wsgi()
    try:
        with app.app_context():
            get_search_backend().warm()
    except NoIndex as why:  # a new host: not ready (503) until its index is built
        server.log.warning("workers start cold: %s", why)
    except Exception:  # a search problem must not keep the site from starting
        server.log.exception("warming the search caches failed; workers start cold")
    # What the master built lives as long as the workers: out of the garbage collector's
    # sight (a full collection would walk those millions of objects in every worker, and
    # touching them would un-share their pages).
    gc.collect()
    gc.freeze()
