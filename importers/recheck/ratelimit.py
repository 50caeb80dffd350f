"""How fast the recheck job may ask the register: one limiter for the whole run.

Two rules hold every request start:

* spacing: at least ``1 / current rate`` seconds since the previous start (a token bucket
  holding a single token, so it never saves up a burst), and
* the window: never more than ``floor(max rate)`` starts (at least one) in any window of
  ``1 + margin`` seconds. The margin absorbs the jitter between our clock and the moment the
  register receives the request, so that the register never counts more than ``--rate``
  requests in any one second.

A 429 slows the whole run, not one request: the current rate is halved (at most once a
second, down to a floor), a ``Retry-After`` pauses every start until it has passed, and the
rate then climbs back linearly to the maximum (AIMD: multiplicative decrease, additive
increase).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable


class RateLimiter:
    """An asyncio limiter shared by every worker of one run."""

    def __init__(
        self,
        rate: float,
        *,
        floor: float = 0.1,
        recovery_seconds: float = 60.0,
        window_margin: float = 0.05,
        max_pause: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"the rate must be a positive number, not {rate!r}")
        self.max_rate = float(rate)
        self.floor = min(float(floor), self.max_rate)
        self.recovery_seconds = max(float(recovery_seconds), 0.0)
        self.window = 1.0 + max(float(window_margin), 0.0)
        self.window_cap = max(1, math.floor(self.max_rate + 1e-9))
        self.max_pause = max_pause
        self._clock = clock
        self._sleep = sleep
        self._rate = self.max_rate
        self._rate_checked_at = clock()
        self._starts: deque[float] = deque(maxlen=self.window_cap)
        self._paused_until = 0.0
        self._last_decrease: float | None = None
        self._lock = asyncio.Lock()
        self.rate_limited = 0  # 429s seen
        self.decreases = 0

    @property
    def rate(self) -> float:
        """The rate in force now (requests per second)."""
        self._recover(self._clock())
        return self._rate

    def _recover(self, now: float) -> None:
        elapsed = now - self._rate_checked_at
        self._rate_checked_at = now
        if self._rate >= self.max_rate or elapsed <= 0:
            return
        if self.recovery_seconds == 0:
            self._rate = self.max_rate
            return
        regained = self.max_rate * elapsed / self.recovery_seconds
        self._rate = min(self.max_rate, self._rate + regained)

    def delay(self, now: float) -> float:
        """Seconds until the next start is allowed (0 or less: now)."""
        self._recover(now)
        waits = [self._paused_until - now]
        if self._starts:
            waits.append(self._starts[-1] + 1.0 / self._rate - now)
        if len(self._starts) >= self.window_cap:
            waits.append(self._starts[0] + self.window - now)
        return max(waits)

    async def acquire(self) -> None:
        """Wait for the right to start one request. Waiters are served first come, first served."""
        async with self._lock:
            while True:
                now = self._clock()
                wait = self.delay(now)
                if wait <= 0:
                    self._starts.append(now)
                    return
                await self._sleep(wait)

    def observe(self, http_status: int | None, retry_after: float | None) -> None:
        """Learn from one response: a 429 halves the rate; any Retry-After pauses every start."""
        now = self._clock()
        if retry_after is not None and retry_after > 0:
            self._paused_until = max(self._paused_until, now + min(retry_after, self.max_pause))
        if http_status != 429:
            return
        self.rate_limited += 1
        self._recover(now)
        # Several look-ups in flight usually meet the same 429: slow down once for them all.
        if self._last_decrease is not None and now - self._last_decrease < 1.0:
            return
        self._last_decrease = now
        self._rate = max(self.floor, self._rate / 2)
        self.decreases += 1
