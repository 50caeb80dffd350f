"""Benchmark: import a generated 250,000-row register snapshot into a fresh SQLite file.

Generates a fictional snapshot (every name says FICTIONAL; some numbers have several
category rows, most adjacent, some scattered through the file), creates an empty database,
then runs ``flask registry import`` as a child process and reports its wall time, rows per
second and peak resident memory (``ru_maxrss`` of that child, from ``os.wait4``). A second
run re-imports the same file into the now-full database (the update path).

    .venv/bin/python benchmarks/import_snapshot.py [--rows 250000] [--keep DIR]

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

ROOT = Path(__file__).resolve().parent.parent
HEADER = [
    "Title",
    "Surname",
    "Fullname",
    "Registration",
    "City",
    "Postal Code",
    "Category",
    "Status",
]
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
        out.writerow(HEADER)
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


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, int, int, str]:
    """Wall seconds, CPU seconds, peak RSS (KiB), exit status and stdout of one child."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode()
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, child.returncode, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--keep", type=Path, help="write the snapshot and database here")
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench-import-"))
    workdir.mkdir(parents=True, exist_ok=True)
    snapshot = workdir / "snapshot.csv"
    database = workdir / "bench.sqlite3"
    database.unlink(missing_ok=True)
    shape = generate(snapshot, args.rows)
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

    results = {}
    for label in ("fresh database", "re-import (updates)"):
        command = [
            sys.executable,
            "-m",
            "flask",
            "registry",
            "import",
            str(snapshot),
            "--as-of",
            "2024-03-01",
            "--json",
            "--batch-size",
            str(args.batch_size),
        ]
        seconds, cpu, peak_kib, code, stdout = run_child(command, env)
        summary = json.loads(stdout.strip().splitlines()[-1])
        results[label] = {
            "exit_code": code,
            "rows": summary["rows_read"],
            "imported": summary["rows_imported"],
            "wall_seconds": round(seconds, 2),
            "rows_per_second": round(summary["rows_read"] / seconds),
            "cpu_seconds": round(cpu, 2),
            "rows_per_cpu_second": round(summary["rows_read"] / cpu),
            "import_seconds": summary["seconds"],
            "peak_rss_mb": round(peak_kib / 1024, 1),
        }
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "snapshot": shape,
        "snapshot_mb": round(snapshot.stat().st_size / 1e6, 1),
        "database_mb": round(database.stat().st_size / 1e6, 1),
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
