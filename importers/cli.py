"""``flask registry import`` and ``flask registry verify``: the commands that bring register
answers in. They join the ``flask registry`` group when ``importers.init_app`` runs.

Every command has ``--json``: one JSON object per line, each with a ``type``, the summary
last. Exit codes: 0 all went well, 1 some rows or numbers failed, 2 bad input, nothing done,
3 (verify) stopped because the register looked broken.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from directory.extensions import db
from directory.registry import numbers
from directory.registry.cli import InputError
from directory.registry.cli import emit as _emit
from directory.registry.cli import iso as _iso
from directory.registry.lookups import LookupResult
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import apply_answer
from directory.registry.statuses import PATIENT_MEANING, Outcome, Status
from directory.registry.verification import verdict
from directory.util.clock import utcnow
from importers.mass_not_found import MassNotFoundGuard, previously_confirmed, recent_answers
from importers.politeness.asking import Asker, Politeness, RegisterAskedToWait
from importers.politeness.budget import BudgetUnavailable
from importers.snapshot_import import BatchFailed, Note, SnapshotImporter
from importers.sources import RegisterSource, source_for_app
from importers.sources.snapshot import Snapshot, SnapshotError
from importers.verify_list import NumberListError, ResultsFile, read_number_list

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


def _default_workers() -> int:
    """Two worker processes where this process may use two or more cores, else none; the
    workers are forked, so only on Linux."""
    if not hasattr(os, "sched_getaffinity") or not sys.platform.startswith("linux"):
        return 1
    return min(2, len(os.sched_getaffinity(0)))


@click.command("import")
@with_appcontext
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


def _says_not_found(result: LookupResult) -> bool:
    """An answer without rows: "no such number" (an "ok" without rows says the same)."""
    return result.outcome is Outcome.NOT_FOUND or (result.outcome is Outcome.OK and not result.rows)


@dataclass(frozen=True)
class _Held:
    """A not-found for a number the register had confirmed, waiting for the guard."""

    number: str
    origin: dict[str, Any]
    result: LookupResult
    attempts: int


def _load(number: str) -> Practitioner | None:
    return db.session.scalar(select(Practitioner).where(Practitioner.registration_number == number))


def _judged_now(number: str, earlier: dict[str, str]) -> dict[str, Any]:
    """A number an earlier run answered, as the database has it now (``verdict``): never
    the earlier run's "verified", which may have stopped being true since."""
    practitioner = _load(number)
    if practitioner is None:  # the register did not list it, so it was never stored
        return {
            "status": earlier.get("status") or None,
            "raw_status": None,
            "verified": False,
            "verified_at": None,
            "headline": earlier.get("headline") or PATIENT_MEANING[Status.NOT_FOUND],
        }
    judged = verdict(practitioner)
    return {
        "status": practitioner.status,
        "raw_status": practitioner.raw_status,
        "verified": judged.verified,
        "verified_at": _iso(practitioner.verified_at),
        "headline": judged.headline,
    }


