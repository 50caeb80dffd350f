"""The circuit breaker's two rules."""

from __future__ import annotations

import pytest

from importers.recheck.breaker import CircuitBreaker


def test_opens_on_consecutive_failures_with_the_last_error():
    breaker = CircuitBreaker(consecutive=20, window=50, ratio=0.5)
    for _ in range(19):
        breaker.record(False, "HTTP 500 from the register")
    assert not breaker.is_open
    breaker.record(False, "HTTP 500 from the register")
    assert breaker.is_open
    assert "20 requests in a row failed" in breaker.reason
    assert "HTTP 500" in breaker.reason


def test_a_success_resets_the_run_of_failures():
    breaker = CircuitBreaker(consecutive=5, window=50, ratio=0.9)
    for _ in range(10):
        for _ in range(4):
            breaker.record(False)
        breaker.record(True)
    assert not breaker.is_open


def test_opens_when_more_than_half_of_the_last_fifty_fail():
    breaker = CircuitBreaker(consecutive=20, window=50, ratio=0.5)
    pattern = [False, False, True]  # two failures in three, never 20 in a row
    for i in range(49):
        breaker.record(pattern[i % 3])
    assert not breaker.is_open  # the window is not full yet
    breaker.record(pattern[49 % 3])
    assert breaker.is_open
    assert "of the last 50 requests failed" in breaker.reason


def test_exactly_half_does_not_open_it():
    breaker = CircuitBreaker(consecutive=20, window=50, ratio=0.5)
    for i in range(500):
        breaker.record(i % 2 == 0)
    assert not breaker.is_open


def test_the_window_slides():
    breaker = CircuitBreaker(consecutive=100, window=10, ratio=0.5)
    for _ in range(5):
        breaker.record(False)
    for _ in range(100):
        breaker.record(True)
    for _ in range(5):
        breaker.record(False)
    assert not breaker.is_open  # 5 of the last 10: not more than half
    breaker.record(False)
    assert breaker.is_open


def test_five_percent_failures_never_open_it():
    breaker = CircuitBreaker()
    for i in range(10_000):
        breaker.record(i % 20 != 0)
    assert not breaker.is_open


@pytest.mark.parametrize("bad", [{"consecutive": 0}, {"window": 0}, {"ratio": 1.0}])
def test_nonsense_thresholds_are_refused(bad):
    with pytest.raises(ValueError):
        CircuitBreaker(**bad)
