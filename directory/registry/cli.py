"""``flask registry ...``: the command group, and ``show`` (what the system believes).

The commands that ask a register (``import``, ``verify``, ``recheck``) belong to
``importers/`` and join this group when that package is included (``importers.init_app``).

Every command has ``--json``: one JSON object per line, each with a ``type``
(``rejected``/``warning``/``result``/``invalid``/``skipped``/``summary``...), the summary
last. Exit codes: 0 all went well, 1 some rows or numbers failed, 2 bad input, nothing done.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from flask.cli import AppGroup, with_appcontext

from directory.registry import numbers
from directory.registry.presenters import registration_facts
from directory.registry.profile import Profile, read_profile


def registry_group() -> AppGroup:
    """A new ``flask registry`` group for one app, holding ``show``; the importers add theirs."""
    group = AppGroup(
        "registry", help="Registrations: import snapshots, verify numbers, show what is believed."
    )
    group.add_command(show_command)
    return group


class InputError(click.ClickException):
    """Bad input: a clear message, exit 2, nothing changed."""

    exit_code = 2


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def emit(as_json: bool, obj: dict[str, Any], text: str, *, err: bool = False) -> None:
    """One output line: the JSON object with ``--json``, else the text."""
    if as_json:
        click.echo(json.dumps(obj, default=str, ensure_ascii=False))
    else:
        click.echo(text, err=err)


# --- show ---------------------------------------------------------------------------------


@click.command("show")
@with_appcontext
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
    profile = read_profile(canonical, history=history_size, status_events=history_size)
    if profile is None:
        message = (
            f"{canonical}: the system holds no registration with this number "
            f"(look it up with: flask registry verify {canonical})"
        )
        emit(
            as_json,
            {"type": "error", "registration_number": canonical, "error": "unknown registration"},
            message,
            err=True,
        )
        raise SystemExit(1)
    data = describe(profile)
    if as_json:
        click.echo(json.dumps(data, default=str, ensure_ascii=False))
    else:
        click.echo(_show_text(data))


def describe(profile: Profile) -> dict[str, Any]:
    """Everything ``show`` says about one registration, as plain values (times as ISO text)."""
    facts = registration_facts(profile.practitioner, profile.verdict)
    return {
        **{key: iso(v) if isinstance(v, datetime) else v for key, v in facts.items()},
        "register_record_url": profile.record_url,
        "history": [
            {
                "checked_at": iso(c.checked_at),
                "recorded_at": iso(c.recorded_at),
                "source": c.source,
                "outcome": c.outcome,
                "status": c.status,
                "raw_status": c.raw_status,
                "effect": c.effect,
                "error": c.error,
                "duration_ms": c.duration_ms,
            }
            for c in profile.history
        ],
        "status_events": [
            {
                "event_id": e.event_id,
                "occurred_at": iso(e.occurred_at),
                "from_status": e.from_status,
                "to_status": e.to_status,
                "source": e.source,
            }
            for e in profile.status_events
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
        f"  the register's own record: {d['register_record_url']}",
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
