"""Asking the register politely: the settings, and one adapter for each way of asking.

``Politeness.from_app`` reads the settings once (the shared budget's ``Pace``, the
``RetryPolicy``, where the budget lives). Every request then goes through

1. the run's own cap (``--rate``: a run may ask more gently than the budget allows; kept
   in this process), then
2. the shared budget (``budget.py``): a slot booked for every process and host at once;
   after waiting for it, a pause that someone set meanwhile (a 429's Retry-After) holds
   this start too,

and every response is reported back (``observe``), so that a 429 seen by one process slows
them all. ``Asker`` is for ``flask registry verify`` (one look-up at a time, blocking);
``AsyncAsker`` for the recheck's asyncio workers (the budget's blocking calls run on one
thread of their own).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from directory.registry.lookups import LookupResult
from directory.util.durations import parse_duration
from importers.politeness.budget import (
    BudgetState,
    BudgetStore,
    Pace,
    check_budget_url,
    store_for,
)
from importers.politeness.retry import Attempted, RetryPolicy, with_retries_sync

# A start that wakes up too late books again at most this many times in a row.
LATE_REBOOKS = 5

# Settings renamed when verify's and recheck's stacks became one: old name -> new name.
RENAMED_SETTINGS = {
    "RECHECK_RATE_FLOOR": "HPCSA_RATE_FLOOR",
    "RECHECK_RATE_RECOVERY": "HPCSA_RATE_RECOVERY",
    "RECHECK_RATE_WINDOW_MARGIN": "HPCSA_RATE_WINDOW_MARGIN",
    "RECHECK_RETRY_ATTEMPTS": "HPCSA_RETRY_ATTEMPTS",
    "RECHECK_RETRY_BASE": "HPCSA_RETRY_BASE",
    "RECHECK_RETRY_MAX_DELAY": "HPCSA_RETRY_MAX_DELAY",
    "RECHECK_RETRY_AFTER_MAX": "HPCSA_RETRY_AFTER_MAX",
    "VERIFY_RETRIES": "HPCSA_RETRY_ATTEMPTS",
    "VERIFY_RETRY_BACKOFF": "HPCSA_RETRY_BASE",
}


def check_renamed(config: Mapping) -> None:
    """Refuse a setting that no longer exists, naming the one that replaced it."""
    old = sorted(key for key in RENAMED_SETTINGS if key in config)
    if old:
        raise ValueError(
            "; ".join(
                f"{key} is no longer read: use {RENAMED_SETTINGS[key]} (one retry policy and "
                "one register budget for every command, docs/recheck.md)"
                for key in old
            )
        )


class RegisterAskedToWait(RuntimeError):
    """The register asked for a longer wait than any look-up waits out (HPCSA_RETRY_AFTER_MAX)."""

    def __init__(self, seconds: float, result: LookupResult) -> None:
        super().__init__(f"the register asked us to wait {seconds:.0f} s before asking again")
        self.seconds = seconds
        self.result = result


@dataclass(frozen=True)
class Politeness:
    """The one set of rules for asking the register, and where the shared budget lives."""

    pace: Pace
    retry: RetryPolicy
    budget_url: str | None = None

    @classmethod
    def from_config(cls, config: Mapping) -> Politeness:
        check_renamed(config)
        retry = RetryPolicy.from_config(config)

        def seconds(key: str) -> float:
            return parse_duration(config[key]).total_seconds()

        pace = Pace(
            max_rate=_number(config, "HPCSA_MAX_RATE"),
            floor=_number(config, "HPCSA_RATE_FLOOR"),
            recovery_seconds=seconds("HPCSA_RATE_RECOVERY"),
            window_margin=_number(config, "HPCSA_RATE_WINDOW_MARGIN", minimum=0.0),
            max_pause=retry.retry_after_max,
        )
        url = config.get("REGISTER_BUDGET_URL") or None
        check_budget_url(url)
        return cls(pace, retry, url)

    def store(self, engine_factory: Callable[[], Any]) -> BudgetStore:
        return store_for(self.budget_url, engine_factory)

    def own_cap(self, rate: float | None) -> Pace | None:
        """The pace of a run's own ``--rate`` (None: the budget alone)."""
        if rate is None or rate >= self.pace.max_rate:
            return None
        return Pace(max_rate=rate, window_margin=self.pace.window_margin)


def _number(config: Mapping, key: str, *, minimum: float | None = None) -> float:
    try:
        value = float(config[key])
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, not {config[key]!r}") from None
    if minimum is not None and not value >= minimum:
        raise ValueError(f"{key} cannot be below {minimum:g}")
    if minimum is None and not (value > 0 and value < float("inf")):
        raise ValueError(f"{key} must be a number above 0, not {config[key]!r}")
    return value


