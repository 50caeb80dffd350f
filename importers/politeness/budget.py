"""The register budget: ``HPCSA_MAX_RATE`` requests per second in total, for every process
and host that asks the register, however many runs and commands are asking at once.

The rules are pure functions of a small state (``BudgetState``) and the settings
(``Pace``); a store keeps that state where every asker sees it and changes it atomically:

* ``DatabaseStore``: one row of the ``register_budget`` table, changed under the row's
  write lock (an UPDATE first: PostgreSQL's row lock, SQLite's write lock). On PostgreSQL
  the instants are the database server's clock, so hosts whose clocks disagree still share
  one budget; SQLite is one host, whose clock all its processes share.
* ``RedisStore`` (``REGISTER_BUDGET_URL=redis://...``): one key, changed in a WATCH/MULTI
  transaction, on the Redis server's clock.
* ``MemoryStore``: this process only (``REGISTER_BUDGET_URL=memory:``, for tests and a
  laptop; never shared).

Taking a slot books the next instant a request may start and returns how long to wait for
it. Two rules place every start:

* spacing: at least ``1 / current rate`` seconds after the previous start (a bucket holding a
  single token, so it never saves up a burst), and
* the window: never more than ``floor(HPCSA_MAX_RATE)`` starts (at least one) in any window of
  ``1 + HPCSA_RATE_WINDOW_MARGIN`` seconds, so that network jitter never lets the register
  count more than ``HPCSA_MAX_RATE`` requests in one second.

A 429 slows everyone, not one process: the shared rate is halved (at most once a second,
down to ``HPCSA_RATE_FLOOR``) and climbs back linearly to the maximum over
``HPCSA_RATE_RECOVERY`` (AIMD); a ``Retry-After`` (at most ``HPCSA_RETRY_AFTER_MAX``) pauses
every start, everywhere, until it has passed.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import Column, Float, String, Table, Text, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from directory.extensions import db

BUDGET_NAME = "hpcsa"

register_budget = Table(
    "register_budget",
    db.metadata,
    Column("name", String(40), primary_key=True),
    Column("state", Text, nullable=False),  # BudgetState as JSON
    Column("updated_at", Float, nullable=True),  # the store's clock, epoch seconds
)


class BudgetUnavailable(RuntimeError):
    """The shared budget cannot be reached: nothing may be asked until it can."""


@dataclass(frozen=True)
class Pace:
    """The budget's settings."""

    max_rate: float
    floor: float = 0.1
    recovery_seconds: float = 60.0
    window_margin: float = 0.25
    max_pause: float = 300.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_rate) and self.max_rate > 0):
            raise ValueError(f"the rate must be a positive number, not {self.max_rate!r}")
        if not (math.isfinite(self.floor) and self.floor > 0):
            raise ValueError("the rate floor must be a number above 0")
        if not self.window_margin >= 0:
            raise ValueError("the window margin cannot be negative")

    @property
    def lowest(self) -> float:
        return min(self.floor, self.max_rate)

    @property
    def window(self) -> float:
        return 1.0 + self.window_margin

    @property
    def window_cap(self) -> int:
        return max(1, math.floor(self.max_rate + 1e-9))


