"""Durations in settings and on the command line: ``90``, ``"15m"``, ``"1h"``, ``"30d"``."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
# Longer than any sensible delay, far inside what ``datetime`` arithmetic can hold.
MAX_DURATION = timedelta(days=3650)


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Read a duration; a bare number is seconds. Raises ValueError with a plain message."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    elif isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _PATTERN.match(str(value))
        if not match:
            raise ValueError(
                f"not a duration: {value!r} (use a number of seconds or e.g. 90s, 15m, 1h, 30d)"
            )
        amount, unit = match.groups()
        seconds = float(amount) * _UNITS[(unit or "s").lower()]
    if math.isnan(seconds):
        raise ValueError(f"not a duration: {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"a duration of at most {MAX_DURATION.days} days, not {value!r}")
    return timedelta(seconds=seconds)


def duration_option(value: str, option: str) -> timedelta:
    """A command-line option's duration, longer than zero; a bad one is click's usage error
    (exit 2) naming ``option``."""
    import click

    try:
        duration = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    if duration <= timedelta(0):
        raise click.BadParameter("must be longer than zero", param_hint=option)
    return duration
