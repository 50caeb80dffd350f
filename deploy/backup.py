#!/usr/bin/env python3
"""Back up and restore the directory's database (docs/deploy.md, "Backups").

    python3 deploy/backup.py sqlite-backup  instance/directory.sqlite3 /backups/directory.sqlite3
    python3 deploy/backup.py sqlite-restore /backups/directory.sqlite3 instance/directory.sqlite3
    python3 deploy/backup.py pg-backup  postgresql://directory@db/directory /backups/directory.dump
    python3 deploy/backup.py pg-restore /backups/directory.dump postgresql://directory@db/restored

- ``sqlite-backup`` uses SQLite's online backup API: a consistent copy while the site keeps
  serving and writing. The copy is checked (``PRAGMA integrity_check``) and only then moved
  into place, so DEST is either the previous backup or a complete new one.
- ``sqlite-restore`` checks the backup, then replaces the database file (and drops its stale
  ``-wal``/``-shm`` files). Stop the web service and the timers first.
- ``pg-backup`` runs ``pg_dump --format=custom``; ``pg-restore`` runs ``pg_restore`` into an
  existing, empty database in one transaction (any error: nothing is restored).

After any restore: ``flask db upgrade`` (a backup from an older release), then ``flask search
reindex`` on every web host (the index is rebuilt from the database, never backed up).
Standard library only, plus PostgreSQL's client programs for the pg-* commands. Exit status
0 on success, 1 on failure (said on stderr).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path


class BackupError(Exception):
    pass


def _check_sqlite(path: Path) -> None:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
            table_count = tables.fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a usable SQLite database: {exc}") from None
    if result != "ok":
        raise BackupError(f"{path} failed its integrity check: {result}")
    if not table_count:
        raise BackupError(f"{path} has no tables: not a directory database")


def sqlite_backup(source: Path, dest: Path) -> None:
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source, timeout=30)
    out = sqlite3.connect(partial)
    try:
        # In one step: one read transaction, so one consistent snapshot. The site's database
        # is in WAL mode, where a reader never holds up writers (a copy in many small steps
        # would start over each time another connection writes).
        src.backup(out)
    finally:
        out.close()
        src.close()
    _check_sqlite(partial)
    os.replace(partial, dest)


def sqlite_restore(backup: Path, dest: Path) -> None:
    _check_sqlite(backup)
    partial = dest.with_name(dest.name + ".restoring")
    shutil.copyfile(backup, partial)
    for suffix in ("-wal", "-shm"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    os.replace(partial, dest)


def _libpq_url(url: str) -> str:
    """SQLAlchemy's ``postgresql+psycopg://`` as the client programs want it."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def _run(command: list[str]) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise BackupError(
            f"{command[0]} is not installed (apt-get install postgresql-client)"
        ) from None
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()[-2000:]}")


def pg_backup(url: str, dest: Path) -> None:
    partial = dest.with_name(dest.name + ".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _run(["pg_dump", "--format=custom", "--no-owner", "--no-acl", "--file", str(partial),
          "--dbname", _libpq_url(url)])  # fmt: skip
    _run(["pg_restore", "--list", str(partial)])  # readable, or it is no backup
    os.replace(partial, dest)


def pg_restore(dump: Path, url: str) -> None:
    if not dump.is_file():
        raise BackupError(f"{dump} does not exist")
    _run(["pg_restore", "--no-owner", "--no-acl", "--single-transaction", "--exit-on-error",
          "--dbname", _libpq_url(url), str(dump)])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, first, second in (
        ("sqlite-backup", "source", "dest"),
        ("sqlite-restore", "backup", "dest"),
        ("pg-backup", "url", "dest"),
        ("pg-restore", "dump", "url"),
    ):
        command = commands.add_parser(name)
        command.add_argument(first)
        command.add_argument(second)
    args = parser.parse_args(argv)
    try:
        if args.command == "sqlite-backup":
            sqlite_backup(Path(args.source), Path(args.dest))
        elif args.command == "sqlite-restore":
            sqlite_restore(Path(args.backup), Path(args.dest))
        elif args.command == "pg-backup":
            pg_backup(args.url, Path(args.dest))
        else:
            pg_restore(Path(args.dump), args.url)
    except BackupError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.command}: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
