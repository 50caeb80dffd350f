"""How one outbox row leaves the building: a signed webhook POST, or an email through the
configured mail transport (files under ``instance/mail/`` by default, or SMTP).

A transport never raises for a receiver's fault: it returns a ``SendResult``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import smtplib
import ssl
import tempfile
import textwrap
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Protocol

import httpx

from directory.notifications.models import Channel, NotificationOutbox
from directory.notifications.settings import NotifySettings
from directory.registry.statuses import PATIENT_MEANING, Status

SIGNATURE_HEADER = "X-Directory-Signature"
EVENT_ID_HEADER = "X-Directory-Event-Id"
ATTEMPT_HEADER = "X-Directory-Delivery-Attempt"
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class SendResult:
    ok: bool
    response_code: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait


class Transport(Protocol):
    def send(self, row: NotificationOutbox, attempt: int) -> SendResult: ...

    def close(self) -> None: ...


# --- Webhook ---------------------------------------------------------------------------


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed): compact, key-sorted UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, secret: str, header_value: str | None) -> bool:
    """What a receiver does (documented in docs/notifications.md); used by the tests."""
    return header_value is not None and hmac.compare_digest(sign(body, secret), header_value)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header in seconds, from either of its forms; None when unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class WebhookTransport:
    """POSTs the payload to the row's target URL, signed with NOTIFY_WEBHOOK_SECRET."""

    def __init__(self, settings: NotifySettings, user_agent: str) -> None:
        self.secret = settings.webhook_secret or ""
        self.client = httpx.Client(
            timeout=settings.webhook_timeout,
            follow_redirects=False,
            headers={"User-Agent": user_agent},
        )

    def send(self, row: NotificationOutbox, attempt: int) -> SendResult:
        if not self.secret:
            return SendResult(False, error="NOTIFY_WEBHOOK_SECRET is not set: not sent unsigned")
        body = webhook_body(row.payload)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.secret),
            EVENT_ID_HEADER: row.event_id,
            ATTEMPT_HEADER: str(attempt),
        }
        try:
            response = self.client.post(row.target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return SendResult(False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
        if 200 <= response.status_code < 300:
            return SendResult(True, response.status_code)
        return SendResult(
            False,
            response.status_code,
            error=f"HTTP {response.status_code}: {response.text[:200]}"[:MAX_ERROR_CHARS],
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    def close(self) -> None:
        self.client.close()


# --- Email -----------------------------------------------------------------------------


def message_id(row: NotificationOutbox, settings: NotifySettings) -> str:
    """Stable for the row, so a repeated delivery of one message carries the same id."""
    return f"<{row.event_id}.{row.id}@{settings.mail_domain}>"


def _wrap(text: str) -> str:
    """Lines under 78 characters (RFC 5322), never breaking a URL or an id."""
    return "\n".join(
        textwrap.fill(line, 76, break_long_words=False, break_on_hyphens=False)
        for line in text.splitlines()
    )


def build_message(row: NotificationOutbox, settings: NotifySettings) -> EmailMessage:
    """The email about one status change, to one recipient (RFC 5322)."""
    p = row.payload
    number = p["registration_number"]
    who = p.get("practitioner_name") or f"registration {number}"
    try:
        meaning = PATIENT_MEANING[Status(p["to"])]
    except (KeyError, ValueError):
        meaning = ""
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = settings.mail_from
    to_name = " ".join(str(p.get("recipient_name") or "").split())  # one line, always
    username, _, domain = row.target.rpartition("@")
    msg["To"] = Address(display_name=to_name, username=username, domain=domain)
    msg["Subject"] = f"HPCSA registration {number}: {p['from'] or 'unknown'} -> {p['to']}"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id(row, settings)
    msg[EVENT_ID_HEADER] = row.event_id
    msg["Auto-Submitted"] = "auto-generated"
    clinic = f" at {to_name}" if to_name else ""
    paragraphs = [
        f"The HPCSA register's status for {who} ({number}), listed{clinic} in the "
        f"directory, changed from {p['from'] or 'unknown'} to {p['to']}.",
        meaning,
        f"Changed on the register as of: {p['occurred_at']}\n"
        f"Practitioner page: {p['practitioner_url']}",
        "You receive this because your clinic lists this practitioner in the directory.\n"
        f"Event id (the same in every copy of this notice): {row.event_id}",
    ]
    msg.set_content("\n\n".join(_wrap(text) for text in paragraphs if text) + "\n")
    return msg


class FileMailTransport:
    """Writes each message as an ``.eml`` file (RFC 5322, CRLF) under MAIL_FILE_DIR.

    The file is named after the outbox row, so a repeated delivery rewrites the same file
    instead of adding a second one; it appears atomically (written aside, then renamed).
    """

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self.directory = settings.mail_dir

    def path_for(self, row: NotificationOutbox):
        return self.directory / f"{row.event_id}-{row.id}.eml"

    def send(self, row: NotificationOutbox, attempt: int) -> SendResult:
        return self.write(self.path_for(row), build_message(row, self.settings).as_bytes())

    def write(self, path, data: bytes) -> SendResult:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".eml")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError as exc:
            return SendResult(False, error=f"cannot write mail file: {exc}"[:MAX_ERROR_CHARS])
        return SendResult(True)

    def close(self) -> None:
        pass


class SmtpMailTransport:
    """Sends through MAIL_SMTP_HOST:PORT, with STARTTLS and login when configured."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    def send(self, row: NotificationOutbox, attempt: int) -> SendResult:
        return self.send_message(build_message(row, self.settings))

    def send_message(self, message: EmailMessage) -> SendResult:
        s = self.settings
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout) as smtp:
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_user:
                    smtp.login(s.smtp_user, s.smtp_password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (None, b""))
            return SendResult(False, code, error=f"recipient refused: {code} {reply!r}")
        except smtplib.SMTPResponseException as exc:
            return SendResult(
                False, exc.smtp_code, error=f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            )
        except (smtplib.SMTPException, OSError) as exc:
            return SendResult(False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
        return SendResult(True, 250)

    def close(self) -> None:
        pass


class DisabledTransport:
    """For rows whose channel is switched off since they were queued: they wait."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def send(self, row: NotificationOutbox, attempt: int) -> SendResult:
        return SendResult(False, error=self.reason)

    def close(self) -> None:
        pass


def transports_for(settings: NotifySettings, user_agent: str) -> dict[str, Transport]:
    mail: Transport
    if settings.mail_transport == "smtp":
        mail = SmtpMailTransport(settings)
    elif settings.mail_transport == "file":
        mail = FileMailTransport(settings)
    else:
        mail = DisabledTransport("MAIL_TRANSPORT is 'none'")
    return {
        Channel.WEBHOOK.value: WebhookTransport(settings, user_agent),
        Channel.EMAIL.value: mail,
    }


def send_email_now(settings: NotifySettings, message: EmailMessage) -> SendResult:
    """Send one message now through the configured mail transport (account emails: claim
    links, password resets, invitations), without the outbox: the person is waiting for it.
    ``From``, ``Date`` and ``Message-ID`` are filled in when the message lacks them."""
    if "From" not in message:
        message["From"] = settings.mail_from
    if "Date" not in message:
        message["Date"] = format_datetime(datetime.now(UTC))
    if "Message-ID" not in message:
        message["Message-ID"] = f"<{uuid.uuid4().hex}@{settings.mail_domain}>"
    message["Auto-Submitted"] = "auto-generated"
    if settings.mail_transport == "smtp":
        return SmtpMailTransport(settings).send_message(message)
    if settings.mail_transport == "file":
        transport = FileMailTransport(settings)
        name = f"account-{utcnow_stamp()}-{uuid.uuid4().hex[:12]}.eml"
        return transport.write(transport.directory / name, message.as_bytes())
    return SendResult(False, error="MAIL_TRANSPORT is 'none': no email is sent")


def utcnow_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
