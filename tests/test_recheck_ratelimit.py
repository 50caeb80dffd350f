"""The register budget's rules (``importers.politeness.budget``), on a virtual clock: spacing,
the one-second window, AIMD on 429, Retry-After pauses. (The same rules hold in every store;
tests/test_politeness_budget.py shares them between processes and measures the rate at the
fake register.)"""

from __future__ import annotations

import bisect
import itertools

import pytest

from importers.politeness.budget import MemoryStore, Pace


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Limiter:
    """A budget in memory on a virtual clock: ``acquire`` waits (virtually) for its slot."""

    def __init__(self, rate: float, clock: VirtualClock, **kw) -> None:
        self.pace = Pace(rate, **kw)
        self.store = MemoryStore(clock=clock)
        self.clock = clock

    def acquire(self) -> float:
        self.clock.now = max(self.clock.now, self.store.take(self.pace))
        return self.clock.now

    def observe(self, status, retry_after) -> None:
        self.store.observe(self.pace, status, retry_after)

    @property
    def rate(self) -> float:
        return self.store.rate(self.pace)

    @property
    def rate_limited(self) -> int:
        return self.store.state.rate_limited

    def delay(self) -> float:
        return self.store.state.next_start(self.pace, self.clock()) - self.clock()


def limiter(rate: float, clock: VirtualClock, **kw) -> Limiter:
    return Limiter(rate, clock, **kw)


def starts(lim: Limiter, clock: VirtualClock, n: int) -> list[float]:
    return [lim.acquire() for _ in range(n)]


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The most starts in any half-open window [t, t + window)."""
    times = sorted(times)
    return max(bisect.bisect_left(times, t + window) - i for i, t in enumerate(times))


@pytest.mark.parametrize("rate", [0.5, 1, 2, 5, 10, 50])
def test_never_more_than_the_rate_in_any_one_second_window(rate):
    clock = VirtualClock()
    lim = limiter(rate, clock)
    times = starts(lim, clock, 200)
    margin = lim.pace.window_margin  # the default: 0.25 s
    assert max_in_any_window(times) <= max(1, int(rate))
    # Even a window longer than a second by the margin (lateness on the way to the register).
    assert max_in_any_window(times, 1 + margin - 0.01) <= max(1, int(rate))
    # ...while the long-run rate is what the margin leaves of what was asked, not less.
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert achieved >= 0.97 * min(rate, max(1, int(rate)) / (1 + margin))


def test_a_fractional_rate_is_never_exceeded_either():
    clock = VirtualClock()
    times = starts(limiter(2.5, clock), clock, 100)
    assert max_in_any_window(times) <= 2


def test_no_burst_after_an_idle_spell():
    """A token bucket that saved up tokens while idle would burst; this one holds one."""
    clock = VirtualClock()
    lim = limiter(5, clock)

    first = starts(lim, clock, 3)
    clock.now += 60  # idle for a minute
    times = first + starts(lim, clock, 10)
    later = times[3:]
    assert all(b - a >= 1 / 5 - 1e-9 for a, b in itertools.pairwise(later))
    assert max_in_any_window(times) <= 5


def test_a_429_halves_the_rate_once_for_simultaneous_answers_and_recovers_slowly():
    clock = VirtualClock()
    lim = limiter(10, clock, recovery_seconds=20, floor=0.5)
    for _ in range(4):  # four look-ups in flight meet the same 429
        lim.observe(429, None)
    assert lim.rate == pytest.approx(5)  # halved once
    assert lim.rate_limited == 4
    clock.now += 1.5
    lim.observe(429, None)  # a later one halves again (after 1.5 s of recovery: 5.75)
    assert lim.rate == pytest.approx((5 + 10 * 1.5 / 20) / 2)
    rate_after = lim.rate
    clock.now += 2  # additive: +10/20 per second
    assert lim.rate == pytest.approx(rate_after + 1.0)
    clock.now += 100
    assert lim.rate == 10  # never above the rate asked for


def test_the_rate_never_falls_below_the_floor():
    clock = VirtualClock()
    lim = limiter(4, clock, floor=0.5, recovery_seconds=1000)
    for _ in range(20):
        clock.now += 1.01
        lim.observe(429, None)
    assert lim.rate == pytest.approx(0.5, abs=0.05)


def test_retry_after_pauses_every_start():
    clock = VirtualClock()
    lim = limiter(10, clock)

    lim.acquire()
    lim.observe(429, 3.0)
    times = starts(lim, clock, 4)
    assert min(times) >= 3.0


def test_a_retry_after_without_429_pauses_but_does_not_slow_down():
    clock = VirtualClock()
    lim = limiter(10, clock)
    lim.observe(503, 2.0)
    assert lim.rate == 10
    assert lim.delay() == pytest.approx(2.0)


def test_an_absurd_retry_after_is_capped():
    clock = VirtualClock()
    lim = limiter(10, clock, max_pause=30)
    lim.observe(429, 86_400.0)
    assert lim.delay() == pytest.approx(30)


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
def test_a_nonsense_rate_is_refused(rate):
    with pytest.raises(ValueError):
        Pace(rate)
