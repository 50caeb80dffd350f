"""Shared pieces of the recheck benchmarks: the fake register as a subprocess, a SQLite
database filled with bulk Core inserts, and a timed ``flask registry recheck`` subprocess
whose peak RSS is read from the kernel (``wait4``).

All data is fictional (the fake's generated ``MP1000000``... numbers).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLASK = ROOT / ".venv" / "bin" / "flask"
PYTHON = ROOT / ".venv" / "bin" / "python"
OUT = ROOT / "benchmarks" / "out"
FIRST_NUMBER = 1_000_000  # the fake's --generate numbers start here

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def number(i: int) -> str:
    return f"MP{FIRST_NUMBER + i:07d}"


class FakeRegisterProcess:
    """``python -m tests.fake_iregister`` on a free loopback port."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [str(PYTHON), "-m", "tests.fake_iregister", "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            # Its handler threads complain when a client gives up (the "timeout" fault).
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.process.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if not match:
            self.process.kill()
            raise RuntimeError(f"the fake register did not start: {line!r}")
        self.url = match.group(1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def __enter__(self) -> FakeRegisterProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_database(
    path: Path,
    count: int,
    *,
    prior_status: str | None = None,
    prior_status_for=None,
    batch: int = 10_000,
) -> str:
    """A fresh SQLite database with ``count`` registrations, inserted in bulk.

    Without a prior status they are never checked (due at once). With one (or a function
    of the index giving one), they look confirmed a week ago and are due now.
    """
    from sqlalchemy import insert

    from directory import create_app
    from directory.extensions import db
    from directory.registry.models import Practitioner

    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SEARCH_INDEX_DIR": str(path) + ".index"})
    now = datetime.now(UTC)
    week_ago = now - timedelta(days=7)
    with app.app_context():
        db.create_all()
        rows = []
        for i in range(count):
            row = {
                "registration_number": number(i),
                "prefix": "MP",
                "status": "unknown",
                "consecutive_failures": 0,
                "created_at": now,
                "updated_at": now,
            }
            status = prior_status_for(i) if prior_status_for else prior_status
            if status:
                row.update(
                    status=status,
                    raw_status=status.upper(),
                    status_as_of=week_ago,
                    verified_at=week_ago,
                    last_checked_at=week_ago,
                    last_outcome="ok",
                    next_check_at=now - timedelta(minutes=1),
                )
            rows.append(row)
            if len(rows) == batch:
                db.session.execute(insert(Practitioner.__table__), rows)
                rows = []
        if rows:
            db.session.execute(insert(Practitioner.__table__), rows)
        db.session.commit()
        db.engine.dispose()
    return url


@dataclass
class RunResult:
    returncode: int
    summary: dict
    lookups: list[dict]
    max_rss_mb: float
    wall_s: float
    cpu_s: float
    stderr: str


def run_recheck(
    database_url: str,
    register_url: str,
    *args: str,
    settings: dict | None = None,
    keep_lookups: bool = True,
    stdout_to_devnull: bool = False,
) -> RunResult:
    """One ``flask registry recheck --json`` process; its own peak RSS from ``wait4``."""
    env = dict(os.environ)
    env.update(
        FLASK_APP="wsgi:app",
        DIRECTORY_SQLALCHEMY_DATABASE_URI=database_url,
        DIRECTORY_HPCSA_URL=register_url,
        DIRECTORY_SEARCH_INDEX_DIR=str(OUT / "search-index"),
        DIRECTORY_RECHECK_RATE_LIMIT="1000",
        # --rate is what is measured: the register budget all runs share must not bind.
        DIRECTORY_HPCSA_MAX_RATE="1000",
        DIRECTORY_RECHECK_CONCURRENCY_LIMIT="256",
    )
    for key, value in (settings or {}).items():
        env[f"DIRECTORY_{key}"] = str(value)
    OUT.mkdir(parents=True, exist_ok=True)
    out_path = OUT / "recheck-stdout.jsonl"
    started = time.monotonic()
    with open(os.devnull if stdout_to_devnull else out_path, "w") as out:
        process = subprocess.Popen(
            [str(FLASK), "registry", "recheck", "--json", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
        stderr_chunks = []
        # Drain stderr on a thread-free loop: wait4 below reaps the process itself.
        import threading

        reader = threading.Thread(target=lambda: stderr_chunks.append(process.stderr.read()))
        reader.start()
        _, status, usage = os.wait4(process.pid, 0)
        reader.join()
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    lines = [] if stdout_to_devnull else out_path.read_text().splitlines()
    objects = [json.loads(x) for x in lines if x.startswith("{")]
    summary = objects[-1] if objects and objects[-1].get("type") == "summary" else {}
    lookups = [o for o in objects if o.get("type") == "lookup"] if keep_lookups else []
    return RunResult(
        returncode=process.returncode,
        summary=summary,
        lookups=lookups,
        max_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        stderr="".join(stderr_chunks),
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"SQLite {__import__('sqlite3').sqlite_version}, load average at the end {load}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def save(name: str, data: object) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path
