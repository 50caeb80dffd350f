"""Status changes queue their notifications in the same transaction (an outbox) and are
sent after commit: signed webhooks to a real receiver on loopback, retried, recorded, never
sent twice at once, never lost by a crash between commit and send."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from directory import create_app
from directory.extensions import db
from directory.listings.models import Clinic, Listing
from directory.notifications import (
    ChangeFeedEntry,
    DeliveryState,
    NotificationDelivery,
    NotificationOutbox,
    deliver_pending,
)
from directory.notifications.delivery import backoff, claim
from directory.notifications.queue import queue_for_events
from directory.notifications.receiver import WebhookReceiver
from directory.notifications.settings import NotifySettings
from directory.notifications.transports import parse_retry_after, sign, webhook_body
from directory.registry.checks import new_practitioner
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import Practitioner, StatusEvent
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow

SECRET = "test-webhook-secret"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


@pytest.fixture
def receiver():
    with WebhookReceiver(SECRET) as server:
        yield server


@pytest.fixture
def app_config(app_config, receiver, tmp_path):
    return {
        **app_config,
        "NOTIFY_WEBHOOK_URL": receiver.url,
        "NOTIFY_WEBHOOK_SECRET": SECRET,
        "NOTIFY_WEBHOOK_TIMEOUT": 2.0,
        "MAIL_SMTP_TIMEOUT": 2.0,
        "NOTIFY_RETRY_FIRST": "0s",  # a failed send is due again at once (next call)
        "MAIL_FILE_DIR": str(tmp_path / "mail"),
        "PUBLIC_BASE_URL": "https://directory.example",
    }


def answer(number: str, raw_status: str, observed_at) -> LookupResult:
    """A register answer for a fictional practitioner."""
    row = RegisterRow(
        number, "DR", "TESTPERSON", "FICTIONAL", "CAPE TOWN", "8001",
        "Medical Practitioner", raw_status,
    )  # fmt: skip
    return LookupResult(number, Outcome.OK, observed_at, "test", rows=(row,))


def active_practitioner(number: str, *, days_ago: int = 3) -> Practitioner:
    """A registration the register confirmed as active (no event: a first sighting)."""
    policy = RegistryPolicy.from_config(current_app.config)
    p = new_practitioner(number)
    record_check(db.session, p, answer(number, "ACTIVE", utcnow() - timedelta(days=days_ago)),
                 policy)  # fmt: skip
    db.session.commit()
    return p


@dataclass(frozen=True)
class Change:
    id: int | None
    event_id: str | None
    occurred_at: datetime


def suspend(p: Practitioner, *, commit: bool = True) -> Change:
    """The register now says suspended: one status change, through the rules."""
    policy = RegistryPolicy.from_config(current_app.config)
    effect = record_check(db.session, p, answer(p.registration_number, "SUSPENDED", utcnow()),
                          policy)  # fmt: skip
    assert effect.changed
    if commit:
        db.session.commit()
    event = effect.event
    return Change(event.id, event.event_id, event.occurred_at)


def outbox_rows() -> list[NotificationOutbox]:
    return list(db.session.scalars(select(NotificationOutbox).order_by(NotificationOutbox.id)))


def test_a_status_change_queues_its_webhook_in_the_same_transaction(app):
    with app.app_context():
        p = active_practitioner("MP0000101")
        assert outbox_rows() == []  # a first sighting is not a change
        event = suspend(p)
        rows = outbox_rows()
        assert [(r.channel, r.state, r.event_id) for r in rows] == [
            ("webhook", "pending", event.event_id)
        ]
        assert rows[0].payload == {
            "event_id": event.event_id,
            "registration_number": "MP0000101",
            "from": "active",
            "to": "suspended",
            "occurred_at": event.occurred_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "practitioner_url": "https://directory.example/practitioners/MP0000101",
        }
        feed = db.session.scalars(select(ChangeFeedEntry)).all()
        assert [f.status_event_id for f in feed] == [event.id]


def test_a_rollback_queues_nothing(app):
    with app.app_context():
        p = active_practitioner("MP0000101")
        suspend(p, commit=False)
        db.session.flush()  # the rows were written in the transaction...
        assert len(outbox_rows()) == 1
        db.session.rollback()  # ...and go with it
        assert outbox_rows() == []
        assert db.session.scalar(select(func.count()).select_from(ChangeFeedEntry)) == 0
        assert db.session.scalar(select(func.count()).select_from(StatusEvent)) == 0
        assert db.session.get(Practitioner, p.id).status == "active"


def test_webhook_is_signed_carries_the_event_id_and_is_recorded(app, receiver):
    with app.app_context():
        event = suspend(active_practitioner("MP0000101"))
        summary = deliver_pending()
        assert (summary.attempted, summary.delivered) == (1, 1)

        [hook] = receiver.requests
        assert hook.signature_ok
        assert hook.headers["x-directory-signature"] == sign(hook.body, SECRET)
        assert hook.headers["x-directory-event-id"] == event.event_id
        assert hook.headers["content-type"] == "application/json"
        body = hook.json()
        assert body["event_id"] == event.event_id
        assert (body["from"], body["to"]) == ("active", "suspended")
        assert hook.body == webhook_body(body)  # the exact bytes that were signed

        [row] = outbox_rows()
        assert row.state == DeliveryState.DELIVERED
        assert row.delivered_at is not None and row.attempts == 1
        assert row.lease_owner is None
        [delivery] = row.deliveries
        assert (delivery.ok, delivery.response_code, delivery.attempt) == (True, 200, 1)

        assert deliver_pending().attempted == 0  # delivered rows are never sent again
        assert len(receiver.requests) == 1


def test_a_wrong_secret_is_detectable_by_the_receiver(app, receiver):
    receiver.secret = "another-secret"
    with app.app_context():
        suspend(active_practitioner("MP0000101"))
        summary = deliver_pending()
    assert not receiver.requests[0].signature_ok
    assert summary.retrying == 1  # the receiver said 401: kept for a retry


def test_webhook_retried_after_a_500_then_delivered(app, receiver):
    receiver.respond_with(500)
    with app.app_context():
        event = suspend(active_practitioner("MP0000101"))
        first = deliver_pending()
        assert (first.attempted, first.retrying, first.delivered) == (1, 1, 0)
        [row] = outbox_rows()
        assert row.state == DeliveryState.PENDING and row.attempts == 1
        assert row.last_error.startswith("HTTP 500")

        second = deliver_pending()
        assert (second.attempted, second.delivered) == (1, 1)
        db.session.expire_all()
        [row] = outbox_rows()
        assert row.state == DeliveryState.DELIVERED and row.attempts == 2
        assert [(d.attempt, d.ok, d.response_code) for d in row.deliveries] == [
            (1, False, 500),
            (2, True, 200),
        ]
    assert [r.status_answered for r in receiver.requests] == [500, 200]
    assert {r.event_id for r in receiver.requests} == {event.event_id}
    assert receiver.requests[0].body == receiver.requests[1].body
    assert [r.headers["x-directory-delivery-attempt"] for r in receiver.requests] == ["1", "2"]


def test_a_failed_send_waits_its_backoff(app_config, receiver):
    app = create_app({**app_config, "NOTIFY_RETRY_FIRST": "1m"})
    receiver.respond_with(503)
    with app.app_context():
        db.create_all()
        suspend(active_practitioner("MP0000101"))
        assert deliver_pending().retrying == 1
        [row] = outbox_rows()
        assert row.next_attempt_at >= utcnow() + timedelta(seconds=25)
        assert deliver_pending().attempted == 0  # not due yet
    assert len(receiver.requests) == 1


def test_backoff_doubles_is_capped_and_honours_retry_after():
    settings = NotifySettings.from_config(
        {**_defaults(), "NOTIFY_RETRY_FIRST": "1m", "NOTIFY_RETRY_MAX": "1h"}, "/tmp"
    )
    for attempt, step in [(1, 60), (2, 120), (3, 240), (7, 3600), (30, 3600)]:
        delay = backoff(attempt, settings).total_seconds()
        assert step / 2 <= delay <= step
    assert backoff(1, settings, retry_after=600).total_seconds() == 600
    assert backoff(1, settings, retry_after=999_999).total_seconds() == 3600
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert parse_retry_after("soon") is None


def test_gives_up_after_the_last_attempt_and_retry_requeues(app_config, receiver):
    app = create_app({**app_config, "NOTIFY_MAX_ATTEMPTS": 2})
    receiver.respond_with(500, 500)
    runner = app.test_cli_runner()
    with app.app_context():
        db.create_all()
        event = suspend(active_practitioner("MP0000101"))
        assert deliver_pending().retrying == 1
        assert deliver_pending().failed == 1
        assert deliver_pending().attempted == 0
        [row] = outbox_rows()
        assert row.state == DeliveryState.FAILED

    bad = runner.invoke(args=["notifications", "retry", "--event-id", "not-a-uuid"])
    assert bad.exit_code == 2 and "not an event id" in bad.output
    assert "Traceback" not in bad.output
    result = runner.invoke(args=["notifications", "retry", "--event-id", event.event_id, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"type": "retry", "requeued": 1}
    sent = runner.invoke(args=["notifications", "send", "--json"])
    lines = [json.loads(line) for line in sent.output.splitlines()]
    assert lines[0]["type"] == "delivery" and lines[0]["ok"] is True
    assert lines[-1] == {**lines[-1], "type": "summary", "attempted": 1, "delivered": 1}
    assert [r.status_answered for r in receiver.requests] == [500, 500, 200]


def test_cli_send_status_and_bad_options(runner, app):
    with app.app_context():
        suspend(active_practitioner("MP0000101"))
    status = runner.invoke(args=["notifications", "status", "--json"])
    assert json.loads(status.output)["channels"] == {"webhook": {"pending": 1}}
    sent = runner.invoke(args=["notifications", "send"])
    assert sent.exit_code == 0
    assert "1 attempted: 1 delivered" in sent.output
    assert "webhook: delivered: 1" in runner.invoke(args=["notifications", "status"]).output
    bad = runner.invoke(args=["notifications", "send", "--limit", "0"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "send" in runner.invoke(args=["notifications", "--help"]).output


def test_limit_bounds_the_attempts(app, receiver):
    """On PostgreSQL too: the lease takes exactly ``limit`` rows (a pick re-run inside the
    UPDATE once leased more)."""
    with app.app_context():
        for n in range(3):
            suspend(active_practitioner(f"MP000020{n}"))
        assert deliver_pending(limit=2).attempted == 2
        assert deliver_pending(limit=0).attempted == 0
        assert deliver_pending().attempted == 1
    assert len(receiver.requests) == 3


def test_crash_between_commit_and_send_still_delivers_exactly_once(app_config, receiver):
    """The change commits and its process dies before sending; a new process sends it."""
    app = create_app(app_config)
    with app.app_context():
        db.create_all()
        event = suspend(active_practitioner("MP0000101"))
        db.session.remove()
        db.engine.dispose()  # the "crashed" process: nothing was sent
    assert receiver.requests == []

    script = textwrap.dedent(
        f"""
        import json
        from directory import create_app
        from directory.notifications import deliver_pending
        app = create_app(json.loads({json.dumps(json.dumps(app_config))}))
        with app.app_context():
            print(json.dumps(deliver_pending().to_dict()))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["delivered"] == 1
    again = create_app(app_config)  # and yet another start finds nothing left to send
    with again.app_context():
        assert deliver_pending().attempted == 0
    assert [r.event_id for r in receiver.requests] == [event.event_id]


