"""Emails about a status change: one per clinic listing the practitioner, written as RFC 5322
files by default or sent through SMTP (to a real, minimal SMTP server on loopback)."""

from __future__ import annotations

import email
import email.policy
import socketserver
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import select

from directory import create_app
from directory.extensions import db
from directory.listings.models import Clinic, Listing
from directory.notifications import DeliveryState, NotificationOutbox, deliver_pending
from directory.registry.checks import new_practitioner
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


@pytest.fixture
def mail_dir(tmp_path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def app_config(app_config, mail_dir):
    return {
        **app_config,
        "MAIL_FILE_DIR": str(mail_dir),
        "MAIL_FROM": "Directory (fictional) <notices@directory.example>",
        "PUBLIC_BASE_URL": "https://directory.example",
        "NOTIFY_RETRY_FIRST": "0s",
    }


def answer(number: str, raw_status: str, observed_at) -> LookupResult:
    row = RegisterRow(
        number, "DR", "TESTPERSON", "FICTIONAL", "DURBAN", "4001",
        "Medical Practitioner", raw_status,
    )  # fmt: skip
    return LookupResult(number, Outcome.OK, observed_at, "test", rows=(row,))


def listed_practitioner(number: str, clinic_emails: list[str | None]) -> Practitioner:
    """An active practitioner listed at one fictional clinic per given email address."""
    policy = RegistryPolicy.from_config(current_app.config)
    p = new_practitioner(number)
    record_check(db.session, p, answer(number, "ACTIVE", utcnow() - timedelta(days=2)), policy)
    for i, address in enumerate(clinic_emails):
        clinic = Clinic(slug=f"{number.lower()}-clinic-{i}", name=f"Fictional Clinic {i}",
                        city="Durban", province="KwaZulu-Natal", email=address)  # fmt: skip
        db.session.add(Listing(practitioner=p, clinic=clinic))
    db.session.commit()
    return p


def change(p: Practitioner, raw_status: str = "SUSPENDED") -> str:
    policy = RegistryPolicy.from_config(current_app.config)
    effect = record_check(db.session, p, answer(p.registration_number, raw_status, utcnow()),
                          policy)  # fmt: skip
    assert effect.changed
    db.session.commit()
    return effect.event.event_id


def read_messages(directory: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(directory.glob("*.eml"))
    ]


def test_file_transport_writes_one_message_per_clinic(app, mail_dir):
    with app.app_context():
        emails = [
            "one@clinic.example",
            None,
            "two@clinic.example",
            "not an address",
            "ONE@clinic.example",  # the same mailbox as the first clinic's: one message
        ]
        p = listed_practitioner("MP0000501", emails)
        event_id = change(p)
        rows = db.session.scalars(select(NotificationOutbox)).all()
        assert sorted(r.target for r in rows) == ["one@clinic.example", "two@clinic.example"]
        summary = deliver_pending()
        assert (summary.attempted, summary.delivered) == (2, 2)
        assert deliver_pending().attempted == 0

    messages = read_messages(mail_dir)
    assert sorted(m["To"].addresses[0].addr_spec for m in messages) == [
        "one@clinic.example",
        "two@clinic.example",
    ]
    assert len({m["Message-ID"] for m in messages}) == 2
    for message in messages:
        assert message["X-Directory-Event-Id"] == event_id
        assert event_id in message["Message-ID"]
        assert message["From"].addresses[0].addr_spec == "notices@directory.example"
        assert message["Subject"] == "HPCSA registration MP0000501: active -> suspended"
        assert message["Auto-Submitted"] == "auto-generated"
        body = message.get_content()
        assert "Dr Fictional Testperson (MP0000501)" in body
        assert "https://directory.example/practitioners/MP0000501" in body
        assert "may not practise" in " ".join(body.split())
        assert all(len(line) <= 78 for line in body.splitlines())
    raw = next(mail_dir.glob("*.eml")).read_bytes()
    assert b"\r\n" in raw  # RFC 5322 line endings
    assert not list(mail_dir.glob(".tmp-*"))


def test_a_practitioner_without_listings_gets_no_email(app, mail_dir):
    with app.app_context():
        change(listed_practitioner("MP0000502", []))
        assert db.session.scalars(select(NotificationOutbox)).all() == []
        assert deliver_pending().attempted == 0
    assert not mail_dir.exists()


def test_mail_transport_none_queues_no_email(same_db_config):
    app = create_app({**same_db_config, "MAIL_TRANSPORT": "none"})
    with app.app_context():
        change(listed_practitioner("MP0000503", ["one@clinic.example"]))
        assert db.session.scalars(select(NotificationOutbox)).all() == []


def test_an_unwritable_mail_directory_is_retried_not_lost(same_db_config, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    app = create_app({**same_db_config, "MAIL_FILE_DIR": str(blocker / "mail")})
    with app.app_context():
        change(listed_practitioner("MP0000504", ["one@clinic.example"]))
        summary = deliver_pending()
        assert summary.retrying == 1
        [row] = db.session.scalars(select(NotificationOutbox)).all()
        assert row.state == DeliveryState.PENDING
        assert "cannot write mail file" in row.last_error


class SmtpServer:
    """Just enough SMTP (RFC 5321) on 127.0.0.1 to receive messages; refuses chosen RCPTs."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse: set[str] = set()
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 fictional.test SMTP ready")
                sender, recipients = "", []
                while line := self.rfile.readline():
                    command = line.decode().strip()
                    verb = command[:4].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 fictional.test")
                    elif verb == "MAIL":
                        sender, recipients = command.split(":", 1)[1].strip("<> "), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpt = command.split(":", 1)[1].strip("<> ")
                        if rcpt in server.refuse:
                            self.reply("550 no such mailbox")
                        else:
                            recipients.append(rcpt)
                            self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk
                        server.messages.append((sender, recipients, data))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 OK")

        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.tcp.daemon_threads = True
        self.port = self.tcp.server_address[1]
        self.thread = threading.Thread(
            target=self.tcp.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.tcp.shutdown()
        self.tcp.server_close()


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    yield server
    server.close()


def test_smtp_transport_sends_and_records_refusals(same_db_config, smtp_server):
    smtp_server.refuse.add("gone@clinic.example")
    app = create_app(
        {
            **same_db_config,
            "MAIL_TRANSPORT": "smtp",
            "MAIL_SMTP_HOST": "127.0.0.1",
            "MAIL_SMTP_PORT": smtp_server.port,
            "MAIL_SMTP_STARTTLS": False,
        }
    )
    with app.app_context():
        event_id = change(
            listed_practitioner("MP0000505", ["one@clinic.example", "gone@clinic.example"])
        )
        summary = deliver_pending()
        assert (summary.delivered, summary.retrying) == (1, 1)
        refused = db.session.scalar(
            select(NotificationOutbox).where(NotificationOutbox.target == "gone@clinic.example")
        )
        assert refused.state == DeliveryState.PENDING
        assert refused.deliveries[0].response_code == 550

    [(sender, recipients, data)] = smtp_server.messages
    assert sender == "notices@directory.example"
    assert recipients == ["one@clinic.example"]
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message["X-Directory-Event-Id"] == event_id


def test_smtp_server_down_is_a_failure_to_retry(same_db_config):
    app = create_app(
        {**same_db_config, "MAIL_TRANSPORT": "smtp", "MAIL_SMTP_HOST": "127.0.0.1",
         "MAIL_SMTP_PORT": 9, "MAIL_SMTP_STARTTLS": False}
    )  # fmt: skip
    with app.app_context():
        change(listed_practitioner("MP0000506", ["one@clinic.example"]))
        summary = deliver_pending()
        assert summary.retrying == 1
        [row] = db.session.scalars(select(NotificationOutbox)).all()
        assert "Connection refused" in row.last_error or "Errno" in row.last_error


def test_nothing_can_be_smuggled_into_the_headers(app, mail_dir):
    with app.app_context():
        p = listed_practitioner(
            "MP0000507", ["ok@clinic.example", "evil@clinic.example\r\nBcc: spy@else.example"]
        )
        clinic = db.session.scalar(select(Clinic).where(Clinic.email == "ok@clinic.example"))
        clinic.name = "Fictional\r\nBcc: spy@else.example Clinic"
        db.session.commit()
        change(p)
        assert deliver_pending().delivered == 1
    [message] = read_messages(mail_dir)
    assert message["Bcc"] is None
    assert [a.addr_spec for a in message["To"].addresses] == ["ok@clinic.example"]
    assert "\n" not in str(message["To"])
