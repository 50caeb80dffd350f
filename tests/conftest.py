"""Shared fixtures: ``app``, ``client``, ``runner`` (as in Flask's tutorial), the fake
iRegister on loopback, and a throwaway PostgreSQL database for the portability tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from directory import create_app
from directory.extensions import db
from directory.registry.policy import RegistryPolicy
from tests.fake_iregister import FakeIRegister, FakeRegister

PG_ADMIN_URL = os.environ.get("DIRECTORY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


# Tests make many requests from one address in seconds: every app they create (here, in
# module fixtures, in the processes they start) gets limits no test reaches, unless it sets
# its own (tests/test_ratelimits.py). The defaults are what production gets.
GENEROUS_RATE_LIMITS = {
    "DIRECTORY_RATE_LIMIT_PAGES": "100000 per minute",
    "DIRECTORY_RATE_LIMIT_API": "100000 per minute",
    "DIRECTORY_RATE_LIMIT_SEARCH": "100000 per minute",
}


@pytest.fixture(scope="session", autouse=True)
def generous_rate_limits() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in GENEROUS_RATE_LIMITS.items():
            patch.setenv(name, value)
        yield


@pytest.fixture
def fake_iregister() -> Iterator[FakeIRegister]:
    """A real HTTP server on 127.0.0.1 serving the fictional fixture register."""
    register = FakeRegister()
    register.load_fixture()
    with FakeIRegister(register) as server:
        yield server


@pytest.fixture
def app_config(tmp_path, fake_iregister) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "MAIL_FILE_DIR": str(tmp_path / "mail"),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.sqlite3'}",
        "SEARCH_INDEX_DIR": str(tmp_path / "search-index"),
        "HPCSA_URL": fake_iregister.url,
        "HPCSA_TIMEOUT": 2.0,
        "VERIFY_RATE": 1000.0,
        "HPCSA_MAX_RATE": 1000.0,  # the shared register budget: not what these tests measure
    }


@pytest.fixture
def sqlite_app(app_config):
    app = create_app(app_config)
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(sqlite_app):
    """The app on SQLite. A module whose every test should also run on PostgreSQL overrides
    it with ``either_app`` (``def app(either_app): return either_app``)."""
    return sqlite_app


# SQLite, and PostgreSQL where one answers (``pg_app`` skips, saying why, where none does).
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def either_app(request):
    """The app on SQLite, then on PostgreSQL: the same test on both databases."""
    return request.getfixturevalue("sqlite_app" if request.param == "sqlite" else "pg_app")


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def policy(app) -> RegistryPolicy:
    return RegistryPolicy.from_config(app.config)


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; skipped when no server answers."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(
            PG_ADMIN_URL.replace("postgresql://", "postgresql://", 1),
            autocommit=True,
            connect_timeout=3,
        )
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    name = f"directory_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def pg_app(pg_database_url, app_config):
    """The app on PostgreSQL, with every table emptied afterwards."""
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": pg_database_url})
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_app(request):
    """The app on SQLite, then on PostgreSQL (``app``, then ``pg_app``): for rules that live
    in the database."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


@pytest.fixture
def same_db_config(app, app_config) -> dict:
    """``app_config`` on ``app``'s database (the PostgreSQL one where ``app`` is
    ``either_app``'s), its tables made by ``app``: for a test that creates an app of its own
    with other settings."""
    return {**app_config, "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"]}


@pytest.fixture(scope="module", params=DATABASES)
def module_database_url(request, tmp_path_factory) -> Iterator[str]:
    """For a module's own app (module-scoped, made once per database): a SQLite file, then
    the session's PostgreSQL database, whose tables (made by the app) are dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'module.sqlite3'}"
        return
    url = request.getfixturevalue("pg_database_url")
    yield url
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        db.metadata.drop_all(engine)
    finally:
        engine.dispose()
