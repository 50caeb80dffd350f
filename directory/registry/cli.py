"""``flask registry ...``: import snapshots, verify numbers, show what the system believes.

Every command has ``--json``: one JSON object per line, each with a ``type``
(``rejected``/``warning``/``result``/``invalid``/``skipped``/``summary``...), the summary
last. Exit codes: 0 all went well, 1 some rows or numbers failed, 2 bad input, nothing done.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from directory.extensions import db
from directory.listings.models import Listing
from directory.registry import numbers
from directory.registry.checks import new_practitioner, record_check
from directory.registry.lookups import LookupResult
from directory.registry.models import Practitioner, StatusEvent, VerificationCheck
from directory.registry.policy import RegistryPolicy
from directory.registry.presenters import registration_facts
from directory.registry.statuses import PATIENT_MEANING, Outcome, Status
from directory.registry.verification import verdict
from directory.search.outbox import enqueue_practitioners
from directory.util.clock import utcnow
from directory.util.durations import parse_duration
from importers.snapshot_import import BatchFailed, Note, SnapshotImporter
from importers.sources import RegisterSource, source_for_app
from importers.sources.snapshot import Snapshot, SnapshotError
from importers.verify_list import (
    NumberListError,
    Pacer,
    RegisterAskedToWait,
    ResultsFile,
    lookup_politely,
    read_number_list,
)

registry_cli = AppGroup(
    "registry", help="Registrations: import snapshots, verify numbers, show what is believed."
)


class InputError(click.ClickException):
    """Bad input: a clear message, exit 2, nothing changed."""

    exit_code = 2


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _emit(as_json: bool, obj: dict[str, Any], text: str, *, err: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(obj, default=str, ensure_ascii=False))
    else:
        click.echo(text, err=err)


# --- import -------------------------------------------------------------------------------


class AsOf(click.ParamType):
    """A date (midnight UTC) or an ISO 8601 date-time (UTC unless it names a zone)."""

    name = "DATE"

    def convert(self, value: Any, param: Any, ctx: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            if len(text) == 10:
                parsed = datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
            else:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r} is not a date: use e.g. 2024-03-01 or 2024-03-01T08:00:00+02:00")
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
        if parsed > utcnow() + timedelta(minutes=5):
            self.fail(f"{text} is in the future: a snapshot cannot be younger than now")
        return parsed


def _search_enqueue(session: Session, practitioner_ids: list[int]) -> int:
    """Queue index updates for listed practitioners a bulk batch updated.

    The bulk import writes with Core statements, which the search outbox's ORM flush hooks
    do not see. Only listed practitioners are in the index, and a practitioner the import
    created cannot be listed yet, so only updated, listed ones are queued.
    """
    listed = (
        session.execute(
            select(Listing.practitioner_id)
            .where(Listing.practitioner_id.in_(practitioner_ids))
            .distinct()
        )
        .scalars()
        .all()
    )
    return enqueue_practitioners(session.connection(), listed, reason="snapshot")


def _default_workers() -> int:
    """Two worker processes where this process may use two or more cores, else none; the
    workers are forked, so only on Linux."""
    if not hasattr(os, "sched_getaffinity") or not sys.platform.startswith("linux"):
        return 1
    return min(2, len(os.sched_getaffinity(0)))


@registry_cli.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=True))
@click.option(
    "--as-of",
    "as_of",
    type=AsOf(),
    help="When the register said what the snapshot holds. A date is midnight UTC. Without "
    "it, the file's modification time (capped at now) counts, and the import lifts no "
    "adverse or pending status. An old export never makes anyone look freshly verified.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--batch-size",
    default=2000,
    show_default=True,
    type=click.IntRange(1, 20000),
    help="Rows per transaction.",
)
@click.option(
    "--workers",
    default=_default_workers,
    show_default="2 on Linux with two or more cores, else 1",
    type=click.IntRange(1, 8),
    help="Processes that decide and write batches in parallel while this one reads the "
    "file (Linux; 1: all in this process).",
)
def import_command(
    path: Path, as_of: datetime | None, as_json: bool, batch_size: int, workers: int
) -> None:
    """Import a register snapshot (CSV or JSON Lines) from PATH.

    Upserts each registration through the same rules as a live look-up and appends one
    history row per number. Bad rows are reported with their line and skipped; statuses
    the mapping does not know are imported as 'unknown' with a warning.

    Exit 0: every row imported; 1: some rows rejected; 2: not a snapshot, nothing changed.
    """
    try:
        snapshot = Snapshot.open(path)
    except SnapshotError as exc:
        raise InputError(f"{exc}. Nothing was imported.") from None
    undated = as_of is None
    as_of = as_of or snapshot.modified_at()

    def note(item: Note) -> None:
        label = "rejected" if item.kind == "rejected" else "warning"
        number = f" {item.registration_number}" if item.registration_number else ""
        _emit(as_json, item.as_dict(), f"line {item.line}{number}: {label}: {item.reason}")

    importer = SnapshotImporter(
        db.session,
        RegistryPolicy.from_config(current_app.config),
        as_of=as_of,
        undated=undated,
        source=f"snapshot:{snapshot.name}",
        note=note,
        on_batch=_search_enqueue,
        batch_rows=batch_size,
        workers=workers,
    )
    with importer:
        try:
            digest = importer.scan(snapshot)  # the whole file, before anything is written
        except SnapshotError as exc:
            raise InputError(f"{exc}. Nothing was imported.") from None
        if digest.rows == 0:
            raise InputError(f"{path} has a header but no data rows. Nothing was imported.")
        try:
            summary = importer.run(snapshot, digest)
        except (SnapshotError, SQLAlchemyError, BatchFailed) as exc:
            db.session.rollback()
            raise click.ClickException(
                f"import stopped: {exc}. The batches already committed stay imported; "
                "re-running the import is safe."
            ) from None
    figures = summary.as_dict()
    text = (
        f"{snapshot.name} as of {as_of:%Y-%m-%d %H:%M} UTC{summary.as_of_note}: "
        f"{figures['rows_read']} rows read, "
        f"{figures['rows_imported']} imported, {figures['rows_rejected']} rejected, "
        f"{figures['warnings']} warnings.\n"
        f"{figures['registrations']} registrations: {figures['created']} new, "
        f"{figures['status_changed']} changed status, {figures['unchanged']} unchanged, "
        f"{figures['ignored_stale']} older than what the system already knew (recorded, "
        f"changed nothing). {figures['seconds']} s."
    )
    if summary.search_queued:
        text += (
            f"\n{summary.search_queued} listed practitioners queued for the search index "
            "(`flask search sync` applies them now)."
        )
    _emit(as_json, figures, text)
    raise SystemExit(summary.exit_code)


# --- verify -------------------------------------------------------------------------------


def _answer_fields(number: str, result: LookupResult, practitioner: Practitioner | None) -> dict:
    """What one look-up came to, as the output line and the results-file row say it."""
    if practitioner is not None:
        judged = verdict(practitioner)
        status, raw_status = practitioner.status, practitioner.raw_status
        verified, verified_at = judged.verified, practitioner.verified_at
        headline = judged.headline
    else:  # a number the system does not hold, and the register gave no rows for it
        verified, verified_at = False, None
        if result.outcome is Outcome.NOT_FOUND:
            status, raw_status = Status.NOT_FOUND.value, None
            headline = PATIENT_MEANING[Status.NOT_FOUND]
        else:
            status, raw_status = Status.UNKNOWN.value, None
            headline = "No answer from the register"
    return {
        "registration_number": number,
        "outcome": result.outcome.value,
        "status": status,
        "raw_status": raw_status,
        "verified": verified,
        "verified_at": _iso(verified_at),
        "headline": headline,
        "checked_at": _iso(result.observed_at),
        "error": result.error,
    }


@registry_cli.command("verify")
@click.argument("given", metavar="[NUMBER]...", nargs=-1)
@click.option(
    "--from",
    "from_path",
    type=click.Path(path_type=Path),
    help="A text, CSV or Excel (.xlsx) file of numbers; the column is found by its header "
    "or its contents.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path),
    help="Write one CSV row per number, flushed as it goes. Re-running with the same file "
    "does not ask the register again for numbers it already answered there.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="At most this many look-ups per second (default: the VERIFY_RATE setting).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def verify_command(
    given: tuple[str, ...],
    from_path: Path | None,
    out_path: Path | None,
    rate: float | None,
    as_json: bool,
) -> None:
    """Look each NUMBER up at the register now and record what it says.

    Look-ups go one at a time, never faster than --rate; transient failures (timeouts,
    5xx, 429) are retried with backoff, honouring the register's Retry-After. A number the
    system does not hold is stored only when the register lists it.

    Exit 0: every number answered; 1: a look-up failed or a listed entry is not a number;
    2: a NUMBER argument is not a number or a file cannot be read (nothing looked up).
    """
    config = current_app.config
    if not given and from_path is None:
        raise click.UsageError("give one or more NUMBERs, or --from a file of numbers")
    bad = []
    wanted: dict[str, dict[str, Any]] = {}
    for text in given:
        try:
            wanted.setdefault(numbers.normalise(text), {"input": text, "row": None})
        except numbers.RegistrationNumberError as exc:
            bad.append(f"  {text!r}: {exc}")
    if bad:
        raise InputError("not registration numbers (nothing was looked up):\n" + "\n".join(bad))
    try:
        listed = read_number_list(from_path) if from_path is not None else None
        results = (
            ResultsFile.open(out_path, protect=[from_path] if from_path else [])
            if out_path is not None
            else None
        )
    except NumberListError as exc:
        raise InputError(f"{exc}. Nothing was looked up.") from None
    try:
        pacer = Pacer(rate if rate is not None else float(config["VERIFY_RATE"]))
        retries = int(config["VERIFY_RETRIES"])
        backoff = parse_duration(config["VERIFY_RETRY_BACKOFF"]).total_seconds()
    except (ValueError, KeyError) as exc:
        raise InputError(f"invalid setting: {exc}") from None

    counts = {"invalid": 0, "looked_up": 0, "answered": 0, "errors": 0, "skipped": 0}
    if listed is not None:
        where = f"{from_path}: numbers in {listed.column}"
        _emit(
            as_json,
            {
                "type": "list",
                "path": str(from_path),
                "column": listed.column,
                "entries": len(listed.entries),
            },
            where,
            err=True,
        )
        for entry in listed.entries:
            if entry.number is None:
                counts["invalid"] += 1
                _emit(
                    as_json,
                    {
                        "type": "invalid",
                        "row": entry.row,
                        "input": entry.text,
                        "error": entry.error,
                        "suggestion": entry.suggestion,
                    },
                    f"row {entry.row}: {entry.error}",
                )
                if results is not None:
                    results.write(
                        {
                            "input": entry.text,
                            "row": entry.row,
                            "outcome": "invalid",
                            "error": entry.error,
                        }
                    )
            else:
                wanted.setdefault(entry.number, {"input": entry.text, "row": entry.row})
    if results is not None and results.answered:
        already = sum(1 for n in wanted if n in results.answered)
        _emit(
            as_json,
            {"type": "resume", "out": str(out_path), "already_answered": already},
            f"{already} of {len(wanted)} numbers were already answered in {out_path}: "
            "not asking the register again for them",
            err=True,
        )

    policy = RegistryPolicy.from_config(config)
    source = source_for_app(current_app)
    exit_code = 0
    try:
        for number, origin in wanted.items():
            if results is not None and number in results.answered:
                counts["skipped"] += 1
                earlier = results.answered[number]
                _emit(
                    as_json,
                    {
                        "type": "skipped",
                        **origin,
                        **earlier,
                        "registration_number": number,
                        "verified": earlier.get("verified") == "true",
                        "reason": f"already answered in {out_path}",
                    },
                    f"{number}  already answered in {out_path} ({earlier.get('outcome')}, "
                    f"{earlier.get('status')}): not asked again",
                )
                continue
            line = _verify_one(number, source, pacer, policy, retries=retries, backoff=backoff)
            counts["looked_up"] += 1
            counts["answered" if line["outcome"] != Outcome.ERROR else "errors"] += 1
            line.update(origin)
            if results is not None:
                results.write({**line, "verified": "true" if line["verified"] else "false"})
            _emit(as_json, {"type": "result", **line}, _result_text(line))
    except RegisterAskedToWait as exc:
        counts["errors"] += 1
        _emit(
            as_json,
            {"type": "stopped", "reason": str(exc), "retry_after": exc.seconds},
            f"stopped: {exc}. Re-run later"
            + (f" with --out {out_path} to continue where this run stopped." if out_path else "."),
            err=True,
        )
    except KeyboardInterrupt:
        click.echo(
            "interrupted" + (f": re-run with --out {out_path} to continue" if out_path else ""),
            err=True,
        )
        exit_code = 130
    finally:
        source.close()
        if results is not None:
            results.close()
    summary = {"type": "summary", "numbers": len(wanted), **counts}
    if out_path is not None:
        summary["out"] = str(out_path)
    _emit(
        as_json,
        summary,
        f"{len(wanted)} numbers: {counts['answered']} answered, {counts['errors']} failed, "
        f"{counts['skipped']} already answered, {counts['invalid']} not numbers",
    )
    if not exit_code and (counts["errors"] or counts["invalid"]):
        exit_code = 1
    raise SystemExit(exit_code)


def _verify_one(
    number: str,
    source: RegisterSource,
    pacer: Pacer,
    policy: RegistryPolicy,
    *,
    retries: int,
    backoff: float,
) -> dict[str, Any]:
    """Look one number up (with retries) and record every attempt through the rules."""
    session = db.session
    practitioner = session.scalar(
        select(Practitioner).where(Practitioner.registration_number == number)
    )
    effects: list[str] = []

    def record(result: LookupResult) -> None:
        nonlocal practitioner
        if practitioner is None:
            if result.outcome is not Outcome.OK:
                effects.append("not_stored")
                return  # no row for a number the register does not list (or did not answer)
            practitioner = new_practitioner(number)
        effect = record_check(session, practitioner, result, policy)
        session.commit()
        effects.append(effect.effect)

    result, attempts = lookup_politely(
        source, number, pacer, retries=retries, backoff=backoff, on_attempt=record
    )
    line = _answer_fields(number, result, practitioner)
    line.update(effect=effects[-1], attempts=attempts, stored=practitioner is not None)
    return line


def _result_text(line: dict) -> str:
    verified = "VERIFIED" if line["verified"] else "not verified"
    text = (
        f"{line['registration_number']:<10} {line['outcome']:<9} {line['status']:<9} "
        f"{verified:<12} {line['headline']}"
    )
    if line.get("error"):
        text += f" [error: {line['error']}; {line['attempts']} attempt(s)]"
    if not line.get("stored"):
        text += " (not stored: the system holds no registration for this number)"
    return text


# --- show ---------------------------------------------------------------------------------


@registry_cli.command("show")
@click.argument("number")
@click.option(
    "--history",
    "history_size",
    default=10,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="How many recent checks to list.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def show_command(number: str, history_size: int, as_json: bool) -> None:
    """What the system currently believes about NUMBER, and its recent history.

    Exit 0: shown; 1: the system holds no such registration; 2: NUMBER is not a number.
    """
    try:
        canonical = numbers.normalise(number)
    except numbers.RegistrationNumberError as exc:
        raise InputError(str(exc)) from None
    session = db.session
    practitioner = session.scalar(
        select(Practitioner).where(Practitioner.registration_number == canonical)
    )
    if practitioner is None:
        message = (
            f"{canonical}: the system holds no registration with this number "
            f"(look it up with: flask registry verify {canonical})"
        )
        _emit(
            as_json,
            {"type": "error", "registration_number": canonical, "error": "unknown registration"},
            message,
            err=True,
        )
        raise SystemExit(1)
    checks = session.scalars(
        select(VerificationCheck)
        .where(VerificationCheck.practitioner_id == practitioner.id)
        .order_by(VerificationCheck.id.desc())
        .limit(history_size)
    ).all()
    events = session.scalars(
        select(StatusEvent)
        .where(StatusEvent.practitioner_id == practitioner.id)
        .order_by(StatusEvent.id.desc())
        .limit(history_size)
    ).all()
    data = describe(practitioner, checks, events)
    if as_json:
        click.echo(json.dumps(data, default=str, ensure_ascii=False))
    else:
        click.echo(_show_text(data))


def describe(
    practitioner: Practitioner, checks: list[VerificationCheck], events: list[StatusEvent]
) -> dict[str, Any]:
    """Everything ``show`` says about one registration, as plain values (times as ISO text)."""
    facts = registration_facts(practitioner, verdict(practitioner))
    return {
        **{key: _iso(v) if isinstance(v, datetime) else v for key, v in facts.items()},
        "history": [
            {
                "checked_at": _iso(c.checked_at),
                "recorded_at": _iso(c.recorded_at),
                "source": c.source,
                "outcome": c.outcome,
                "status": c.status,
                "raw_status": c.raw_status,
                "effect": c.effect,
                "error": c.error,
                "duration_ms": c.duration_ms,
            }
            for c in checks
        ],
        "status_events": [
            {
                "event_id": e.event_id,
                "occurred_at": _iso(e.occurred_at),
                "from_status": e.from_status,
                "to_status": e.to_status,
                "source": e.source,
            }
            for e in events
        ],
    }


def _show_text(d: dict[str, Any]) -> str:
    def when(value: str | None) -> str:
        return value[:19].replace("T", " ") + " UTC" if value else "never"

    lines = [
        f"{d['registration_number']} ({d['register_format'].strip()!s}; "
        f"{d['register'] or 'register prefix not known to this system'})",
        f"  {d['name'] or '(no name on record)'}"
        + (f", {d['city']}" if d["city"] else "")
        + (f" {d['postal_code']}" if d["postal_code"] else ""),
        f"  {'VERIFIED' if d['verified'] else 'NOT VERIFIED'}: {d['verdict']['headline']}",
        f"  {d['verdict']['explanation']}",
        f"  status {d['status']} (register said: {d['raw_status'] or '-'}), "
        f"as of {when(d['status_as_of'])}",
    ]
    for c in d["categories"]:
        lines.append(f"    category {c['category']}: {c['raw_status']} -> {c['status']}")
    lines += [
        f"  verified_at {when(d['verified_at'])}; last checked {when(d['last_checked_at'])} "
        f"({d['outcome'] or '-'}); next check {when(d['next_check_at'])}",
    ]
    if d["not_found_pending_since"]:
        lines.append(
            f"  PENDING: the register did not list this number at "
            f"{when(d['not_found_pending_since'])}; awaiting confirmation"
        )
    if d["consecutive_failures"]:
        lines.append(f"  {d['consecutive_failures']} consecutive failed look-up(s)")
    if d["history"]:
        lines.append("  recent checks (newest first):")
        for h in d["history"]:
            detail = h["raw_status"] or h["error"] or ""
            lines.append(
                f"    {when(h['checked_at'])}  {h['outcome']:<9} {h['effect'] or '':<17} "
                f"{h['source']}  {detail}"
            )
    if d["status_events"]:
        lines.append("  status changes (newest first):")
        for e in d["status_events"]:
            lines.append(
                f"    {when(e['occurred_at'])}  {e['from_status']} -> {e['to_status']}  "
                f"({e['source']})"
            )
    return "\n".join(lines)
