"""Status pages: how well the directory reaches the HPCSA register, as SVG charts.

- ``/status`` (public): whether the directory could reach the register recently, the share
  of failed look-ups, when the register last answered, the last week day by day. Linked from
  the footer and from every "could not check now" message, so a patient can see whether the
  register or the directory is having a bad day.
- ``/account/status`` (site admins): the last 30 days of look-ups by outcome, the register's
  latency and error rate, registrations by verification age, the newest look-ups, and the
  outboxes' backlog.

``queries.py`` reads the numbers (bounded windows, aggregated in SQL), ``charts.py`` draws
them (server-rendered SVG, no script, no external asset). docs/operations.md.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, current_app, render_template

from directory.accounts.views import site_admin_required
from directory.status import charts, queries

status_pages = Blueprint("status", __name__, template_folder="templates")

OUTCOME_SERIES = (  # (key, name) of the look-ups' outcomes, stacked in this order
    ("ok", "answered"),
    ("not_found", "answered: not found"),
    ("error", "failed"),
)
# observability.state.registrations_by_age's buckets, in words
AGE_NAMES = {
    "under_1d": "under 1 day",
    "under_7d": "1 to 7 days",
    "under_30d": "7 to 30 days",
    "30d_or_more": "30 days or more",
    "never": "never",
}
# Seconds a browser or proxy may reuse the public page, and each process its numbers: a
# crowd reading /status (the register is down, everyone wonders why) costs one query a minute.
PUBLIC_MAX_AGE = 60


def _day_labels(days: list[queries.DayCounts]) -> list[str]:
    return [d.day.isoformat() for d in days]


def outcomes_chart(title: str, days: list[queries.DayCounts]):
    return charts.bar_chart(
        title,
        _day_labels(days),
        [
            charts.Series(name, key, [getattr(d.counts, key) for d in days])
            for key, name in OUTCOME_SERIES
        ],
    )


def error_rate_chart(title: str, days: list[queries.DayCounts]):
    values = [d.counts.error_percent for d in days]
    series = [charts.Series("failed look-ups", "error", values)]
    return charts.line_chart(title, _day_labels(days), series, unit="%", top=100)


def _recent_health() -> queries.RegisterHealth:
    """``queries.register_health()``, computed at most once per PUBLIC_MAX_AGE per process."""
    cache = current_app.extensions.setdefault("status_health", {})
    now = time.monotonic()
    if cache.get("until", 0.0) <= now:
        cache.update(health=queries.register_health(), until=now + PUBLIC_MAX_AGE)
    return cache["health"]


@status_pages.get("/status")
def public_status():
    health = _recent_health()
    response = render_template(
        "status/public.html",
        health=health,
        outcomes=outcomes_chart("Look-ups at the HPCSA register per day", health.days),
        error_rate=error_rate_chart("Share of look-ups that failed, per day", health.days),
        public_days=queries.PUBLIC_DAYS,
    )
    return response, 200, {"Cache-Control": f"public, max-age={PUBLIC_MAX_AGE}"}


@status_pages.get("/account/status")
@site_admin_required
def operators():
    from directory.observability.metrics import breaker_open
    from directory.observability.state import index_state, registrations_by_age

    days = queries.lookups_by_day(queries.OPERATORS_DAYS)
    labels = _day_labels(days)
    ages = registrations_by_age()
    latency = charts.line_chart(
        "The register's answer time per day (milliseconds)",
        labels,
        [
            charts.Series("mean", "mean", [d.counts.mean_ms for d in days]),
            charts.Series("longest", "longest", [d.counts.longest_ms for d in days]),
        ],
        unit=" ms",
    )
    by_age = charts.bar_chart(
        "Registrations by how long ago the register last confirmed them",
        [AGE_NAMES[k] for k in ages],
        [charts.Series("registrations", "registrations", list(ages.values()))],
    )
    response = render_template(
        "status/operators.html",
        days=days,
        outcomes=outcomes_chart("Look-ups at the register per day, by outcome", days),
        error_rate=error_rate_chart("Share of look-ups that failed, per day", days),
        latency=latency,
        by_age=by_age,
        ages=[(AGE_NAMES[k], v) for k, v in ages.items()],
        latest=queries.latest_lookups(),
        health=queries.register_health(days=days),
        index=index_state(),
        breaker=breaker_open(),
        operators_days=queries.OPERATORS_DAYS,
        public_days=queries.PUBLIC_DAYS,
    )
    return response, 200, {"Cache-Control": "no-store"}


def init_app(app: Flask) -> None:
    """After ``accounts.init_app``: the operators' page is for its site admins."""
    app.register_blueprint(status_pages)
