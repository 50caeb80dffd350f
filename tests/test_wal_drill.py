"""PostgreSQL's point-in-time restore, tried: ``deploy/wal_drill.py`` initdb's a private
cluster with WAL archiving, loads the schema and the fictional demo data, takes a base
backup, writes more, sets a restore point, makes a "mistake", and restores the base backup
with the archived WAL up to the restore point (docs/deploy.md, "Backups and restore")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DRILL = ROOT / "deploy" / "wal_drill.py"

pytestmark = pytest.mark.slow


def test_a_base_backup_and_the_wal_archive_restore_up_to_the_restore_point():
    done = subprocess.run(
        [sys.executable, str(DRILL)], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    if done.returncode == 2:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    before, restored = report["before_base_backup"], report["restored"]
    # the base backup's rows, and the rows written after it up to the target, are back
    assert restored["practitioners"] == before["practitioners"] > 0
    assert restored["clinics"] == before["clinics"] + 3
    assert report["later_clinics_restored"] == [f"wal-drill-clinic-{i}" for i in (1, 2, 3)]
    # the change made after the restore point is not
    assert report["rows_from_after_the_target"] == 0
    assert report["archived_wal_files"] >= 1
    assert report["ok"] is True


def test_the_drill_says_plainly_when_it_cannot_run_here(tmp_path):
    done = subprocess.run(
        [sys.executable, str(DRILL), "--bin-dir", str(tmp_path / "no-postgres")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 2
    assert "cannot try the WAL restore here" in done.stderr and "initdb" in done.stderr
