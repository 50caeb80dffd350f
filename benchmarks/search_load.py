"""Load test: ``/api/v1/search`` under gunicorn (production settings) with wrk, against
``/healthz`` on the same server in the same run.

1. Generates the dataset if the database is missing (``search_dataset.py``: 250,000
   registrations, 25,000 listings, 5,000 clinics) and builds the index if missing.
2. Starts gunicorn with ``config/gunicorn.conf.py`` on 127.0.0.1 (a free port).
3. Warms up, then alternates wrk runs: /healthz, search, /healthz, search (concurrency 8,
   two wrk threads), with a Lua script drawing from the mixed query set
   (``search_queries.py``: service, service + city, name, misspelling, filters).
4. Prints one JSON object per measurement and a summary (p50/p95/p99, requests/s, the
   ratio to /healthz), and appends nothing anywhere: copy the figures into
   docs/benchmarks.md.

    .venv/bin/python -m benchmarks.search_load --data /tmp/search-bench --duration 30
    .venv/bin/python -m benchmarks.search_load --data /tmp/search-bench --no-cache

Modes (``--mode``):

- ``warm`` (the default, above): a fixed mix of ``--queries`` queries drawn at random, over
  and over. After the warm-up nearly every request is answered from the per-process result
  caches: **it measures the cache, not the search**.
- ``live``: the issue-11 goal. Every request is a search no worker has answered before
  (``search_queries.distinct_queries``: treatments, treatment + place, names, misspellings,
  free words, filters; each wrk thread walks its own slice of the list in order, so nothing
  repeats unless the list runs out, which the summary reports as ``repeated``); the warm-up
  runs on *other* distinct queries; a writer changes the index about ``--writes-per-second``
  times a second (default 2) through the documented paths: half are a recheck answer
  recorded with ``checks.record_check`` (``verified_at`` moves, ``registrations_changed``
  queues the practitioner), half are listing edits through the ORM (the session events
  queue it); each commit is applied after commit by the writer process, as a recheck job
  does. ``/healthz`` is measured in the same run, alternating with search, writer running.
- ``cold``: a worker that has just started. gunicorn is (re)started, and as soon as
  ``/healthz`` answers, ``--cold-queries`` distinct queries are sent one at a time: the
  latency of each first-time query of fresh workers (p50/p95/max) and the workers' RSS.

Every mode's summary ends with the memory of gunicorn's master and of each worker (RSS, peak
RSS, and from ``/proc/<pid>/smaps_rollup`` Pss, shared and private pages), taken after the
measured runs.

    .venv/bin/python -m benchmarks.search_load --data /tmp/search-bench --mode live
    .venv/bin/python -m benchmarks.search_load --data /tmp/search-bench --mode cold

Needs ``wrk`` (Debian: ``apt-get install -y wrk``). Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

LUA = """
local paths = {
%(paths)s
}
local tid = 0
setup = function(thread)
  thread:set("tid", tid)
  tid = tid + 1
end
init = function(args)
  math.randomseed(1000 + (tid or 0))
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "non_2xx_or_3xx": %%d, '
    .. '"socket_errors": %%d, "p50_ms": %%.2f, "p90_ms": %%.2f, "p95_ms": %%.2f, '
    .. '"p99_ms": %%.2f, "max_ms": %%.2f, "mean_ms": %%.2f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
"""


# Each wrk thread walks its own slice of the paths in order (thread t: t, t + T, ...):
# no request repeats another until the list runs out (counted in "wrapped").
LUA_DISTINCT = """
local paths = {
%(paths)s
}
local threads = %(threads)d
local tid = 0
setup = function(thread)
  thread:set("tid", tid)
  tid = tid + 1
end
init = function(args)
  position = (tid or 0) + 1
  wrapped = 0