@click.command("verify")
@with_appcontext
@click.argument("given", metavar="[NUMBER]...", nargs=-1)
@click.option(
    "--from",
    "from_path",
    type=click.Path(path_type=Path),
    help="A text, CSV or Excel (.xlsx) file of numbers; the column is found by its header "
    "and its contents.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path),
    help="Write one CSV row per number, flushed as it goes. Re-running with the same file "
    "does not ask the register again for numbers it already answered there (they are judged "
    "again from what the system holds now).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="At most this many look-ups per second (default: the VERIFY_RATE setting); with "
    "every other command and host, never more than HPCSA_MAX_RATE.",
)
@click.option(
    "--accept-mass-not-found",
    is_flag=True,
    help="Apply not-found answers even when the register gives them for many numbers it had "
    "confirmed (more than 10 of the last 20): only when you know it really removed them.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def verify_command(
    given: tuple[str, ...],
    from_path: Path | None,
    out_path: Path | None,
    rate: float | None,
    accept_mass_not_found: bool,
    as_json: bool,
) -> None:
    """Look each NUMBER up at the register now and record what it says.

    Look-ups go one at a time, never faster than --rate, within the register budget every
    command and host shares (HPCSA_MAX_RATE); transient failures (timeouts, 5xx, 429) are
    retried with backoff, honouring the register's Retry-After. A number the system does
    not hold is stored only when the register lists it. A register that answers
    "not found" for many numbers it had confirmed (more than 10 of the last 20) is treated
    as broken: those answers change nothing and the run stops.

    Exit 0: every number answered; 1: a look-up failed or a listed entry is not a number;
    2: a NUMBER argument is not a number or a file cannot be read (nothing looked up);
    3: stopped because the register looked broken (see --accept-mass-not-found).
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
            ResultsFile.open(out_path, protect=[from_path] if from_path else [], judge=_judged_now)
            if out_path is not None
            else None
        )
    except NumberListError as exc:
        raise InputError(f"{exc}. Nothing was looked up.") from None
    try:
        politeness = Politeness.from_config(config)
        asker = Asker(
            politeness,
            politeness.store(lambda: db.engine),
            rate=rate if rate is not None else float(config["VERIFY_RATE"]),
        )
    except (ValueError, KeyError) as exc:
        raise InputError(f"invalid setting: {exc}") from None

    counts = {"invalid": 0, "looked_up": 0, "answered": 0, "errors": 0, "skipped": 0}
    withheld = []
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
    guard: MassNotFoundGuard[_Held] = MassNotFoundGuard(accept=accept_mass_not_found)
    guard.seed(recent_answers(db.session, guard.window))  # what earlier runs saw
    exit_code = 0

    def report(line: dict[str, Any]) -> None:
        """One number's outcome: counted, written to --out, shown."""
        if line.get("withheld"):
            withheld.append(line["registration_number"])
        else:
            counts["answered" if line["outcome"] != Outcome.ERROR else "errors"] += 1
        if results is not None:
            results.write({**line, "verified": "true" if line["verified"] else "false"})
        _emit(as_json, {"type": "result", **line}, _result_text(line))

    def apply_held(held: _Held, *, withheld: bool = False) -> None:
        """Record a held not-found: as the answer it is, or (the guard tripped) as a failure."""
        result = guard.as_failure(held.result) if withheld else held.result
        effect = apply_answer(db.session, held.number, result, policy)
        assert effect is not None  # held only for registrations the system holds
        db.session.commit()
        line = _answer_fields(held.number, result, effect.practitioner)
        line.update(held.origin)
        line.update(effect=effect.effect, attempts=held.attempts, stored=True)
        if withheld:
            line["withheld"] = True
        report(line)

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
                        "verified_at": earlier.get("verified_at") or None,
                        "reason": f"already answered in {out_path}",
                    },
                    f"{number}  already answered in {out_path} ({earlier.get('outcome')}), "
                    f"not asked again; now: "
                    f"{'VERIFIED' if earlier.get('verified') == 'true' else 'not verified'}, "
                    f"{earlier.get('headline')}",
                )
                continue
            outcome = _verify_one(number, source, asker, policy)
            counts["looked_up"] += 1
            if outcome.held is not None:
                release = guard.not_found(
                    _Held(number, origin, outcome.held, outcome.line["attempts"])
                )
            else:
                outcome.line.update(origin)
                report(outcome.line)
                confirmed_answer = outcome.confirmed_before and outcome.line["outcome"] == "ok"
                release = guard.found() if confirmed_answer else []
            for held in release:
                apply_held(held)
            if guard.tripped:
                for held in guard.withhold():
                    apply_held(held, withheld=True)
                exit_code = 3
                _emit(
                    as_json,
                    {"type": "stopped", "reason": guard.reason, "mass_not_found": True},
                    f"stopped: the register looks broken ({guard.reason}): an empty answer for "
                    "that many numbers is a register fault, so those answers were recorded as "
                    "failed look-ups and no status was changed. If the register really removed "
                    "these numbers, re-run with --accept-mass-not-found"
                    + (f" and --out {out_path} to continue." if out_path else "."),
                    err=True,
                )
                break
        for held in guard.release_all():  # the run ended healthy: the guard judged them all
            apply_held(held)
    except RegisterAskedToWait as exc:
        counts["errors"] += 1
        for held in guard.release_all():
            apply_held(held)
        _emit(
            as_json,
            {"type": "stopped", "reason": str(exc), "retry_after": exc.seconds},
            f"stopped: {exc}. Re-run later"
            + (f" with --out {out_path} to continue where this run stopped." if out_path else "."),
            err=True,
        )
    except BudgetUnavailable as exc:
        _emit(as_json, {"type": "stopped", "reason": str(exc)}, f"stopped: {exc}", err=True)
        exit_code = 1
    except KeyboardInterrupt:
        # Not-founds still held were never judged: they stay unrecorded (and out of --out),
        # so a re-run asks again.
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
    if guard.tripped:
        summary.update(withheld=len(withheld), stopped=guard.reason)
    if out_path is not None:
        summary["out"] = str(out_path)
    _emit(
        as_json,
        summary,
        f"{len(wanted)} numbers: {counts['answered']} answered, {counts['errors']} failed, "
        f"{counts['skipped']} already answered, {counts['invalid']} not numbers"
        + (f", {len(withheld)} not-founds withheld (register fault)" if guard.tripped else ""),
    )
    if not exit_code and (counts["errors"] or counts["invalid"]):
        exit_code = 1
    raise SystemExit(exit_code)


