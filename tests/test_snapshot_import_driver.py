"""The batch writer's driver-level statements store exactly what Core statements store.

The batch writer of the one write path (``directory.registry.recording.bulk``, which the
snapshot import feeds) writes the three large tables through the driver's own
``executemany`` with plain tuples. These tests write the same values once that way and once
through SQLAlchemy Core, then read both back without any type processing and compare them
column by column, on SQLite and on PostgreSQL. All data is fictional.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from directory.extensions import db
from directory.registry.models import Practitioner, VerificationCheck
from directory.registry.recording.bulk_sql import (
    CHECK_COLUMNS,
    PRACTITIONER_INSERT_COLUMNS,
    PRACTITIONER_UPDATE_COLUMNS,
    _DriverStatement,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_app(request):
    """The app on SQLite, then on PostgreSQL."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


AS_OF = datetime(2024, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 12, 30, 1, 123456, tzinfo=UTC)
ELSEWHERE = timezone(timedelta(hours=2))


def practitioner_values(number: str, next_check: datetime) -> tuple:
    """One practitioner row in ``PRACTITIONER_INSERT_COLUMNS`` order."""
    values = {
        "registration_number": number,
        "prefix": "MP",
        "status": "active",
        "status_as_of": AS_OF,
        "status_changed_at": None,
        "verified_at": datetime(2024, 3, 1, 2, 0, tzinfo=ELSEWHERE),  # another zone
        "not_found_pending_since": None,
        "consecutive_failures": 0,
        "last_outcome": "ok",
        "last_checked_at": NOW,
        "next_check_at": next_check,
        "last_answer_at": datetime(2024, 3, 1),  # naive: taken as UTC
        "title": "DR",
        "surname": "FICTIONAL-ÉÑ",
        "full_names": None,
        "city": "CAPE TOWN",
        "postal_code": "8001",
        "category": "INDEPENDENT PRACTICE",
        "raw_status": "ACTIVE / INACTIVE",
        "created_at": NOW,
        "updated_at": NOW,
    }
    assert tuple(values) == PRACTITIONER_INSERT_COLUMNS
    return tuple(values.values())


def stored(number: str) -> tuple:
    """A practitioner's columns as the database holds them (no type processing)."""
    columns = ", ".join(PRACTITIONER_INSERT_COLUMNS[1:])
    return db.session.execute(
        text(f"SELECT {columns} FROM practitioners WHERE registration_number = :n"),
        {"n": number},
    ).one()


def test_driver_inserts_and_updates_store_what_core_stores(any_app):
    dialect_name = None
    with any_app.app_context():
        dialect = db.engine.dialect
        dialect_name = dialect.name
        table = Practitioner.__table__
        insert = _DriverStatement(table, PRACTITIONER_INSERT_COLUMNS, dialect)
        update = _DriverStatement(table, PRACTITIONER_UPDATE_COLUMNS, dialect, by_id=True)
        assert insert.sql is not None and update.sql is not None  # the driver path is taken
        checks = [NOW + timedelta(days=d, microseconds=d) for d in range(3)]
        rows = [practitioner_values(f"MP000010{d}", checks[d]) for d in (0, 1)]
        insert.execute(db.session, insert.convert(rows))
        insert._execute_core(db.session, [practitioner_values("MP0000109", checks[1])])
        db.session.commit()
        assert stored("MP0000101") == stored("MP0000109")

        ids = dict(
            db.session.execute(text("SELECT registration_number, id FROM practitioners")).all()
        )
        changed = practitioner_values("-", checks[2])[2:]  # drop number and prefix
        changed = (*changed[:-2], NOW + timedelta(hours=1))  # created_at out, updated_at
        assert len(changed) == len(PRACTITIONER_UPDATE_COLUMNS)
        update.execute(db.session, update.convert([(*changed, ids["MP0000100"])]))
        update._execute_core(db.session, [(*changed, ids["MP0000109"])])
        db.session.commit()
        after_driver, after_core = stored("MP0000100"), stored("MP0000109")
        assert after_driver == after_core
        assert after_driver != stored("MP0000101")  # the update did change something
    assert dialect_name in ("sqlite", "postgresql")


def test_driver_history_rows_store_what_core_stores(any_app):
    with any_app.app_context():
        dialect = db.engine.dialect
        insert = _DriverStatement(Practitioner.__table__, PRACTITIONER_INSERT_COLUMNS, dialect)
        insert.execute(db.session, insert.convert([practitioner_values("MP0000200", NOW)]))
        pid = db.session.execute(text("SELECT id FROM practitioners")).scalar_one()
        history = _DriverStatement(
            VerificationCheck.__table__, (*CHECK_COLUMNS, "practitioner_id"), dialect
        )
        row = (AS_OF, NOW, "snapshot:fictional.csv", "ok", "ACTIVE", "active", "ab" * 32)
        row += (None, None, "created")
        # Converted without the id (as a batch does before the write lock), then completed.
        converted = history.convert([row, row])
        history.execute(db.session, [(*values, pid) for values in converted])
        history._execute_core(db.session, [(*row, pid)])
        db.session.commit()
        columns = ", ".join(CHECK_COLUMNS)
        rows = db.session.execute(
            text(f"SELECT {columns} FROM verification_checks ORDER BY id")
        ).all()
        assert len(rows) == 3 and rows[0] == rows[1] == rows[2]