def test_a_dead_senders_claim_expires_and_the_row_is_sent_once(app, receiver):
    with app.app_context():
        event = suspend(active_practitioner("MP0000101"))
        with Session(db.engine) as session:  # a sender that claims, then dies
            [claimed] = claim(
                session, "dead-sender/1", after_id=0, size=10, lease=timedelta(minutes=5)
            )
        assert claimed.event_id == event.event_id
        assert deliver_pending().attempted == 0  # still leased to the dead sender
        o = NotificationOutbox
        db.session.execute(
            update(o).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )  # ...five minutes later
        db.session.commit()
        assert deliver_pending().delivered == 1
    assert [r.event_id for r in receiver.requests] == [event.event_id]


def test_two_concurrent_senders_never_send_the_same_row(app, receiver):
    receiver.delay = 0.01  # so that the two senders overlap
    with app.app_context():
        events = [suspend(active_practitioner(f"MP00003{n:02d}")) for n in range(24)]
    summaries = []
    barrier = threading.Barrier(2)

    def sender(name: str) -> None:
        with app.app_context():
            barrier.wait()
            summaries.append(deliver_pending(worker=name))

    threads = [threading.Thread(target=sender, args=(f"sender-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    sent = [r.event_id for r in receiver.requests]
    assert sorted(sent) == sorted(e.event_id for e in events)  # each exactly once
    assert sum(s.delivered for s in summaries) == 24
    assert sum(s.lost_lease for s in summaries) == 0
    with app.app_context():
        workers = {d.worker.split("/")[0] for d in db.session.scalars(select(NotificationDelivery))}
        assert all(row.state == "delivered" for row in outbox_rows())
    assert workers <= {"sender-0", "sender-1"}


@pytest.mark.postgres
def test_two_concurrent_senders_on_postgresql(pg_app, receiver):
    """The same, with ``FOR UPDATE SKIP LOCKED`` picking the rows."""
    app = pg_app
    receiver.delay = 0.01
    with app.app_context():
        events = [suspend(active_practitioner(f"MP00004{n:02d}")) for n in range(16)]
    barrier = threading.Barrier(3)

    def sender() -> None:
        with app.app_context():
            barrier.wait()
            deliver_pending()

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r.event_id for r in receiver.requests) == sorted(e.event_id for e in events)


def test_an_idle_sender_takes_no_write_lock(sqlite_app):
    """Nothing due: one read, so a writer holding the database does not hold it up (SQLite's
    one writer at a time; PostgreSQL's readers never wait for writers)."""
    app = sqlite_app
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        with app.app_context():
            assert deliver_pending().attempted == 0
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_snapshot_imports_status_changes_are_queued_too(app, tmp_path, workers):
    """The import writes in bulk (in this process or in worker processes) and announces its
    batches' events like any live answer: each gets its feed entry and its webhook."""
    with app.app_context():
        active_practitioner("MP0000101")
    snapshot = tmp_path / "register.csv"
    snapshot.write_text(
        "Title,Surname,Fullname,Registration,City,Postal Code,Category,Status\n"
        "DR,TESTPERSON,FICTIONAL,MP 0000101,CAPE TOWN,8001,Medical Practitioner,ERASED\n"
    )
    result = app.test_cli_runner().invoke(
        args=["registry", "import", str(snapshot), "--as-of", utcnow().isoformat(),
              "--workers", workers]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with app.app_context():
        [event] = db.session.scalars(select(StatusEvent)).all()
        [row] = outbox_rows()
        assert row.event_id == event.event_id and row.payload["to"] == "erased"
        assert db.session.scalar(select(func.count()).select_from(ChangeFeedEntry)) == 1


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"NOTIFY_WEBHOOK_URL": "http://127.0.0.1:9/x", "NOTIFY_WEBHOOK_SECRET": None},
         "NOTIFY_WEBHOOK_SECRET"),
        ({"NOTIFY_WEBHOOK_URL": "ftp://example.org/x"}, "NOTIFY_WEBHOOK_URL"),
        ({"MAIL_TRANSPORT": "pigeon"}, "MAIL_TRANSPORT"),
        ({"MAIL_FROM": "nobody"}, "MAIL_FROM"),
        ({"NOTIFY_RETRY_FIRST": "soon"}, "NOTIFY_RETRY_FIRST"),
        ({"NOTIFY_LEASE": "5s"}, "NOTIFY_LEASE"),
        ({"MAIL_SMTP_STARTTLS": "perhaps"}, "MAIL_SMTP_STARTTLS"),
        ({"PUBLIC_BASE_URL": "directory.example"}, "PUBLIC_BASE_URL"),
    ],
)  # fmt: skip
def test_bad_settings_stop_start_up_with_their_name(app_config, overrides, named):
    with pytest.raises(RuntimeError, match=named):
        create_app({**app_config, **overrides})


