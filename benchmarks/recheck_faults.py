"""Recheck against a failing register: coverage and wrong status changes.

N registrations believed checked a week ago (every tenth believed ``suspended``, the rest
``active``); the fake register lists them all as ACTIVE. The fake answers a share of the
requests with a fault. After one run:

* coverage: the share of the due registrations that got the register's answer in this run
  (target >= 99 % with 5 % transient failures);
* wrong status changes: any status the register did not give (an event to anything but
  ``active``, a registration whose last look-up failed but whose status moved, or an
  answered one left on anything but ``active``). Target: zero, at 5 % and at 20 %.

    .venv/bin/python -m benchmarks.recheck_faults [--count 2000]
"""

from __future__ import annotations

import argparse
import sqlite3
from datetime import UTC, datetime

from benchmarks.recheck_common import (
    OUT,
    FakeRegisterProcess,
    build_database,
    machine,
    number,
    run_recheck,
    save,
)

TRANSIENT = "500,429,drop,html_200,invalid_json"
MIXED = "500,429,drop,html_200,invalid_json,timeout,wrong_number,missing_column,error_field"
CASES = [
    ("5 % transient", 0.05, TRANSIENT),
    ("20 % transient", 0.20, TRANSIENT),
    ("20 % transient and nonsense", 0.20, MIXED),
]


def prior(i: int) -> str:
    return "suspended" if i % 10 == 0 else "active"


def audit(path, count: int, started: datetime) -> dict:
    """What the database says after the run, against what the register said."""
    priors = {number(i): prior(i) for i in range(count)}
    con = sqlite3.connect(path)
    since = started.replace(tzinfo=None).isoformat(" ")
    rows = con.execute(
        "SELECT registration_number, status, last_outcome, last_checked_at FROM practitioners"
    ).fetchall()
    answered = wrong = failed_last = 0
    for reg, status, outcome, checked in rows:
        fresh = checked is not None and checked >= since
        if fresh and outcome in ("ok", "not_found"):
            answered += 1
            if status != "active":
                wrong += 1
        elif fresh and outcome == "error":
            failed_last += 1
            if status != priors[reg]:
                wrong += 1
        elif status != priors[reg]:
            wrong += 1
    wrong_events = con.execute(
        "SELECT count(*) FROM status_events WHERE to_status != 'active'"
    ).fetchone()[0]
    right_events = con.execute(
        "SELECT count(*) FROM status_events WHERE from_status = 'suspended' "
        "AND to_status = 'active'"
    ).fetchone()[0]
    con.close()
    return {
        "due": count,
        "answered": answered,
        "coverage": round(answered / count, 4),
        "last_lookup_failed": failed_last,
        "wrong_statuses": wrong,
        "wrong_events": wrong_events,
        "right_events": right_events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", default="20")
    parser.add_argument("--concurrency", default="8")
    args = parser.parse_args()
    rows = []
    for label, share, kinds in CASES:
        db_path = OUT / "recheck-faults.sqlite3"
        url = build_database(db_path, args.count, prior_status_for=prior)
        fake_args = ["--latency", "0.3", "--generate", str(args.count)]
        fake_args += ["--failure-rate", str(share), "--failure-kinds", kinds]
        with FakeRegisterProcess(*fake_args) as fake:
            started = datetime.now(UTC)
            result = run_recheck(
                url,
                fake.url,
                "--rate",
                args.rate,
                "--concurrency",
                args.concurrency,
                settings={"HPCSA_TIMEOUT": 2.0},
                keep_lookups=False,
            )
        s = result.summary
        row = {
            "case": label,
            "kinds": kinds,
            "exit": result.returncode,
            "requests": s.get("requests"),
            "rate_limited": s.get("rate_limited"),
            "errors_recorded": s.get("errors"),
            "duration_s": s.get("duration_s"),
            **audit(db_path, args.count, started),
        }
        rows.append(row)
        print(row, flush=True)
    print()
    print(f"Machine: {machine()}")
    print(f"{args.count} registrations, --rate {args.rate} --concurrency {args.concurrency}\n")
    print(
        "| failures | answered / due | coverage | failed at the end | wrong statuses "
        "| wrong events | right changes | requests (429s) | time (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['answered']} / {r['due']} | {100 * r['coverage']:.2f} % | "
            f"{r['last_lookup_failed']} | {r['wrong_statuses']} | {r['wrong_events']} | "
            f"{r['right_events']} | {r['requests']} ({r['rate_limited']}) | "
            f"{r['duration_s']:.0f} |"
        )
    save("recheck_faults", {"machine": machine(), "count": args.count, "rows": rows})


if __name__ == "__main__":
    main()