@dataclass(frozen=True)
class _Looked:
    line: dict[str, Any]
    held: LookupResult | None  # a not-found for a confirmed registration, not yet recorded
    confirmed_before: bool


def _verify_one(
    number: str, source: RegisterSource, asker: Asker, policy: RegistryPolicy
) -> _Looked:
    """Look one number up (with retries) and record the look-up's result through the rules
    (one history row per look-up, as the recheck does), except a not-found for a
    registration the register had confirmed: that one is handed back, unrecorded, for the
    mass not-found guard to judge."""
    session = db.session
    practitioner = _load(number)
    confirmed = practitioner is not None and previously_confirmed(practitioner)
    effects: list[str] = []
    held: list[LookupResult] = []

    def record(result: LookupResult) -> None:
        nonlocal practitioner
        if confirmed and _says_not_found(result):
            held.append(result)
            effects.append("held")
            return
        effect = apply_answer(session, number, result, policy)  # None: not stored
        session.commit()
        practitioner = effect.practitioner if effect else practitioner
        effects.append(effect.effect if effect else "not_stored")

    attempted = asker.look_up(lambda: source.lookup(number))
    result = attempted.result
    assert result is not None  # a blocking look-up is never abandoned
    record(result)
    if not result.is_answer and asker.politeness.retry.asks_too_long(result):
        raise RegisterAskedToWait(result.retry_after or 0.0, result)
    line = _answer_fields(number, result, practitioner)
    line.update(effect=effects[-1], attempts=attempted.attempts, stored=practitioner is not None)
    return _Looked(line, held[-1] if held else None, confirmed)


def _result_text(line: dict) -> str:
    verified = "VERIFIED" if line["verified"] else "not verified"
    text = (
        f"{line['registration_number']:<10} {line['outcome']:<9} {line['status']:<9} "
        f"{verified:<12} {line['headline']}"
    )
    if line.get("withheld"):
        text += " [not-found withheld: the register looks broken; status unchanged]"
    elif line.get("error"):
        text += f" [error: {line['error']}; {line['attempts']} attempt(s)]"
    if not line.get("stored"):
        text += " (not stored: the system holds no registration for this number)"
    return text
