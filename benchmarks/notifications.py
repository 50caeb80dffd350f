"""Benchmark: the cost of the notification outbox, on a temporary SQLite file.

1. Queueing: record N status changes (active -> suspended, one commit each, as the recheck
   job does) with a webhook and one clinic email per practitioner configured, and again with
   no channel at all (only the feed entry): the difference is what queueing costs a change.
2. Sending: ``deliver_pending()`` of the 2N queued rows (webhooks to a receiver on
   loopback, emails as files): rows per second.
3. Idle: ``deliver_pending()`` with nothing due over that history (what the recheck job
   pays after each commit): median and 95th percentile.

    .venv/bin/python benchmarks/notifications.py [--changes 1000]

Not part of ``make test``. All data is fictional.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from directory import create_app  # noqa: E402
from directory.extensions import db  # noqa: E402
from directory.listings.models import Clinic, Listing  # noqa: E402
from directory.notifications import deliver_pending  # noqa: E402
from directory.notifications.receiver import WebhookReceiver  # noqa: E402
from directory.registry.checks import new_practitioner  # noqa: E402
from directory.registry.lookups import LookupResult, RegisterRow  # noqa: E402
from directory.registry.models import Practitioner  # noqa: E402
from directory.registry.policy import RegistryPolicy  # noqa: E402
from directory.registry.recording import record_check  # noqa: E402
from directory.registry.statuses import Outcome  # noqa: E402
from directory.util.clock import utcnow  # noqa: E402

SECRET = "benchmark-secret"


def answer(number: str, raw: str, when: datetime) -> LookupResult:
    row = RegisterRow(number, "DR", "BENCHMARK", "FICTIONAL", "CAPE TOWN", "8001",
                      "Medical Practitioner", raw)  # fmt: skip
    return LookupResult(number, Outcome.OK, when, "benchmark", rows=(row,))


def run_changes(config: dict, changes: int, with_clinics: bool) -> float:
    """Seconds per status change (record_check + commit), practitioners set up beforehand."""
    app = create_app(config)
    with app.app_context():
        db.create_all()
        policy = RegistryPolicy.from_config(app.config)
        before = utcnow() - timedelta(days=2)
        for i in range(changes):
            number = f"MP{i + 1:07d}"
            p = new_practitioner(number)
            record_check(db.session, p, answer(number, "ACTIVE", before), policy)
            if with_clinics:
                clinic = Clinic(slug=f"clinic-{i}", name=f"Fictional Clinic {i}",
                                city="Cape Town", province="Western Cape",
                                email=f"clinic{i}@clinic.example")  # fmt: skip
                db.session.add(Listing(practitioner=p, clinic=clinic))
        db.session.commit()
        practitioners = db.session.scalars(db.select(Practitioner).order_by(Practitioner.id)).all()
        started = time.perf_counter()
        for p in practitioners:
            record_check(db.session, p, answer(p.registration_number, "SUSPENDED", utcnow()),
                         policy)  # fmt: skip
            db.session.commit()
        elapsed = time.perf_counter() - started
        db.session.remove()
    return elapsed / changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1000)
    args = parser.parse_args()
    n = args.changes

    with tempfile.TemporaryDirectory() as tmp, WebhookReceiver(SECRET) as receiver:
        base = {
            "SEARCH_INDEX_DIR": os.path.join(tmp, "index"),
            "MAIL_FILE_DIR": os.path.join(tmp, "mail"),
            "PUBLIC_BASE_URL": "https://directory.example",
        }
        plain = {**base, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/plain.sqlite3",
                 "MAIL_TRANSPORT": "none"}  # fmt: skip
        notified = {
            **base,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/notified.sqlite3",
            "NOTIFY_WEBHOOK_URL": receiver.url,
            "NOTIFY_WEBHOOK_SECRET": SECRET,
        }

        per_change_plain = run_changes(plain, n, with_clinics=False)
        per_change_notified = run_changes(notified, n, with_clinics=True)

        app = create_app(notified)
        with app.app_context():
            started = time.perf_counter()
            summary = deliver_pending()
            send_s = time.perf_counter() - started
            idle = []
            for _ in range(200):
                t0 = time.perf_counter()
                assert deliver_pending().attempted == 0
                idle.append(time.perf_counter() - t0)
        idle.sort()
        assert summary.delivered == 2 * n, summary
        assert len(receiver.requests) == n

    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, SQLite file",
        "changes": n,
        "ms_per_change_without_channels": round(per_change_plain * 1000, 2),
        "ms_per_change_with_webhook_and_email": round(per_change_notified * 1000, 2),
        "sent_rows": summary.delivered,
        "send_rows_per_s": round(summary.delivered / send_s, 1),
        "idle_call_ms_median": round(statistics.median(idle) * 1000, 3),
        "idle_call_ms_p95": round(idle[int(len(idle) * 0.95)] * 1000, 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
