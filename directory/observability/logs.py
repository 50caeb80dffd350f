"""Logs: one JSON object per line when ``LOG_FORMAT = "json"``, a request id on every line
written while serving a request, and no secret in any line, in either format.

- The request id is nginx's ``X-Request-Id`` (``$request_id``, deploy/nginx-proxy.conf) when
  it looks like one, else a new one; it is sent back in the answer's ``X-Request-Id``.
- One line per request (``"msg": "request"``): method, path (never the query string: a
  signed link carries its token there), route, status, duration in milliseconds, size.
- ``RedactingFilter`` (on every handler of the root logger) replaces the configured secrets
  (``SECRET_KEY``, the webhook secret, the SMTP password...) wherever they appear, and the
  value of any ``token=``, ``password=``, ``secret=``, ``signature=``, ``key=`` in a message.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

log = logging.getLogger("directory.requests")

REQUEST_ID_SHAPE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Settings whose values must never be written anywhere.
SECRET_SETTINGS = ("SECRET_KEY", "NOTIFY_WEBHOOK_SECRET", "MAIL_SMTP_PASSWORD")
_SECRET_PARAMETER = re.compile(
    r"(?i)\b((?:[a-z_]*token|password|passwd|secret|signature|sig|api_key)"
    r"[\"']?\s*[=:]\s*[\"']?)([^&\s\"',;]+)"
)
_CREDENTIALS_IN_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]+:)([^@/\s]+)(@)")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
REDACTED = "[redacted]"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = _CREDENTIALS_IN_URL.sub(rf"\1{REDACTED}\3", text)
    return _SECRET_PARAMETER.sub(rf"\1{REDACTED}", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (arguments merged in) without secrets."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if has_request_context() and not hasattr(record, "request_id"):
            record.request_id = getattr(g, "request_id", None)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and value is not None:
                entry[key] = value
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(app: Flask) -> None:
    """The root logger's handlers get the redaction filter (and, for json, the formatter)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    secrets = tuple(str(app.config.get(k) or "") for k in SECRET_SETTINGS)
    secrets = tuple(s for s in secrets if len(s) >= 6)  # a short one would redact words
    for handler in root.handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(RedactingFilter(secrets))
        # Only the plain stream handlers (the one above, or an operator's basicConfig): a
        # test runner's capturing handlers keep their own format.
        if app.config["LOG_FORMAT"] == "json" and type(handler) is logging.StreamHandler:
            handler.setFormatter(JsonFormatter())


def _start() -> None:
    g.request_started = time.perf_counter()
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if REQUEST_ID_SHAPE.match(given) else uuid.uuid4().hex


def _finish(response):
    started = g.get("request_started")
    if started is None:
        return response
    seconds = time.perf_counter() - started
    response.headers.setdefault("X-Request-Id", g.request_id)
    route = request.url_rule.rule if request.url_rule else "(unmatched)"
    if g.get("observe_requests"):
        from directory.observability import metrics

        metrics.observe_request(route, request.method, response.status_code, seconds)
    if g.get("log_requests"):
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path[:200],  # never the query string
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "bytes": response.calculate_content_length(),
                "remote": request.remote_addr,
            },
        )
    return response


def init_app(app: Flask) -> None:
    configure_logging(app)
    log_requests = app.config["LOG_FORMAT"] == "json"
    observe_requests = bool(app.config["METRICS_ENABLED"])

    def start() -> None:
        _start()
        g.log_requests = log_requests
        g.observe_requests = observe_requests

    # First in, last out: the duration covers every other hook, and a hook that answers
    # early (a 429, a redirect) is still counted and logged.
    app.before_request_funcs.setdefault(None, []).insert(0, start)
    app.after_request_funcs.setdefault(None, []).insert(0, _finish)
