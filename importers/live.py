"""The app's way of asking the register about one number on someone's request (a clinic
adding a practitioner): the configured register, through the one politeness stack.

``importers.init_app`` installs ``politely_for(app)`` with
``directory.registry.live.install_live_lookup``. A person is waiting for the answer, so a
look-up retries at most once (``INTERACTIVE_ATTEMPTS``) and never waits out a Retry-After
longer than ``INTERACTIVE_RETRY_AFTER_MAX`` seconds; it still waits for the register
budget every process and host shares (``HPCSA_MAX_RATE``), and its 429s slow them all.

The whole look-up fits in ``INTERACTIVE_DEADLINE`` seconds, well within the web worker's
timeout (gunicorn's 30 s, which would kill the worker and drop the patient's page): each
request waits at most ``INTERACTIVE_TIMEOUT`` for the register, and no wait (for the
budget, a pause another look-up's 429 set, or a retry) is begun that would end past the
deadline. A look-up out of time is an ``error`` answer: "could not check now", never
"not found".

A not-found for a registration the register had confirmed is judged by the mass not-found
guard, started from the history like every run's: when it trips, the answer comes back as
the guard's failure, so it is recorded as a failed look-up and moves nothing.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import select

from directory.extensions import db
from directory.registry.lookups import LookupResult
from directory.registry.models import Practitioner
from directory.registry.statuses import Outcome
from importers.mass_not_found import MassNotFoundGuard, previously_confirmed, recent_answers
from importers.politeness.asking import Asker, Politeness
from importers.politeness.budget import BudgetUnavailable
from importers.sources import source_for_app
from importers.sources.hpcsa import SOURCE_NAME

INTERACTIVE_ATTEMPTS = 2
INTERACTIVE_RETRY_AFTER_MAX = 10.0
INTERACTIVE_TIMEOUT = 8.0  # seconds a request waits for the register (HPCSA_TIMEOUT at most)
INTERACTIVE_DEADLINE = 24.0  # seconds for the whole look-up, waits and retries included


class OutOfTime(Exception):
    """A wait would end too late for a person waiting on the page."""


def _sleep_within(deadline: float, request_timeout: float):
    """``time.sleep`` for the asker, refusing a wait after which a request could not be
    made and answered before ``deadline`` (monotonic)."""

    def sleep(seconds: float) -> None:
        if time.monotonic() + seconds + request_timeout > deadline:
            raise OutOfTime(seconds)
        time.sleep(seconds)

    return sleep


def politely_for(app: Flask):
    """A look-up function for ``install_live_lookup``: never raises for the register's
    faults (or an unreachable budget); they come back as an ``error`` answer."""

    def look_up(number: str) -> LookupResult:
        deadline = time.monotonic() + INTERACTIVE_DEADLINE
        request_timeout = min(float(app.config["HPCSA_TIMEOUT"]), INTERACTIVE_TIMEOUT)
        politeness = Politeness.from_config(app.config)
        retry = replace(
            politeness.retry,
            attempts=min(politeness.retry.attempts, INTERACTIVE_ATTEMPTS),
            retry_after_max=min(politeness.retry.retry_after_max, INTERACTIVE_RETRY_AFTER_MAX),
        )
        asker = Asker(
            replace(politeness, retry=retry),
            politeness.store(lambda: db.engine),
            sleep=_sleep_within(deadline, request_timeout),
        )
        source = source_for_app(app, timeout=request_timeout)
        try:
            return _judged(number, asker.look_up(lambda: source.lookup(number)).result)
        except BudgetUnavailable as exc:
            return _failure(number, f"the register budget cannot be reached: {exc}")
        except OutOfTime as exc:
            return _failure(
                number,
                f"the register could not be asked within {INTERACTIVE_DEADLINE:g} s "
                f"(a wait of {exc.args[0]:.0f} s was due first)",
            )
        finally:
            source.close()

    return look_up


def _failure(number: str, error: str) -> LookupResult:
    return LookupResult(number, Outcome.ERROR, datetime.now(UTC), SOURCE_NAME, error=error)


def _judged(number: str, result: LookupResult) -> LookupResult:
    """``result``, or the guard's failure when it is a not-found for a registration the
    register had confirmed and the answers before it show the register answering "no rows"
    for many such numbers."""
    says_not_found = result.outcome is Outcome.NOT_FOUND or (
        result.outcome is Outcome.OK and not result.rows
    )
    if not says_not_found:
        return result
    held = db.session.scalar(select(Practitioner).where(Practitioner.registration_number == number))
    if held is None or not previously_confirmed(held):
        return result
    guard: MassNotFoundGuard[LookupResult] = MassNotFoundGuard()
    guard.seed(recent_answers(db.session, guard.window))
    guard.not_found(result)
    return guard.as_failure(result) if guard.tripped else result
