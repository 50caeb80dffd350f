"""Throttling the public pages' actions (a report of concern, a live check of a number).

Counts are kept by the site's one Flask-Limiter (``directory.ratelimits``, which the
per-client limits and sign-in use too: memory, or Redis with RATELIMIT_STORAGE_URI, shared by
every worker and host), per client as ``ratelimits.client_key`` names it. When the storage
cannot be reached the counts go to this process's memory for a while (``ratelimits``), and
should counting still fail the action is allowed with a warning: a live check still waits in
the register budget, and no patient meets a 500 for it.
"""

from __future__ import annotations

import logging

from flask import current_app
from limits import parse

from directory.ratelimits import client_key, room

log = logging.getLogger(__name__)

SITE = "site"  # the key of a limit that counts every client together

# The settings these actions read (checked at start-up by ``check_settings``).
SETTINGS = (
    "REPORT_LIMIT_PER_CLIENT",
    "REPORT_LIMIT_SITE",
    "LIVE_CHECK_LIMIT_PER_CLIENT",
    "LIVE_CHECK_LIMIT_SITE",
)


def allowed(action: str, limits: dict[str, str]) -> bool:
    """Count one ``action`` against each ``{setting: key}`` limit (``key`` ``SITE``: every
    client together; otherwise per client) and say whether all still allow it. An action
    refused by one limit is counted by none, so a client over its own limit never uses up
    the site-wide one."""
    checks = [
        (current_app.config[setting], action, setting, key if key == SITE else client_key())
        for setting, key in limits.items()
    ]
    try:
        return room(checks)
    except Exception:  # the counts' storage (Redis) is down: a patient is not refused for it
        log.warning("rate-limit storage unavailable; %s allowed unthrottled", action, exc_info=True)
        return True


def check_settings(config, keys=SETTINGS) -> None:
    """A rate setting that is not a rate such as "5 per 15 minutes" (or allows nothing)
    stops start-up with its name (RuntimeError)."""
    for key in keys:
        try:
            limit = parse(str(config.get(key)))
        except ValueError as exc:
            raise RuntimeError(
                f"invalid setting: {key}: {config.get(key)!r} is not a rate such as "
                "'5 per 15 minutes'"
            ) from exc
        if limit.amount < 1:
            raise RuntimeError(f"invalid setting: {key}: at least one attempt must be allowed")
