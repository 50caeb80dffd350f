"""The registry's time rules in one place: confirmation delays, the verified window, and
when each registration is next due for a check."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from directory.registry.statuses import Outcome, Status
from directory.util.durations import parse_duration

# How far apart the clocks of the hosts that record answers may be. Answers given less than
# this apart cannot be ordered by their times: of two such answers that disagree, the one
# that does not say "active" stands (``checks.decide``); and a confirmation dated up to this
# far in the future still counts (``verification.verdict``).
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class RegistryPolicy:
    not_found_confirm_after: timedelta
    verification_max_age: timedelta
    active_every: timedelta
    jitter: float
    recently_changed_every: timedelta
    recently_changed_for: timedelta
    inactive_every: timedelta
    not_found_every: timedelta
    error_backoff_first: timedelta
    error_backoff_max: timedelta

    @classmethod
    def from_config(cls, config: Mapping) -> RegistryPolicy:
        """Read the durations from settings; a bad value raises ValueError naming the setting."""

        def d(key: str) -> timedelta:
            if key not in config:
                raise ValueError(f"{key}: the setting is missing")
            try:
                return parse_duration(config[key])
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None

        try:
            jitter = float(config.get("RECHECK_JITTER", 0.0))
        except (TypeError, ValueError):
            raise ValueError(
                f"RECHECK_JITTER: not a number: {config.get('RECHECK_JITTER')!r}"
            ) from None
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"RECHECK_JITTER: must be at least 0 and below 1, not {jitter!r}")

        return cls(
            not_found_confirm_after=d("NOT_FOUND_CONFIRM_AFTER"),
            verification_max_age=d("VERIFICATION_MAX_AGE"),
            active_every=d("RECHECK_ACTIVE_EVERY"),
            jitter=jitter,
            recently_changed_every=d("RECHECK_RECENTLY_CHANGED_EVERY"),
            recently_changed_for=d("RECHECK_RECENTLY_CHANGED_FOR"),
            inactive_every=d("RECHECK_INACTIVE_EVERY"),
            not_found_every=d("RECHECK_NOT_FOUND_EVERY"),
            error_backoff_first=d("RECHECK_ERROR_BACKOFF_FIRST"),
            error_backoff_max=d("RECHECK_ERROR_BACKOFF_MAX"),
        )

    def next_check_at(
        self,
        *,
        now: datetime,
        status: str,
        last_outcome: str | None,
        consecutive_failures: int,
        status_changed_at: datetime | None,
        not_found_pending_since: datetime | None,
        rng: random.Random | None = None,
    ) -> datetime:
        """When a registration should next be looked up, given what the last check found.

        A failed look-up always backs off (15 min doubling to a day by default), even while
        a not-found awaits confirmation: otherwise a register that is down would be asked
        about the same number again at once, over and over.
        """
        if last_outcome == Outcome.ERROR:
            steps = max(consecutive_failures - 1, 0)
            delay = self.error_backoff_first * (2 ** min(steps, 20))
            backoff = now + min(delay, self.error_backoff_max)
            if not_found_pending_since is not None:
                return max(backoff, not_found_pending_since + self.not_found_confirm_after)
            return backoff
        if not_found_pending_since is not None:
            # Confirm (or clear) a suspicious not-found as soon as the rule allows.
            return max(now, not_found_pending_since + self.not_found_confirm_after)
        if status_changed_at is not None and now - status_changed_at < self.recently_changed_for:
            return now + self.recently_changed_every
        if status == Status.ACTIVE:
            spread = 1 + (rng or random).uniform(-self.jitter, self.jitter)
            return now + self.active_every * spread
        if status == Status.NOT_FOUND:
            return now + self.not_found_every
        return now + self.inactive_every
