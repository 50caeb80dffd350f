"""The one retry policy (``importers.politeness.retry``, used by verify and recheck alike):
full-jitter backoff, its bound, Retry-After, what is not retried."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest

from directory.registry.lookups import LookupResult
from directory.registry.statuses import Outcome
from importers.politeness.retry import RetryPolicy, with_retries, with_retries_sync

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def failure(*, transient: bool = True, retry_after: float | None = None) -> LookupResult:
    return LookupResult(
        "MP0000101",
        Outcome.ERROR,
        NOW,
        "test",
        error="HTTP 500",
        transient=transient,
        retry_after=retry_after,
    )


ANSWER = LookupResult("MP0000101", Outcome.NOT_FOUND, NOW, "test")


def test_full_jitter_covers_zero_to_the_exponential_ceiling():
    policy = RetryPolicy(attempts=10, base=0.5, max_delay=30)
    rng = random.Random(7)
    for n, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (7, 30.0), (9, 30.0)]:
        draws = [policy.backoff(n, rng) for _ in range(2000)]
        assert 0 <= min(draws) < 0.05 * ceiling
        assert 0.95 * ceiling < max(draws) <= ceiling


def test_retry_after_is_a_floor_for_the_wait():
    policy = RetryPolicy(attempts=4, base=0.01, max_delay=0.05)
    assert policy.delay(1, failure(retry_after=2.5)) == 2.5


def test_a_retry_after_beyond_the_bound_gives_up():
    policy = RetryPolicy(attempts=4, retry_after_max=60)
    assert policy.delay(1, failure(retry_after=3600)) is None


def test_attempts_are_bounded():
    policy = RetryPolicy(attempts=3, base=0.0)
    assert policy.delay(1, failure()) is not None
    assert policy.delay(2, failure()) is not None
    assert policy.delay(3, failure()) is None


def test_answers_and_non_transient_failures_are_not_retried():
    policy = RetryPolicy()
    assert policy.delay(1, ANSWER) is None
    assert policy.delay(1, failure(transient=False)) is None


def test_with_retries_stops_at_the_first_answer():
    results = [failure(), failure(retry_after=0.2), ANSWER, ANSWER]
    waits: list[float] = []

    async def attempt():
        return results.pop(0)

    async def wait(seconds: float) -> bool:
        waits.append(seconds)
        return True

    got = asyncio.run(with_retries(attempt, RetryPolicy(attempts=5, base=0.01), wait=wait))
    assert got.result is ANSWER and got.attempts == 3
    assert len(waits) == 2 and waits[1] >= 0.2


def test_with_retries_gives_the_last_failure_when_the_bound_is_reached():
    async def attempt():
        return failure()

    async def wait(seconds: float) -> bool:
        return True

    got = asyncio.run(with_retries(attempt, RetryPolicy(attempts=3, base=0.0), wait=wait))
    assert got.result is not None and got.result.outcome is Outcome.ERROR
    assert got.attempts == 3 and not got.abandoned


@pytest.mark.parametrize("where", ["before_sending", "while_waiting"])
def test_a_stop_abandons_without_a_result(where):
    async def attempt():
        return None if where == "before_sending" else failure()

    async def wait(seconds: float) -> bool:
        return False

    got = asyncio.run(with_retries(attempt, RetryPolicy(attempts=3), wait=wait))
    assert got.abandoned and got.result is None


@pytest.mark.parametrize("bad", [{"attempts": 0}, {"base": -1}, {"retry_after_max": -1}])
def test_nonsense_settings_are_refused(bad):
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


def test_the_blocking_adapter_follows_the_same_policy():
    """``flask registry verify`` retries by the same rules as the recheck (one policy)."""
    results = [failure(retry_after=1.5), failure(), ANSWER]
    waits: list[float] = []
    got = with_retries_sync(
        lambda: results.pop(0),
        RetryPolicy(attempts=4, base=0.2, max_delay=1.0),
        wait=waits.append,
        rng=random.Random(3),
    )
    assert got.result is ANSWER and got.attempts == 3
    assert waits[0] >= 1.5  # the register's Retry-After is a floor
    assert 0 <= waits[1] <= 0.4  # full jitter under the second ceiling (0.2 * 2)

    always = with_retries_sync(failure, RetryPolicy(attempts=3, base=0.0), wait=waits.append)
    assert always.attempts == 3 and always.result.outcome is Outcome.ERROR

    too_long = with_retries_sync(
        lambda: failure(retry_after=3600), RetryPolicy(retry_after_max=300), wait=waits.append
    )
    assert too_long.attempts == 1  # not waited out: the look-up ends as a failure
    assert RetryPolicy(retry_after_max=300).asks_too_long(too_long.result)
