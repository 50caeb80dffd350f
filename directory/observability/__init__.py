"""Watching the service: request logs (``logs.py``), Prometheus metrics (``metrics.py``,
served at ``/metrics`` when ``METRICS_ENABLED``), and the state they read (``state.py``).
``/healthz`` and ``/readyz`` live in ``directory/health.py``."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app

LOG_FORMATS = ("text", "json")

metrics_blueprint = Blueprint("metrics", __name__)


@metrics_blueprint.get("/metrics")
def metrics_view():
    from directory.observability import metrics

    body, content_type = metrics.render(current_app._get_current_object())
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    if app.config["LOG_FORMAT"] not in LOG_FORMATS:
        raise RuntimeError(
            f"invalid setting: LOG_FORMAT must be one of {LOG_FORMATS}, "
            f"not {app.config['LOG_FORMAT']!r}"
        )
    timeout = app.config["READY_TIMEOUT"]
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise RuntimeError(
            f"invalid setting: READY_TIMEOUT must be seconds above 0, not {timeout!r}"
        )
    if not isinstance(app.config["METRICS_ENABLED"], bool):
        raise RuntimeError(
            "invalid setting: METRICS_ENABLED must be true or false, "
            f"not {app.config['METRICS_ENABLED']!r}"
        )
    from directory.observability import logs

    logs.init_app(app)
    if app.config["METRICS_ENABLED"]:
        app.register_blueprint(metrics_blueprint)
