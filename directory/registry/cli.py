"""``flask registry ...``: import snapshots, verify numbers, show what the system believes."""

from __future__ import annotations

from flask.cli import AppGroup

registry_cli = AppGroup("registry", help="Registrations: import, verify, show.")