class _Steps:
    """What both adapters do: book a start under the run's own cap and the shared budget."""

    def __init__(self, politeness: Politeness, store: BudgetStore, rate: float | None) -> None:
        self.politeness = politeness
        self.store = store
        self._cap = politeness.own_cap(rate)
        self._own = BudgetState()  # this run's own starts (when it has a --rate of its own)
        self.rate_limited = 0
        # How late a start may go: half the window's margin (the other half is the network's).
        self.late = max(politeness.pace.window_margin / 2, 0.005)

    def book(self) -> float:
        """Book the next start (blocking): the shared budget's slot, never before the run's own
        cap allows; returns its instant on ``time.monotonic()``."""
        not_before = None
        if self._cap is not None:
            not_before = self._own.next_start(self._cap, time.monotonic())
        at = self.store.take(self.politeness.pace, not_before)
        if self._cap is not None:  # the run's own spacing counts from the real start
            self._own.starts.append(at)
            del self._own.starts[: -self._cap.window_cap]
        return at

    def on_time(self, at: float, late_before: int) -> bool:
        """Whether a start booked for ``at`` may still go now. A process that wakes up late
        (a busy machine, a blocked event loop) would land next to the starts booked after
        its own: its slot is given up and a new one booked instead, up to ``LATE_REBOOKS``
        times in a row (then it goes: a machine that busy must still make progress)."""
        now = time.monotonic()
        if now - at > self.late and late_before < LATE_REBOOKS:
            return False
        if self._cap is not None and self._own.starts:  # the run's own spacing counts
            self._own.starts[-1] = max(self._own.starts[-1], now)  # from the real start
        return True

    def count(self, result: LookupResult) -> bool:
        """Count a 429; True when the shared budget has something to learn."""
        if result.http_status == 429:
            self.rate_limited += 1
        return result.http_status == 429 or bool(result.retry_after and result.retry_after > 0)


class Asker(_Steps):
    """Blocking: one look-up at a time (``flask registry verify``)."""

    def __init__(
        self,
        politeness: Politeness,
        store: BudgetStore,
        *,
        rate: float | None = None,
        sleep: Callable[[float], object] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(politeness, store, rate)
        self._sleep = sleep
        self._rng = rng
        self.requests = 0

    def acquire(self) -> None:
        """Block until a request may start."""
        late = 0
        while True:
            at = self.book()
            wait = at - time.monotonic()
            if wait > 0:
                self._sleep(wait)
                # A 429 somewhere while this start waited: its slot is given up and a new
                # one booked (after the pause), so that the waiting starts never burst.
                if self.store.paused_for() > 0:
                    continue
            if self.on_time(at, late):
                return
            late += 1

    def observe(self, result: LookupResult) -> None:
        if self.count(result):
            self.store.observe(self.politeness.pace, result.http_status, result.retry_after)

    def look_up(self, lookup: Callable[[], LookupResult]) -> Attempted:
        """One look-up with the retry policy; every request waits for the budget."""

        def attempt() -> LookupResult:
            self.acquire()
            result = lookup()
            self.requests += 1
            self.observe(result)
            return result

        return with_retries_sync(attempt, self.politeness.retry, wait=self._sleep, rng=self._rng)


class AsyncAsker(_Steps):
    """For asyncio workers: the same steps; the budget's blocking calls run on one thread of
    their own, so bookings are made one at a time, in the order the workers asked."""

    def __init__(
        self, politeness: Politeness, store: BudgetStore, *, rate: float | None = None
    ) -> None:
        super().__init__(politeness, store, rate)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="register-budget")
        self._turn: asyncio.Lock | None = None

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args))

    async def acquire(self) -> None:
        """Wait for the right to start one request. Cancelling it gives the slot up.

        The run's workers take turns (first come, first served): a process holds one booked
        start at a time, and books the next once the previous has gone, as a blocking
        ``Asker`` does."""
        if self._turn is None:
            self._turn = asyncio.Lock()
        async with self._turn:
            await self._acquire()

    async def _acquire(self) -> None:
        late = 0
        while True:
            at = await self._call(self.book)
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                if await self._call(self.store.paused_for) > 0:  # a new slot, as Asker
                    continue
            if self.on_time(at, late):
                return
            late += 1

    async def observe(self, result: LookupResult) -> None:
        if self.count(result):
            await self._call(
                self.store.observe, self.politeness.pace, result.http_status, result.retry_after
            )

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.store.close()