end
request = function()
  local path = paths[position]
  position = position + threads
  if position > #paths then
    position = (tid or 0) + 1
    wrapped = wrapped + 1
  end
  return wrk.format("GET", path)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "non_2xx_or_3xx": %%d, '
    .. '"socket_errors": %%d, "p50_ms": %%.2f, "p90_ms": %%.2f, "p95_ms": %%.2f, '
    .. '"p99_ms": %%.2f, "max_ms": %%.2f, "mean_ms": %%.2f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
"""


# A recheck job and clinics editing listings, through the documented write paths, at a
# steady rate: even changes record a register answer with ``checks.record_check`` (the one
# write path: verified_at moves, ``registrations_changed`` queues the practitioner), odd
# ones edit a listing's description through the ORM (the session events queue it). Each
# commit is applied to the index after commit, in this process, as a recheck job does.
WRITER = """
import random, sys, time
from sqlalchemy import select
from directory import create_app
from directory.extensions import db
from directory.listings.models import Listing
try:  # the one write path for register answers (directory/registry/recording/)
    from directory.registry.recording import record_check
except ImportError:
    from directory.registry.checks import record_check
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow
rate = float(sys.argv[1])
app = create_app()
with app.app_context():
    policy = RegistryPolicy.from_config(app.config)
    ids = db.session.scalars(
        select(Listing.practitioner_id)
        .join(Practitioner, Practitioner.id == Listing.practitioner_id)
        .where(Practitioner.status == "active")
        .distinct()
    ).all()
    listing_ids = db.session.scalars(select(Listing.id)).all()
    rng = random.Random(5)
    done = 0
    next_at = time.monotonic()
    while True:
        if done % 2 == 0:
            p = db.session.get(Practitioner, rng.choice(ids))
            row = RegisterRow(
                p.registration_number, title=p.title, surname=p.surname,
                full_names=p.full_names, city=p.city, postal_code=p.postal_code,
                category=p.category or "INDEPENDENT PRACTICE", status="ACTIVE",
            )
            result = LookupResult(p.registration_number, Outcome.OK, utcnow(), "bench",
                                  rows=(row,))
            record_check(db.session, p, result, policy)
        else:
            listing = db.session.get(Listing, rng.choice(listing_ids))
            base = (listing.description or "").split(" [edited")[0]
            listing.description = f"{base} [edited {done}]"
        db.session.commit()
        done += 1
        print(done, flush=True)
        next_at += 1 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server did not answer {url} within {timeout}s")


