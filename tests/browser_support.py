"""Serving an app for the browser tests: a real HTTP server on an ephemeral loopback port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask

from directory.extensions import db


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """``app`` served on 127.0.0.1 for the duration; yields its base URL, then stops it and
    closes its database connections."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="browser-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


def site_config(root: Path, **extra) -> dict:
    """An app's settings for a browser test: its own database, index and mail folder under
    ``root``; ``extra`` on top (e.g. ``HPCSA_URL`` of a fake iRegister)."""
    return {
        "SECRET_KEY": "browser-test",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{root / 'directory.sqlite3'}",
        "SEARCH_INDEX_DIR": str(root / "search-index"),
        "HPCSA_URL": "http://127.0.0.1:9/never-called",
        "MAIL_FILE_DIR": str(root / "mail"),
        **extra,
    }
