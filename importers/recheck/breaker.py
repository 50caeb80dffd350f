"""The circuit breaker: when the register looks down, stop asking it.

Every request counts: an answer (rows or an explicit not-found) is a success, anything
else (timeout, 5xx, 429, an unreadable answer) a failure. The breaker opens on
``consecutive`` failures in a row, or on more than ``ratio`` failures among the last
``window`` requests. Once open it stays open for the rest of the run: the run starts no new
look-ups, leaves the remaining registrations due, says why and exits 3.

A register that answers, but answers "no such number" for many registrations it had
confirmed, is as broken as one that times out: the mass not-found guard
(``importers.mass_not_found``) opens the breaker through ``trip`` with its reason.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from directory.observability.metrics import set_breaker_open


class CircuitBreaker:
    def __init__(self, consecutive: int = 20, window: int = 50, ratio: float = 0.5) -> None:
        if consecutive < 1 or window < 1 or not 0 < ratio < 1:
            raise ValueError("breaker thresholds: consecutive >= 1, window >= 1, 0 < ratio < 1")
        self.consecutive = consecutive
        self.window = window
        self.ratio = ratio
        self._recent: deque[bool] = deque(maxlen=window)  # True = failure
        self._failures_in_window = 0
        self._in_a_row = 0
        self.reason: str | None = None
        set_breaker_open(False)  # a new run starts closed

    @classmethod
    def from_config(cls, config: Mapping) -> CircuitBreaker:
        return cls(
            consecutive=int(config["RECHECK_BREAKER_CONSECUTIVE"]),
            window=int(config["RECHECK_BREAKER_WINDOW"]),
            ratio=float(config["RECHECK_BREAKER_RATIO"]),
        )

    @property
    def is_open(self) -> bool:
        return self.reason is not None

    def trip(self, reason: str) -> None:
        """Open the breaker for a reason found elsewhere (the first reason stays)."""
        if self.reason is None:
            self.reason = reason

    def record(self, success: bool, error: str | None = None) -> None:
        """Count one request's outcome; opens the breaker when a threshold is crossed."""
        failed = not success
        if len(self._recent) == self.window and self._recent[0]:
            self._failures_in_window -= 1
        self._recent.append(failed)
        self._failures_in_window += failed
        self._in_a_row = self._in_a_row + 1 if failed else 0
        if self.is_open or not failed:
            return
        last = f" (last: {error})" if error else ""
        if self._in_a_row >= self.consecutive:
            self.reason = f"{self._in_a_row} requests in a row failed{last}"
        elif (
            len(self._recent) == self.window and self._failures_in_window > self.ratio * self.window
        ):
            self.reason = (
                f"{self._failures_in_window} of the last {self.window} requests failed{last}"
            )
        if self.is_open:
            set_breaker_open(True)
