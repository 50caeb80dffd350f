"""The HPCSA iRegister client.

The iRegister search form posts, form-encoded, to a report endpoint that answers JSON:
``data`` (a list of rows, each a list of values), ``headers`` (a list of objects with a
``heading`` and an ``order``), and report keys such as ``total_num``, ``truncated``,
``page`` and ``error`` (null when all is well). Values are upper case (``ACTIVE``) and
numbers padded (``MP   0000123``).

Anything that is not plainly such an answer is an error, never a status: a timeout, a
dropped connection, HTTP 429 or 5xx, an HTML page (even with status 200), a body that is
not JSON, a non-null ``error``, a missing column, or a row for another number.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from directory.registry import numbers
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow

SOURCE_NAME = "hpcsa-iregister"
VERSION = "0.1"

# The register's column headings, and the field each fills.
HEADINGS = {
    "title": "title",
    "surname": "surname",
    "fullname": "full_names",
    "registration": "registration_number",
    "city": "city",
    "postalcode": "postal_code",
    "category": "category",
    "status": "status",
}
# The order public clients document, used only when an answer carries no headers.
DOCUMENTED_ORDER = (
    "title",
    "surname",
    "fullname",
    "registration",
    "city",
    "postalcode",
    "category",
    "status",
)
REPORT_KEYS = {"data", "headers", "total_num", "truncated", "page", "error"}


class ShapeError(ValueError):
    """The answer is not the register's report shape; the message says how."""


def _heading_key(text: Any) -> str:
    return "".join(ch for ch in str(text).lower() if ch.isalnum())


def form_fields(registration_number: str) -> dict[str, str]:
    """The search form's fields, as the iRegister page posts them."""
    return {
        "regNumber": registration_number,
        "firstName": "",
        "surName": "",
        "city": "",
        "postalCode": "",
        "register": "",
        "category": "",
    }


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds, whether the server sent seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, (when - (now or utcnow())).total_seconds())


def column_positions(headers: Any) -> dict[str, int]:
    """Field -> position in each row, by heading; the documented order when no headers."""
    if headers in (None, []):
        return {HEADINGS[h]: i for i, h in enumerate(DOCUMENTED_ORDER)}
    if not isinstance(headers, list):
        raise ShapeError("'headers' is not a list")
    positions: dict[str, int] = {}
    for index, header in enumerate(headers):
        if isinstance(header, Mapping):
            heading = header.get("heading")
            order = header.get("order", index)
            if not isinstance(order, int) or isinstance(order, bool) or order < 0:
                raise ShapeError(f"header {heading!r} has an unusable order {order!r}")
        elif isinstance(header, str):
            heading, order = header, index
        else:
            raise ShapeError(f"header {index} is neither an object nor a string")
        field = HEADINGS.get(_heading_key(heading))
        if field is not None:
            if field in positions:
                raise ShapeError(f"heading {heading!r} appears twice")
            positions[field] = order
    missing = sorted(set(HEADINGS.values()) - set(positions))
    if missing:
        raise ShapeError("missing column(s): " + ", ".join(missing))
    return positions


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_report(asked: str, payload: Any) -> tuple[Outcome, tuple[RegisterRow, ...]]:
    """Read a decoded JSON answer for ``asked`` (canonical). Raises ShapeError when unusable."""
    if not isinstance(payload, Mapping):
        raise ShapeError(f"the answer is a JSON {type(payload).__name__}, not an object")
    if not REPORT_KEYS & set(payload):
        raise ShapeError("the answer has none of the report's keys (data, headers, error...)")
    if payload.get("error") not in (None, "", False):
        raise ShapeError(f"the register reported an error: {str(payload['error'])[:200]}")
    data = payload.get("data")
    if data is None or data == []:
        return Outcome.NOT_FOUND, ()
    if not isinstance(data, list):
        raise ShapeError("'data' is not a list")
    positions = column_positions(payload.get("headers"))
    width = max(positions.values()) + 1
    rows = []
    for i, raw in enumerate(data):
        if not isinstance(raw, list):
            raise ShapeError(f"row {i} is not a list of values")
        if len(raw) < width:
            raise ShapeError(f"row {i} has {len(raw)} values, fewer than the headers name")
        values = {field: _text(raw[pos]) for field, pos in positions.items()}
        try:
            number = numbers.normalise(values["registration_number"] or "")
        except numbers.RegistrationNumberError as exc:
            raise ShapeError(f"row {i} has an unreadable number: {exc}") from exc
        if number != asked:
            raise ShapeError(f"row {i} is for {number}, not the number asked for ({asked})")
        if not values["status"]:
            raise ShapeError(f"row {i} has no status")
        if not values["category"]:
            raise ShapeError(f"row {i} has no category")
        rows.append(
            RegisterRow(
                registration_number=number,
                title=values["title"],
                surname=values["surname"],
                full_names=values["full_names"],
                city=values["city"],
                postal_code=values["postal_code"],
                category=values["category"],
                status=values["status"],
            )
        )
    return Outcome.OK, tuple(rows)


