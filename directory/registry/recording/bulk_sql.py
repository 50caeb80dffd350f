"""The bulk SQL: the batch writer's (``bulk.py``) statements for the three large tables.

The practitioners, their category rows and their history rows are written through the
driver's own ``executemany`` with plain tuples (``_DriverStatement``), and the stored beliefs
a batch's rules read come back through the driver too (``_Statements``): a batch of 2,000
numbers then costs a few statements, not SQLAlchemy's per-row parameter handling. What
depends on the database still comes from SQLAlchemy (placeholders, quoting, each column's
bind conversion), and a dialect with named parameters gets the same rows through Core.
``tests/test_snapshot_import_driver.py`` checks that both ways store the same values.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any

from sqlalchemy import MetaData, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from directory.registry.checks import Belief
from directory.registry.models import (
    Practitioner,
    RegistrationCategory,
    StatusEvent,
    VerificationCheck,
)
from directory.util.clock import UTCDateTime


class _RepeatedUTCDateTime(UTCDateTime):
    """``UTCDateTime`` with its bind conversion memoised.

    A batch writes the same few instants (the as-of date, the batch's "now") into most of
    its rows: each is converted once, not per row and column.
    """

    cache_ok = True

    def bind_processor(self, dialect: Any) -> Any:
        convert = super().bind_processor(dialect)
        if convert is None:
            return None
        memo: dict[datetime, Any] = {}

        def process(value: Any) -> Any:
            if value is None:
                return None
            try:
                return memo[value]
            except KeyError:
                if len(memo) > 4096:
                    memo.clear()
                converted = memo[value] = convert(value)
                return converted

        return process


def _bulk_table(table: Table) -> Table:
    """A copy of ``table`` for the bulk statements, its UTC date-time columns memoised."""
    copy = table.to_metadata(MetaData())
    for column in copy.columns:
        if isinstance(column.type, UTCDateTime):
            column.type = _RepeatedUTCDateTime()
    return copy


PRACTITIONERS = _bulk_table(Practitioner.__table__)
CATEGORIES = _bulk_table(RegistrationCategory.__table__)
EVENTS = _bulk_table(StatusEvent.__table__)
FACT_COLUMNS = ("title", "surname", "full_names", "city", "postal_code", "category", "raw_status")
BELIEF_COLUMNS = [
    PRACTITIONERS.c[name] for name in ("id", "registration_number", *Belief.FIELDS, *FACT_COLUMNS)
]

# A stored belief read through the driver: named as ``BELIEF_COLUMNS``, like Core's rows.
_StoredBelief = namedtuple("_StoredBelief", [column.name for column in BELIEF_COLUMNS])

# The written columns in statement order, and getters that pull them out in that order.
_NO_FACT_VALUES = (None,) * len(FACT_COLUMNS)
_FACT_INDEX = {name: index for index, name in enumerate(FACT_COLUMNS)}
_RAW_STATUS_INDEX = _FACT_INDEX["raw_status"]
_stored_facts = attrgetter(*FACT_COLUMNS)
_belief_values = attrgetter(*Belief.FIELDS)
PRACTITIONER_INSERT_COLUMNS = (
    "registration_number",
    "prefix",
    *Belief.FIELDS,
    *FACT_COLUMNS,
    "created_at",
    "updated_at",
)
PRACTITIONER_UPDATE_COLUMNS = (*Belief.FIELDS, *FACT_COLUMNS, "updated_at")
CATEGORY_COLUMNS = ("position", "category", "raw_status", "status")
_category_values = itemgetter(*CATEGORY_COLUMNS)
CHECK_COLUMNS = (
    "checked_at",
    "recorded_at",
    "source",
    "outcome",
    "raw_status",
    "status",
    "response_digest",
    "error",
    "duration_ms",
    "effect",
)
_check_values = itemgetter(*CHECK_COLUMNS)
# The driver's placeholder for each positional parameter style.
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


class _Converted(dict):
    """One column's values as the driver takes them, each distinct value converted once."""

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        super().__init__()
        self._convert = convert

    def __missing__(self, value: Any) -> Any:
        converted = self[value] = self._convert(value)
        return converted


class _DriverStatement:
    """An INSERT (or an UPDATE by id) of fixed columns, run as the driver's own
    ``executemany`` with plain tuples: none of SQLAlchemy's per-row parameter handling.

    What depends on the database still comes from SQLAlchemy: the placeholder from the
    dialect's parameter style, the quoting of names, and each column's bind conversion
    (a UTC date-time becomes what the ``UTCDateTime`` column would have stored), applied a
    column at a time, each distinct value once. A dialect with named parameters gets the
    same rows through Core.
    """

    def __init__(
        self, table: Table, columns: tuple[str, ...], dialect: Any, *, by_id: bool = False
    ) -> None:
        self.table = table
        self.columns = columns
        self.by_id = by_id
        self.converters: list[tuple[int, Callable[[Any], Any]]] = []
        for position, name in enumerate(columns):
            column_type = table.c[name].type
            if isinstance(column_type, UTCDateTime):
                convert = column_type.dialect_impl(dialect).bind_processor(dialect)
                if convert is not None:
                    self.converters.append((position, convert))
        mark = _PLACEHOLDERS.get(dialect.paramstyle)
        quote = dialect.identifier_preparer.quote
        self.sql: str | None = None
        if mark is not None:
            if by_id:
                assignments = ", ".join(f"{quote(name)} = {mark}" for name in columns)
                self.sql = (
                    f"UPDATE {quote(table.name)} SET {assignments} WHERE {quote('id')} = {mark}"
                )
            else:
                self.sql = (
                    f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))}) "
                    f"VALUES ({', '.join([mark] * len(columns))})"
                )

    def convert(self, rows: list[tuple]) -> list[tuple]:
        """``rows`` (Python values) as the driver takes them; needs no transaction, so a
        batch converts its rows before it takes the write lock. Rows may be shorter than
        ``columns`` (the columns at the end still to be added)."""
        if not rows or not self.converters or self.sql is None:
            return rows  # Core converts them itself
        by_column = list(zip(*rows, strict=True))
        for position, convert in self.converters:
            by_column[position] = map(_Converted(convert).__getitem__, by_column[position])
        return list(zip(*by_column, strict=True))

    def execute(self, session: Session, rows: list[tuple]) -> None:
        """Write ``rows`` (``convert``-ed tuples in ``columns`` order, then the id for an
        UPDATE)."""
        if not rows:
            return
        if self.sql is None:
            self._execute_core(session, rows)
            return
        session.connection().exec_driver_sql(self.sql, rows)

    def _execute_core(self, session: Session, rows: list[tuple]) -> None:
        keys = (*self.columns, "_pid") if self.by_id else self.columns
        values = [dict(zip(keys, row, strict=True)) for row in rows]
        if self.by_id:
            statement = update(self.table).where(self.table.c.id == bindparam("_pid"))
        else:
            statement = insert(self.table)
        session.execute(statement, values)


