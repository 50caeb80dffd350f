"""Retrying one look-up, for every command that asks the register: exponential backoff
with full jitter, the register's Retry-After honoured up to ``HPCSA_RETRY_AFTER_MAX``.

Only transient failures are retried (timeouts, dropped connections, 5xx, 429, HTML or
unreadable bodies: the client marks them ``transient``). An answer that is plainly wrong
(a row for another number, a missing column) is not cured by asking again at once; it is
recorded as a failure and the schedule asks again later.

Why full jitter (a wait drawn uniformly between 0 and the doubling ceiling) rather than a
fixed doubling: several processes share one register budget, and after a blip they all
fail at about the same moment; fixed waits would bring them back in step, jittered ones
spread them out (the AWS Architecture Blog's "Exponential Backoff And Jitter" measures
this). The register's own Retry-After is a floor under the wait, never shortened.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from directory.registry.lookups import LookupResult
from directory.util.durations import parse_duration


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # in all, the first one included
    base: float = 0.5  # seconds: the first backoff is at most this
    max_delay: float = 30.0  # seconds: no backoff is longer (Retry-After aside)
    retry_after_max: float = 300.0  # a longer Retry-After is not waited out

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("HPCSA_RETRY_ATTEMPTS must be at least 1")
        if self.base < 0 or self.max_delay < 0 or self.retry_after_max < 0:
            raise ValueError("retry delays cannot be negative")

    @classmethod
    def from_config(cls, config: Mapping) -> RetryPolicy:
        return cls(
            attempts=int(config["HPCSA_RETRY_ATTEMPTS"]),
            base=float(config["HPCSA_RETRY_BASE"]),
            max_delay=parse_duration(config["HPCSA_RETRY_MAX_DELAY"]).total_seconds(),
            retry_after_max=parse_duration(config["HPCSA_RETRY_AFTER_MAX"]).total_seconds(),
        )

    @staticmethod
    def retryable(result: LookupResult) -> bool:
        return not result.is_answer and result.transient

    def asks_too_long(self, result: LookupResult) -> bool:
        """The register asked for a longer wait than any look-up waits out."""
        return result.retry_after is not None and result.retry_after > self.retry_after_max

    def backoff(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform(0, min(max_delay, base * 2**(n-1))) after the n-th failure."""
        ceiling = min(self.max_delay, self.base * 2 ** min(failed_attempts - 1, 30))
        return (rng or random).uniform(0.0, ceiling)

    def delay(
        self,
        failed_attempts: int,
        result: LookupResult,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before trying again, or None: give up and record the failure."""
        if not self.retryable(result) or failed_attempts >= self.attempts:
            return None
        if self.asks_too_long(result):
            return None
        return max(self.backoff(failed_attempts, rng), result.retry_after or 0.0)


@dataclass(frozen=True)
class Attempted:
    """How a look-up with retries ended. ``result`` is None when it was abandoned (a stop
    or an open breaker before an answer): nothing is recorded and the work stays due."""

    result: LookupResult | None
    attempts: int

    @property
    def abandoned(self) -> bool:
        return self.result is None


async def _sleep(seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return True


async def with_retries(
    attempt: Callable[[], Awaitable[LookupResult | None]],
    policy: RetryPolicy,
    *,
    wait: Callable[[float], Awaitable[bool]] = _sleep,
    rng: random.Random | None = None,
) -> Attempted:
    """Call ``attempt`` until it gives an answer, a non-transient failure, or the bound.

    ``attempt`` returns None to abandon (it was told to stop before sending); ``wait``
    returns False when the wait was cut short by a stop, which abandons too.
    """
    made = 0
    while True:
        result = await attempt()
        if result is None:
            return Attempted(None, made)
        made += 1
        pause = policy.delay(made, result, rng)
        if pause is None:
            return Attempted(result, made)
        if not await wait(pause):
            return Attempted(None, made)


def with_retries_sync(
    attempt: Callable[[], LookupResult],
    policy: RetryPolicy,
    *,
    wait: Callable[[float], object] = time.sleep,
    rng: random.Random | None = None,
) -> Attempted:
    """``with_retries`` for a caller without an event loop (``flask registry verify``)."""
    made = 0
    while True:
        result = attempt()
        made += 1
        pause = policy.delay(made, result, rng)
        if pause is None:
            return Attempted(result, made)
        wait(pause)
