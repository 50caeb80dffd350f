"""Registers and what they say: sources that look registrations up, and the jobs that use them.

``init_app`` wires this package into an app (``create_app`` calls it for each name in the
``INCLUDES`` setting): it checks the register settings at start-up (the client's and the
politeness stack's, ``importers/politeness/``, whose ``register_budget`` table it brings) and
adds ``flask registry import``, ``verify`` and ``recheck`` to the ``flask registry`` group,
and gives the app its way of asking the register about one number on someone's request
(``importers/live.py``, installed with ``directory.registry.live.install_live_lookup``).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from directory.registry.live import install_live_lookup
    from importers.cli import import_command, verify_command
    from importers.live import politely_for
    from importers.politeness import budget  # noqa: F401  (the register_budget table)
    from importers.politeness.asking import Politeness
    from importers.recheck.cli import recheck_command
    from importers.sources.hpcsa import HpcsaSettings

    try:
        HpcsaSettings.from_config(app.config)
        Politeness.from_config(app.config)
    except (ValueError, KeyError) as exc:
        raise RuntimeError(f"invalid setting: {exc}") from exc
    for command in (import_command, verify_command, recheck_command):
        app.cli.commands["registry"].add_command(command)
    install_live_lookup(app, politely_for(app))