def run_wrk(url: str, script: Path | None, *, duration: int, connections: int, threads: int):
    # A 10 s timeout: a slow answer is counted in the latencies, not dropped as an error.
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    command += ["--timeout", "10s"]
    command += ["-s", str(script), url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        if line.startswith("WRKJSON "):
            record = json.loads(line[len("WRKJSON ") :])
            record["requests_per_s"] = round(
                record["requests"] / (record["duration_us"] / 1_000_000), 1
            )
            return record
    raise SystemExit(f"no result from wrk:\n{output}")


def server_cpu_seconds(master: int) -> float:
    """User + system CPU of gunicorn's master and workers so far (from /proc)."""
    pids = [master]
    children = Path(f"/proc/{master}/task/{master}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    return {
        "lscpu": [line for line in lscpu[:12]],
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/search-bench", help="dataset directory")
    parser.add_argument("--mode", choices=("warm", "live", "cold"), default="warm")
    parser.add_argument(
        "--cold-queries", type=int, default=200, help="cold: distinct queries, one at a time"
    )
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="health+search pairs")
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="seconds of warm-up per search route (default: half of --duration, at least 10)",
    )
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", type=int, default=2000, help="distinct queries in the mix")
    parser.add_argument("--no-cache", action="store_true", help="SEARCH_CACHE_SIZE=0")
    parser.add_argument("--workers", type=int, default=None, help="GUNICORN_WORKERS override")
    parser.add_argument(
        "--writes-per-second",
        type=float,
        default=None,
        help="index changes a second from the writer (live: 2; warm: 0)",
    )
    parser.add_argument(
        "--backend-route",
        action="store_true",
        help="also load /bench/search (the backend without the API layer, search_wsgi.py)",
    )
    args = parser.parse_args(argv)
    if args.writes_per_second is None:
        args.writes_per_second = 2.0 if args.mode == "live" else 0.0
    if shutil.which("wrk") is None and args.mode != "cold":
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")

    data = Path(args.data)
    db_file = data / "directory.sqlite3"
    index_dir = data / "index"
    env = {
        **os.environ,
        "DIRECTORY_SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_file.resolve()}",
        "DIRECTORY_SEARCH_INDEX_DIR": str(index_dir.resolve()),
        "FLASK_APP": "wsgi:app",
        "PYTHONPATH": str(ROOT),
        # wrk is one client at 127.0.0.1: measured is the site, not the per-client limits
        "DIRECTORY_RATELIMIT_ENABLED": "false",
    }
    if args.no_cache:
        env["DIRECTORY_SEARCH_CACHE_SIZE"] = "0"
    if not db_file.exists():
        subprocess.run(
            [sys.executable, "-m", "benchmarks.search_dataset", "--db", str(db_file)],
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
    if not (index_dir / "CURRENT").exists():
        subprocess.run(
            [str(VENV_BIN / "flask"), "search", "reindex"], cwd=ROOT, env=env, check=True
        )

    sys.path.insert(0, str(ROOT))
    from benchmarks.search_queries import as_paths, distinct_queries, query_mix
    from directory import create_app
    from directory.extensions import db

    work = Path(tempfile.mkdtemp(prefix="search-load-"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": env["DIRECTORY_SQLALCHEMY_DATABASE_URI"]})
    # live: disjoint slices of one distinct list: the warm-up's, then one per measured run.
    per_run = max(20_000, args.duration * 1_500)
    with app.app_context():
        if args.mode == "warm":
            paths = as_paths(query_mix(db.engine, args.queries))
        elif args.mode == "live":
            paths = as_paths(distinct_queries(db.engine, per_run * (args.rounds + 1)))
        else:
            paths = as_paths(distinct_queries(db.engine, args.cold_queries))
    if args.mode == "cold":
        return cold(args, env, paths, work)
    search_lua = work / "search.lua"
    search_lua.write_text(LUA % {"paths": ",\n".join(f"  [[{p}]]" for p in paths)})
    slices: list[list[str]] = []
    if args.mode == "live":
        slices = [paths[i * per_run : (i + 1) * per_run] for i in range(args.rounds + 1)]

    def distinct_lua(name: str, part: list[str]) -> Path:
        path = work / f"{name}.lua"
        listed = ",\n".join(f"  [[{p}]]" for p in part)
        path.write_text(LUA_DISTINCT % {"paths": listed, "threads": args.threads})
        return path

    health_lua = work / "health.lua"
    health_lua.write_text(LUA % {"paths": "  [[/healthz]]"})
    bench_lua = work / "bench.lua"
    bench_paths = [p.replace("/api/v1/search", "/bench/search", 1) for p in paths]
    bench_lua.write_text(LUA % {"paths": ",\n".join(f"  [[{p}]]" for p in bench_paths)})
    scripts = [("healthz", health_lua), ("search", search_lua)]
    if args.backend_route:
        scripts.append(("backend", bench_lua))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    if args.workers:
        server_env["GUNICORN_WORKERS"] = str(args.workers)
    log = open(work / "gunicorn.log", "w")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"), "-c", "config/gunicorn.conf.py",
            "benchmarks.search_wsgi:app" if args.backend_route else "wsgi:app",
        ],
        cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    results = []
    writer = None
    memory: list[dict] = []
    master: dict = {}

    def start_writer():
        return subprocess.Popen(
            [sys.executable, "-c", WRITER, str(args.writes_per_second)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip

    try:
        wait_for(f"{base}/healthz")
        warmup = args.warmup or max(10, args.duration // 2)
        if args.mode == "live":
            # The writer runs from the warm-up on: the measured window is a steady state.
            if args.writes_per_second:
                writer = start_writer()
            run_wrk(base, distinct_lua("warmup", slices[0]), duration=warmup,
                    connections=args.connections, threads=args.threads)  # fmt: skip
        else:
            # Every worker builds its per-generation sets and caches: warm up on the mix
            # (each worker caches on its own, so it has to see the queries itself).
            for _, script in scripts[1:]:
                run_wrk(base, script, duration=warmup,
                        connections=args.connections, threads=args.threads)  # fmt: skip
        started = datetime.now(UTC).isoformat(timespec="seconds")
        if args.writes_per_second and writer is None:
            writer = start_writer()
        for round_ in range(args.rounds):
            if args.mode == "live":
                measured = distinct_lua(f"round{round_ + 1}", slices[round_ + 1])
                scripts = [("healthz", health_lua), ("search", measured)]
            for name, script in scripts:
                cpu_before = server_cpu_seconds(server.pid)
                record = run_wrk(
                    base, script, duration=args.duration,
                    connections=args.connections, threads=args.threads,
                )  # fmt: skip
                cpu = server_cpu_seconds(server.pid) - cpu_before
                record.update(
                    endpoint=name,
                    round=round_ + 1,
                    server_cpu_ms_per_request=round(cpu * 1000 / max(record["requests"], 1), 3),
                    load_average=os.getloadavg()[0],
                )
                results.append(record)
                print(json.dumps(record), flush=True)
        # The processes' memory after the measured runs (steady state, before stopping).
        memory, master = worker_memory(server.pid), master_memory(server.pid)
    finally:
        writes = 0
        if writer is not None:
            writer.terminate()
            out, _ = writer.communicate(timeout=30)
            writes = len(out.split())
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()

    def mean(name: str, key: str) -> float:
        values = [r[key] for r in results if r["endpoint"] == name]
        return round(sum(values) / len(values), 2)

    summary = {
        "event": "summary",
        "mode": args.mode,
        "measures": {
            "warm": "the result caches (a fixed mix repeated)",
            "live": "first-time queries while the index changes",
        }[args.mode],
        "date": started,
        "cache": not args.no_cache,
        "writes_per_second": args.writes_per_second,
        "writes_committed": writes,
        "connections": args.connections,
        "warmup_s": args.warmup or max(10, args.duration // 2),
        "distinct_queries": len(paths) if args.mode == "warm" else per_run,
        # live: requests beyond a run's slice repeat an earlier query of that run
        "repeated": sum(
            max(0, r["requests"] - per_run) for r in results if r["endpoint"] == "search"
        )
        if args.mode == "live"
        else None,
        "health_rps": mean("healthz", "requests_per_s"),
        "search_rps": mean("search", "requests_per_s"),
        "search_p50_ms": mean("search", "p50_ms"),
        "search_p95_ms": mean("search", "p95_ms"),
        "search_p99_ms": mean("search", "p99_ms"),
        "health_p95_ms": mean("healthz", "p95_ms"),
        "non_2xx": sum(r["non_2xx_or_3xx"] for r in results),
        "workers": memory,
        "master": master,
        "machine": machine(),
        "server_log": str(work / "gunicorn.log"),
    }
    summary["ratio_to_healthz"] = round(summary["search_rps"] / summary["health_rps"], 3)
    # Each round's ratio (runs next to each other): their spread shows the machine's noise.
    summary["ratio_per_round"] = [
        round(s["requests_per_s"] / h["requests_per_s"], 3)
        for h, s in zip(
            [r for r in results if r["endpoint"] == "healthz"],
            [r for r in results if r["endpoint"] == "search"],
            strict=True,
        )
    ]
    # Server CPU per request: steadier than throughput when other jobs share the cores.
    summary["health_cpu_ms"] = mean("healthz", "server_cpu_ms_per_request")
    summary["search_cpu_ms"] = mean("search", "server_cpu_ms_per_request")
    summary["load_average_at_end"] = os.getloadavg()[0]
    if args.backend_route:
        summary.update(
            backend_rps=mean("backend", "requests_per_s"),
            backend_p50_ms=mean("backend", "p50_ms"),
            backend_p95_ms=mean("backend", "p95_ms"),
            backend_p99_ms=mean("backend", "p99_ms"),
            backend_cpu_ms=mean("backend", "server_cpu_ms_per_request"),
        )
        summary["backend_ratio_to_healthz"] = round(
            summary["backend_rps"] / summary["health_rps"], 3
        )
    summary["target_met"] = (
        summary["search_p95_ms"] <= 50
        and summary["ratio_to_healthz"] >= 0.3
        and summary["non_2xx"] == 0
        and not any(r["socket_errors"] for r in results)
    )
    print(json.dumps(summary), flush=True)
    return 0


def worker_memory(master: int) -> list[dict]:
    """Each gunicorn worker's resident and peak resident memory, in MB (from /proc)."""
    children = Path(f"/proc/{master}/task/{master}/children")
    found = []
    for pid in children.read_text().split() if children.exists() else []:
        fields = {}
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = round(int(value.split()[0]) / 1024, 1)
        except OSError:
            continue
        found.append(
            {
                "pid": int(pid),
                "rss_mb": fields.get("VmRSS"),
                "peak_mb": fields.get("VmHWM"),
                **smaps_rollup(int(pid)),
            }
        )
    return found


def smaps_rollup(pid: int) -> dict:
    """A process's Pss, shared and private pages in MB (``/proc/<pid>/smaps_rollup``): what
    of its RSS is its own (private dirty: copied or allocated after the fork) and what it
    shares with the master and its siblings."""
    wanted = {
        "Pss": "pss_mb",
        "Shared_Clean": "shared_clean_mb",
        "Shared_Dirty": "shared_dirty_mb",
        "Private_Clean": "private_clean_mb",
        "Private_Dirty": "private_dirty_mb",
    }
    found: dict = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in wanted:
                found[wanted[key]] = round(int(value.split()[0]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return found


def master_memory(pid: int) -> dict:
    """gunicorn's master: RSS and ``smaps_rollup`` figures, in MB."""
    found: dict = {"pid": pid, **smaps_rollup(pid)}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                found["rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return found


def cold(args, env: dict, paths: list[str], work: Path) -> int:
    """Start gunicorn and, as soon as it answers /healthz, send distinct queries one at a
    time: what the first queries of freshly started workers cost."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    if args.workers:
        server_env["GUNICORN_WORKERS"] = str(args.workers)
    load_start = os.getloadavg()[0]
    log = open(work / "gunicorn.log", "w")  # noqa: SIM115 - closed in finally
    started_at = time.monotonic()
    server = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    latencies: list[tuple[float, str]] = []
    errors = 0
    try:
        wait_for(f"{base}/healthz")
        ready = time.monotonic() - started_at
        for path in paths:
            began = time.perf_counter()
            try:
                with urllib.request.urlopen(base + path, timeout=30) as response:
                    response.read()
                    errors += response.status != 200
            except OSError:
                errors += 1
            latencies.append(((time.perf_counter() - began) * 1000, path))
        memory, master = worker_memory(server.pid), master_memory(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    ordered = sorted(ms for ms, _ in latencies)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    summary = {
        "event": "summary",
        "mode": "cold",
        "measures": "first-time queries of freshly started workers, one at a time",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "queries": len(latencies),
        "errors": errors,
        "seconds_to_healthz": round(ready, 2),
        "first_10_ms": [round(ms, 1) for ms, _ in latencies[:10]],
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "max_ms": round(ordered[-1], 2),
        "slowest": [p for _, p in sorted(latencies, reverse=True)[:5]],
        "workers": memory,
        "master": master,
        "machine": machine(),
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg()[0],
    }
    summary["target_met"] = summary["p95_ms"] <= 100 and errors == 0
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
