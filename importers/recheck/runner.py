"""One recheck run: claim due registrations, look them up politely, record every result.

The shape of a run (all in one asyncio loop, database work on one worker thread):

* a producer claims due work a small batch at a time (``claims.Claimer``) into a bounded
  queue, so the due set is streamed and never loaded whole;
* ``concurrency`` workers each take one registration at a time, so at most that many
  look-ups are in flight, over one pooled ``AsyncHpcsaClient``; before every request they
  wait for the register budget shared by every process and host, and the run's own
  ``--rate`` (``importers.politeness``); failures are retried with the one retry policy
  (``politeness.retry``); every request's outcome feeds the ``CircuitBreaker``;
* each result is applied through ``recording.apply_answer`` (the registration core's rules,
  on the row as it is then: errors never move a status, a not-found needs confirmation)
  and committed on its own, in the
  same transaction that releases the registration's lease, so a SIGKILL loses at most the
  look-ups in flight and never half-writes a registration;
* a not-found for a registration the register had confirmed is first held by the
  ``MassNotFoundGuard`` (its lease kept): applied once the guard has seen enough later
  answers to know the register is not answering "no rows" for everything, or recorded as
  a failure when it has (the breaker opens with that reason); the guard starts from the
  answers earlier runs recorded, so a short run still sees the pattern;
* after a commit that changed a status, the notifications outbox is asked to deliver
  (``directory.notifications.deliver_pending``, when that package is present) on a
  separate thread; a failure there is logged and never fails the run. The search index
  follows the database by itself (its outbox is written on flush, applied after commit).

A stop (SIGTERM/SIGINT, ``--max-duration``, an open breaker) starts no new request: the
requests in flight finish and are recorded, retries waiting are abandoned, and every lease
still held is released so the registrations stay due for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from directory.extensions import db
from directory.notifications import deliver_pending
from directory.registry.lookups import LookupResult
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import apply_answer
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow
from directory.util.durations import parse_duration
from importers.mass_not_found import MassNotFoundGuard, previously_confirmed, recent_answers
from importers.politeness.asking import AsyncAsker, Politeness
from importers.politeness.retry import Attempted, with_retries
from importers.recheck.breaker import CircuitBreaker
from importers.recheck.claims import Claim, Claimer, count_due, make_owner
from importers.recheck.progress import NullProgress, Progress
from importers.sources.hpcsa import AsyncHpcsaClient

log = logging.getLogger("importers.recheck")
R = TypeVar("R")

EXIT_OK = 0
EXIT_BREAKER = 3

# Stop reasons.
DONE = "done"
LIMIT = "limit"
MAX_DURATION = "max_duration"
SIGNAL = "signal"
BREAKER = "breaker"
DATABASE = "database_error"

# The most results written in one transaction (only when that many are waiting).
WRITE_BATCH = 16


@dataclass(frozen=True)
class RecheckOptions:
    """Everything one run needs to know: settings, overridden by the command line."""

    concurrency: int = 4
    rate: float = 2.0
    limit: int | None = None
    max_duration: float | None = None
    include_not_due: bool = False
    lease: timedelta = timedelta(minutes=10)
    claim_batch: int = 16
    politeness: Politeness | None = None  # None: the app's settings
    breaker_consecutive: int = 20
    breaker_window: int = 50
    breaker_ratio: float = 0.5
    accept_mass_not_found: bool = False

    def __post_init__(self) -> None:
        """Refuse nonsense early, naming the setting (options are checked by the CLI)."""
        problems = []
        if self.concurrency < 1:
            problems.append("RECHECK_CONCURRENCY must be at least 1")
        if not (math.isfinite(self.rate) and self.rate > 0):
            problems.append("RECHECK_RATE must be a number above 0")
        if self.limit is not None and self.limit < 1:
            problems.append("the limit must be at least 1")
        if self.max_duration is not None and not self.max_duration > 0:
            problems.append("the maximum duration must be longer than zero")
        if self.lease <= timedelta(0):
            problems.append("RECHECK_LEASE must be longer than zero")
        if self.claim_batch < 1:
            problems.append("RECHECK_CLAIM_BATCH must be at least 1")
        try:
            CircuitBreaker(self.breaker_consecutive, self.breaker_window, self.breaker_ratio)
        except ValueError as exc:
            problems.append(f"RECHECK_BREAKER_*: {exc}")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_config(cls, config: Mapping, **overrides: Any) -> RecheckOptions:
        options = cls(
            concurrency=int(config["RECHECK_CONCURRENCY"]),
            rate=float(config["RECHECK_RATE"]),
            lease=parse_duration(config["RECHECK_LEASE"]),
            claim_batch=int(config["RECHECK_CLAIM_BATCH"]),
            politeness=Politeness.from_config(config),
            breaker_consecutive=int(config["RECHECK_BREAKER_CONSECUTIVE"]),
            breaker_window=int(config["RECHECK_BREAKER_WINDOW"]),
            breaker_ratio=float(config["RECHECK_BREAKER_RATIO"]),
        )
        return replace(options, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class LookupReport:
    """What happened to one registration in this run (one ``--json`` line)."""

    registration_number: str
    outcome: str  # ok | not_found | error | skipped
    # The history row's effect, why nothing was recorded, or "withheld": a not-found the
    # mass not-found guard recorded as a failure (the register looked broken).
    effect: str
    from_status: str | None
    to_status: str | None
    attempts: int
    error: str | None = None
    http_status: int | None = None
    duration_ms: int | None = None  # of the last request

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "lookup",
            "registration_number": self.registration_number,
            "outcome": self.outcome,
            "effect": self.effect,
            "from": self.from_status,
            "to": self.to_status,
            "attempts": self.attempts,
            "error": self.error,
            "http_status": self.http_status,
            "duration_ms": self.duration_ms,
        }


@dataclass
class RunSummary:
    started_at: datetime
    checked: int = 0  # results recorded (answers and failures)
    unchanged: int = 0
    changed: Counter = field(default_factory=Counter)  # "active->suspended" -> n
    not_found: int = 0  # answers "no such number" (confirmed or pending)
    pending_not_found: int = 0  # of those, awaiting confirmation
    errors: int = 0  # recorded failures (status untouched)
    withheld: int = 0  # not-founds recorded as failures: the mass not-found guard tripped
    mass_not_found: bool = False  # the breaker opened because of the guard
    skipped: int = 0  # claimed, but released unchecked (stop, breaker, lease lost)
    requests: int = 0
    rate_limited: int = 0  # 429 answers
    duration: float = 0.0
    stop_reason: str = DONE
    breaker_reason: str | None = None
    remaining_due: int | None = None
    owner: str = ""

    @property
    def changed_total(self) -> int:
        return sum(self.changed.values())

    @property
    def lookup_rate(self) -> float:
        return self.checked / self.duration if self.duration > 0 else 0.0

    @property
    def request_rate(self) -> float:
        return self.requests / self.duration if self.duration > 0 else 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_BREAKER if self.stop_reason == BREAKER else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "summary",
            "checked": self.checked,
            "unchanged": self.unchanged,
            "changed": dict(sorted(self.changed.items())),
            "changed_total": self.changed_total,
            "not_found": self.not_found,
            "pending_not_found": self.pending_not_found,
            "errors": self.errors,
            "withheld": self.withheld,
            "skipped": self.skipped,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "duration_s": round(self.duration, 3),
            "lookups_per_s": round(self.lookup_rate, 3),
            "requests_per_s": round(self.request_rate, 3),
            "stop_reason": self.stop_reason,
            "breaker": self.breaker_reason,
            "mass_not_found": self.mass_not_found,
            "remaining_due": self.remaining_due,
            "started_at": self.started_at.isoformat(),
            "owner": self.owner,
        }

    def add(self, report: LookupReport) -> None:
        if report.outcome == "skipped":
            self.skipped += 1
            return
        self.checked += 1
        if report.effect == "withheld":
            self.withheld += 1
            return
        if report.outcome == Outcome.ERROR:
            self.errors += 1
            return
        if report.outcome == Outcome.NOT_FOUND:
            self.not_found += 1
        if report.effect == "pending_not_found":
            self.pending_not_found += 1
        elif report.effect == "changed":
            self.changed[f"{report.from_status}->{report.to_status}"] += 1
        else:
            self.unchanged += 1


@dataclass(frozen=True)
class Pending:
    """One claimed registration's result, on its way to the database."""

    claim: Claim
    result: LookupResult
    attempts: int
    withheld_as_failure: bool = False

    def withheld(self, guard: MassNotFoundGuard) -> Pending:
        """This not-found as the failure the tripped guard records it as."""
        return replace(self, result=guard.as_failure(self.result), withheld_as_failure=True)


