"""``/healthz``: a trivial JSON endpoint for load balancers, and the baseline for benchmarks."""

from __future__ import annotations

from flask import Blueprint, jsonify

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    return jsonify(status="ok")
