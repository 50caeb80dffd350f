"""The HPCSA iRegister client.

The iRegister search form posts, form-encoded, to a report endpoint that answers JSON:
``data`` (a list of rows, each a list of values), ``headers`` (a list of objects with a
``heading`` and an ``order``), and report keys such as ``total_num``, ``truncated``,
``page`` and ``error`` (null when all is well). Values are upper case (``ACTIVE``) and
numbers padded (``MP   0000123``).

Anything that is not plainly such an answer is an error, never a status: a timeout, a
dropped connection, HTTP 429 or 5xx (or any status but 200), an HTML page (even with status
200), a body that is not JSON, a JSON value that is not the report object, a non-null
``error``, a missing column, two columns at one position, a cell that is not text, a row for
another number, a row without status or category, a report that says it left rows out
(``truncated``, or ``total_num`` above the rows sent), an answer too large or too slow.
Errors say so in ``LookupResult.error``; ``transient`` marks the ones a later retry may cure.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from directory.observability.metrics import observe_register_lookup
from directory.registry import numbers
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.statuses import Outcome
from directory.util.clock import as_utc, utcnow

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
# The headings as the register writes them, in the order public clients document (snapshot
# files, messages and the test register's answers use these).
COLUMN_HEADINGS = (
    "Title",
    "Surname",
    "Fullname",
    "Registration",
    "City",
    "Postal Code",
    "Category",
    "Status",
)
REPORT_KEYS = {"data", "headers", "total_num", "truncated", "page", "error"}


class ShapeError(ValueError):
    """The answer is not the register's report shape; the message says how."""


def heading_key(text: Any) -> str:
    """A heading as the key of ``HEADINGS``: case, spaces and punctuation ignored.

    Shared by every source that names the register's columns (the iRegister's answer and
    snapshot files), so both read the same headings the same way.
    """
    return "".join(ch for ch in str(text).lower() if ch.isalnum())


_heading_key = heading_key  # the earlier private name

# The order public clients document, used only when an answer carries no headers.
DOCUMENTED_ORDER = tuple(heading_key(heading) for heading in COLUMN_HEADINGS)


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