def _defaults() -> dict:
    from config.settings import DefaultConfig

    return {k: getattr(DefaultConfig, k) for k in dir(DefaultConfig) if k.isupper()}


def test_events_written_outside_the_write_path_are_queued_by_the_repair(app):
    """Only the write path announces events; a row written by hand is queued by the repair
    ``queue_for_events(connection, app, None)``, once."""
    with app.app_context():
        p = active_practitioner("MP0000101")
        values = {"practitioner_id": p.id, "registration_number": "MP0000101",
                  "from_status": "active", "to_status": "erased", "occurred_at": utcnow(),
                  "source": "test"}  # fmt: skip
        [event_id] = (
            db.session.execute(insert(StatusEvent).returning(StatusEvent.event_id), [values])
            .scalars()
            .all()
        )
        db.session.commit()
        assert outbox_rows() == []
        connection = db.session.connection()
        assert queue_for_events(connection, app, None) == 1
        assert queue_for_events(connection, app, None) == 0  # already queued: not twice
        db.session.commit()
        assert [row.event_id for row in outbox_rows()] == [event_id]


def test_a_snapshot_import_that_changes_a_status_queues_it(app, tmp_path, receiver):
    """``flask registry import`` writes its events in bulk; they are queued all the same."""
    header = "Title,Surname,Fullname,Registration,City,Postal Code,Category,Status"
    runner = app.test_cli_runner()
    for as_of, status in (("2024-01-01", "ACTIVE"), ("2024-02-01", "SUSPENDED")):
        path = tmp_path / f"snapshot-{as_of}.csv"
        path.write_text(f"{header}\nDR,FICTIONAL,TEST PERSON,MP0000901,CAPE TOWN,8001,"
                        f"INDEPENDENT PRACTICE,{status}\n")  # fmt: skip
        result = runner.invoke(args=["registry", "import", str(path), "--as-of", as_of])
        assert result.exit_code == 0, result.output
    with app.app_context():
        event = db.session.scalar(select(StatusEvent))
        [row] = outbox_rows()
        assert row.event_id == event.event_id and row.payload["to"] == "suspended"
        assert deliver_pending().delivered == 1
    assert [r.event_id for r in receiver.requests] == [event.event_id]


