"""Benchmark: import a generated 250,000-row register snapshot into a fresh SQLite file.

Generates a fictional snapshot (every name says FICTIONAL; some numbers have several
category rows, most adjacent, some scattered through the file), creates an empty database,
then runs ``flask registry import`` as a child process and reports its wall time, rows per
second and peak resident memory (``ru_maxrss`` of that child, from ``os.wait4``). A second
run re-imports the same file into the now-full database (the update path).

    .venv/bin/python benchmarks/import_snapshot.py [--rows 250000] [--workers 1 2] [--keep DIR]

Each run also reports its CPU seconds (user + system of the import and its workers) and
the 1-minute load average before and after it: on a shared machine, wall-clock figures
mean little without them. ``import_seconds`` is the import's own figure (both passes, from
its JSON summary); the rest of the wall time is start-up and exit.

Not part of ``make test``: it takes a while and the machine is shared.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from importers.sources.hpcsa import COLUMN_HEADINGS

ROOT = Path(__file__).resolve().parent.parent
CITIES = [
    ("CAPE TOWN", "8001"),
    ("JOHANNESBURG", "2001"),
    ("DURBAN", "4001"),
    ("PRETORIA", "0002"),
    ("GQEBERHA", "6001"),
    ("BLOEMFONTEIN", "9301"),
    ("POLOKWANE", "0700"),
    ("MBOMBELA", "1200"),
]
STATUSES = ["ACTIVE"] * 90 + ["SUSPENDED"] * 3 + ["ERASED"] * 3 + ["INACTIVE"] * 4
EXTRA_CATEGORIES = ["PUBLIC SERVICE", "INTERN", "COMMUNITY SERVICE"]


def generate(path: Path, rows: int, seed: int = 7) -> dict[str, int]:
    """Write ``rows`` fictional rows; about 10 % of numbers have 2-3 category rows."""
    rng = random.Random(seed)
    written = numbers_ = scattered = 0
    later: list[list[str]] = []  # rows held back to the end of the file (scattered numbers)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(COLUMN_HEADINGS)
        n = 0
        while written + len(later) < rows:
            n += 1
            prefix = "MP" if n % 5 else rng.choice(["DP", "PS", "OT", "PRC"])
            number = f"{prefix}{n:07d}"
            padded = prefix.ljust(5) + number[-7:]
            city, code = rng.choice(CITIES)
            base = ["DR", f"FICTIONAL-{n}", "TEST PERSON", padded, city, code]
            categories = [("INDEPENDENT PRACTICE", rng.choice(STATUSES))]
            if rng.random() < 0.10:
                for extra in rng.sample(EXTRA_CATEGORIES, rng.randint(1, 2)):
                    categories.append((extra, rng.choice(["INACTIVE", "ACTIVE"])))
            numbers_ += 1
            held = len(categories) > 1 and rng.random() < 0.2
            for i, (category, status) in enumerate(categories):
                row = [*base, category, status]
                if held and i > 0:
                    later.append(row)
                else:
                    out.writerow(row)
                    written += 1
            scattered += held
        for row in later:
            out.writerow(row)
            written += 1
    return {"rows": written, "numbers": numbers_, "scattered_numbers": scattered}


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc; Linux only)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def _pss_kib(pid: int) -> int:
    """Proportional set size: shared pages counted once across the processes sharing them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_child(args: list[str], env: dict[str, str]) -> dict:
    """Run one import; wall and CPU seconds, peak memory, exit status and stdout.

    ``ru_maxrss`` (from ``os.wait4``) is the largest single process (the import, or one of
    its workers); ``peak_pss_total`` samples the whole process tree every 0.2 s and sums
    proportional set sizes, so memory shared by forked workers is counted once.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
        peak_pss = 0
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            peak_pss = max(peak_pss, sum(_pss_kib(p) for p in _descendants(child.pid)))
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode()
    return {
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,
        "maxrss_kib": usage.ru_maxrss,
        "peak_pss_kib": peak_pss,
        "exit_code": os.waitstatus_to_exitcode(status),
        "stdout": text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--keep", type=Path, help="write the snapshot and database here")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument(
        "--as-of",
        default=None,
        help="pass --as-of DATE to the import (default: none, as an operator's plain "
        "`flask registry import PATH`: the snapshot is undated)",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure"
    )
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench-import-"))
    workdir.mkdir(parents=True, exist_ok=True)
    snapshot = workdir / "snapshot.csv"
    shape = generate(snapshot, args.rows)
    results = {}
    for workers in args.workers:
        database = workdir / f"bench-{workers}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        env = {
            **os.environ,
            "DIRECTORY_SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
            "DIRECTORY_SEARCH_INDEX_DIR": str(workdir / "search-index"),
            "FLASK_APP": "wsgi:app",
        }
        create = [
            sys.executable,
            "-c",
            "from directory import create_app\nfrom directory.extensions import db\n"
            "app = create_app()\nwith app.app_context(): db.create_all()",
        ]
        subprocess.run(create, env=env, cwd=ROOT, check=True)
        for label in ("fresh database", "re-import (updates)"):
            command = [
                sys.executable,
                "-m",
                "flask",
                "registry",
                "import",
                str(snapshot),
                *(["--as-of", args.as_of] if args.as_of else []),
                "--json",
                "--batch-size",
                str(args.batch_size),
                "--workers",
                str(workers),
            ]
            load_before = os.getloadavg()[0]
            run = run_child(command, env)
            summary = json.loads(run["stdout"].strip().splitlines()[-1])
            results[f"workers={workers}, {label}"] = {
                "exit_code": run["exit_code"],
                "rows": summary["rows_read"],
                "imported": summary["rows_imported"],
                "wall_seconds": round(run["seconds"], 2),
                # The import's own time (both passes), and the rest of the wall time: the
                # process's start-up (Python, the app) and exit, serial whatever the workers.
                "import_seconds": summary["seconds"],
                "start_up_and_exit_seconds": round(run["seconds"] - summary["seconds"], 2),
                "rows_per_second": round(summary["rows_read"] / run["seconds"]),
                "cpu_seconds": round(run["cpu"], 2),
                "rows_per_cpu_second": round(summary["rows_read"] / run["cpu"]),
                "peak_rss_mb_largest_process": round(run["maxrss_kib"] / 1024, 1),
                "peak_pss_mb_all_processes": round(run["peak_pss_kib"] / 1024, 1),
                "load_average_1min_before": round(load_before, 2),
                "load_average_1min_after": round(os.getloadavg()[0], 2),
            }
        results[f"workers={workers}, database_mb"] = round(database.stat().st_size / 1e6, 1)
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "snapshot": shape,
        "snapshot_mb": round(snapshot.stat().st_size / 1e6, 1),
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
