"""The notification and feed settings, read and checked once per app (names as in
``config/settings.py``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from directory.util.durations import parse_duration

MAIL_TRANSPORTS = ("file", "smtp", "none")
# Used for links when PUBLIC_BASE_URL is unset and there is no request to take the host from.
FALLBACK_BASE_URL = "http://127.0.0.1:8000"


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{key}: not a yes/no value: {value!r}")


def _http_url(key: str, value: Any) -> str:
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{key}: not an http(s) URL: {value!r}")
    return text


def _positive(key: str, value: Any, kind: type = float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: not a number: {value!r}") from None
    if number <= 0:
        raise ValueError(f"{key}: must be more than 0: {value!r}")
    return number


@dataclass(frozen=True)
class NotifySettings:
    public_base_url: str | None
    webhook_url: str | None
    webhook_secret: str | None = field(repr=False)
    webhook_timeout: float
    mail_transport: str
    mail_dir: Path
    mail_from: str
    smtp_host: str
    smtp_port: int
    smtp_user: str | None
    smtp_password: str | None = field(repr=False)
    smtp_starttls: bool
    smtp_timeout: float
    retry_first: timedelta
    retry_max: timedelta
    max_attempts: int
    lease: timedelta

    @property
    def mail_enabled(self) -> bool:
        return self.mail_transport != "none"

    @property
    def mail_domain(self) -> str:
        address = parseaddr(self.mail_from)[1]
        return address.rpartition("@")[2] or "directory.invalid"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], instance_path: str) -> NotifySettings:
        """Read and check the settings; raises ValueError naming the bad setting."""
        webhook_url = config.get("NOTIFY_WEBHOOK_URL") or None
        secret = config.get("NOTIFY_WEBHOOK_SECRET") or None
        if webhook_url:
            webhook_url = _http_url("NOTIFY_WEBHOOK_URL", webhook_url)
            if not secret:
                raise ValueError(
                    "NOTIFY_WEBHOOK_SECRET: required when NOTIFY_WEBHOOK_URL is set "
                    "(receivers verify the signature with it)"
                )
        base = config.get("PUBLIC_BASE_URL") or None
        if base:
            base = _http_url("PUBLIC_BASE_URL", base).rstrip("/")
        transport = str(config.get("MAIL_TRANSPORT") or "file").strip().lower()
        if transport not in MAIL_TRANSPORTS:
            raise ValueError(
                f"MAIL_TRANSPORT: {transport!r} is not one of {', '.join(MAIL_TRANSPORTS)}"
            )
        mail_from = str(config.get("MAIL_FROM") or "").strip()
        if "@" not in parseaddr(mail_from)[1]:
            raise ValueError(f"MAIL_FROM: not an email address: {mail_from!r}")
        mail_dir = config.get("MAIL_FILE_DIR") or os.path.join(instance_path, "mail")

        def duration(key: str) -> timedelta:
            try:
                return parse_duration(config[key])
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None

        settings = cls(
            public_base_url=base,
            webhook_url=webhook_url,
            webhook_secret=secret,
            webhook_timeout=_positive("NOTIFY_WEBHOOK_TIMEOUT", config["NOTIFY_WEBHOOK_TIMEOUT"]),
            mail_transport=transport,
            mail_dir=Path(mail_dir),
            mail_from=mail_from,
            smtp_host=str(config.get("MAIL_SMTP_HOST") or "localhost"),
            smtp_port=_positive("MAIL_SMTP_PORT", config["MAIL_SMTP_PORT"], int),
            smtp_user=config.get("MAIL_SMTP_USER") or None,
            smtp_password=config.get("MAIL_SMTP_PASSWORD") or None,
            smtp_starttls=_bool("MAIL_SMTP_STARTTLS", config["MAIL_SMTP_STARTTLS"]),
            smtp_timeout=_positive("MAIL_SMTP_TIMEOUT", config["MAIL_SMTP_TIMEOUT"]),
            retry_first=duration("NOTIFY_RETRY_FIRST"),
            retry_max=duration("NOTIFY_RETRY_MAX"),
            max_attempts=_positive("NOTIFY_MAX_ATTEMPTS", config["NOTIFY_MAX_ATTEMPTS"], int),
            lease=duration("NOTIFY_LEASE"),
        )
        slowest = max(settings.webhook_timeout, settings.smtp_timeout)
        if settings.lease.total_seconds() < 3 * slowest:
            raise ValueError(
                f"NOTIFY_LEASE: {settings.lease} is too short for sends that may take "
                f"{slowest:g}s (make it at least three times the longest timeout)"
            )
        if settings.retry_max < settings.retry_first:
            raise ValueError("NOTIFY_RETRY_MAX: must not be shorter than NOTIFY_RETRY_FIRST")
        return settings

    @property
    def batch_size(self) -> int:
        """How many rows one claim takes: few enough to send well within the lease."""
        slowest = max(self.webhook_timeout, self.smtp_timeout)
        return max(1, min(50, int(self.lease.total_seconds() // (2 * slowest))))
