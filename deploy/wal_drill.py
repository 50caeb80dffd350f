#!/usr/bin/env python3
"""A point-in-time restore, tried end to end on a private PostgreSQL cluster (docs/deploy.md,
"Backups and restore"): base backup + WAL archiving, the procedure an operator follows.

    .venv/bin/python deploy/wal_drill.py [--bin-dir /usr/lib/postgresql/15/bin] [--keep]

1. ``initdb`` a new cluster in a temporary folder, listening on 127.0.0.1 on a free port,
   with ``archive_mode = on`` and an ``archive_command`` copying each WAL file into an
   archive folder (as production copies them off the machine);
2. ``flask db upgrade`` and ``flask demo load`` (the fictional demo data) into it;
3. ``pg_basebackup`` (tar, compressed, with the WAL it needs);
4. more writes: fictional clinics added after the base backup (they must come back), then a
   named restore point, then a "mistake" (every clinic renamed) that must NOT come back;
5. the base backup unpacked into a new data folder with ``restore_command`` copying from the
   archive and ``recovery_target_name`` = the restore point, started, promoted;
6. checks: the demo data and the later clinics are there, the mistake is not.

Run as root, the server's programs run as the ``postgres`` user (PostgreSQL refuses root),
and the temporary folder is handed to that user. Nothing leaves 127.0.0.1. Prints one JSON
object (what was found) and exits 0 when the restore is right, 1 otherwise, 2 when it cannot
be tried here (no server binaries, no unprivileged user).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE = "directory"
RESTORE_POINT = "before_the_mistake"
LATER_CLINICS = [f"wal-drill-clinic-{i}" for i in range(1, 4)]  # fictional


class DrillError(Exception):
    pass


class CannotTry(DrillError):
    """The drill cannot run on this machine (exit 2)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Drill:
    def __init__(self, bin_dir: Path, flask: Path, workdir: Path | None = None) -> None:
        for program in ("initdb", "pg_ctl", "pg_basebackup", "psql"):
            if not (bin_dir / program).exists():
                raise CannotTry(f"{bin_dir / program} is missing (apt-get install postgresql)")
        if not flask.exists():
            raise CannotTry(f"{flask} is missing (make install)")
        self.bin = bin_dir
        self.flask = flask
        self.run_as: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise CannotTry("running as root and there is no 'postgres' user") from None
            if not shutil.which("runuser"):
                raise CannotTry("running as root and runuser is missing")
            self.run_as = "postgres"
        # Under /tmp (not the caller's private folders), so the server's user can reach it.
        self.work = Path(workdir or tempfile.mkdtemp(prefix="wal-drill-", dir="/tmp"))
        self.archive = self.work / "wal-archive"
        self.base = self.work / "base-backup"
        self.archive.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            owner = pwd.getpwnam(self.run_as)
            for path in (self.work, self.archive):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self.running: list[Path] = []

    # --- running things ------------------------------------------------------------------

    def server(self, program: str, *args: str) -> str:
        """One of PostgreSQL's server programs, as the unprivileged user when root."""
        command = [str(self.bin / program), *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.work)
        if done.returncode != 0:
            raise DrillError(f"{program} failed: {(done.stderr or done.stdout).strip()[-1500:]}")
        return done.stdout

    def sql(self, port: int, statement: str, database: str = DATABASE) -> str:
        done = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
             "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise DrillError(f"psql failed: {done.stderr.strip()[-1500:]}")
        return done.stdout.strip()

    def flask_command(self, port: int, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIRECTORY_")}
        env.update(
            FLASK_APP="wsgi:app",
            DIRECTORY_SQLALCHEMY_DATABASE_URI=(
                f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASE}"
            ),
            # JSON, as every setting: the index is rebuilt after a restore anyway
            DIRECTORY_SEARCH_BACKEND='"null"',
            DIRECTORY_INCLUDES="[]",
        )
        done = subprocess.run(
            [str(self.flask), *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise DrillError(f"flask {' '.join(args)} failed: {done.stderr.strip()[-1500:]}")

    def start(self, data: Path, port: int) -> None:
        self.server("pg_ctl", "-D", str(data), "-l", str(data.parent / f"{data.name}.log"),
                    "-o", f"-p {port}", "-w", "-t", "120", "start")  # fmt: skip
        self.running.append(data)

    def stop(self, data: Path) -> None:
        self.server("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        self.running.remove(data)

    def close(self, keep: bool = False) -> None:
        for data in list(self.running):
            with contextlib.suppress(DrillError):
                self.stop(data)
        if not keep:
            shutil.rmtree(self.work, ignore_errors=True)

    # --- the drill -------------------------------------------------------------------------

    def primary(self) -> tuple[Path, int]:
        data, port = self.work / "primary", free_port()
        self.server("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.work}'\n"
                "wal_level = replica\narchive_mode = on\n"
                f"archive_command = 'test ! -f {self.archive}/%f && cp %p {self.archive}/%f'\n"
                "max_wal_senders = 3\nfsync = off\n"  # a drill: durability is not the point
            )
        self.start(data, port)
        self.sql(port, f"CREATE DATABASE {DATABASE}", database="postgres")
        return data, port

    def wait_archived(self, port: int, timeout: float = 60) -> None:
        """Switch to a new WAL file and wait until the finished one is in the archive."""
        last = self.sql(port, "SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + timeout
        while not (self.archive / last).exists():
            if time.monotonic() > deadline:
                raise DrillError(f"WAL file {last} never reached the archive")
            time.sleep(0.2)

    def restore(self, port: int) -> Path:
        """The base backup, unpacked, recovering from the archive up to the restore point."""
        data = self.work / "restored"
        data.mkdir(mode=0o700)
        with tarfile.open(self.base / "base.tar.gz") as tar:
            tar.extractall(data, filter="tar")
        wal = self.base / "pg_wal.tar.gz"
        if wal.exists():
            with tarfile.open(wal) as tar:
                tar.extractall(data / "pg_wal", filter="tar")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nrestore_command = 'cp {self.archive}/%f %p'\n"
                f"recovery_target_name = '{RESTORE_POINT}'\n"
                "recovery_target_action = 'promote'\narchive_mode = off\n"
            )
        (data / "recovery.signal").touch()
        if self.run_as:
            subprocess.run(["chown", "-R", f"{self.run_as}:", str(data)], check=True)
        self.start(data, port)
        deadline = time.monotonic() + 120
        while self.sql(port, "SELECT pg_is_in_recovery()") != "f":
            if time.monotonic() > deadline:
                raise DrillError("the restored server never left recovery")
            time.sleep(0.2)
        return data

    def run(self) -> dict:
        data, port = self.primary()
        self.flask_command(port, "db", "upgrade")
        self.flask_command(port, "demo", "load")
        count = "SELECT count(*) FROM {}"
        before = {t: int(self.sql(port, count.format(t))) for t in ("practitioners", "clinics")}
        if not before["practitioners"] or not before["clinics"]:
            raise DrillError(f"the demo data did not load: {before}")

        self.server("pg_basebackup", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                    "-D", str(self.base), "-Ft", "-z", "-X", "stream",
                    "--checkpoint=fast")  # fmt: skip

        # After the base backup: rows that must come back...
        for slug in LATER_CLINICS:
            self.sql(port, "INSERT INTO clinics (slug, name, city, province, created_at, "
                           "updated_at, version) VALUES "
                           f"('{slug}', 'WAL drill clinic (fictional)', 'Durban', "
                           "'KwaZulu-Natal', now(), now(), 1)")  # fmt: skip
        self.sql(port, f"SELECT pg_create_restore_point('{RESTORE_POINT}')")
        # ...and then the mistake a point-in-time restore is for, which must not.
        self.sql(port, "UPDATE clinics SET name = 'renamed by mistake'")
        self.wait_archived(port)
        self.stop(data)

        restored_port = free_port()
        self.restore(restored_port)
        found = {t: int(self.sql(restored_port, count.format(t))) for t in before}
        later = self.sql(
            restored_port,
            "SELECT string_agg(slug, ',' ORDER BY slug) FROM clinics "
            "WHERE slug LIKE 'wal-drill-clinic-%'",
        ).split(",")
        mistaken = int(self.sql(restored_port, "SELECT count(*) FROM clinics "
                                               "WHERE name = 'renamed by mistake'"))  # fmt: skip
        report = {
            "before_base_backup": before,
            "restored": found,
            "later_clinics_restored": later,
            "rows_from_after_the_target": mistaken,
            "archived_wal_files": len(list(self.archive.iterdir())),
        }
        expected = {**before, "clinics": before["clinics"] + len(LATER_CLINICS)}
        report["ok"] = found == expected and later == LATER_CLINICS and mistaken == 0
        return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN)
    parser.add_argument("--flask", type=Path, default=ROOT / ".venv" / "bin" / "flask")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder.")
    args = parser.parse_args(argv)
    try:
        drill = Drill(args.bin_dir, args.flask)
    except CannotTry as exc:
        print(f"cannot try the WAL restore here: {exc}", file=sys.stderr)
        return 2
    try:
        report = drill.run()
    except DrillError as exc:
        print(f"WAL restore drill failed: {exc} (logs in {drill.work})", file=sys.stderr)
        drill.close(keep=True)
        return 1
    drill.close(keep=args.keep)
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
