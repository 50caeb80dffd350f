"""The practitioner verification and directory service (a Flask application)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

from flask import Flask

from directory.extensions import db, migrate

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """App factory: defaults from ``config.settings``, then ``DIRECTORY_*`` env, then ``config``."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object("config.settings.DefaultConfig")
    app.config.from_prefixed_env("DIRECTORY")
    if config:
        app.config.update(config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        db_path = Path(app.instance_path) / "directory.sqlite3"
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{db_path}"
    if not app.config.get("SEARCH_INDEX_DIR"):
        app.config["SEARCH_INDEX_DIR"] = os.path.join(app.instance_path, "search-index")
    _check_settings(app)
    from directory import deployment

    deployment.init_app(app)  # ENV=production refusals, the proxy's X-Forwarded-* (PROXY_HOPS)

    if not app.debug and not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    _configure_sqlite(app)

    from directory import models  # noqa: F401  (every model registered with the metadata)
    from directory.registry.cli import registry_group
    from directory.web import hygiene, web

    hygiene.init_app(app)  # before any route: bounded <int:> ids, NUL characters refused
    from directory import ratelimits

    ratelimits.init_app(app)  # per-client limits; the Limiter the sign-in throttle counts with
    app.register_blueprint(web)
    app.cli.add_command(registry_group())

    from directory import notifications

    notifications.init_app(app)  # outbox, /changes.atom, `flask notifications`

    from directory.api import init_api

    api = init_api(app)  # other domains: api.register_blueprint(...) (see directory/api)

    from directory.notifications.api import changes_api

    api.register_blueprint(changes_api)

    from directory import accounts
    from directory.web import security

    accounts.init_app(app, api)  # sign-in, /account/ pages, the clinic API, `flask users`
    security.init_app(app)  # security headers; absolute URLs from PUBLIC_BASE_URL
    from directory.web import delivery

    delivery.init_app(app)  # compression, after every other header is set

    from directory import status

    status.init_app(app)  # /status, and /account/status for site admins

    from directory.listings.cli import directory_cli

    app.cli.add_command(directory_cli)

    from directory.demo.cli import demo_cli

    app.cli.add_command(demo_cli)

    from directory import search
    from directory.health import health

    search.init_app(app)  # the backend, the index outbox, `flask search`
    app.register_blueprint(health)  # /healthz, /readyz

    from directory import observability

    observability.init_app(app)  # request ids and logs, /metrics when METRICS_ENABLED

    for name in app.config["INCLUDES"]:  # by name, so that `directory` depends on none
        try:
            package = import_module(name)
        except ImportError as exc:
            raise RuntimeError(f"invalid setting: INCLUDES names {name!r}: {exc}") from exc
        package.init_app(app)
    return app


def _check_settings(app: Flask) -> None:
    """Fail at start-up, with the setting's name, rather than at the first request."""
    from config.settings import check_durations
    from directory.registry.policy import RegistryPolicy
    from directory.web import throttle

    throttle.check_settings(app.config)  # the public actions' rate limits
    try:
        check_durations(app.config)
        RegistryPolicy.from_config(app.config)
    except (ValueError, KeyError) as exc:
        raise RuntimeError(f"invalid setting: {exc}") from exc


def _configure_sqlite(app: Flask) -> None:
    """WAL and a busy timeout, so that web workers and jobs can share one SQLite file."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # pragma: no cover - driver hook
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
