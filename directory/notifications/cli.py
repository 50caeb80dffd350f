"""``flask notifications ...``: send queued notifications, show the queue, re-queue failures."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from directory.extensions import db
from directory.notifications.delivery import (
    DeliveryRecord,
    deliver_pending,
    outbox_counts,
    prune_delivered,
    retry_failed,
)
from directory.util.clock import utcnow
from directory.util.durations import duration_option

notifications_cli = AppGroup(
    "notifications",
    help="Notifications of status changes: send the queue, show it, retry, prune.",
)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _line(data: dict) -> None:
    click.echo(json.dumps(data, sort_keys=False))


@notifications_cli.command("send")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="At most this many delivery attempts (default: every due notification).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per attempt, then a summary."
)
def send_command(limit: int | None, as_json: bool) -> None:
    """Send the notifications that are due (webhook and email), each at most once per run.

    Safe to run in several processes at once and from cron; failed sends wait their
    backoff and are retried by a later run.
    """

    def show(record: DeliveryRecord) -> None:
        if as_json:
            _line(record.to_dict())
            return
        verdict = "delivered" if record.ok else f"failed ({record.error})"
        retry = f", next try {record.next_attempt_at}" if record.next_attempt_at else ""
        click.echo(
            f"{record.channel} {record.target} event {record.event_id} "
            f"attempt {record.attempt}: {verdict}{retry}"
        )

    summary = deliver_pending(limit, on_delivery=show)
    if as_json:
        _line(summary.to_dict())
    else:
        click.echo(
            f"{summary.attempted} attempted: {summary.delivered} delivered, "
            f"{summary.retrying} to retry, {summary.failed} given up "
            f"({summary.duration_s:.1f}s)"
        )


@notifications_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status_command(as_json: bool) -> None:
    """How many notifications are pending, delivered and given up, per channel."""
    with Session(db.engine) as session:
        counts = outbox_counts(session)
    if as_json:
        _line({"type": "status", "channels": counts})
        return
    if not counts:
        click.echo("No notifications queued yet.")
    for channel, states in sorted(counts.items()):
        parts = ", ".join(f"{state}: {n}" for state, n in sorted(states.items()))
        click.echo(f"{channel}: {parts}")


@notifications_cli.command("retry")
@click.option("--event-id", default=None, help="Only this event's notifications (a uuid).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def retry_command(event_id: str | None, as_json: bool) -> None:
    """Queue given-up notifications again (after a receiver's outage is fixed)."""
    if event_id is not None and not _UUID.match(event_id.strip()):
        raise click.BadParameter(
            f"{event_id!r} is not an event id (a uuid such as "
            "0b9e6c1e-1f7a-4c1e-9d1a-2f6b1a7c9e30)",
            param_hint="--event-id",
        )
    with Session(db.engine) as session:
        count = retry_failed(session, event_id.strip().lower() if event_id else None)
        session.commit()
    if as_json:
        _line({"type": "retry", "requeued": count})
    else:
        click.echo(f"{count} notification(s) queued again; `flask notifications send` sends them.")


def _age(value: str) -> timedelta:
    return duration_option(value, "--older-than")


@notifications_cli.command("prune")
@click.option(
    "--older-than",
    default="90d",
    show_default=True,
    help="Delete notifications delivered longer ago than this (e.g. 30d, 12h).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def prune_command(older_than: str, as_json: bool) -> None:
    """Delete old delivered notifications and their delivery log (keeps pending and failed)."""
    age = _age(older_than)
    with Session(db.engine) as session:
        notifications, attempts = prune_delivered(session, utcnow() - age)
        session.commit()
    if as_json:
        _line({"type": "prune", "notifications": notifications, "deliveries": attempts})
    else:
        click.echo(
            f"{notifications} delivered notification(s) older than {older_than} deleted, "
            f"with {attempts} delivery log row(s)."
        )