def test_a_recheck_that_finds_a_suspension_notifies_once(app, fake_iregister, receiver, tmp_path):
    """End to end over real HTTP: the fake iRegister suspends a practitioner, the recheck
    job records it, and the webhook and the listing clinic's email go out once."""
    from importers.sources.hpcsa import HpcsaClient

    with app.app_context():
        with HpcsaClient.from_config(app.config) as source:
            result = source.lookup("MP0000101")
        p = new_practitioner("MP0000101")
        record_check(db.session, p, result, RegistryPolicy.from_config(app.config))
        clinic = Clinic(slug="fictional-clinic", name="Fictional Clinic", city="Johannesburg",
                        province="Gauteng", email="admin@clinic.example")  # fmt: skip
        db.session.add(Listing(practitioner=p, clinic=clinic))
        db.session.commit()
    fake_iregister.register.set_status("MP0000101", "SUSPENDED")

    run = app.test_cli_runner().invoke(args=["registry", "recheck", "--all", "--json"])
    assert run.exit_code == 0, run.output
    with app.app_context():
        deliver_pending()  # whatever the job's own post-commit call has not sent yet
        assert {(r.channel, r.state) for r in outbox_rows()} == {
            ("webhook", "delivered"),
            ("email", "delivered"),
        }
        event_id = db.session.scalar(select(StatusEvent.event_id))
    [hook] = receiver.requests
    assert hook.signature_ok and hook.event_id == event_id
    assert (hook.json()["from"], hook.json()["to"]) == ("active", "suspended")
    [mail] = list((tmp_path / "mail").glob("*.eml"))
    assert event_id in mail.read_text()