@dataclass(frozen=True)
class HpcsaSettings:
    url: str
    timeout: float
    user_agent: str

    @classmethod
    def from_config(cls, config: Mapping) -> HpcsaSettings:
        return cls(
            url=config["HPCSA_URL"],
            timeout=float(config["HPCSA_TIMEOUT"]),
            user_agent=f"hpcsa-directory/{VERSION} (+{config['CONTACT_URL']})",
        )

    def client_options(self) -> dict[str, Any]:
        return {
            "timeout": httpx.Timeout(self.timeout),
            "headers": {"User-Agent": self.user_agent, "Accept": "application/json"},
            "follow_redirects": False,
        }


def interpret(asked: str, response: httpx.Response, started: float, source: str) -> LookupResult:
    """Turn one HTTP response into a LookupResult; the single parser both clients share."""
    observed_at = utcnow()
    duration_ms = int((time.monotonic() - started) * 1000)
    body = response.content
    digest = hashlib.sha256(body).hexdigest()

    def failure(message: str, *, transient: bool, retry_after: float | None = None):
        return LookupResult(
            registration_number=asked,
            outcome=Outcome.ERROR,
            observed_at=observed_at,
            source=source,
            digest=digest,
            error=message,
            duration_ms=duration_ms,
            transient=transient,
            retry_after=retry_after,
            http_status=response.status_code,
        )

    status = response.status_code
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return failure(
            "HTTP 429: the register is rate-limiting us", transient=True, retry_after=retry_after
        )
    if status >= 500:
        return failure(
            f"HTTP {status} from the register",
            transient=True,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status != 200:
        return failure(f"HTTP {status} from the register", transient=False)
    content_type = response.headers.get("content-type", "").lower()
    head = body.lstrip()[:1]
    if "html" in content_type or head == b"<":
        return failure("the register answered with an HTML page, not data", transient=True)
    try:
        payload = json.loads(body)
    except ValueError:
        return failure("the register's answer is not JSON", transient=True)
    try:
        outcome, rows = parse_report(asked, payload)
    except ShapeError as exc:
        return failure(f"unusable answer: {exc}", transient=False)
    return LookupResult(
        registration_number=asked,
        outcome=outcome,
        observed_at=observed_at,
        source=source,
        rows=rows,
        digest=digest,
        duration_ms=duration_ms,
        http_status=status,
    )


def transport_failure(asked: str, exc: Exception, started: float, source: str) -> LookupResult:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
    return LookupResult(
        registration_number=asked,
        outcome=Outcome.ERROR,
        observed_at=utcnow(),
        source=source,
        error=f"{kind}: {type(exc).__name__}: {exc}"[:500],
        duration_ms=int((time.monotonic() - started) * 1000),
        transient=True,
    )


class HpcsaClient:
    """Synchronous client: one look-up per call, no retries (callers decide those)."""

    name = SOURCE_NAME

    def __init__(self, settings: HpcsaSettings):
        self.settings = settings
        self._http = httpx.Client(**settings.client_options())

    @classmethod
    def from_config(cls, config: Mapping) -> HpcsaClient:
        return cls(HpcsaSettings.from_config(config))

    def lookup(self, registration_number: str) -> LookupResult:
        started = time.monotonic()
        try:
            response = self._http.post(self.settings.url, data=form_fields(registration_number))
        except httpx.HTTPError as exc:
            return transport_failure(registration_number, exc, started, self.name)
        return interpret(registration_number, response, started, self.name)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HpcsaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncHpcsaClient:
    """Asynchronous client over one pooled ``httpx.AsyncClient``, for the recheck job."""

    name = SOURCE_NAME

    def __init__(self, settings: HpcsaSettings, *, max_connections: int = 4):
        self.settings = settings
        self._http = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            **settings.client_options(),
        )

    @classmethod
    def from_config(cls, config: Mapping, *, max_connections: int = 4) -> AsyncHpcsaClient:
        return cls(HpcsaSettings.from_config(config), max_connections=max_connections)

    async def lookup(self, registration_number: str) -> LookupResult:
        started = time.monotonic()
        try:
            response = await self._http.post(
                self.settings.url, data=form_fields(registration_number)
            )
        except httpx.HTTPError as exc:
            return transport_failure(registration_number, exc, started, self.name)
        return interpret(registration_number, response, started, self.name)

    async def aclose(self) -> None:
        await self._http.aclose()
