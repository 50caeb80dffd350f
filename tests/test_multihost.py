"""Several hosts on one PostgreSQL database, all real processes: two web hosts (gunicorn,
config/gunicorn.conf.py, two workers each), each with its own search index directory kept
up to date by its own follower (``flask search sync --every 1s``), and three recheck
runners (``flask registry recheck``) against the fake iRegister, while a clinic's system
changes its listings through the API with its token, sending to either host.

It shows: both hosts get ready by themselves from empty index directories; every listing
change is in both hosts' search within seconds; every status the register gave is in both
hosts' search (the default, verified-only results) once the runs end; no registration is
asked of the register, or recorded, twice; and neither index drifts from the database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from directory import create_app
from directory.accounts import services as svc
from directory.extensions import db
from directory.listings.imports import import_listing_records
from directory.listings.models import Clinic
from directory.listings.vocabulary import sync_services
from directory.registry.checks import new_practitioner
from directory.search import get_index_keeper
from tests.test_deploy_proxy import ROOT, free_port, wait_for_port
from tests.test_recheck_support import FLASK, checks_per_number, leases_held, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REGISTRATIONS = 60
CHANGES = 24
SUSPENDED_EVERY = 5  # the register says every fifth registration is suspended
# "Within seconds": the follower passes every second; the bound leaves room for a machine
# shared with other work (seen: 1-3 s typically, 9 s under a load average of 17 on 2 cores).
WITHIN_SECONDS = 15.0
SLUG = "multi-host-clinic"


def http(method: str, url: str, *, body: dict | None = None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null"), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), error.headers


def word_for(i: int) -> str:
    """A word no fixture text holds, letters only (the analyzers keep it whole)."""
    return "vexil" + "".join(chr(ord("a") + int(d)) for d in f"{i:03d}")


def searched(base: str, **params) -> list[str]:
    status, body, _ = http("GET", f"{base}/api/v1/search?{urllib.parse.urlencode(params)}")
    assert status == 200, body
    return [r["registration_number"] for r in body["results"]]


def verified_on(base: str) -> set[str]:
    """Everyone the host's search lists by default (verified only), over every page."""
    found: set[str] = set()
    for page in range(1, 10):
        numbers = searched(base, service="mesotherapy", per_page=100, page=page)
        found.update(numbers)
        if len(numbers) < 100:
            return found
    return found


def eventually(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.1)
    return time.monotonic() - started


class Processes:
    """Started processes, each in its own session; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, args: list[str], env: dict, **kwargs) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("w")
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=kwargs.pop("stdout", log), stderr=log,
            start_new_session=True, text=True, **kwargs,
        )  # fmt: skip
        process.log_path = self.tmp / f"{name}.log"  # type: ignore[attr-defined]
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def populated(pg_app, fake_iregister):
    """60 registrations known by number only (due for their first check), all listed at one
    clinic, and that clinic's API token."""
    register = fake_iregister.register
    numbers = register.generate(REGISTRATIONS)
    for i, number in enumerate(numbers):
        if i % SUSPENDED_EVERY == 0:
            register.set_status(number, "SUSPENDED")
    with pg_app.app_context():
        sync_services(db.session)
        db.session.add_all(new_practitioner(number) for number in numbers)
        db.session.commit()
        listings = [
            {"registration_number": n, "services": ["mesotherapy"], "description": "Fictional."}
            for n in numbers
        ]
        clinic_record = {"name": "Multi Host Clinic", "slug": SLUG, "city": "Durban",
                         "province": "KwaZulu-Natal"}  # fmt: skip
        report = import_listing_records(
            db.session, [{"clinic": clinic_record, "listings": listings}]
        )
        assert not report.errors, report.errors
        clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == SLUG))
        admin = svc.create_user(
            db.session, "admin@multi-host.example", "a fictional password 123", "clinic_admin",
            clinic,
        )  # fmt: skip
        token, _ = svc.create_token(db.session, svc.Actor(user=admin), clinic, "multi-host test")
        db.session.commit()
    return numbers, token


