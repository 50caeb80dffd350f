"""A status change found by the recheck, end to end: the search index drops the suspended
practitioner from the default results at once, and the webhook receives the signed event."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update

from directory.extensions import db
from directory.registry.models import Practitioner, StatusEvent
from directory.search import SearchQuery, get_search_backend
from directory.util.clock import utcnow
from tests.test_recheck_support import FAST, invoke, summary_of
from tests.test_search_support import PRACTITIONERS, numbers_of
from tests.test_search_support import seed as seed_directory

SECRET = "test-webhook-secret"
CHANGED = "MP0910002"  # offers botox (among much else) at a fictional Sandton clinic


class Receiver:
    """A webhook receiver on 127.0.0.1: keeps every POST (headers and raw body)."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app(either_app):
    """On SQLite and on PostgreSQL: the change, its outbox rows and the index follow-up."""
    return either_app


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def app_config(app_config, receiver, tmp_path):
    return {
        **app_config,
        **FAST,
        "NOTIFY_WEBHOOK_URL": receiver.url,
        "NOTIFY_WEBHOOK_SECRET": SECRET,
        "MAIL_FILE_DIR": str(tmp_path / "mail"),
    }


@pytest.fixture
def directory(app, fake_iregister):
    """The fictional search directory; the register agrees with it, except that it has
    just suspended MP0910002. Only that one is due (test set-up)."""
    register = fake_iregister.register
    for spec in PRACTITIONERS:
        register.add(
            spec.number,
            spec.surname.upper(),
            spec.names.upper(),
            categories=[("INDEPENDENT PRACTICE", spec.status.upper())],
        )
    register.set_status(CHANGED, "SUSPENDED")
    with app.app_context():
        seed_directory()
        db.session.execute(
            update(Practitioner)
            .where(Practitioner.registration_number != CHANGED)
            .values(next_check_at=utcnow() + timedelta(days=3))
        )
        db.session.commit()
        backend = get_search_backend()
        assert CHANGED in numbers_of(backend.search(SearchQuery(text="botox")))
        yield backend


def test_a_suspension_leaves_the_default_search_results_and_is_sent_to_the_webhook(
    app, directory, receiver
):
    result = invoke(app, "--json")
    assert result.exit_code == 0, result.output
    assert summary_of(result.output)["changed"] == {"active->suspended": 1}

    with app.app_context():
        # Applied right after the commit; if the index's lock was busy at that moment, the
        # search outbox retries a moment later (its design): allow it a few seconds.
        deadline = time.monotonic() + 5
        while CHANGED in numbers_of(directory.search(SearchQuery(text="botox"))):
            assert time.monotonic() < deadline, "the suspension never reached the index"
            time.sleep(0.1)
        everyone = directory.search(SearchQuery(text="Sampleton", include_unverified=True))
        (hit,) = [h for h in everyone.hits if h.registration_number == CHANGED]
        assert hit.status == "suspended" and hit.verified is False
        event = db.session.scalar(select(StatusEvent))

    (headers, body) = receiver.received[-1]
    payload = json.loads(body)
    assert payload["event_id"] == event.event_id == headers["X-Directory-Event-Id"]
    assert payload["registration_number"] == CHANGED
    assert (payload["from"], payload["to"]) == ("active", "suspended")
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Directory-Signature"] == f"sha256={expected}"
    assert len(receiver.received) == 1  # one change, one delivery
