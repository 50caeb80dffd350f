"""``/healthz``: the process is alive (load balancers, and the baseline for benchmarks).
``/readyz``: this host can serve, i.e. the database and this host's search index both answer
within ``READY_TIMEOUT`` seconds; 503 with the reason otherwise (a new host before its index
is built, a host whose index is behind the search outbox's retention, a database that is
down or too slow). Both are cheap: one ``SELECT 1``, one open of the index and one look at
the outbox's prune horizon. A host without a usable index starts building one in the
background when asked, so polling ``/readyz`` is all a new host needs to get ready."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from flask import Blueprint, current_app, jsonify

health = Blueprint("health", __name__)

# Checks run here so that a hung database cannot hold the request past READY_TIMEOUT.
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


@health.get("/healthz")
def healthz():
    return jsonify(status="ok")


def _timed(app, check) -> float:
    from directory.extensions import db

    started = time.perf_counter()
    with app.app_context():
        try:
            check()
        finally:
            db.session.remove()
    return time.perf_counter() - started


@health.get("/readyz")
def readyz():
    from directory.observability.state import database_answers, index_answers

    app = current_app._get_current_object()
    bound = float(app.config["READY_TIMEOUT"])
    deadline = time.monotonic() + bound
    futures = {
        "database": _checks.submit(_timed, app, database_answers),
        "index": _checks.submit(_timed, app, index_answers),
    }
    checks, ready = {}, True
    for name, future in futures.items():
        try:
            seconds = future.result(timeout=max(0.0, deadline - time.monotonic()))
            checks[name] = {"ok": True, "ms": round(seconds * 1000, 1)}
        except FutureTimeout:
            ready = False
            checks[name] = {"ok": False, "error": f"no answer within {bound:g} s"}
        except Exception as exc:
            ready = False
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response