@dataclass
class BudgetState:
    """What every asker shares: the rate in force, the pause, the latest starts booked."""

    rate: float | None = None  # None: the maximum
    rate_at: float = 0.0  # when ``rate`` was last brought up to date
    last_decrease: float | None = None
    paused_until: float = 0.0
    starts: list[float] = field(default_factory=list)  # ascending, the latest window_cap
    rate_limited: int = 0  # 429s seen by anyone

    @classmethod
    def loads(cls, raw: str | bytes | None) -> BudgetState:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(
                rate=None if data.get("rate") is None else float(data["rate"]),
                rate_at=float(data.get("rate_at", 0.0)),
                last_decrease=(
                    None if data.get("last_decrease") is None else float(data["last_decrease"])
                ),
                paused_until=float(data.get("paused_until", 0.0)),
                starts=[float(x) for x in data.get("starts", [])],
                rate_limited=int(data.get("rate_limited", 0)),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()  # unreadable: start afresh (the worst case is one full-rate second)

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    # --- the rules ----------------------------------------------------------------------
    def current_rate(self, pace: Pace, now: float) -> float:
        """The rate in force at ``now``, recovered linearly since it was last cut."""
        rate = (
            pace.max_rate if self.rate is None else min(max(self.rate, pace.lowest), pace.max_rate)
        )
        elapsed = now - self.rate_at
        if rate < pace.max_rate and elapsed > 0:
            if pace.recovery_seconds <= 0:
                rate = pace.max_rate
            else:
                rate = min(pace.max_rate, rate + pace.max_rate * elapsed / pace.recovery_seconds)
        if now >= self.rate_at:
            self.rate, self.rate_at = (None if rate >= pace.max_rate else rate), now
        return rate

    def next_start(self, pace: Pace, now: float) -> float:
        """The earliest instant a request may start (without booking it)."""
        rate = self.current_rate(pace, now)
        at = max(now, self.paused_until)
        if self.starts:
            at = max(at, self.starts[-1] + 1.0 / rate)
        if len(self.starts) >= pace.window_cap:
            at = max(at, self.starts[-pace.window_cap] + pace.window)
        return at

    def take(self, pace: Pace, now: float, not_before: float | None = None) -> float:
        """Book the next start (never before ``not_before``) and return its instant."""
        at = self.next_start(pace, now)
        if not_before is not None:
            at = max(at, not_before)
        self.starts.append(at)
        del self.starts[: -pace.window_cap]
        return at

    def observe(
        self, pace: Pace, now: float, http_status: int | None, retry_after: float | None
    ) -> None:
        """Learn from one response: a 429 halves the rate; any Retry-After pauses every start."""
        if retry_after is not None and retry_after > 0:
            self.paused_until = max(self.paused_until, now + min(retry_after, pace.max_pause))
        if http_status != 429:
            return
        self.rate_limited += 1
        rate = self.current_rate(pace, now)
        # Several look-ups in flight usually meet the same 429: slow down once for them all.
        if self.last_decrease is not None and 0 <= now - self.last_decrease < 1.0:
            return
        self.last_decrease = now
        self.rate, self.rate_at = max(pace.lowest, rate / 2), now


class BudgetStore:
    """Where the state lives. Every method is blocking (call it off the event loop).

    Instants handed to and from a store are this process's ``time.monotonic()``; a store
    turns them into its own clock's (the database's or Redis's) with a reading of both
    clocks taken together, so only durations cross between hosts, never clock readings.
    """

    shared = True

    def take(self, pace: Pace, not_before: float | None = None) -> float:
        """Book a start, never before ``not_before``; return its instant (monotonic)."""
        raise NotImplementedError

    def observe(self, pace: Pace, http_status: int | None, retry_after: float | None) -> None:
        raise NotImplementedError

    def paused_for(self) -> float:
        """Seconds until the shared pause ends (0 or less: no pause)."""
        raise NotImplementedError

    def rate(self, pace: Pace) -> float:
        """The shared rate in force now."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class MemoryStore(BudgetStore):
    """This process only."""

    shared = False

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.state = BudgetState()
        self._clock = clock
        self._lock = threading.Lock()

    def take(self, pace: Pace, not_before: float | None = None) -> float:
        with self._lock:
            return self.state.take(pace, self._clock(), not_before)

    def observe(self, pace: Pace, http_status: int | None, retry_after: float | None) -> None:
        with self._lock:
            self.state.observe(pace, self._clock(), http_status, retry_after)

    def paused_for(self) -> float:
        with self._lock:
            return self.state.paused_until - self._clock()

    def rate(self, pace: Pace) -> float:
        with self._lock:
            return self.state.current_rate(pace, self._clock())


def _take(
    pace: Pace, not_before: float | None, state: BudgetState, now: float, local: float
) -> float:
    """Book a start in a shared store whose clock reads ``now`` while ours reads ``local``."""
    offset = now - local  # the store's clock minus ours
    at = state.take(pace, now, None if not_before is None else not_before + offset)
    return at - offset


class DatabaseStore(BudgetStore):
    """One row of ``register_budget``, changed under its write lock."""

    def __init__(self, engine: Engine, name: str = BUDGET_NAME) -> None:
        self.engine = engine
        self.name = name
        self._server_clock = engine.dialect.name == "postgresql"

    def _now(self, connection) -> tuple[float, float]:
        """(the store's clock, this process's monotonic clock), read together."""
        if self._server_clock:  # the server's clock: hosts' clocks may disagree
            before = time.monotonic()
            server = connection.execute(
                text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")
            ).scalar()
            return float(server), (before + time.monotonic()) / 2
        return time.time(), time.monotonic()  # SQLite: one host, one clock

    def _change(self, fn) -> Any:
        """Run ``fn(state, now, local)`` under the row's write lock and save the state; a
        database busy beyond its own timeout (another process's long write on SQLite) is
        tried twice more before the budget counts as unavailable."""
        for attempt in range(3):
            try:
                return self._change_once(fn)
            except BudgetUnavailable as exc:
                busy = (
                    isinstance(exc.__cause__, OperationalError)
                    and "locked" in str(exc.__cause__).lower()
                )
                if not busy or attempt == 2:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    def _change_once(self, fn) -> Any:
        lock = text("UPDATE register_budget SET name = name WHERE name = :name")
        try:
            with self.engine.begin() as connection:
                # The UPDATE comes first: it takes the lock before anything is read (a SQLite
                # read transaction could not be upgraded to a write once another had written).
                if connection.execute(lock, {"name": self.name}).rowcount == 0:
                    connection.execute(
                        text(
                            "INSERT INTO register_budget (name, state) VALUES (:name, '{}') "
                            "ON CONFLICT (name) DO NOTHING"
                        ),
                        {"name": self.name},
                    )
                    connection.execute(lock, {"name": self.name})
                raw = connection.execute(
                    text("SELECT state FROM register_budget WHERE name = :name"),
                    {"name": self.name},
                ).scalar()
                state = BudgetState.loads(raw)
                now, local = self._now(connection)
                value = fn(state, now, local)
                connection.execute(
                    text(
                        "UPDATE register_budget SET state = :state, updated_at = :now "
                        "WHERE name = :name"
                    ),
                    {"state": state.dumps(), "now": now, "name": self.name},
                )
                return value
        except SQLAlchemyError as exc:
            message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise BudgetUnavailable(
                f"the register budget in the database cannot be used: {message} "
                "(is the database migrated? `flask db upgrade`)"
            ) from exc

    def _read(self) -> tuple[BudgetState, float]:
        try:
            with self.engine.connect() as connection:
                raw = connection.execute(
                    text("SELECT state FROM register_budget WHERE name = :name"),
                    {"name": self.name},
                ).scalar()
                return BudgetState.loads(raw), self._now(connection)[0]
        except SQLAlchemyError as exc:
            raise BudgetUnavailable(f"the register budget cannot be read: {exc}") from exc

    def take(self, pace: Pace, not_before: float | None = None) -> float:
        return self._change(partial(_take, pace, not_before))

    def observe(self, pace: Pace, http_status: int | None, retry_after: float | None) -> None:
        if http_status != 429 and not (retry_after and retry_after > 0):
            return  # nothing to learn: no write
        self._change(lambda state, now, _local: state.observe(pace, now, http_status, retry_after))

    def paused_for(self) -> float:
        state, now = self._read()
        return state.paused_until - now

    def rate(self, pace: Pace) -> float:
        state, now = self._read()
        return state.current_rate(pace, now)


class RedisStore(BudgetStore):
    """One Redis key, changed in a WATCH/MULTI transaction, on the Redis server's clock."""

    def __init__(self, url: str, name: str = BUDGET_NAME) -> None:
        try:
            import redis
        except ImportError:  # pragma: no cover - an installation problem, said plainly
            raise BudgetUnavailable(
                "REGISTER_BUDGET_URL names Redis but the redis package is not installed "
                "(pip install 'hpcsa-directory[redis]')"
            ) from None
        self._redis = redis
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.key = f"register-budget:{name}"
        self.url = url

    def _now(self, pipe) -> tuple[float, float]:
        before = time.monotonic()
        seconds, micros = pipe.time()
        return seconds + micros / 1e6, (before + time.monotonic()) / 2

    def _change(self, fn) -> Any:
        try:
            with self.client.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(self.key)
                        state = BudgetState.loads(pipe.get(self.key))
                        now, local = self._now(pipe)
                        value = fn(state, now, local)
                        pipe.multi()
                        pipe.set(self.key, state.dumps(), ex=86400)
                        pipe.execute()
                        return value
                    except self._redis.WatchError:
                        continue  # another asker changed it first: read again
        except self._redis.RedisError as exc:
            raise BudgetUnavailable(
                f"the register budget at {self.url} cannot be used: {exc}"
            ) from exc

    def _read(self) -> tuple[BudgetState, float]:
        try:
            raw = self.client.get(self.key)
            seconds, micros = self.client.time()
        except self._redis.RedisError as exc:
            raise BudgetUnavailable(
                f"the register budget at {self.url} cannot be read: {exc}"
            ) from exc
        return BudgetState.loads(raw), seconds + micros / 1e6

    def take(self, pace: Pace, not_before: float | None = None) -> float:
        return self._change(partial(_take, pace, not_before))

    def observe(self, pace: Pace, http_status: int | None, retry_after: float | None) -> None:
        if http_status != 429 and not (retry_after and retry_after > 0):
            return
        self._change(lambda state, now, _local: state.observe(pace, now, http_status, retry_after))

    def paused_for(self) -> float:
        state, now = self._read()
        return state.paused_until - now

    def rate(self, pace: Pace) -> float:
        state, now = self._read()
        return state.current_rate(pace, now)

    def close(self) -> None:
        self.client.close()


def check_budget_url(url: str | None) -> None:
    """Raise ValueError, naming the setting, unless ``url`` names a store."""
    if url and not url.startswith(("redis://", "rediss://", "unix://")) and url != "memory:":
        raise ValueError(
            "REGISTER_BUDGET_URL must be empty (the database), redis://host:port/db or "
            f"memory: (this process only), not {url!r}"
        )


def store_for(url: str | None, engine_factory) -> BudgetStore:
    """The store ``REGISTER_BUDGET_URL`` names: None (the database), redis://..., memory:."""
    check_budget_url(url)
    if not url:
        return DatabaseStore(engine_factory())
    if url == "memory:":
        return MemoryStore()
    return RedisStore(url)
