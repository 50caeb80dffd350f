"""``flask registry recheck``: check the registrations that are due against the register."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import signal
import sys
import time
from dataclasses import replace
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from directory.extensions import db
from directory.util.clock import utcnow
from directory.util.durations import duration_option, parse_duration
from importers.politeness.budget import BudgetUnavailable
from importers.recheck.claims import Claimer, count_due, make_owner
from importers.recheck.progress import progress_for
from importers.recheck.runner import (
    BREAKER,
    EXIT_OK,
    LookupReport,
    RecheckOptions,
    RecheckRun,
    RunSummary,
)

log = logging.getLogger("importers.recheck")

EXIT_FAILED = 1


def _positive_duration(value: str | None, option: str) -> float | None:
    return None if value is None else duration_option(value, option).total_seconds()


def _options_from(
    app: Flask,
    *,
    limit: int | None,
    concurrency: int | None,
    rate: float | None,
    max_duration: float | None,
    include_not_due: bool,
    accept_mass_not_found: bool = False,
) -> RecheckOptions:
    """Settings, then the command line; every bad value is a plain usage error."""
    try:
        settings = RecheckOptions.from_config(app.config)
        max_concurrency = int(app.config["RECHECK_CONCURRENCY_LIMIT"])
        max_rate = float(app.config["RECHECK_RATE_LIMIT"])
    except (KeyError, ValueError, TypeError) as exc:
        raise click.ClickException(f"invalid setting: {exc}") from None
    if limit is not None and limit < 1:
        raise click.BadParameter("must be at least 1", param_hint="--limit")
    if concurrency is not None and not 1 <= concurrency <= max_concurrency:
        raise click.BadParameter(
            f"must be between 1 and {max_concurrency} (RECHECK_CONCURRENCY_LIMIT)",
            param_hint="--concurrency",
        )
    if rate is not None and not (math.isfinite(rate) and 0 < rate <= max_rate):
        raise click.BadParameter(
            f"must be a number of requests per second above 0 and at most {max_rate:g} "
            "(RECHECK_RATE_LIMIT)",
            param_hint="--rate",
        )
    try:
        return replace(
            settings,
            limit=limit,
            concurrency=concurrency or settings.concurrency,
            rate=rate or settings.rate,
            max_duration=max_duration,
            include_not_due=include_not_due,
            accept_mass_not_found=accept_mass_not_found,
        )
    except ValueError as exc:
        raise click.ClickException(f"invalid setting: {exc}") from None


def _emit(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(obj, default=str))
    sys.stdout.flush()


def _print_summary(summary: RunSummary) -> None:
    changes = ", ".join(f"{k}: {v}" for k, v in sorted(summary.changed.items()))
    lines = [
        f"Recheck {'stopped' if summary.stop_reason != 'done' else 'finished'}"
        f" ({summary.stop_reason}) after {summary.duration:.1f} s: "
        f"{summary.checked} checked at {summary.lookup_rate:.2f} lookups/s "
        f"({summary.requests} requests, {summary.request_rate:.2f}/s, "
        f"{summary.rate_limited} rate-limited)",
        f"  unchanged   {summary.unchanged}",
        f"  changed     {summary.changed_total}" + (f"  ({changes})" if changes else ""),
        f"  not found   {summary.not_found}"
        + (
            f"  ({summary.pending_not_found} awaiting confirmation)"
            if summary.pending_not_found
            else ""
        ),
        f"  errors      {summary.errors}",
    ]
    if summary.withheld:
        lines.append(
            f"  withheld    {summary.withheld}  (not-founds recorded as failures: "
            "the register looks broken)"
        )
    lines += [
        f"  skipped     {summary.skipped}",
    ]
    if summary.remaining_due is not None:
        lines.append(f"  still due   {summary.remaining_due}")
    click.echo("\n".join(lines))


def _say_why_stopped(summary: RunSummary) -> None:
    if summary.stop_reason == BREAKER and summary.mass_not_found:
        click.echo(
            f"error: the register looks broken ({summary.breaker_reason}): an empty answer "
            "for that many numbers is a register fault, so no status was changed and "
            f"{summary.withheld} not-found answer(s) were recorded as failed look-ups; "
            f"{summary.remaining_due} registration(s) left due for the next run. If the "
            "register really removed these numbers, re-run with --accept-mass-not-found.",
            err=True,
        )
    elif summary.stop_reason == BREAKER:
        click.echo(
            f"error: the register looks down ({summary.breaker_reason}): stopped starting "
            f"look-ups; {summary.remaining_due} registration(s) left due for the next run.",
            err=True,
        )


def _dry_run(app: Flask, options: RecheckOptions, as_json: bool) -> int:
    """Stream what a run would check now, in order; ask nothing, change nothing."""
    now = utcnow()
    claimer = Claimer(
        make_owner(), options.lease, run_started=now, include_not_due=options.include_not_due
    )
    shown = 0
    for row in claimer.candidates(db.session, now):
        if options.limit is not None and shown >= options.limit:
            break
        shown += 1
        if as_json:
            _emit(
                {
                    "type": "would_check",
                    "registration_number": row.registration_number,
                    "status": row.status,
                    "last_checked_at": row.last_checked_at,
                    "next_check_at": row.next_check_at,
                }
            )
        else:
            when = (
                "never checked"
                if row.last_checked_at is None
                else (f"last checked {row.last_checked_at:%Y-%m-%d %H:%M}")
            )
            click.echo(f"{row.registration_number:<10} {row.status:<10} {when}")
    held = count_due(db.session, now, held=True)
    if as_json:
        _emit({"type": "summary", "dry_run": True, "would_check": shown, "held_by_runs": held})
    else:
        click.echo(
            f"Would check {shown} registration(s)"
            + (f"; {held} more due are held by a run in progress" if held else "")
            + ". Nothing was asked or changed (--dry-run)."
        )
    return EXIT_OK


async def _serve(app: Flask, options: RecheckOptions, every: float | None, as_json: bool) -> int:
    """One run, or (``--every``) a run every interval until SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    current: list[RecheckRun] = []
    signals: list[str] = []

    def on_signal(name: str) -> None:
        signals.append(name)
        stop.set()
        if current:
            if len(signals) == 1:
                current[0].request_stop()
            else:  # a second signal: do not wait for the look-ups in flight
                current[0].abort()

    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig.name)
            installed.append(sig)
        except (RuntimeError, ValueError, NotImplementedError):  # not the main thread
            pass

    def on_lookup(report: LookupReport) -> None:
        if as_json:
            _emit(report.as_dict())

    code = EXIT_OK
    try:
        while not stop.is_set():
            started = time.monotonic()
            progress = progress_for(sys.stderr, every=_progress_every(app))
            run = RecheckRun(app, options, progress=progress, on_lookup=on_lookup)
            current[:] = [run]
            summary = await run.run()
            current.clear()
            if as_json:
                _emit(summary.as_dict())
            else:
                _print_summary(summary)
            _say_why_stopped(summary)
            code = summary.exit_code
            if every is None:
                break
            if summary.stop_reason == BREAKER:
                log.warning("recheck: the next run starts at the next interval")
            code = EXIT_OK  # --every keeps going through a bad run; a stop is clean
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, every - (time.monotonic() - started)))
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    if signals and every is None:
        log.info("recheck: stopped by %s", signals[0])
    return code


