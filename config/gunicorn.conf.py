"""gunicorn settings for `make run` and production; override with GUNICORN_* below."""

import gc
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Load the app once in the master so workers share the read-only pages of code and data.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") == "1"
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
# gunicorn refuses request lines over 4094 bytes with its own HTML 414 before the app sees
# them; the app caps and explains long queries itself (a 10 kB search gets a plain message or
# a problem document), so the line is not limited here. Cap it at the reverse proxy instead.
limit_request_line = int(os.environ.get("GUNICORN_LIMIT_REQUEST_LINE", "0"))


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

    app = server.app.wsgi()
    try:
        with app.app_context():
            get_search_backend().warm()
    except Exception:  # a search problem must not keep the site from starting
        server.log.exception("warming the search caches failed; workers start cold")
    # What the master built lives as long as the workers: out of the garbage collector's
    # sight (a full collection would walk those millions of objects in every worker, and
    # touching them would un-share their pages).
    gc.collect()
    gc.freeze()