class PostCommitHooks:
    """Calls ``directory.notifications.deliver_pending()`` after commits.

    Runs on its own thread so a slow webhook never holds up the look-ups; calls never
    overlap and never pile up (one queued at most); any failure is logged and forgotten:
    the outbox keeps what was not sent for the next call.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._deliver: Callable[[], object] = deliver_pending
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recheck-hooks")
        self._queued = False
        self._lock = threading.Lock()
        self.calls = 0
        self.failures = 0

    def kick(self) -> None:
        with self._lock:
            if self._queued:
                return
            self._queued = True
        self._executor.submit(self._call)

    def _call(self) -> None:
        with self._lock:
            self._queued = False
        self.calls += 1
        try:
            with self.app.app_context():
                self._deliver()
        except Exception as exc:
            self.failures += 1
            log.warning("delivering notifications failed (they stay queued): %s", exc)

    async def close(self, *, final_call: bool) -> None:
        """Make one last call (when asked) and wait for the calls queued to finish."""
        if final_call:
            self.kick()
        await asyncio.get_running_loop().run_in_executor(
            None, partial(self._executor.shutdown, wait=True)
        )


class RecheckRun:
    """One run. ``await run()`` returns its summary; ``request_stop`` ends it cleanly."""

    def __init__(
        self,
        app: Flask,
        options: RecheckOptions,
        *,
        progress: Progress | None = None,
        on_lookup: Callable[[LookupReport], None] | None = None,
        owner: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.app = app
        self.options = options
        self.progress = progress or NullProgress()
        self.on_lookup = on_lookup
        self.owner = owner or make_owner()
        self.policy = RegistryPolicy.from_config(app.config)
        self.rng = rng or random.Random()
        self.breaker = CircuitBreaker(
            options.breaker_consecutive, options.breaker_window, options.breaker_ratio
        )
        # Used on the event loop only (never on the database thread, whose work may be
        # retried when the database is busy). It starts from the answers earlier runs saw.
        self.guard: MassNotFoundGuard[Pending] = MassNotFoundGuard(
            accept=options.accept_mass_not_found
        )
        self.politeness = options.politeness or Politeness.from_config(app.config)
        with app.app_context():
            engine = db.engine
            self.guard.seed(recent_answers(db.session, self.guard.window))
        self.asker = AsyncAsker(
            self.politeness, self.politeness.store(lambda: engine), rate=options.rate
        )
        self.summary = RunSummary(started_at=utcnow(), owner=self.owner)
        self._stop: asyncio.Event | None = None
        self._stop_reason: str | None = None
        self._workers: list[asyncio.Task] = []
        self._db_executor: ThreadPoolExecutor | None = None
        self._running_low = asyncio.Event()
        self._low_water = max(options.concurrency // 2, 1)  # claim more below this many

    # --- stopping ---------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stop_reason is not None

    def request_stop(self, reason: str = SIGNAL) -> None:
        """Start no new request; finish or release what is held. Safe to call repeatedly."""
        if self._stop_reason is None:
            self._stop_reason = reason
            if reason != BREAKER:
                log.info("recheck: stopping (%s); finishing the look-ups in flight", reason)
        if self._stop is not None:
            self._stop.set()

    def abort(self) -> None:
        """Stop at once: cancel the look-ups in flight too (their leases are released)."""
        self.request_stop(SIGNAL)
        for task in self._workers:
            task.cancel()

    async def _until_stop(self, awaitable: Awaitable[R]) -> tuple[bool, R | None]:
        """Await ``awaitable`` unless a stop comes first (then cancel it): (finished, value)."""
        assert self._stop is not None
        task = asyncio.ensure_future(awaitable)
        if self._stop.is_set():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return False, None
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if task.done():
            return True, task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False, None

    # --- database work, on one thread -----------------------------------------------
    async def _db(self, fn: Callable[..., R], *args: Any) -> R:
        assert self._db_executor is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_executor, partial(self._in_app, fn, *args))

    def _in_app(self, fn: Callable[..., R], *args: Any) -> R:
        """Run ``fn(session, *args)`` in a fresh app context (a fresh session), retrying
        briefly when the database is busy (another process holds SQLite's write lock)."""
        for attempt in range(6):
            with self.app.app_context():
                try:
                    return fn(db.session, *args)
                except OperationalError as exc:
                    db.session.rollback()
                    message = str(exc).lower()
                    if attempt == 5 or not ("locked" in message or "deadlock" in message):
                        raise
                    log.info("recheck: database busy, retrying: %s", exc.orig)
            time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    # --- the run ------------------------------------------------------------------------
    async def run(self) -> RunSummary:
        self._stop = asyncio.Event()
        if self._stop_reason is not None:
            self._stop.set()
        started = time.monotonic()
        self.summary.started_at = utcnow()
        claimer = Claimer(
            self.owner,
            self.options.lease,
            run_started=self.summary.started_at,
            include_not_due=self.options.include_not_due,
        )
        self._db_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recheck-db")
        hooks = PostCommitHooks(self.app)
        client = AsyncHpcsaClient.from_config(
            self.app.config, max_connections=self.options.concurrency
        )
        loop = asyncio.get_running_loop()
        deadline = None
        if self.options.max_duration is not None:
            deadline = loop.call_later(self.options.max_duration, self.request_stop, MAX_DURATION)
        # Unbounded, but the producer only claims when it runs low: at most about
        # claim_batch + concurrency registrations are held at any time.
        queue: asyncio.Queue[Claim | None] = asyncio.Queue()
        # Results waiting to be written: bounded, so look-ups never run ahead of the database.
        results: asyncio.Queue[tuple[Claim, Attempted] | None] = asyncio.Queue(
            maxsize=self.options.concurrency
        )
        producer = renewer = writer = None
        try:
            total = await self._db(claimer.count_candidates)
            if self.options.limit is not None:
                total = min(total, self.options.limit)
            self.progress.start(total)
            producer = asyncio.create_task(self._produce(claimer, queue))
            renewer = asyncio.create_task(self._renew(claimer))
            writer = asyncio.create_task(self._write(claimer, results, hooks))
            self._workers = [
                asyncio.create_task(self._work(queue, results, writer, client))
                for _ in range(self.options.concurrency)
            ]
            outcomes = await asyncio.gather(*self._workers, return_exceptions=True)
            if not writer.done():
                await asyncio.wait(
                    {asyncio.ensure_future(results.put(None)), writer},
                    return_when=asyncio.FIRST_COMPLETED,
                )
                await asyncio.wait({writer})
            writer.result()  # a database failure while writing ends the run with it
            for outcome in outcomes:
                if isinstance(outcome, BaseException) and not isinstance(
                    outcome, asyncio.CancelledError
                ):
                    raise outcome
            if producer.done() and not producer.cancelled() and producer.exception():
                raise producer.exception()  # type: ignore[misc]
        finally:
            if deadline is not None:
                deadline.cancel()
            for task in (producer, renewer, writer):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            try:
                released = await self._db(claimer.release)
                self.summary.skipped += released
            except Exception as exc:  # the leases expire on their own
                log.warning("recheck: could not release leases (they expire): %s", exc)
            await client.aclose()
            await hooks.close(final_call=self.summary.changed_total > 0 or hooks.calls > 0)
            try:
                self.summary.remaining_due = await self._db(count_due)
            except Exception:
                self.summary.remaining_due = None
            self._db_executor.shutdown(wait=True)
            await asyncio.get_running_loop().run_in_executor(None, self.asker.close)
            self.summary.duration = time.monotonic() - started
            self.summary.rate_limited = self.asker.rate_limited
            self.summary.stop_reason = self._stop_reason or DONE
            self.summary.breaker_reason = self.breaker.reason
            self.progress.finish(self.summary)
        return self.summary

    async def _produce(self, claimer: Claimer, queue: asyncio.Queue[Claim | None]) -> None:
        """Claim small batches while there is work, room under --limit, and no stop."""
        claimed = 0
        limit = self.options.limit
        try:
            while not self.stopping:
                want = self.options.claim_batch
                if limit is not None:
                    want = min(want, limit - claimed)
                    if want <= 0:
                        break
                # Wait until the workers run low, so claimed work is never held longer
                # than needed (others' runs may want it).
                while queue.qsize() > self._low_water and not self.stopping:
                    self._running_low.clear()
                    await self._until_stop(self._running_low.wait())
                if self.stopping:
                    break
                batch = await self._db(claimer.claim, want)
                if not batch:
                    break
                claimed += len(batch)
                for item in batch:
                    queue.put_nowait(item)
        finally:
            # Tell every worker there is nothing more.
            for _ in range(self.options.concurrency):
                queue.put_nowait(None)

    async def _renew(self, claimer: Claimer) -> None:
        """Keep this run's leases alive while it works (a third of the lease length)."""
        every = max(claimer.lease.total_seconds() / 3, 0.5)
        while True:
            await asyncio.sleep(every)
            try:
                await self._db(claimer.renew)
            except Exception as exc:
                log.warning("recheck: renewing leases failed: %s", exc)

    async def _work(
        self,
        queue: asyncio.Queue[Claim | None],
        results: asyncio.Queue[tuple[Claim, Attempted] | None],
        writer: asyncio.Task,
        client: AsyncHpcsaClient,
    ) -> None:
        """One look-up at a time: take a registration, ask the register, hand the result
        to the writer (waiting when it is behind), take the next."""
        while not self.stopping:
            got, item = await self._until_stop(queue.get())
            if not got or item is None:
                return
            if queue.qsize() <= self._low_water:
                self._running_low.set()
            attempted = await self._look_up(item, client)
            if attempted.abandoned:
                self._report(
                    LookupReport(
                        item.registration_number,
                        "skipped",
                        self._stop_reason or "abandoned",
                        None,
                        None,
                        attempted.attempts,
                    ),
                    count=False,  # released (and counted) with the run's other leases
                )
                continue
            handing = asyncio.ensure_future(results.put((item, attempted)))
            await asyncio.wait({handing, writer}, return_when=asyncio.FIRST_COMPLETED)
            if not handing.done():  # the writer failed: nothing more can be recorded
                handing.cancel()
                return

    async def _write(
        self,
        claimer: Claimer,
        results: asyncio.Queue[tuple[Claim, Attempted] | None],
        hooks: PostCommitHooks,
    ) -> None:
        """Record results as they come: each on its own, or the few already waiting in one
        small transaction (never more than --concurrency). Every result is written, even
        after a stop: it is the register's answer, already paid for. Not-founds for
        registrations the register had confirmed go through the mass not-found guard first."""
        while True:
            first = await results.get()
            if first is None:
                # The run ended without a trip: the guard judged every answer it holds.
                await self._record(claimer, self.guard.release_all(), hooks)
                return
            batch = [first]
            while len(batch) < WRITE_BATCH:
                try:
                    more = results.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if more is None:
                    results.put_nowait(None)  # seen after this batch
                    break
                batch.append(more)
            pending = [
                Pending(item, attempted.result, attempted.attempts)
                for item, attempted in batch
                if attempted.result is not None
            ]
            try:
                confirmed = await self._db(self._previously_confirmed, pending)
            except Exception as exc:
                log.error("recheck: reading registrations failed, stopping: %s", exc)
                self.request_stop(DATABASE)
                raise
            await self._record(claimer, self._judge(pending, confirmed), hooks)

    def _judge(self, pending: list[Pending], confirmed: set[int]) -> list[Pending]:
        """What to write now: answers that need no judging, the guard's releases, and (once
        it trips) every not-found it held, as a failure."""
        guard = self.guard
        now: list[Pending] = []
        for one in pending:
            if one.claim.id not in confirmed or one.result.outcome is Outcome.ERROR:
                now.append(one)
            elif one.result.outcome is Outcome.OK and one.result.rows:
                now.append(one)
                now.extend(guard.found())
            elif guard.tripped:
                now.append(one.withheld(guard))
            else:
                now.extend(guard.not_found(one))
        if guard.tripped:
            now.extend(held.withheld(guard) for held in guard.withhold())
            if not self.breaker.is_open:
                self.breaker.trip(guard.reason or "mass not-found")
                self.summary.mass_not_found = True
                log.error("recheck: circuit breaker open: %s", self.breaker.reason)
            self.request_stop(BREAKER)
        return now

    async def _record(
        self, claimer: Claimer, pending: list[Pending], hooks: PostCommitHooks
    ) -> None:
        if not pending:
            return
        try:
            reports = await self._db(self._apply, claimer, pending)
        except Exception as exc:
            log.error("recheck: recording results failed, stopping: %s", exc)
            self.request_stop(DATABASE)
            raise
        for report in reports:
            self._report(report)
        if any(report.effect == "changed" for report in reports):
            hooks.kick()

    async def _look_up(self, item: Claim, client: AsyncHpcsaClient) -> Attempted:
        async def attempt() -> LookupResult | None:
            if self.stopping:
                return None
            permitted, _ = await self._until_stop(self.asker.acquire())
            if not permitted or self.stopping:
                return None
            result = await client.lookup(item.registration_number)
            self.summary.requests += 1
            await self.asker.observe(result)
            self.breaker.record(result.is_answer, result.error)
            if self.breaker.is_open and self._stop_reason is None:
                log.error("recheck: circuit breaker open: %s", self.breaker.reason)
                self.request_stop(BREAKER)
            return result

        async def wait(seconds: float) -> bool:
            finished, _ = await self._until_stop(asyncio.sleep(seconds))
            return finished

        return await with_retries(attempt, self.politeness.retry, wait=wait, rng=self.rng)

    @staticmethod
    def _previously_confirmed(session: Session, pending: list[Pending]) -> set[int]:
        """The ids among these whose not-found would need confirmation (DB thread, reads)."""
        ids = [p.claim.id for p in pending if p.result.outcome is not Outcome.ERROR]
        if not ids:
            return set()
        rows = session.execute(
            select(Practitioner.id, Practitioner.status, Practitioner.verified_at).where(
                Practitioner.id.in_(ids)
            )
        ).all()
        return {row.id for row in rows if previously_confirmed(row)}

    def _apply(
        self, session: Session, claimer: Claimer, batch: list[Pending]
    ) -> list[LookupReport]:
        """Record results (DB thread): for each, release its lease and apply it through
        ``apply_answer``; one commit, so each registration is written whole or not at all."""
        reports = [self._apply_one(session, claimer, one) for one in batch]
        session.commit()
        return reports

    def _apply_one(self, session: Session, claimer: Claimer, one: Pending) -> LookupReport:
        item, result = one.claim, one.result
        if not claimer.settle(session, item.id):  # changed nothing: another run holds it
            return LookupReport(
                item.registration_number, "skipped", "lease_lost", None, None, one.attempts
            )
        practitioner = session.get(Practitioner, item.id)
        if practitioner is None:
            return LookupReport(
                item.registration_number, "skipped", "gone", None, None, one.attempts
            )
        effect = apply_answer(session, item.registration_number, result, self.policy, rng=self.rng)
        if effect is None:  # pragma: no cover - only a number that has rows is ever claimed
            return LookupReport(
                item.registration_number, "skipped", "gone", None, None, one.attempts
            )
        return LookupReport(
            registration_number=item.registration_number,
            outcome=Outcome.NOT_FOUND.value if one.withheld_as_failure else result.outcome.value,
            effect="withheld" if one.withheld_as_failure else effect.effect,
            from_status=effect.from_status,
            to_status=effect.to_status,
            attempts=one.attempts,
            error=result.error,
            http_status=result.http_status,
            duration_ms=result.duration_ms,
        )

    def _report(self, report: LookupReport, *, count: bool = True) -> None:
        if count:
            self.summary.add(report)
        if self.on_lookup is not None:
            self.on_lookup(report)
        self.progress.advance(self.summary)
