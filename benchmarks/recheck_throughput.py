"""Recheck throughput: achieved lookups/s against the limit min(rate, concurrency / latency).

For each setting: a fresh SQLite database of N never-checked registrations, the fake
register as a subprocess (``--latency 0.3 --generate N``), one ``flask registry recheck``
run to the end. Target: efficiency (achieved / limit) >= 0.9.

    .venv/bin/python -m benchmarks.recheck_throughput [--count 2000] [--settings 10x8,50x8]
"""

from __future__ import annotations

import argparse

from benchmarks.recheck_common import (
    OUT,
    FakeRegisterProcess,
    build_database,
    machine,
    run_recheck,
    save,
)

LATENCY = 0.3
# (rate, concurrency): rate-bound and concurrency-bound settings.
DEFAULT_SETTINGS = [(10, 8), (50, 8), (25, 16), (50, 32)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument(
        "--settings",
        default=",".join(f"{r}x{c}" for r, c in DEFAULT_SETTINGS),
        help="comma-separated RATExCONCURRENCY pairs",
    )
    args = parser.parse_args()
    settings = [tuple(float(x) for x in s.split("x")) for s in args.settings.split(",")]

    rows = []
    with FakeRegisterProcess("--latency", str(LATENCY), "--generate", str(args.count)) as fake:
        for rate, concurrency in settings:
            url = build_database(OUT / "recheck-throughput.sqlite3", args.count)
            result = run_recheck(
                url,
                fake.url,
                "--rate",
                f"{rate:g}",
                "--concurrency",
                f"{int(concurrency)}",
            )
            s = result.summary
            limit = min(rate, concurrency / LATENCY)
            achieved = s["checked"] / s["duration_s"]
            # What each request really took on this machine (the fake's 0.3 s plus HTTP,
            # thread scheduling and load): the limit it allows.
            times = [x["duration_ms"] / 1000 for x in result.lookups if x.get("duration_ms")]
            measured = sum(times) / len(times) if times else LATENCY
            measured_limit = min(rate, concurrency / measured)
            row = {
                "rate": rate,
                "concurrency": int(concurrency),
                "limit_per_s": round(limit, 2),
                "checked": s["checked"],
                "errors": s["errors"],
                "duration_s": s["duration_s"],
                "achieved_per_s": round(achieved, 2),
                "efficiency": round(achieved / limit, 3),
                "measured_latency_s": round(measured, 3),
                "efficiency_vs_measured": round(achieved / measured_limit, 3),
                "peak_rss_mb": round(result.max_rss_mb, 1),
                "cpu_s": round(result.cpu_s, 1),
                "exit": result.returncode,
            }
            rows.append(row)
            print(row, flush=True)
    print()
    print(f"Machine: {machine()}")
    print(f"{args.count} registrations, fake latency {LATENCY} s\n")
    print(
        "| --rate | --concurrency | limit (/s) | achieved (/s) | efficiency "
        "| mean request (s) | efficiency vs measured | checked | time (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['rate']:g} | {r['concurrency']} | {r['limit_per_s']:g} | "
            f"{r['achieved_per_s']:g} | {r['efficiency']:.3f} | {r['measured_latency_s']:.3f} | "
            f"{r['efficiency_vs_measured']:.3f} | {r['checked']} | {r['duration_s']:.1f} |"
        )
    save("recheck_throughput", {"machine": machine(), "count": args.count, "rows": rows})


if __name__ == "__main__":
    main()
