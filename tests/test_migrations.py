"""``flask db upgrade`` builds exactly the models' schema, on SQLite and on PostgreSQL, and
``flask db downgrade base`` takes it all away again.

The commands run as a user runs them (a ``flask`` subprocess from the repository root), so
Alembic's logging set-up stays out of this test process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from directory import create_app
from directory.extensions import db

ROOT = Path(__file__).resolve().parent.parent
FLASK = Path(sys.executable).with_name("flask")


def flask_db(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DIRECTORY_")}
    env.update(
        FLASK_APP="wsgi:app",
        DIRECTORY_SQLALCHEMY_DATABASE_URI=url,
        DIRECTORY_SEARCH_INDEX_DIR=str(tmp_path / "search-index"),
        DIRECTORY_MAIL_FILE_DIR=str(tmp_path / "mail"),
    )
    done = subprocess.run(
        [str(FLASK), "db", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"flask db {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    return done


def models_metadata(url: str, tmp_path: Path):
    """Every model's table, as the app registers them (all domains)."""
    create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SEARCH_INDEX_DIR": str(tmp_path / "search-index"),
        }
    )
    return db.metadata


def schema_differences(url: str, metadata) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": False}
            )
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def triggers(url: str) -> set[str]:
    """What Alembic's comparison cannot see: the history tables' append-only triggers."""
    engine = create_engine(url)
    query = {
        "sqlite": "SELECT tbl_name || '.' || name FROM sqlite_master WHERE type = 'trigger'",
        "postgresql": "SELECT c.relname || '.' || t.tgname FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal",
    }[engine.dialect.name]
    try:
        with engine.connect() as connection:
            return set(connection.execute(text(query)).scalars())
    finally:
        engine.dispose()


def upgrade_compare_downgrade(url: str, tmp_path: Path) -> None:
    assert tables(url) == set(), "the database is not empty to begin with"
    metadata = models_metadata(url, tmp_path)
    engine = create_engine(url)
    with engine.begin() as connection:
        metadata.create_all(connection)
    from_models = triggers(url)
    with engine.begin() as connection:
        metadata.drop_all(connection)
    engine.dispose()
    assert {name.split(".")[0] for name in from_models} == {"verification_checks", "status_events"}

    flask_db(url, tmp_path, "upgrade")
    assert tables(url) == set(metadata.tables) | {"alembic_version"}
    assert schema_differences(url, metadata) == []
    assert triggers(url) == from_models

    flask_db(url, tmp_path, "downgrade", "base")
    assert tables(url) <= {"alembic_version"}
    assert triggers(url) == set()


def test_migrations_build_exactly_the_models_schema_on_sqlite(tmp_path):
    upgrade_compare_downgrade(f"sqlite:///{tmp_path / 'fresh.sqlite3'}", tmp_path)


def empty_schema(engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))


@pytest.mark.postgres
def test_migrations_build_exactly_the_models_schema_on_postgresql(pg_database_url, tmp_path):
    engine = create_engine(pg_database_url)
    try:
        empty_schema(engine)  # the session's database is shared with pg_app tests
        upgrade_compare_downgrade(pg_database_url, tmp_path)
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()


def test_there_is_one_migration_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config(str(ROOT / "directory" / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "directory" / "migrations"))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def standing_after_0006(url: str, tmp_path: Path) -> dict[str, tuple]:
    """Upgrade to 0005, write a suspended clinic, a claimed one and a plain one as they were
    then, upgrade to 0006: each clinic's (suspended_at, claimed_at) by slug."""
    flask_db(url, tmp_path, "upgrade", "0005")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for number, slug in enumerate(("suspended", "claimed", "plain"), start=1):
                connection.execute(
                    text(
                        "INSERT INTO clinics (id, slug, name, city, province, created_at, "
                        "updated_at, version) VALUES (:id, :slug, :slug, 'Cape Town', "
                        "'Western Cape', '2026-01-01', '2026-01-01', 1)"
                    ),
                    {"id": number, "slug": slug},
                )
            connection.execute(
                text(
                    "INSERT INTO clinic_suspensions (clinic_id, reason, suspended_by, "
                    "suspended_at, listings) VALUES (1, 'x', 'ops', '2026-02-03 04:05:06', '[]')"
                )
            )
            for email, role, clinic, created in (
                ("admin@claimed.example", "clinic_admin", 2, "2026-03-01 00:00:00"),
                ("later@claimed.example", "clinic_admin", 2, "2026-04-01 00:00:00"),
                ("staff@plain.example", "clinic_staff", 3, "2026-03-01 00:00:00"),
            ):
                connection.execute(
                    text(
                        "INSERT INTO users (email, password_hash, role, clinic_id, "
                        "session_generation, created_at) VALUES (:e, 'x', :r, :c, 1, :t)"
                    ),
                    {"e": email, "r": role, "c": clinic, "t": created},
                )
        flask_db(url, tmp_path, "upgrade")
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT slug, suspended_at, claimed_at FROM clinics ORDER BY id")
            ).all()
        return {
            slug: (str(s)[:19] if s else None, str(c)[:19] if c else None) for slug, s, c in rows
        }
    finally:
        engine.dispose()


EXPECTED_STANDING = {
    "suspended": ("2026-02-03 04:05:06", None),
    "claimed": (None, "2026-03-01 00:00:00"),  # the first admin's
    "plain": (None, None),  # staff only: not claimed
}


def test_0006_moves_suspensions_and_claims_onto_the_clinic_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    assert standing_after_0006(url, tmp_path) == EXPECTED_STANDING


@pytest.mark.postgres
def test_0006_moves_suspensions_and_claims_onto_the_clinic_on_postgresql(pg_database_url, tmp_path):
    engine = create_engine(pg_database_url)
    try:
        empty_schema(engine)
        assert standing_after_0006(pg_database_url, tmp_path) == EXPECTED_STANDING
    finally:
        empty_schema(engine)
        engine.dispose()