def test_ids_are_read_back_as_core_reads_them(any_app):
    from sqlalchemy import select

    from directory.registry.recording.bulk_sql import _Statements

    with any_app.app_context():
        dialect = db.engine.dialect
        statements = _Statements(dialect)
        assert statements._ids_sql is not None  # the driver path is taken
        rows = [practitioner_values(f"MP{n:07d}", NOW) for n in range(1, 301)]
        statements.insert_practitioners.execute(
            db.session, statements.insert_practitioners.convert(rows)
        )
        wanted = [f"MP{n:07d}" for n in range(250, 351)]  # 51 stored, 50 not
        table = Practitioner.__table__
        core = db.session.execute(
            select(table.c.registration_number, table.c.id).where(
                table.c.registration_number.in_(wanted)
            )
        ).all()
        assert sorted(statements.ids_of(db.session, wanted)) == sorted(core)
        assert len(core) == 51
        assert statements.ids_of(db.session, []) == []


def test_fingerprints_are_read_as_core_reads_them(any_app):
    """Under the write lock the import compares each stored (id, last check) with the one
    its rules read through Core: the driver's must be equal, or every number would look
    moved (and be decided twice)."""
    from sqlalchemy import select

    from directory.registry.recording.bulk import _fingerprint
    from directory.registry.recording.bulk_sql import BELIEF_COLUMNS, PRACTITIONERS, _Statements

    with any_app.app_context():
        statements = _Statements(db.engine.dialect)
        assert statements._fingerprints_sql is not None  # the driver path is taken
        rows = [practitioner_values(f"MP{n:07d}", NOW) for n in range(1, 5)]
        never_checked = list(practitioner_values("MP0000005", NOW))
        never_checked[PRACTITIONER_INSERT_COLUMNS.index("last_checked_at")] = None
        rows.append(tuple(never_checked))
        statements.insert_practitioners.execute(
            db.session, statements.insert_practitioners.convert(rows)
        )
        wanted = [f"MP{n:07d}" for n in range(1, 8)]
        beliefs = db.session.execute(
            select(*BELIEF_COLUMNS).where(PRACTITIONERS.c.registration_number.in_(wanted))
        ).all()
        fingerprints = statements.fingerprints_of(db.session, wanted)
        assert len(beliefs) == len(fingerprints) == 5
        assert fingerprints["MP0000005"][1] is None
        assert fingerprints["MP0000001"][1] == NOW
        for row in beliefs:
            assert fingerprints[row.registration_number] == _fingerprint(row)


def test_stored_category_rows_are_read_as_core_reads_them(any_app):
    from sqlalchemy import select

    from directory.registry.recording.bulk_sql import CATEGORIES, _Statements

    with any_app.app_context():
        statements = _Statements(db.engine.dialect)
        assert statements._categories_sql is not None  # the driver path is taken
        rows = [practitioner_values(f"MP{n:07d}", NOW) for n in range(1, 4)]
        statements.insert_practitioners.execute(
            db.session, statements.insert_practitioners.convert(rows)
        )
        ids = [pid for _, pid in statements.ids_of(db.session, ["MP0000001", "MP0000002"])]
        categories = [
            (0, "INDEPENDENT PRACTICE", "ACTIVE", "active", ids[0]),
            (1, "INTERN", None, "unknown", ids[0]),
            (0, "PUBLIC SERVICE — É", "INACTIVE / ACTIVE", "inactive", ids[1]),
        ]
        statements.insert_categories.execute(db.session, categories)
        columns = ("practitioner_id", "position", "category", "raw_status", "status")
        core = db.session.execute(
            select(*(CATEGORIES.c[name] for name in columns)).where(
                CATEGORIES.c.practitioner_id.in_([*ids, 999_999])
            )
        ).all()
        driver = statements.categories_of(db.session, [*ids, 999_999])
        assert len(core) == 3
        assert sorted(map(tuple, driver)) == sorted(map(tuple, core))


def test_stored_beliefs_are_read_as_core_reads_them(any_app):
    """The rules of a batch read the stored beliefs through the driver: every value must be
    what Core gives (aware UTC date-times, None where nothing is stored)."""
    from sqlalchemy import select

    from directory.registry.recording.bulk_sql import BELIEF_COLUMNS, PRACTITIONERS, _Statements

    with any_app.app_context():
        statements = _Statements(db.engine.dialect)
        assert statements._beliefs_sql is not None  # the driver path is taken
        rows = [practitioner_values(f"MP{n:07d}", NOW + timedelta(days=n)) for n in range(1, 4)]
        statements.insert_practitioners.execute(
            db.session, statements.insert_practitioners.convert(rows)
        )
        wanted = ["MP0000001", "MP0000003", "MP0000009"]
        core = db.session.execute(
            select(*BELIEF_COLUMNS).where(PRACTITIONERS.c.registration_number.in_(wanted))
        ).all()
        driver = statements.beliefs_of(db.session, wanted)
        assert len(core) == len(driver) == 2
        by_number = {row.registration_number: row for row in driver}
        for row in core:
            mine = by_number[row.registration_number]
            assert tuple(mine) == tuple(row)
            assert [type(value) for value in mine] == [type(value) for value in row]
            assert mine.last_checked_at == NOW and mine.last_checked_at.tzinfo is not None
            assert mine.status_changed_at is None