def _progress_every(app: Flask) -> float:
    try:
        return parse_duration(app.config["RECHECK_PROGRESS_EVERY"]).total_seconds()
    except (KeyError, ValueError):
        return 10.0


@click.command("recheck")
@click.option("--limit", type=int, metavar="N", help="Check at most N registrations per run.")
@click.option(
    "--concurrency",
    type=int,
    metavar="N",
    help="Look-ups in flight at once [default: RECHECK_CONCURRENCY, 4].",
)
@click.option(
    "--rate",
    type=float,
    metavar="R",
    help="This run's own requests per second, never exceeded in any second; every run, "
    "host and command together stay within HPCSA_MAX_RATE [default: RECHECK_RATE, 2].",
)
@click.option(
    "--max-duration",
    metavar="SECONDS",
    help="Start no look-up after this long (seconds, or e.g. 90s, 30m, 2h); "
    "what is left stays due.",
)
@click.option(
    "--all",
    "include_not_due",
    is_flag=True,
    help="Check every registration, due or not (each once per run).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List what would be checked, in order; ask the register nothing, change nothing.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per look-up, the summary last."
)
@click.option(
    "--accept-mass-not-found",
    is_flag=True,
    help="Apply not-found answers even when the register gives them for many registrations "
    "it had confirmed (more than 10 of the last 20): only when you know it really removed "
    "them.",
)
@click.option(
    "--every",
    metavar="DURATION",
    help="Keep running: start a run at this interval (e.g. 15m, 1h) until SIGTERM/SIGINT, "
    "for containers without cron.",
)
@with_appcontext
def recheck_command(
    limit: int | None,
    concurrency: int | None,
    rate: float | None,
    max_duration: str | None,
    include_not_due: bool,
    dry_run: bool,
    as_json: bool,
    every: str | None,
    accept_mass_not_found: bool,
) -> None:
    """Check the registrations that are due against the HPCSA register.

    Never-checked registrations first, then the longest-waiting. Politely (within the
    register budget every run and host shares, HPCSA_MAX_RATE; retries with backoff; every
    run slowing down on a 429) and safely: failures never
    change a status, several runs at once never check the same registration twice, and an
    interrupted run loses at most the look-ups in flight.

    A register that answers "not found" for many registrations it had confirmed (more than
    10 of the last 20) is treated as broken: those answers change nothing and the run stops
    (exit 3), unless --accept-mass-not-found.

    Exit status: 0 done (even with some failed look-ups), 1 a database or setting problem,
    2 a bad option, 3 stopped because the register looks down or broken (circuit breaker
    open).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    options = _options_from(
        app,
        limit=limit,
        concurrency=concurrency,
        rate=rate,
        max_duration=_positive_duration(max_duration, "--max-duration"),
        include_not_due=include_not_due,
        accept_mass_not_found=accept_mass_not_found,
    )
    interval = _positive_duration(every, "--every")
    if dry_run and interval is not None:
        raise click.UsageError("--dry-run and --every do not go together.")
    try:
        if dry_run:
            code = _dry_run(app, options, as_json)
        else:
            code = asyncio.run(_serve(app, options, interval, as_json))
    except BudgetUnavailable as exc:
        click.echo(f"error: {exc}; nothing more was asked", err=True)
        sys.exit(EXIT_FAILED)
    except SQLAlchemyError as exc:
        message = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        click.echo(
            f"error: database problem: {message} (is the database reachable and migrated? "
            "`flask db upgrade`)",
            err=True,
        )
        sys.exit(EXIT_FAILED)
    sys.exit(code)