# Retry-After beyond this is not believed (a day: the longest error backoff by default).
MAX_RETRY_AFTER = 86400.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds, whether the server sent seconds or an HTTP date.

    None when absent or unreadable; never negative, never above ``MAX_RETRY_AFTER``.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit() and value.isascii():  # RFC 9110 delay-seconds: digits only
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    when = as_utc(when)  # "-0000" dates come back naive: they are UTC
    seconds = (when - (now or utcnow())).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def _order(value: Any, heading: Any) -> int:
    """A header's ``order``: the 0-based position of its values in every row."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ShapeError(f"header {heading!r} has an unusable order {value!r}")
    return value


def column_positions(headers: Any) -> dict[str, int]:
    """Field -> position in each row, by heading; the documented order when no headers.

    Header objects give their position as ``order`` (their place in the list when they
    have none); plain-string headers are positional.
    """
    if headers in (None, []):
        return {HEADINGS[h]: i for i, h in enumerate(DOCUMENTED_ORDER)}
    if not isinstance(headers, list):
        raise ShapeError("'headers' is not a list")
    positions: dict[str, int] = {}
    taken: dict[int, Any] = {}
    for index, header in enumerate(headers):
        if isinstance(header, Mapping):
            heading = header.get("heading")
            order = _order(header.get("order", index), heading)
        elif isinstance(header, str):
            heading, order = header, index
        else:
            raise ShapeError(f"header {index} is neither an object nor a string")
        field = HEADINGS.get(heading_key(heading)) if heading is not None else None
        if field is None:
            continue
        if field in positions:
            raise ShapeError(f"heading {heading!r} appears twice")
        if order in taken:
            raise ShapeError(f"headings {taken[order]!r} and {heading!r} share position {order}")
        positions[field] = order
        taken[order] = heading
    missing = sorted(set(HEADINGS.values()) - set(positions))
    if missing:
        raise ShapeError("missing column(s): " + ", ".join(missing))
    return positions


def _text(value: Any, field: str, row: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ShapeError(f"row {row}: {field} is a JSON {type(value).__name__}, not text")
    text = str(value).strip()
    return text or None


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_report(asked: str, payload: Any) -> tuple[Outcome, tuple[RegisterRow, ...]]:
    """Read a decoded JSON answer for ``asked`` (canonical). Raises ShapeError when unusable."""
    if not isinstance(payload, Mapping):
        raise ShapeError(f"the answer is a JSON {type(payload).__name__}, not an object")
    if not {"data", "headers"} & set(payload):
        raise ShapeError("the answer has neither 'data' nor 'headers': not the register's report")
    if payload.get("error") not in (None, "", False):
        raise ShapeError(f"the register reported an error: {str(payload['error'])[:200]}")
    if payload.get("truncated") not in (None, False, 0, "", "false", "0"):
        # Rows left out could be the one that says "suspended".
        raise ShapeError("the register says its answer is truncated")
    data = payload.get("data")
    if data is not None and not isinstance(data, list):
        raise ShapeError("'data' is not a list")
    total = _count(payload.get("total_num"))
    if total is not None and total > len(data or []):
        raise ShapeError(f"the register counts {total} row(s) but sent {len(data or [])}")
    if not data:
        return Outcome.NOT_FOUND, ()
    positions = column_positions(payload.get("headers"))
    width = max(positions.values()) + 1
    rows = []
    for i, raw in enumerate(data):
        if not isinstance(raw, list):
            raise ShapeError(f"row {i} is not a list of values")
        if len(raw) < width:
            raise ShapeError(f"row {i} has {len(raw)} values, fewer than the headers name")
        values = {field: _text(raw[pos], field, i) for field, pos in positions.items()}
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


# One number's answer is a few hundred bytes; anything near this is not that answer.
DEFAULT_MAX_RESPONSE_BYTES = 1_000_000


@dataclass(frozen=True)
class HpcsaSettings:
    url: str
    timeout: float
    user_agent: str
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    @classmethod
    def from_config(cls, config: Mapping) -> HpcsaSettings:
        """Read the register settings; a bad value raises ValueError naming the setting."""
        url = config.get("HPCSA_URL")
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"HPCSA_URL: not an http(s) URL: {url!r}")
        timeout = _positive(config, "HPCSA_TIMEOUT", float)
        max_bytes = _positive(
            {"HPCSA_MAX_RESPONSE_BYTES": DEFAULT_MAX_RESPONSE_BYTES, **config},
            "HPCSA_MAX_RESPONSE_BYTES",
            int,
        )
        contact = config.get("CONTACT_URL")
        if not isinstance(contact, str) or not contact.strip():
            raise ValueError("CONTACT_URL: required (it is named in the User-Agent)")
        return cls(
            url=url,
            timeout=timeout,
            user_agent=f"hpcsa-directory/{VERSION} (+{contact.strip()})",
            max_response_bytes=max_bytes,
        )

    @property
    def deadline(self) -> float:
        """Seconds a whole look-up may take (``timeout`` bounds each connect/read/write)."""
        return 2 * self.timeout

    def client_options(self) -> dict[str, Any]:
        return {
            "timeout": httpx.Timeout(self.timeout),
            "headers": {"User-Agent": self.user_agent, "Accept": "application/json"},
            "follow_redirects": False,
        }


def _positive(config: Mapping, key: str, kind: type[int] | type[float]) -> Any:
    value = config.get(key)
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: not a number: {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{key}: must be a positive number, not {value!r}")
    return number


class _BodyRefused(Exception):
    """The body was too large or too slow; the message says which."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class _BodyReader:
    """Collects a streamed body, refusing one larger or slower than the settings allow."""

    def __init__(self, settings: HpcsaSettings, started: float) -> None:
        self.settings = settings
        self.started = started
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.settings.max_response_bytes:
            raise _BodyRefused(
                f"the answer is larger than {self.settings.max_response_bytes} bytes",
                transient=False,
            )
        if time.monotonic() - self.started > self.settings.deadline:
            raise _BodyRefused(
                f"timed out: the answer took longer than {self.settings.deadline:g}s",
                transient=True,
            )
        self.chunks.append(chunk)

    def body(self) -> bytes:
        return b"".join(self.chunks)