class _Statements:
    """The bulk statements of the three large tables, for one dialect."""

    def __init__(self, dialect: Any) -> None:
        self.insert_practitioners = _DriverStatement(
            Practitioner.__table__, PRACTITIONER_INSERT_COLUMNS, dialect
        )
        self.update_practitioners = _DriverStatement(
            Practitioner.__table__, PRACTITIONER_UPDATE_COLUMNS, dialect, by_id=True
        )
        mark = _PLACEHOLDERS.get(dialect.paramstyle)
        quote = dialect.identifier_preparer.quote
        self._ids_sql = (
            None
            if mark is None
            else f"SELECT {quote('registration_number')}, {quote('id')} "
            f"FROM {quote(Practitioner.__tablename__)} "
            f"WHERE {quote('registration_number')} IN ({{marks}})"
        )
        self._mark = mark
        # What shows that a stored belief moved (``_fingerprint``), under the write lock:
        # through the driver as well, the check time then converted as Core would.
        self._fingerprints_sql = (
            None
            if mark is None
            else f"SELECT {quote('registration_number')}, {quote('id')}, "
            f"{quote('last_checked_at')} FROM {quote(Practitioner.__tablename__)} "
            f"WHERE {quote('registration_number')} IN ({{marks}})"
            + ("" if dialect.name == "sqlite" else " FOR UPDATE")  # as Core renders it
        )
        # The stored beliefs a batch's rules read, each value converted as Core converts it
        # (the UTC date-times; the other columns need nothing on these drivers).
        self._beliefs_sql = (
            None
            if mark is None
            else "SELECT "
            + ", ".join(quote(column.name) for column in BELIEF_COLUMNS)
            + f" FROM {quote(Practitioner.__tablename__)} "
            f"WHERE {quote('registration_number')} IN ({{marks}})"
        )
        self._belief_conversions = [
            (position, convert)
            for position, column in enumerate(BELIEF_COLUMNS)
            if (convert := column.type.dialect_impl(dialect).result_processor(dialect, None))
            is not None
        ]
        # The stored category rows of updated practitioners (plain integers and strings).
        self._categories_sql = (
            None
            if mark is None
            else "SELECT "
            + ", ".join(
                quote(name)
                for name in ("practitioner_id", "position", "category", "raw_status", "status")
            )
            + f" FROM {quote(RegistrationCategory.__tablename__)} "
            f"WHERE {quote('practitioner_id')} IN ({{marks}})"
        )
        self._checked_at = PRACTITIONERS.c.last_checked_at.type.dialect_impl(
            dialect
        ).result_processor(dialect, None)
        # The practitioner's id last: known only inside the write transaction.
        self.insert_categories = _DriverStatement(
            RegistrationCategory.__table__, (*CATEGORY_COLUMNS, "practitioner_id"), dialect
        )
        self.insert_checks = _DriverStatement(
            VerificationCheck.__table__, (*CHECK_COLUMNS, "practitioner_id"), dialect
        )

    def ids_of(self, session: Session, wanted: list[str]) -> list[tuple[str, int]]:
        """(number, id) of the practitioners with these numbers: one statement, through the
        driver (Core renders an expanding IN of a batch's 2,000 numbers much more slowly)."""
        if not wanted:
            return []
        if self._ids_sql is None:
            return list(
                session.execute(
                    select(PRACTITIONERS.c.registration_number, PRACTITIONERS.c.id).where(
                        PRACTITIONERS.c.registration_number.in_(wanted)
                    )
                )
            )
        sql = self._ids_sql.format(marks=", ".join([self._mark] * len(wanted)))
        return session.connection().exec_driver_sql(sql, tuple(wanted)).all()

    def beliefs_of(self, session: Session, wanted: list[str]) -> list[Any]:
        """The stored ``BELIEF_COLUMNS`` of these numbers, as Core would read them (rows with
        the columns' names as attributes): one statement, through the driver as ``ids_of``."""
        if self._beliefs_sql is None:
            return list(
                session.execute(
                    select(*BELIEF_COLUMNS).where(PRACTITIONERS.c.registration_number.in_(wanted))
                )
            )
        sql = self._beliefs_sql.format(marks=", ".join([self._mark] * len(wanted)))
        rows = session.connection().exec_driver_sql(sql, tuple(wanted)).all()
        conversions = self._belief_conversions
        stored = []
        for row in rows:
            values = list(row)
            for position, convert in conversions:
                value = values[position]
                if value is not None:
                    values[position] = convert(value)
            stored.append(_StoredBelief(*values))
        return stored

    def categories_of(self, session: Session, practitioner_ids: list[int]) -> list[tuple]:
        """(practitioner id, position, category, raw status, status) of every stored category
        row of these practitioners: one statement, through the driver as ``ids_of``."""
        if self._categories_sql is None:
            return list(
                session.execute(
                    select(
                        CATEGORIES.c.practitioner_id,
                        CATEGORIES.c.position,
                        CATEGORIES.c.category,
                        CATEGORIES.c.raw_status,
                        CATEGORIES.c.status,
                    ).where(CATEGORIES.c.practitioner_id.in_(practitioner_ids))
                )
            )
        sql = self._categories_sql.format(marks=", ".join([self._mark] * len(practitioner_ids)))
        return session.connection().exec_driver_sql(sql, tuple(practitioner_ids)).all()

    def fingerprints_of(
        self, session: Session, wanted: list[str]
    ) -> dict[str, tuple[int, datetime | None]]:
        """number -> ``_fingerprint`` of what is stored now, the rows locked for update
        where the database has row locks (one statement, through the driver as ``ids_of``)."""
        if self._fingerprints_sql is None:
            return {
                number: (pid, checked)
                for number, pid, checked in session.execute(
                    select(
                        PRACTITIONERS.c.registration_number,
                        PRACTITIONERS.c.id,
                        PRACTITIONERS.c.last_checked_at,
                    )
                    .where(PRACTITIONERS.c.registration_number.in_(wanted))
                    .with_for_update()
                )
            }
        sql = self._fingerprints_sql.format(marks=", ".join([self._mark] * len(wanted)))
        rows = session.connection().exec_driver_sql(sql, tuple(wanted)).all()
        convert = self._checked_at
        if convert is None:
            return {number: (pid, checked) for number, pid, checked in rows}
        return {
            number: (pid, None if checked is None else convert(checked))
            for number, pid, checked in rows
        }