def test_prune_deletes_only_old_delivered_notifications_and_their_log(app_config, receiver):
    """Delivered long ago: gone with its delivery log. Delivered lately, still owed, or given
    up: kept. The status events and the change feed are history: never pruned."""
    app = create_app({**app_config, "NOTIFY_MAX_ATTEMPTS": 1})
    runner = app.test_cli_runner()
    with app.app_context():
        db.create_all()
        old, recent, failed, owed = (
            suspend(active_practitioner(f"MP000010{i}")) for i in range(1, 5)
        )
        receiver.respond_with(200, 200, 500)
        assert deliver_pending(limit=3).delivered == 2  # old, recent; then failed gives up
        rows = {row.event_id: row for row in outbox_rows()}
        assert rows[failed.event_id].state == DeliveryState.FAILED
        assert rows[owed.event_id].state == DeliveryState.PENDING
        db.session.execute(
            update(NotificationOutbox)
            .where(NotificationOutbox.event_id == old.event_id)
            .values(delivered_at=utcnow() - timedelta(days=91))
        )
        db.session.execute(
            update(NotificationOutbox)
            .where(NotificationOutbox.event_id.in_([failed.event_id, owed.event_id]))
            .values(created_at=utcnow() - timedelta(days=365))
        )
        db.session.commit()

    bad = runner.invoke(args=["notifications", "prune", "--older-than", "soon"])
    assert bad.exit_code == 2 and "--older-than" in bad.output and "Traceback" not in bad.output
    assert runner.invoke(args=["notifications", "prune", "--older-than", "0"]).exit_code == 2
    result = runner.invoke(args=["notifications", "prune", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"type": "prune", "notifications": 1, "deliveries": 1}

    with app.app_context():
        left = {row.event_id for row in outbox_rows()}
        assert left == {recent.event_id, failed.event_id, owed.event_id}
        logged = db.session.scalars(select(NotificationDelivery.outbox_id)).all()
        assert len(logged) == 2 and all(outbox_id is not None for outbox_id in logged)
        assert db.session.scalar(select(func.count()).select_from(StatusEvent)) == 4
        assert db.session.scalar(select(func.count()).select_from(ChangeFeedEntry)) == 4
    again = runner.invoke(args=["notifications", "prune"])
    assert "0 delivered notification(s) older than 90d deleted" in again.output