def _looks_like_html(body: bytes) -> bool:
    return body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"


def interpret(
    asked: str,
    response: httpx.Response,
    started: float,
    source: str,
    body: bytes | None = None,
) -> LookupResult:
    """Turn one HTTP response into a LookupResult; the single parser both clients share.

    ``body`` is the response's bytes when they were read by streaming (else ``content``).
    """
    elapsed = time.monotonic() - started
    # Dated when the request went out, not when the answer came back: the register said it
    # somewhere in between, and of two overlapping look-ups the one asked later must count
    # as the newer, however slowly the other was answered.
    observed_at = utcnow() - timedelta(seconds=elapsed)
    duration_ms = int(elapsed * 1000)
    body = response.content if body is None else body
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
    # Judged by the body, not the Content-Type: a maintenance page is HTML whatever the
    # header says, and a JSON report stays JSON even if labelled text/html.
    if _looks_like_html(body):
        return failure("the register answered with an HTML page, not data", transient=True)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        if "html" in response.headers.get("content-type", "").lower():
            return failure("the register answered with an HTML page, not data", transient=True)
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


def refused(
    asked: str, response: httpx.Response, exc: _BodyRefused, started: float, source: str
) -> LookupResult:
    return LookupResult(
        registration_number=asked,
        outcome=Outcome.ERROR,
        observed_at=utcnow(),
        source=source,
        error=str(exc),
        duration_ms=int((time.monotonic() - started) * 1000),
        transient=exc.transient,
        http_status=response.status_code,
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


# What a look-up can raise that is the register's (or the network's) fault, not ours.
TRANSPORT_ERRORS = (httpx.HTTPError, httpx.InvalidURL, OSError)


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
        """Ask the register about one number (any spelling; it is normalised first).

        Raises RegistrationNumberError only for a number that cannot be one; every fault
        of the register or the network comes back as an ``Outcome.ERROR`` result.
        """
        return observe_register_lookup(self._lookup(registration_number))

    def _lookup(self, registration_number: str) -> LookupResult:
        asked = numbers.normalise(registration_number)
        started = time.monotonic()
        try:
            with self._http.stream("POST", self.settings.url, data=form_fields(asked)) as response:
                reader = _BodyReader(self.settings, started)
                try:
                    for chunk in response.iter_bytes():
                        reader.add(chunk)
                except _BodyRefused as exc:
                    return refused(asked, response, exc, started, self.name)
        except TRANSPORT_ERRORS as exc:
            return transport_failure(asked, exc, started, self.name)
        return interpret(asked, response, started, self.name, body=reader.body())

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
        """As ``HpcsaClient.lookup``, without blocking the event loop."""
        return observe_register_lookup(await self._lookup(registration_number))

    async def _lookup(self, registration_number: str) -> LookupResult:
        asked = numbers.normalise(registration_number)
        started = time.monotonic()
        try:
            async with self._http.stream(
                "POST", self.settings.url, data=form_fields(asked)
            ) as response:
                reader = _BodyReader(self.settings, started)
                try:
                    async for chunk in response.aiter_bytes():
                        reader.add(chunk)
                except _BodyRefused as exc:
                    return refused(asked, response, exc, started, self.name)
        except TRANSPORT_ERRORS as exc:
            return transport_failure(asked, exc, started, self.name)
        return interpret(asked, response, started, self.name, body=reader.body())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncHpcsaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
