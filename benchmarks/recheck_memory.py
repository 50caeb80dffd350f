"""Recheck memory: peak RSS of a run over a 250,000-registration database (target < 200 MB).

The database is filled with bulk Core inserts (all never checked, so all due); the run is
capped with --max-duration (the database still holds every row, and the claim queries,
the progress count and the final counts run over all of them). For comparison the same
run over a 2,000-registration database, and a --dry-run that streams all 250,000.

    .venv/bin/python -m benchmarks.recheck_memory [--count 250000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.recheck_common import (
    OUT,
    FakeRegisterProcess,
    build_database,
    machine,
    run_recheck,
    save,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=250_000)
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    rows = []
    with FakeRegisterProcess("--latency", "0.05", "--generate", str(args.count)) as fake:
        for count in (args.small, args.count):
            t = time.monotonic()
            url = build_database(OUT / f"recheck-memory-{count}.sqlite3", count)
            built = time.monotonic() - t
            result = run_recheck(
                url,
                fake.url,
                "--rate",
                "50",
                "--concurrency",
                "16",
                "--max-duration",
                str(args.seconds),
                keep_lookups=False,
                stdout_to_devnull=False,
            )
            s = result.summary
            rows.append(
                {
                    "registrations": count,
                    "mode": f"run, --max-duration {args.seconds}",
                    "checked": s.get("checked"),
                    "lookups_per_s": s.get("lookups_per_s"),
                    "peak_rss_mb": round(result.max_rss_mb, 1),
                    "db_build_s": round(built, 1),
                    "exit": result.returncode,
                }
            )
            print(rows[-1], flush=True)
            dry = run_recheck(url, fake.url, "--dry-run", stdout_to_devnull=True)
            rows.append(
                {
                    "registrations": count,
                    "mode": "--dry-run (lists every due one)",
                    "checked": 0,
                    "lookups_per_s": None,
                    "peak_rss_mb": round(dry.max_rss_mb, 1),
                    "db_build_s": None,
                    "exit": dry.returncode,
                }
            )
            print(rows[-1], flush=True)
    print()
    print(f"Machine: {machine()}\n")
    print("| registrations in the database | run | checked | peak RSS (MB) |")
    print("|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['registrations']:,} | {r['mode']} | {r['checked']} | {r['peak_rss_mb']} |")
    save("recheck_memory", {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
