"""Issue 13's load test: wrk through nginx to two web hosts on PostgreSQL, reads and writes.

The deployment as docs/deploy.md describes it, on loopback: nginx (``deploy/nginx.conf``,
rendered as tests/test_deploy_proxy.py renders it, with two ``server`` lines) in front of two
gunicorn hosts (``config/gunicorn.conf.py``), each with its own search index directory and
its own follower of the outbox (``flask search sync --every 2s``), on one PostgreSQL
database holding the national-scale fictional dataset (``search_dataset.py``: 250,000
registrations, 25,000 listings, 5,000 clinics).

Two phases, each ``--duration`` seconds of wrk at ``--connections`` (32) through nginx, a
mixed read load drawn at random from: first-time searches (``/api/v1/search``, distinct
queries), practitioner pages, clinic pages, search result pages and the practitioner API.

1. ``read``: the mixed load alone.
2. ``write``: the same load while
   - a recheck run (``flask registry recheck``, the real command) asks the fake iRegister
     (``tests/fake_iregister.py`` in its own process) about ``--due`` listed practitioners
     made due; the register now says SUSPENDED for one in five of them;
   - an editor changes listing descriptions through the clinics' API
     (``PATCH /api/v1/clinics/<slug>/listings/<number>`` with a clinic's token, through
     nginx), ``--edits-per-second``, each edit a new made-up word, re-reading on 409;
   - a watcher reads the database's status events: as soon as a suspension is committed it
     asks both hosts (directly, and through nginx) for the practitioner's page, the API
     record and an API search for the number, and counts every answer still saying
     "verified" (``data-verified="true"`` or ``"verified": true``).

At the end: every edit answered 200 must be in the database (else a lost update) and be
found by searching its word on both hosts within ``--settle`` seconds.

    .venv/bin/python -m benchmarks.production_load --data /tmp/production-load

Needs wrk and nginx (Debian packages), PostgreSQL on 127.0.0.1:5432 (trust auth). The first
run creates the database ``directory_load`` (``--fresh`` makes it anew) and both indexes
(several minutes). Prints one JSON line per phase and a summary; figures go to
docs/benchmarks.md by hand. Loopback only; all data fictional.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.search_load import LUA, free_port, machine, run_wrk  # noqa: E402
from tests.test_deploy_proxy import HOST, render_site  # noqa: E402

VENV_BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get("DIRECTORY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
DATABASE = os.environ.get("LOAD_DATABASE", "directory_load")
SUSPEND_EVERY = 5  # the register says SUSPENDED for one in this many of the due numbers


def database_url(name: str = DATABASE) -> str:
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def prepare_database(fresh: bool, env: dict, scale: float) -> None:
    """The dataset in PostgreSQL: migrations (triggers included), then the bulk generator."""
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if exists and fresh:
            admin.execute(f'DROP DATABASE "{DATABASE}" WITH (FORCE)')
            exists = None
        if not exists:
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
    flask = str(VENV_BIN / "flask")
    subprocess.run([flask, "db", "upgrade"], cwd=ROOT, env=env, check=True)
    if exists:
        return
    from benchmarks.search_dataset import CLINICS, LISTINGS, PRACTITIONERS, SEED, generate

    summary = generate(
        database_url(),
        practitioners=int(PRACTITIONERS * scale),
        clinics=int(CLINICS * scale),
        listings=int(LISTINGS * scale),
        seed=SEED,
    )
    print(json.dumps({"event": "dataset", **summary}), flush=True)


def prepare_indexes(data: Path, env: dict) -> tuple[Path, Path]:
    """One index built by ``flask search reindex``, copied for the second host."""
    first, second = data / "index-a", data / "index-b"
    if not (first / "CURRENT").exists():
        shutil.rmtree(first, ignore_errors=True)
        started = time.monotonic()
        subprocess.run(
            [str(VENV_BIN / "flask"), "search", "reindex"],
            cwd=ROOT, env={**env, "DIRECTORY_SEARCH_INDEX_DIR": str(first)}, check=True,
        )  # fmt: skip
        print(json.dumps({"event": "reindex", "seconds": round(time.monotonic() - started)}))
    if not (second / "CURRENT").exists():
        shutil.rmtree(second, ignore_errors=True)
        shutil.copytree(first, second)
    return first, second


@dataclass
class Host:
    name: str
    port: int
    process: subprocess.Popen

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_follower(name: str, index: Path, env: dict, work: Path) -> subprocess.Popen:
    """The host's outbox follower (``flask search sync --every 2s``, as deployed)."""
    log = open(work / f"follow-{name}.log", "w")  # noqa: SIM115 - lives as long as the host
    return subprocess.Popen(
        [str(VENV_BIN / "flask"), "search", "sync", "--every", "2s"],
        cwd=ROOT, env={**env, "DIRECTORY_SEARCH_INDEX_DIR": str(index)},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def start_host(name: str, index: Path, env: dict, work: Path) -> Host:
    port = free_port()
    log = open(work / f"gunicorn-{name}.log", "w")  # noqa: SIM115 - lives as long as the host
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env={**env, "DIRECTORY_SEARCH_INDEX_DIR": str(index), "GUNICORN_BIND": f"127.0.0.1:{port}"},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    return Host(name, port, process)


def start_nginx(work: Path, hosts: list[Host]) -> tuple[int, subprocess.Popen]:
    port = free_port()
    main = render_site(work, listen=port, upstream=hosts[0].port)
    site = work / "site.conf"
    first = f"server 127.0.0.1:{hosts[0].port};"
    others = "".join(f"\n    server 127.0.0.1:{h.port};" for h in hosts[1:])
    site.write_text(site.read_text().replace(first, first + others, 1))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    log = open(work / "nginx.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [nginx, "-c", str(main), "-p", str(work)], stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    return port, process


def read_paths(engine, count: int, seed: int = 13) -> list[str]:
    """The mixed read load: 40 % first-time API searches, 15 % search pages, 20 % practitioner
    pages, 10 % clinic pages, 15 % the practitioner API (listed practitioners and clinics)."""
    from sqlalchemy import select

    from benchmarks.search_queries import as_paths, distinct_queries
    from directory.listings.models import Clinic, Listing
    from directory.registry.models import Practitioner

    rng = random.Random(seed)
    with engine.connect() as conn:
        numbers = list(
            conn.scalars(
                select(Practitioner.registration_number)
                .join(Listing, Listing.practitioner_id == Practitioner.id)
                .distinct()
            )
        )
        slugs = list(conn.scalars(select(Clinic.slug)))
    searches = distinct_queries(engine, count)
    api_searches = as_paths(searches[: count * 40 // 100])
    page_searches = as_paths(searches[count * 40 // 100 : count * 55 // 100], "/search")
    paths = api_searches + page_searches
    paths += [f"/practitioners/{rng.choice(numbers)}" for _ in range(count * 20 // 100)]
    paths += [f"/clinics/{rng.choice(slugs)}" for _ in range(count * 10 // 100)]
    paths += [f"/api/v1/practitioners/{rng.choice(numbers)}" for _ in range(count * 15 // 100)]
    rng.shuffle(paths)
    return paths


def wrk_script(work: Path, name: str, paths: list[str]) -> Path:
    script = work / f"{name}.lua"
    listed = ",\n".join(f"  [[{p}]]" for p in paths)
    script.write_text(f'wrk.headers["Host"] = "{HOST}"\n' + LUA % {"paths": listed})
    return script


# --- the writers --------------------------------------------------------------------------


def make_due(engine, count: int, seed: int = 17) -> list[str]:
    """``count`` listed, active practitioners made due now, and no others; their numbers."""
    from sqlalchemy import select, update

    from directory.listings.models import Listing
    from directory.registry.models import Practitioner

    with engine.begin() as conn:
        numbers = sorted(
            conn.scalars(
                select(Practitioner.registration_number)
                .join(Listing, Listing.practitioner_id == Practitioner.id)
                .where(Practitioner.status == "active")
                .distinct()
            )
        )
        chosen = random.Random(seed).sample(numbers, min(count, len(numbers)))
        # Only these are due: the fake register knows only them (the others would be
        # not-founds, and the mass not-found guard would rightly stop the run).
        conn.execute(
            update(Practitioner).values(next_check_at=datetime.now(UTC) + timedelta(days=30))
        )
        conn.execute(
            update(Practitioner)
            .where(Practitioner.registration_number.in_(chosen))
            .values(next_check_at=datetime.now(UTC) - timedelta(minutes=5))
        )
    return chosen


FAKE_REGISTER = """
import json, sys, threading
from tests.fake_iregister import FakeIRegister, FakeRegister
register = FakeRegister()
for i, number in enumerate(json.load(sys.stdin)):
    status = "SUSPENDED" if i %% %(every)d == 0 else "ACTIVE"
    register.add(number, "FICTIONAL", "LOAD TEST", city="DURBAN", postal_code="4001",
                 categories=[("INDEPENDENT PRACTICE", status)])
fake = FakeIRegister(register, port=0).start()
print(fake.url, flush=True)
threading.Event().wait()
"""


def start_register(numbers: list[str]) -> tuple[str, subprocess.Popen]:
    process = subprocess.Popen(
        [sys.executable, "-c", FAKE_REGISTER % {"every": SUSPEND_EVERY}],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, start_new_session=True,
    )  # fmt: skip
    process.stdin.write(json.dumps(numbers))
    process.stdin.close()
    return process.stdout.readline().strip(), process


def clinic_tokens(engine_url: str, count: int) -> list[tuple[str, str, list[str]]]:
    """(slug, token, listed numbers) for ``count`` clinics, tokens made by a site admin."""
    from sqlalchemy import select

    from directory import create_app
    from directory.accounts import services as svc
    from directory.accounts.models import User
    from directory.extensions import db
    from directory.listings.models import Clinic, Listing
    from directory.registry.models import Practitioner

    app = create_app({"SQLALCHEMY_DATABASE_URI": engine_url})
    found = []
    with app.app_context():
        admin = db.session.scalar(select(User).filter_by(email="load-admin@example.org"))
        if admin is None:
            admin = svc.create_user(
                db.session, "load-admin@example.org",
                "a long fictional password for the load test", "site_admin",
            )  # fmt: skip
        actor = svc.Actor(user=admin)
        clinics = db.session.scalars(select(Clinic).order_by(Clinic.id).limit(count)).all()
        for clinic in clinics:
            token, _ = svc.create_token(db.session, actor, clinic, "load test")
            numbers = db.session.scalars(
                select(Practitioner.registration_number)
                .join(Listing, Listing.practitioner_id == Practitioner.id)
                .where(Listing.clinic_id == clinic.id)
            ).all()
            if numbers:
                found.append((clinic.slug, token, list(numbers)))
        db.session.commit()
    return found


def word(n: int) -> str:
    """A made-up word no listing has: the editor's n-th ("lodq" + letters)."""
    letters = ""
    n += 26 * 26
    while n:
        n, r = divmod(n, 26)
        letters += "abcdefghijklmnopqrstuvwxyz"[r]
    return f"lodq{letters}"


@dataclass
class Editor:
    """Changes listing descriptions through the clinics' API at a steady pace."""

    base: str
    clinics: list[tuple[str, str, list[str]]]
    rate: float
    stop: threading.Event
    latest: dict[tuple[str, str], str] = field(default_factory=dict)  # listing -> its word
    edits: int = 0
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        rng = random.Random(23)
        client = httpx.Client(base_url=self.base, headers={"Host": HOST}, timeout=30)
        next_at = time.monotonic()
        n = 0
        while not self.stop.is_set():
            slug, token, numbers = rng.choice(self.clinics)
            number = rng.choice(numbers)
            self.edit(client, slug, token, number, word(n))
            n += 1
            next_at += 1 / self.rate
            time.sleep(max(0.0, next_at - time.monotonic()))
        client.close()

    def edit(self, client, slug: str, token: str, number: str, new_word: str) -> None:
        url = f"/api/v1/clinics/{slug}/listings/{number}"
        auth = {"Authorization": f"Bearer {token}"}
        for _ in range(5):  # a 409 means someone else changed it: read again, try again
            current = client.get(url, headers=auth)
            if current.status_code != 200:
                self.errors.append(f"GET {url}: {current.status_code}")
                return
            listing = current.json()
            base = listing["description"].split(" Edited: ")[0][:2000]
            answer = client.patch(
                url,
                headers=auth,
                json={"version": listing["version"], "description": f"{base} Edited: {new_word}"},
            )
            if answer.status_code == 200:
                self.latest[(slug, number)] = new_word
                self.edits += 1
                return
            if answer.status_code != 409:
                self.errors.append(f"PATCH {url}: {answer.status_code} {answer.text[:200]}")
                return
            self.conflicts += 1
        self.errors.append(f"PATCH {url}: still stale after 5 tries")


@dataclass
class Watcher:
    """Asks every host about each suspension as soon as it is committed."""

    engine: object
    bases: list[str]
    stop: threading.Event
    after_id: int  # events up to this one were there before the phase
    seen: set[int] = field(default_factory=set)
    asked: int = 0
    suspensions: int = 0
    violations: list[str] = field(default_factory=list)

    def run(self) -> None:
        from sqlalchemy import select

        from directory.registry.models import StatusEvent

        client = httpx.Client(headers={"Host": HOST}, timeout=30)
        while not self.stop.is_set():
            with self.engine.connect() as conn:  # committed events only
                rows = conn.execute(
                    select(StatusEvent.id, StatusEvent.registration_number)
                    .where(StatusEvent.to_status == "suspended")
                    .where(StatusEvent.id > self.after_id)
                ).all()
            for event_id, number in rows:
                if event_id in self.seen:
                    continue
                self.seen.add(event_id)
                self.suspensions += 1
                for base in self.bases:
                    self.check(client, base, number)
            time.sleep(0.2)
        client.close()

    def check(self, client, base: str, number: str) -> None:
        pages = {
            f"{base}/practitioners/{number}": lambda r: 'data-verified="true"' in r.text,
            f"{base}/api/v1/practitioners/{number}": lambda r: r.json().get("verified") is True,
            f"{base}/api/v1/search?"
            + urllib.parse.urlencode({"q": number, "include_unverified": "true"}): lambda r: any(
                hit.get("verified") is True
                for key in ("results", "named")
                for hit in r.json().get(key, [])
                if hit.get("registration_number") == number
            ),
        }
        for url, says_verified in pages.items():
            self.asked += 1
            answer = client.get(url)
            if answer.status_code != 200 or says_verified(answer):
                self.violations.append(f"{url}: {answer.status_code}")


def searchable(bases: list[str], latest: dict[tuple[str, str], str], settle: float) -> dict:
    """How many edited listings each host's search finds by their newest word."""
    client = httpx.Client(headers={"Host": HOST}, timeout=30)
    deadline = time.monotonic() + settle
    missing: dict[str, list[str]] = {}
    for base in bases:
        pending = dict(latest)
        while pending and time.monotonic() < deadline:
            for key, new_word in list(pending.items()):
                answer = client.get(
                    f"{base}/api/v1/search",
                    params={"q": new_word, "include_unverified": "true"},
                )
                numbers = [h.get("registration_number") for h in answer.json().get("results", [])]
                if answer.status_code == 200 and key[1] in numbers:
                    del pending[key]
            if pending:
                time.sleep(1)
        missing[base] = [f"{slug}/{number}" for slug, number in pending]
    client.close()
    return missing


def lost_updates(engine, latest: dict[tuple[str, str], str]) -> list[str]:
    from sqlalchemy import select

    from directory.listings.models import Clinic, Listing
    from directory.registry.models import Practitioner

    lost = []
    with engine.connect() as conn:
        for (slug, number), new_word in latest.items():
            description = conn.scalar(
                select(Listing.description)
                .join(Clinic, Clinic.id == Listing.clinic_id)
                .join(Practitioner, Practitioner.id == Listing.practitioner_id)
                .where(Clinic.slug == slug, Practitioner.registration_number == number)
            )
            if not description or not description.endswith(new_word):
                lost.append(f"{slug}/{number}")
    return lost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/production-load", help="index directories")
    parser.add_argument("--fresh", action="store_true", help="make the database anew")
    parser.add_argument("--duration", type=int, default=60, help="seconds per phase")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--due", type=int, default=1500, help="registrations the recheck asks")
    parser.add_argument("--recheck-rate", type=float, default=20.0, help="look-ups a second")
    parser.add_argument("--edits-per-second", type=float, default=2.0)
    parser.add_argument("--settle", type=float, default=60.0, help="seconds for search to catch up")
    parser.add_argument("--phases", default="read,write")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="of the national dataset (a trial: 0.02)"
    )
    args = parser.parse_args(argv)
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is not installed (Debian: apt-get install -y {tool})")

    data = Path(args.data).resolve()
    data.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="production-load-"))
    env = {
        **os.environ,
        "DIRECTORY_SQLALCHEMY_DATABASE_URI": database_url(),
        "FLASK_APP": "wsgi:app",
        "PYTHONPATH": str(ROOT),
        "DIRECTORY_PROXY_HOPS": "1",
        "DIRECTORY_PUBLIC_BASE_URL": f"https://{HOST}",
        # a load test is one client: the per-client limits would refuse it
        "DIRECTORY_RATELIMIT_ENABLED": "false",
        "DIRECTORY_HPCSA_MAX_RATE": str(args.recheck_rate),
        "DIRECTORY_RECHECK_RATE": str(args.recheck_rate),
    }
    prepare_database(args.fresh, env, args.scale)
    index_a, index_b = prepare_indexes(data, env)

    from sqlalchemy import create_engine

    engine = create_engine(database_url())
    paths = read_paths(engine, max(40_000, args.duration * 2_000))
    processes: list[subprocess.Popen] = []
    results: dict = {"event": "summary", "machine": machine(), "phases": {}}
    try:
        hosts = [start_host("a", index_a, env, work), start_host("b", index_b, env, work)]
        processes += [h.process for h in hosts]
        processes += [
            start_follower("a", index_a, env, work),
            start_follower("b", index_b, env, work),
        ]
        for host in hosts:
            wait_until_ready(f"{host.base}/readyz", timeout=300)
        proxy_port, nginx = start_nginx(work, hosts)
        processes.append(nginx)
        proxy = f"http://127.0.0.1:{proxy_port}"
        wait_until_ready(f"{proxy}/readyz")
        warm = wrk_script(work, "warmup", paths[: len(paths) // 4])
        run_wrk(proxy, warm, duration=args.warmup, connections=args.connections,
                threads=args.threads)  # fmt: skip
        load = wrk_script(work, "load", paths[len(paths) // 4 :])
        for phase in args.phases.split(","):
            started = datetime.now(UTC)
            if phase == "read":
                record = run_wrk(proxy, load, duration=args.duration,
                                 connections=args.connections, threads=args.threads)  # fmt: skip
            elif phase == "write":
                record = write_phase(args, env, engine, proxy, hosts, load, work)
            else:
                raise SystemExit(f"unknown phase {phase!r}")
            record.update(
                phase=phase,
                started=started.isoformat(timespec="seconds"),
                load_average=os.getloadavg(),
            )
            results["phases"][phase] = record
            print(json.dumps(record), flush=True)
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
    results["logs"] = str(work)
    print(json.dumps(results), flush=True)
    return 0


def wait_until_ready(url: str, timeout: float = 30) -> None:
    """Until ``url`` answers 200 for the site's own host name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers={"Host": HOST}).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def last_event_id(engine) -> int:
    from sqlalchemy import func, select

    from directory.registry.models import StatusEvent

    with engine.connect() as conn:
        return conn.scalar(select(func.coalesce(func.max(StatusEvent.id), 0)))


def write_phase(args, env, engine, proxy: str, hosts: list[Host], load: Path, work: Path) -> dict:
    """The mixed read load while the recheck suspends and the editor edits; then the checks."""
    due = make_due(engine, args.due)
    register_url, register = start_register(due)
    clinics = clinic_tokens(database_url(), 40)
    stop = threading.Event()
    editor = Editor(proxy, clinics, args.edits_per_second, stop)
    watcher = Watcher(engine, [h.base for h in hosts] + [proxy], stop, last_event_id(engine))
    threads = [threading.Thread(target=editor.run), threading.Thread(target=watcher.run)]
    recheck_log = open(work / "recheck.log", "w")  # noqa: SIM115
    recheck = subprocess.Popen(
        [str(VENV_BIN / "flask"), "registry", "recheck", "--json",
         "--max-duration", str(args.duration)],
        cwd=ROOT, env={**env, "DIRECTORY_HPCSA_URL": register_url}, stdout=recheck_log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        for thread in threads:
            thread.start()
        record = run_wrk(proxy, load, duration=args.duration, connections=args.connections,
                         threads=args.threads)  # fmt: skip
        recheck.wait(timeout=args.duration + 120)
        time.sleep(2)  # the watcher's last round
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        if recheck.poll() is None:
            os.killpg(recheck.pid, signal.SIGTERM)
        os.killpg(register.pid, signal.SIGTERM)
        recheck_log.close()
    lookups = [
        json.loads(line)
        for line in (work / "recheck.log").read_text().splitlines()
        if line.startswith("{") and '"type": "lookup"' in line
    ]
    record.update(
        recheck_lookups=len(lookups),
        recheck_exit=recheck.returncode,
        status_changes=sum(1 for x in lookups if x.get("effect") == "changed"),
        suspensions_watched=watcher.suspensions,
        watcher_requests=watcher.asked,
        shown_verified_after_suspension=watcher.violations[:20],
        edits=editor.edits,
        edit_conflicts_retried=editor.conflicts,
        edit_errors=editor.errors[:20],
        lost_updates=lost_updates(engine, editor.latest),
        not_in_search=searchable([h.base for h in hosts], editor.latest, args.settle),
    )
    return record


if __name__ == "__main__":
    sys.exit(main())
