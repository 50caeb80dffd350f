"""A stand-in for the HPCSA iRegister: a real HTTP server on loopback.

It answers the report endpoint's shape (header objects, padded numbers, upper-case
statuses, several category rows for some numbers) from fixture data, and can be told to
misbehave: latency (for every request, or a status and a delay scripted per request for
one number: ``answer_next``), HTTP 500, 429 with Retry-After, invalid JSON, an HTML error
page with status 200, a dropped connection, a JSON ``error``, a row for another number, a
missing column. Every request is logged with its arrival time so tests can measure the rate.

All data here is fictional.

Run it on its own (for benchmarks or by hand):
    python -m tests.fake_iregister --port 8765 --latency 0.3 --generate 2000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from importers.sources.hpcsa import COLUMN_HEADINGS as HEADINGS

FIXTURE = Path(__file__).parent / "fixtures" / "iregister.json"
FAULTS = {
    "500",
    "429",
    "invalid_json",
    "html_200",
    "drop",
    "error_field",
    "wrong_number",
    "missing_column",
    "timeout",
    "not_json_object",
    "plain_headers",
    "no_headers",
    # Answer shapes a client must read correctly (not faults):
    "shuffled_headers",  # header objects listed in another order; each `order` still true
    "reordered_columns",  # row values in another column order, described by `order`
    "plain_headers_reordered",  # plain-string headers and rows, both in another order
    "missing_data",  # no `data` key at all (not found)
    "null_data",  # `data` is null (not found)
    "json_labelled_html",  # a good report with Content-Type text/html
    # More faults:
    "data_not_list",  # `data` is an object
    "truncated",  # `truncated` is true
    "total_mismatch",  # `total_num` counts more rows than `data` holds
    "cell_object",  # a status cell is a JSON object, not text
    "duplicate_order",  # two headings claim the same position
    "no_report_keys",  # a JSON object without `data` or `headers`
    "empty_body",  # status 200, no body
    "404",  # status 404 with a JSON body
    "slow_body",  # headers at once, then the body a few bytes at a time, slowly
    "oversized",  # a valid report padded beyond a megabyte
}
# Column order used by the "reordered" variants: position i holds HEADINGS[PERMUTATION[i]].
PERMUTATION = (3, 7, 0, 5, 1, 6, 2, 4)


def padded(canonical: str) -> str:
    """``MP0000123`` -> ``MP   0000123``, as the register writes it."""
    digits = canonical[-7:]
    return canonical[:-7].ljust(5) + digits


@dataclass
class RequestRecord:
    at: float  # time.monotonic() on arrival
    wall: float
    number: str
    fields: dict[str, str]
    user_agent: str
    content_type: str
    body: str = ""  # the raw form-encoded body, as sent


@dataclass
class FakeRegister:
    """The data and the behaviour; the HTTP server reads them under ``lock``."""

    records: dict[str, list[list[str]]] = field(default_factory=dict)
    latency: float = 0.0  # seconds, added before every answer
    latency_jitter: float = 0.0  # uniform +- this many seconds
    failure_rate: float = 0.0  # share of requests answered with a random transient fault
    failure_kinds: tuple[str, ...] = ("500", "429", "drop", "html_200", "invalid_json")
    retry_after: str = "1"
    seed: int = 1
    requests: list[RequestRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    slow_body_delay: float = 0.4  # seconds between the "slow_body" fault's pieces
    # Answer every number with a well-formed, empty report (total_num 0), as a register
    # whose session expired or whose backend is down behind the form does.
    answer_empty: bool = False
    answer_empty_after: int | None = None  # ...from the request after this many on
    _queued: deque = field(default_factory=deque)
    _per_number: dict[str, deque] = field(default_factory=dict)
    _scripted: dict[str, deque] = field(default_factory=dict)
    # Answers sent so far per number, and a condition notified at each: a scripted answer
    # may wait for another request's answer (``answer_next(..., hold=...)``).
    _answered: dict[str, int] = field(default_factory=dict)
    _answer_sent: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    # --- data -----------------------------------------------------------------------
    def add(
        self,
        number: str,
        surname: str,
        full_names: str,
        *,
        title: str = "DR",
        city: str = "CAPE TOWN",
        postal_code: str = "8001",
        categories: list[tuple[str, str]] | None = None,
    ) -> None:
        """Register a fictional practitioner; ``categories`` are (category, raw status) rows."""
        rows = []
        for category, status in categories or [("INDEPENDENT PRACTICE", "ACTIVE")]:
            rows.append(
                [title, surname, full_names, padded(number), city, postal_code, category, status]
            )
        with self.lock:
            self.records[number] = rows

    def set_status(self, number: str, status: str) -> None:
        with self.lock:
            for row in self.records[number]:
                row[7] = status

    def remove(self, number: str) -> None:
        with self.lock:
            self.records.pop(number, None)

    def load_fixture(self, path: Path = FIXTURE) -> None:
        for item in json.loads(path.read_text()):
            self.add(
                item["number"],
                item["surname"],
                item["full_names"],
                title=item.get("title", "DR"),
                city=item.get("city", "CAPE TOWN"),
                postal_code=item.get("postal_code", "8001"),
                categories=[tuple(c) for c in item["categories"]],
            )

    def generate(self, count: int, prefix: str = "MP", start: int = 1) -> list[str]:
        made = []
        for i in range(start, start + count):
            number = f"{prefix}{i:07d}"
            self.add(number, f"FICTIONAL{i}", "TEST PERSON", city="DURBAN", postal_code="4001")
            made.append(number)
        return made

    # --- faults ---------------------------------------------------------------------
    def fail_next(self, kind: str, times: int = 1, number: str | None = None) -> None:
        """Answer the next ``times`` requests (for ``number``, or any) with fault ``kind``."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}")
        with self.lock:
            queue = self._per_number.setdefault(number, deque()) if number else self._queued
            queue.extend([kind] * times)

    def answer_next(
        self, number: str, status: str, *, delay: float = 0.0, hold: float = 0.0
    ) -> None:
        """Answer the next request for ``number`` (after those already scripted) as if every
        row said ``status`` at the moment the request arrived, ``delay`` seconds later
        (instead of ``latency``): two overlapping look-ups, a slow one and a fast one.

        With ``hold``, the answer first waits (up to ``hold`` seconds) until a later request
        for ``number`` has been answered, then ``delay`` more: the slow look-up is answered
        after the fast one however long the fast one's process took to start."""
        with self.lock:
            if number not in self.records:
                raise KeyError(f"{number} is not in the fake register")
            self._scripted.setdefault(number, deque()).append((status, delay, hold))

    def _take_script(self, number: str) -> tuple[str, float, float] | None:
        """(the status, the delay, the hold) scripted for this request; call under ``lock``."""
        queue = self._scripted.get(number)
        return queue.popleft() if queue else None

    def _take_fault(self, number: str) -> str | None:
        with self.lock:
            queue = self._per_number.get(number)
            if queue:
                return queue.popleft()
            if self._queued:
                return self._queued.popleft()
            if self.failure_rate and self.random.random() < self.failure_rate:
                return self.random.choice(self.failure_kinds)
        return None

    def requests_for(self, number: str) -> list[RequestRecord]:
        with self.lock:
            return [r for r in self.requests if r.number == number]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._number = None
        self._send(405, b"use POST", "text/plain")

    def do_POST(self) -> None:
        register = self.server.register
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        number = fields.get("regNumber", "")
        with register.lock:
            register.requests.append(
                RequestRecord(
                    time.monotonic(),
                    time.time(),
                    number,
                    fields,
                    self.headers.get("User-Agent", ""),
                    self.headers.get("Content-Type", ""),
                    body,
                )
            )
            empty = register.answer_empty or (
                register.answer_empty_after is not None
                and len(register.requests) > register.answer_empty_after
            )
            rows = [] if empty else [list(r) for r in register.records.get(number, [])]
            scripted = register._take_script(number)
        with register._answer_sent:
            answered_before = register._answered.get(number, 0)
        self._number = number
        fault = register._take_fault(number)
        delay = register.latency
        if register.latency_jitter:
            delay += register.random.uniform(-register.latency_jitter, register.latency_jitter)
        if scripted is not None:
            status, delay, hold = scripted
            for row in rows:
                row[7] = status
            if hold:  # until another request for this number has been answered
                with register._answer_sent:
                    register._answer_sent.wait_for(
                        lambda: register._answered.get(number, 0) > answered_before, hold
                    )
        if fault == "timeout":
            delay = max(delay, 30.0)
        if delay > 0:
            time.sleep(max(0.0, delay))
        if fault == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        if fault == "500":
            return self._send(500, b'{"error": "internal"}', "application/json")
        if fault == "429":
            return self._send(
                429, b"slow down", "text/plain", {"Retry-After": register.retry_after}
            )
        if fault == "html_200":
            return self._send(
                200,
                b"<!DOCTYPE html><html><body><h1>Site maintenance</h1></body></html>",
                "text/html; charset=utf-8",
            )
        if fault == "invalid_json":
            return self._send(200, b'{"data": [["DR", "BROKEN', "application/json")
        if fault == "not_json_object":
            return self._send(200, b'["just", "a", "list"]', "application/json")
        if fault == "empty_body":
            return self._send(200, b"", "application/json")
        if fault == "404":
            return self._send(404, b'{"error": "no such page"}', "application/json")
        if fault == "no_report_keys":
            return self._send(200, b'{"status": "ok", "result": []}', "application/json")
        payload = report(rows)
        content_type = "application/json"
        if fault == "error_field":
            payload["error"] = "Report could not be generated"
        elif fault == "wrong_number" and rows:
            for row in payload["data"]:
                row[3] = padded("MP9999999")
        elif fault == "missing_column":
            payload["headers"] = [h for h in payload["headers"] if h["heading"] != "Status"]
        elif fault == "plain_headers":
            payload["headers"] = [h["heading"] for h in payload["headers"]]
        elif fault == "no_headers":
            payload.pop("headers")
        elif fault == "shuffled_headers":
            payload["headers"] = payload["headers"][::-1][1::2] + payload["headers"][::-1][::2]
        elif fault == "reordered_columns":
            payload["data"] = [[row[i] for i in PERMUTATION] for row in payload["data"]]
            for header in payload["headers"]:
                header["order"] = PERMUTATION.index(header["order"])
        elif fault == "plain_headers_reordered":
            payload["data"] = [[row[i] for i in PERMUTATION] for row in payload["data"]]
            payload["headers"] = [HEADINGS[i] for i in PERMUTATION]
        elif fault == "missing_data":
            payload.pop("data")
            payload["total_num"] = 0
        elif fault == "null_data":
            payload["data"] = None
            payload["total_num"] = 0
        elif fault == "json_labelled_html":
            content_type = "text/html; charset=utf-8"
        elif fault == "data_not_list":
            payload["data"] = {"rows": payload["data"]}
        elif fault == "truncated":
            payload["truncated"] = True
        elif fault == "total_mismatch":
            payload["total_num"] = len(rows) + 1
        elif fault == "cell_object":
            for row in payload["data"]:
                row[7] = {"value": row[7]}
        elif fault == "duplicate_order":
            payload["headers"][6]["order"] = 7  # Category claims Status's position
        body = json.dumps(payload).encode()
        if fault == "oversized":
            body = body[:-1] + b" " * 1_100_000 + b"}"
        if fault == "slow_body":
            return self._send_slowly(body, register.slow_body_delay)
        self._send(200, body, content_type)

    def _send_slowly(self, body: bytes, delay: float, pieces: int = 8) -> None:
        """Status and headers at once, then the body in ``pieces`` parts ``delay`` apart."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        step = max(1, -(-len(body) // pieces))
        try:
            for start in range(0, len(body), step):
                time.sleep(delay)
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
        except OSError:  # the client gave up: that is the point of this fault
            self.close_connection = True
        self._answered()

    def _send(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self._answered()

    def _answered(self) -> None:
        """Count an answer sent for this request's number (see ``answer_next``'s hold)."""
        number = getattr(self, "_number", None)
        if number is None:
            return
        register = self.server.register
        with register._answer_sent:
            register._answered[number] = register._answered.get(number, 0) + 1
            register._answer_sent.notify_all()


def report(rows: list[list[str]]) -> dict:
    """The report endpoint's answer shape: header objects whose ``order`` is the position."""
    headers = [
        {"heading": h, "order": i, "col_id": i + 1, "width": 10, "data_type": 1}
        for i, h in enumerate(HEADINGS)
    ]
    return {
        "headers": headers,
        "data": rows,
        "total_num": len(rows),
        "truncated": False,
        "page": 1,
        "per_page": 100,
        "row_num": len(rows),
        "error": None,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    register: FakeRegister


class FakeIRegister:
    """Starts the fake on 127.0.0.1 (a free port unless one is given) in a thread."""

    def __init__(self, register: FakeRegister | None = None, port: int = 0):
        self.register = register or FakeRegister()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.register = self.register
        # A short poll interval: ``stop()`` waits for the serve loop to notice, and the
        # default half second, paid by every test that starts a fake, adds up.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/cc/ReportController/getDataFromRnow"

    def start(self) -> FakeIRegister:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeIRegister:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:  # pragma: no cover - manual and benchmark use
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--generate", type=int, default=0, help="fictional MP numbers to add")
    parser.add_argument(
        "--failure-kinds",
        default=None,
        help="comma-separated faults drawn by --failure-rate (default: 500,429,drop,html_200,"
        "invalid_json)",
    )
    args = parser.parse_args()
    kinds = {}
    if args.failure_kinds:
        kinds["failure_kinds"] = tuple(k.strip() for k in args.failure_kinds.split(","))
        unknown = set(kinds["failure_kinds"]) - FAULTS
        if unknown:
            parser.error(f"unknown fault kind(s): {', '.join(sorted(unknown))}")
    register = FakeRegister(
        latency=args.latency, latency_jitter=args.jitter, failure_rate=args.failure_rate, **kinds
    )
    register.load_fixture()
    if args.generate:
        register.generate(args.generate, start=1_000_000)
    fake = FakeIRegister(register, port=args.port).start()
    print(f"fake iRegister at {fake.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
