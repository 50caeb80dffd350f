"""The shipped deployment files work: the systemd units pass ``systemd-analyze verify``, and
each backup (``deploy/backup.py``) restores into a database the app serves the same answers
from, for SQLite (online backup while writes go on) and PostgreSQL (pg_dump/pg_restore)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from directory import create_app
from directory.extensions import db
from directory.search import get_index_keeper
from tests.conftest import PG_ADMIN_URL
from tests.test_api import build_directory

ROOT = Path(__file__).resolve().parent.parent
BACKUP = [sys.executable, str(ROOT / "deploy" / "backup.py")]
NUMBERS = ("MP0000101", "MP0000102", "PS0000301")


def backup(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*BACKUP, *args], capture_output=True, text=True, timeout=120)


def answers(app) -> dict:
    """What the app tells a patient about a few practitioners, and that it is ready."""
    with app.app_context():
        get_index_keeper().rebuild()  # after a restore: `flask search reindex`
    client = app.test_client()
    found = {n: client.get(f"/api/v1/practitioners/{n}").get_json() for n in NUMBERS}
    assert client.get("/readyz").status_code == 200
    return found


def test_the_systemd_units_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    import grp
    import pwd

    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    units = sorted((ROOT / "deploy" / "systemd").iterdir())
    assert {u.name for u in units} >= {
        "hpcsa-directory.service",
        "hpcsa-directory-recheck.timer",
        "hpcsa-directory-notifications.timer",
        "hpcsa-directory-search-sync.timer",
    }
    fake_venv = tmp_path / "srv" / ".venv" / "bin"
    fake_venv.mkdir(parents=True)
    for program in ("gunicorn", "flask"):
        (fake_venv / program).symlink_to(Path(sys.executable).parent / program)
    for unit in units:
        text = unit.read_text().replace("/srv/hpcsa-directory", str(tmp_path / "srv"))
        text = text.replace("User=directory", f"User={user}")
        text = text.replace("Group=directory", f"Group={group}")
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", *[str(tmp_path / u.name) for u in units]],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 0 and not problems, problems
    for unit in units:  # every service reads the one environment file
        if unit.suffix == ".service":
            assert "EnvironmentFile=/etc/hpcsa-directory/environment" in unit.read_text()


def restored_answers(app, copy: Path, tmp_path: Path) -> dict:
    """``backup.py sqlite-restore`` of ``copy`` into a new file, and the app's answers there."""
    restored = tmp_path / "restored" / "directory.sqlite3"
    restored.parent.mkdir()
    result = backup("sqlite-restore", str(copy), str(restored))
    assert result.returncode == 0, result.stderr
    app2 = create_app({**app.config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{restored}",
                       "SEARCH_INDEX_DIR": str(tmp_path / "restored-index")})  # fmt: skip
    try:
        return answers(app2)
    finally:
        with app2.app_context():
            db.engine.dispose()


def test_sqlite_online_backup_while_writing_restores_the_same_answers(app, tmp_path):
    build_directory(app)
    before = answers(app)
    live = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    stop = threading.Event()
    writes = []

    def write() -> None:  # the site keeps writing while the backup runs
        conn = sqlite3.connect(live, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS busy (n INTEGER)")
        while not stop.is_set():
            with conn:
                conn.execute("INSERT INTO busy VALUES (?)", (len(writes),))
            writes.append(1)
        conn.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        result = backup("sqlite-backup", str(live), str(tmp_path / "backups" / "b.sqlite3"))
    finally:
        stop.set()
        writer.join()
    assert result.returncode == 0, result.stderr
    assert writes, "the writer never wrote"
    assert restored_answers(app, tmp_path / "backups" / "b.sqlite3", tmp_path) == before


def test_a_damaged_backup_is_refused_and_the_database_left_alone(tmp_path):
    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    target = tmp_path / "directory.sqlite3"
    target.write_bytes(b"the current database")
    result = backup("sqlite-restore", str(damaged), str(target))
    assert result.returncode == 1 and "sqlite-restore:" in result.stderr
    assert target.read_bytes() == b"the current database"
    result = backup("sqlite-backup", str(tmp_path / "missing.sqlite3"), str(tmp_path / "x"))
    assert result.returncode == 1 and "does not exist" in result.stderr


@pytest.mark.postgres
def test_postgresql_dump_restores_the_same_answers(pg_app, tmp_path):
    psycopg = pytest.importorskip("psycopg")
    if not shutil.which("pg_dump"):
        pytest.skip("pg_dump is not installed (apt-get install postgresql-client)")
    build_directory(pg_app)
    before = answers(pg_app)
    url = pg_app.config["SQLALCHEMY_DATABASE_URI"]
    dump = tmp_path / "directory.dump"
    result = backup("pg-backup", url, str(dump))
    assert result.returncode == 0, result.stderr
    name = f"directory_restore_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(PG_ADMIN_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    restored_url = url.rsplit("/", 1)[0] + f"/{name}"
    try:
        result = backup("pg-restore", str(dump), restored_url)
        assert result.returncode == 0, result.stderr
        app2 = create_app({**pg_app.config, "SQLALCHEMY_DATABASE_URI": restored_url,
                           "SEARCH_INDEX_DIR": str(tmp_path / "restored-index")})  # fmt: skip
        try:
            assert answers(app2) == before
        finally:
            with app2.app_context():
                db.engine.dispose()
        # A second restore into the same (no longer empty) database fails as a whole.
        again = backup("pg-restore", str(dump), restored_url)
        assert again.returncode == 1 and "pg_restore failed" in again.stderr
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_the_sqlite3_shell_backup_in_the_docs_restores_the_same_answers(app, tmp_path):
    """docs/deploy.md's other way: ``sqlite3 DB ".backup 'DEST'"``, restored with backup.py."""
    shell = shutil.which("sqlite3")
    if not shell:
        pytest.skip("the sqlite3 shell is not installed (apt-get install sqlite3)")
    build_directory(app)
    before = answers(app)
    live = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    copy = tmp_path / "backups" / "directory.sqlite3"
    copy.parent.mkdir()
    done = subprocess.run(
        [shell, str(live), f".backup '{copy}'"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and copy.stat().st_size > 0, done.stderr
    assert restored_answers(app, copy, tmp_path) == before