def test_two_web_hosts_and_three_recheck_runners_on_one_postgresql(
    pg_app, fake_iregister, populated, tmp_path
):
    numbers, token = populated
    register = fake_iregister.register
    register.latency = 0.05
    database = pg_app.config["SQLALCHEMY_DATABASE_URI"]
    processes = Processes(tmp_path)

    def env_for(index_dir: Path, **settings) -> dict:
        env = subprocess_env(database, fake_iregister.url, tmp_path, **settings)
        env = {k: v for k, v in env.items() if not k.startswith("GUNICORN_")}
        env.update(
            DIRECTORY_SEARCH_INDEX_DIR=str(index_dir),
            DIRECTORY_SECRET_KEY="test-secret",
            DIRECTORY_MAIL_FILE_DIR=str(tmp_path / "mail"),
            DIRECTORY_RECHECK_CLAIM_BATCH="4",
        )
        return env

    hosts: dict[str, tuple[str, Path]] = {}
    try:
        for name in ("a", "b"):
            index_dir = tmp_path / f"host-{name}" / "search-index"  # empty: a new host
            port = free_port()
            env = {**env_for(index_dir), "GUNICORN_BIND": f"127.0.0.1:{port}",
                   "GUNICORN_WORKERS": "2", "DIRECTORY_SEARCH_BUILD_WAIT": "0"}  # fmt: skip
            web = processes.start(
                f"web-{name}",
                [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
                env,
            )
            wait_for_port(port, web, web.log_path, timeout=60)
            processes.start(
                f"follow-{name}", [str(FLASK), "search", "sync", "--every", "1s", "--json"], env
            )
            hosts[name] = (f"http://127.0.0.1:{port}", index_dir)

        # New hosts on empty index directories get ready by themselves; meanwhile a search
        # is answered 503 with Retry-After or from the whole index, never from none.
        for name, (base, _) in hosts.items():
            answers: Counter = Counter()

            def ready(base=base, answers=answers) -> bool:
                query = "service=mesotherapy&include_unverified=true&per_page=100"
                status, body, headers = http("GET", f"{base}/api/v1/search?{query}")
                if status == 200:
                    assert body["total"] == REGISTRATIONS, body["total"]
                else:
                    assert status == 503 and int(headers["Retry-After"]) > 0, (status, body)
                    assert body["code"] == "index_not_ready"
                answers[status] += 1
                return http("GET", f"{base}/readyz")[0] == 200

            eventually(ready, 90, f"host {name} ready")
            print(f"host {name} while getting ready: search answers {dict(answers)}")

        # The runners on hosts of their own (no index there): a web host learns of their
        # changes, and of the other web host's, only by following the outbox.
        runner_dirs = [tmp_path / f"runner-{i}" / "search-index" for i in range(3)]
        recheck = [str(FLASK), "registry", "recheck", "--json", "--rate", "3", "--concurrency", "2"]
        runners = [
            processes.start(f"recheck-{i}", recheck, env_for(d), stdout=subprocess.PIPE)
            for i, d in enumerate(runner_dirs)
        ]

        eventually(lambda: sum(checks_per_number(pg_app).values()) >= 3, 60, "runs under way")

        # A clinic's system edits listings through the API while the runs go on: half the
        # changes sent to host A, then half to host B. While one host takes the writes, the
        # other learns of them only by following the outbox; each change must be in both
        # hosts' search within seconds.
        errors: list[str] = []
        seen_at: dict[tuple[str, str], float] = {}

        def edit(writer: str, batch: list[int], changes: list) -> None:
            for i in batch:
                number = numbers[i]
                url = f"{hosts[writer][0]}/api/v1/clinics/{SLUG}/listings/{number}"
                status, listing, _ = http("GET", url, token=token)
                if status != 200:
                    errors.append(f"GET {number}: {status} {listing}")
                    continue
                description = f"Fictional listing, changed: {word_for(i)} evenings."
                status, body, _ = http(
                    "PATCH", url, token=token,
                    body={"version": listing["version"], "description": description},
                )  # fmt: skip
                if status != 200:
                    errors.append(f"PATCH {number}: {status} {body}")
                    continue
                changes.append((number, word_for(i), time.monotonic()))
                time.sleep(0.2)

        def watch(name: str, changes: list, editor: threading.Thread) -> None:
            """One host's search, asked for each change not yet seen there (a thread per
            host, so a slow answer from one host delays no look at the other)."""
            base = hosts[name][0]
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                pending = [c for c in list(changes) if (c[0], name) not in seen_at]
                if not pending and not editor.is_alive():
                    return
                for number, word, made_at in pending:
                    if number in searched(base, q=word, include_unverified="true"):
                        seen_at[(number, name)] = time.monotonic() - made_at
                time.sleep(0.05)

        half = CHANGES // 2
        for writer, batch in (("a", range(half)), ("b", range(half, CHANGES))):
            changes: list[tuple[str, str, float]] = []
            editor = threading.Thread(target=edit, args=(writer, batch, changes), daemon=True)
            watchers = [
                threading.Thread(target=watch, args=(name, changes, editor), daemon=True)
                for name in hosts
            ]
            editor.start()
            for watcher in watchers:
                watcher.start()
            for thread in (editor, *watchers):
                thread.join(120)
            assert not errors, errors
            missing = [(n, h) for n, _, _ in changes for h in hosts if (n, h) not in seen_at]
            assert not missing, f"changes never seen: {missing}"
        assert len(seen_at) == 2 * CHANGES
        late = {k: round(v, 1) for k, v in seen_at.items() if v > WITHIN_SECONDS}
        assert not late, f"changes seen later than {WITHIN_SECONDS} s: {late}"
        delays = sorted(seen_at.values())
        print(f"changes in both hosts' search after {delays[len(delays) // 2]:.2f} s (median), "
              f"{delays[-1]:.2f} s (slowest)")  # fmt: skip

        outputs = [runner.communicate(timeout=180) for runner in runners]
        for runner, (_out, _) in zip(runners, outputs, strict=True):
            assert runner.returncode == 0, runner.log_path.read_text()[-3000:]
        summaries = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
        assert sum(s["checked"] for s in summaries) == REGISTRATIONS

        # No registration checked twice: one request each at the register, one history row.
        assert Counter(r.number for r in register.requests) == {n: 1 for n in numbers}
        assert checks_per_number(pg_app) == {n: 1 for n in numbers}
        assert leases_held(pg_app) == []

        # Every status the register gave is in both hosts' default (verified-only) search.
        active = {n for i, n in enumerate(numbers) if i % SUSPENDED_EVERY != 0}
        for name, (base, _) in hosts.items():
            eventually(
                lambda base=base: verified_on(base) == active,
                WITHIN_SECONDS,
                f"host {name} lists exactly the registrations the register says are active",
            )

        # Neither index drifts from the database.
        for name, (_, index_dir) in hosts.items():
            host = create_app({**pg_app.config, "SEARCH_INDEX_DIR": str(index_dir)})
            with host.app_context():
                report = get_index_keeper().check()
                db.session.remove()
                db.engine.dispose()
            assert not report.drift, (name, report.as_dict())
    finally:
        processes.stop_all()
