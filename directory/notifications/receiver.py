"""A small webhook receiver on loopback: what a receiver should do, runnable.

It verifies ``X-Directory-Signature`` over the raw body, drops repeats by event id, and
can be told to answer with given status codes (to watch the sender retry). The tests use
it as a real HTTP server; an operator can try a configuration with it by hand:

    python -m directory.notifications.receiver --secret "$SECRET" --port 8900
    DIRECTORY_NOTIFY_WEBHOOK_URL=http://127.0.0.1:8900/hook \\
    DIRECTORY_NOTIFY_WEBHOOK_SECRET="$SECRET" flask notifications send
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from directory.notifications.transports import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    verify_signature,
)


@dataclass(frozen=True)
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    status_answered: int
    received_at: float  # time.monotonic()

    @property
    def event_id(self) -> str | None:
        return self.headers.get(EVENT_ID_HEADER.lower())

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 recording every POST it gets."""

    def __init__(
        self, secret: str, *, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0
    ) -> None:
        self.secret = secret
        self.delay = delay
        self.requests: list[ReceivedWebhook] = []
        self.accepted_event_ids: list[str] = []  # first accepted delivery of each event
        self._script: deque[int] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def respond_with(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (then 200 again)."""
        with self._lock:
            self._script.extend(statuses)

    def _next_status(self, signature_ok: bool, event_id: str | None) -> int:
        with self._lock:
            if self._script:
                return self._script.popleft()
            if not signature_ok:
                return 401
            if event_id and event_id not in self.accepted_event_ids:
                self.accepted_event_ids.append(event_id)
            return 200  # a repeat is acknowledged too, and dropped

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = verify_signature(body, receiver.secret, headers.get(SIGNATURE_HEADER.lower()))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver._next_status(ok, headers.get(EVENT_ID_HEADER.lower()))
                with receiver._lock:
                    receiver.requests.append(
                        ReceivedWebhook(self.path, headers, body, ok, status, time.monotonic())
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True, help="NOTIFY_WEBHOOK_SECRET")
    parser.add_argument("--port", type=int, default=8900)
    args = parser.parse_args(argv)
    with WebhookReceiver(args.secret, port=args.port) as receiver:
        print(f"listening on {receiver.url} (Ctrl-C to stop)", flush=True)
        seen = 0
        try:
            while True:
                time.sleep(0.5)
                for hook in receiver.requests[seen:]:
                    verdict = "signature ok" if hook.signature_ok else "BAD SIGNATURE"
                    print(f"{hook.event_id} {verdict} -> {hook.status_answered}: "
                          f"{hook.body.decode(errors='replace')}", flush=True)  # fmt: skip
                seen = len(receiver.requests)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
