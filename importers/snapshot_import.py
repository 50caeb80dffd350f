"""Import a register snapshot in bulk, through the same rules as every live look-up.

Each registration number in the snapshot becomes one ``LookupResult`` (outcome ``ok``,
``observed_at`` = the snapshot's as-of date, source ``snapshot:<file name>``) and goes
through ``checks.decide`` exactly as a live answer would; the decisions are applied with
SQLAlchemy Core bulk statements, a batch of numbers per transaction.

Two passes over the file, so memory stays bounded whatever its size or order:

1. ``scan``: read every row once and keep a compact digest per number (an integer key and
   a few 64-bit hashes, no text): how many distinct rows it has, and whether two of them
   conflict (different names, or one category with two statuses). A file that turns out
   not to be a snapshot (say, an undecodable byte near the end) fails here, before
   anything is written. ``SnapshotImporter.scan`` also keeps the rows it read and
   validated, as plain tuples in a temporary file (``_ReadRows``), for pass 2.
2. ``SnapshotImporter.run``: go through those rows again (without parsing the file a
   second time); a number whose rows are all adjacent (the usual case) is grouped in
   memory; rows of numbers scattered through the file wait in a temporary SQLite file
   until the end. Complete groups are applied in batches
   (``BatchWriter``), in this process or in forked worker processes (``workers``), each
   batch committed on its own.
"""

from __future__ import annotations

import gc
import hashlib
import marshal
import sqlite3
import tempfile
import time
import uuid
from collections import Counter, deque, namedtuple
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import MetaData, Table, bindparam, delete, event, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from directory.registry import numbers
from directory.registry.checks import (
    Belief,
    Decision,
    category_rows,
    decide,
    event_values,
    history_values,
    register_facts,
)
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import (
    Practitioner,
    RegistrationCategory,
    StatusEvent,
    VerificationCheck,
)
from directory.registry.policy import RegistryPolicy
from directory.registry.statuses import Outcome
from directory.util.clock import UTCDateTime, utcnow
from importers.sources.snapshot import RowProblem, Snapshot, SnapshotError, SnapshotItem

BATCH_ROWS = 2000


class _RepeatedUTCDateTime(UTCDateTime):
    """``UTCDateTime`` with its bind conversion memoised.

    A batch writes the same few instants (the as-of date, the batch's "now") into most of
    its rows; converting each once instead of per row and column takes about a third off
    the cost of the bulk statements.
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


# A register row as a plain tuple, in field order (for the kept rows and the response
# digest): ``RegisterRow(*_row_values(row))`` is the row again. (``attrgetter``: one C call.)
_row_values: Callable[[RegisterRow], tuple[str | None, ...]] = attrgetter(
    *(f.name for f in fields(RegisterRow))
)


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
_MASK = (1 << 64) - 1
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
        driver (Core renders an expanding IN of a batch's 2,000 numbers three times slower)."""
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
        the columns' names as attributes): one statement, through the driver as ``ids_of``
        (Core renders an expanding IN of a batch's 2,000 numbers three times slower)."""
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


# --- pass 1: a compact digest per number ----------------------------------------------


_PREFIX_CODES: dict[str, int] = {}


def number_key(canonical: str) -> int:
    """A canonical number as one exact integer (prefix letters base 27, then the digits)."""
    prefix = canonical[:-7]
    code = _PREFIX_CODES.get(prefix)
    if code is None:
        code = 0
        for letter in prefix:
            code = code * 27 + (ord(letter) - 64)
        code *= 10_000_000
        if len(_PREFIX_CODES) < 1024:
            _PREFIX_CODES[prefix] = code
    return code + int(canonical[-7:])


def _h(value: Any) -> int:
    """A 64-bit hash, stable within one process (all a digest needs)."""
    return hash(value) & _MASK


def _norm(text: str | None) -> str:
    """Values come white-space-cleaned from the reader; compare them case-insensitively."""
    return text.upper() if text else ""


@dataclass
class Digest:
    """What pass 1 learnt about each number, in a few integers per row.

    ``first`` packs, per number, the first row's line and hashes of its names, category and
    status into one int; ``more`` lists further distinct rows as (category hash, status
    hash, line). Nothing here holds the file's text.
    """

    first: dict[int, int] = field(default_factory=dict)
    more: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    duplicates: dict[int, int] = field(default_factory=dict)  # line -> the line it repeats
    conflicts: dict[int, str] = field(default_factory=dict)  # number key -> why
    rows: int = 0
    problems: int = 0

    def add(self, line: int, row: RegisterRow) -> None:
        self._add(
            line, row.registration_number, row.title, row.surname, row.full_names,
            row.category, row.status,
        )  # fmt: skip

    def add_chunk(self, chunk: list[tuple]) -> None:
        """Rows as ``_ReadRows`` keeps them: (line, *values) for a row, four values for a
        problem."""
        add = self._add
        for values in chunk:
            self.rows += 1
            if len(values) == 9:
                line, number, title, surname, full_names, _city, _code, category, status = values
                add(line, number, title, surname, full_names, category, status)
            else:
                self.problems += 1

    def _add(
        self,
        line: int,
        number: str,
        title: str | None,
        surname: str | None,
        full_names: str | None,
        category_text: str,
        status_text: str,
    ) -> None:
        key = number_key(number)
        names = _h((_norm(title), _norm(surname), _norm(full_names)))
        category = _h(_norm(category_text))
        status = _h(_norm(status_text))
        packed = self.first.get(key)
        if packed is None:
            self.first[key] = line | names << 32 | category << 96 | status << 160
            return
        if key in self.conflicts:
            return
        first_line = packed & 0xFFFFFFFF
        if names != (packed >> 32) & _MASK:
            self.conflicts[key] = f"line {line} gives other names than line {first_line}"
            return
        seen = [((packed >> 96) & _MASK, (packed >> 160) & _MASK, first_line)]
        seen += self.more.get(key, [])
        for seen_category, seen_status, seen_line in seen:
            if seen_category == category:
                if seen_status == status:
                    self.duplicates[line] = seen_line
                else:
                    self.conflicts[key] = (
                        f"line {line} gives category {category_text!r} another status than "
                        f"line {seen_line}"
                    )
                return
        self.more.setdefault(key, []).append((category, status, line))

    def row_count(self, key: int) -> int:
        """Distinct rows (categories) of a number."""
        extra = self.more.get(key)
        return 1 + len(extra) if extra else 1


def scan(snapshot: Snapshot, keep: _ReadRows | None = None) -> Digest:
    """Pass 1. Raises SnapshotError when the file turns out not to be a snapshot.

    With ``keep``, every row as read (and validated) is kept there for pass 2.
    """
    digest = Digest()
    for chunk in _kept_chunks(snapshot):
        if keep is not None:
            keep.add_chunk(marshal.dumps(chunk))
        digest.add_chunk(chunk)
    if keep is not None:
        keep.finish()
    return digest


def _kept_chunks(snapshot: Snapshot) -> Iterator[list[tuple]]:
    """The snapshot's rows, read and validated, as ``_ReadRows`` keeps them, a chunk at a
    time: a row as (line, *values), a problem as (line, reason, number, raw number)."""
    size = _ReadRows.CHUNK
    chunk: list[tuple] = []
    for line, item in snapshot.values():
        if item.__class__ is RowProblem:
            chunk.append((line, item.reason, item.registration_number, item.raw_number))
        else:
            chunk.append((line, *item))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _read_ahead(snapshot: Snapshot, send: Any) -> None:
    """In a forked process: pass 1's reading and validating (``_kept_chunks``), each chunk
    sent down ``send`` as ``b"R"`` + its ``marshal`` bytes; then ``b""`` at the end, or
    ``b"E"`` + a SnapshotError's message, or ``b"X"`` + any other error's."""
    try:
        for chunk in _kept_chunks(snapshot):
            send.send_bytes(b"R" + marshal.dumps(chunk))
    except SnapshotError as exc:
        send.send_bytes(b"E" + str(exc).encode())
    except Exception as exc:
        send.send_bytes(b"X" + f"{type(exc).__name__}: {exc}".encode())
    else:
        send.send_bytes(b"")
    finally:
        send.close()


class _ReadRows:
    """Pass 1's rows, read and validated, for pass 2: plain tuples in ``marshal`` chunks in
    an unnamed temporary file, so that pass 2 neither parses nor validates the file again
    (and sees exactly the rows pass 1 digested). Memory: one chunk at a time."""

    CHUNK = 4096

    def __init__(self) -> None:
        # Closed by close(); unnamed, so gone with the process whatever happens.
        self._file = tempfile.TemporaryFile(prefix="snapshot-import-rows-")  # noqa: SIM115
        self._chunk: list[tuple] = []
        self.finished = False

    def add(self, line: int, item: RegisterRow | RowProblem) -> None:
        if isinstance(item, RowProblem):  # four values; a row is nine
            self._chunk.append((line, item.reason, item.registration_number, item.raw_number))
        else:
            self._chunk.append((line, *_row_values(item)))
        if len(self._chunk) >= self.CHUNK:
            self._write_chunk()

    def _write_chunk(self) -> None:
        data, self._chunk = marshal.dumps(self._chunk), []
        self._write(data)

    def add_chunk(self, data: bytes | memoryview) -> None:
        """A chunk of rows as ``marshal.dumps`` made it (after any added one by one)."""
        if self._chunk:
            self._write_chunk()
        self._write(data)

    def _write(self, data: bytes | memoryview) -> None:
        # Length-prefixed: ``marshal.load`` on a file reads value by value.
        self._file.write(len(data).to_bytes(8, "little"))
        self._file.write(data)

    def finish(self) -> None:
        if self._chunk:
            self._write_chunk()
        self._file.flush()
        self.finished = True

    def rows(self) -> Iterator[SnapshotItem]:
        """The rows again, in file order, as ``Snapshot.rows()`` gave them."""
        for line, item in self.values():
            yield line, item if item.__class__ is RowProblem else RegisterRow(*item)

    def values(self) -> Iterator[tuple[int, tuple[str | None, ...] | RowProblem]]:
        """The rows again, in file order, as ``Snapshot.values()`` gave them."""
        self._file.seek(0)
        while True:
            size = self._file.read(8)
            if not size:
                return
            for values in marshal.loads(self._file.read(int.from_bytes(size, "little"))):
                if len(values) == 9:
                    yield values[0], values[1:]
                else:
                    yield values[0], RowProblem(*values)

    def close(self) -> None:
        self._file.close()


# --- pass 2: grouping ---------------------------------------------------------------------


class Group(NamedTuple):
    """Every row of one number: one register answer. (A named tuple: one is made for every
    number, and sent to a worker process, so it is cheap to make and to pickle.)"""

    registration_number: str
    rows: tuple[RegisterRow, ...]
    lines: tuple[int, ...]


class ReadGroup(NamedTuple):
    """Every row of one number as pass 2 reads them: plain value tuples in ``RegisterRow``
    field order (cheap to group, and to send to a worker process, which makes the
    ``RegisterRow``s the rules read)."""

    registration_number: str
    values: tuple[tuple[str | None, ...], ...]
    lines: tuple[int, ...]

    def group(self) -> Group:
        return Group(
            self.registration_number, tuple([RegisterRow(*v) for v in self.values]), self.lines
        )


class _Spill:
    """Rows of numbers whose rows are scattered through the file, kept on disk."""

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory | None = None
        self._db: sqlite3.Connection | None = None
        self.rows = 0

    def add(self, key: int, rows: list[tuple[int, tuple[str | None, ...]]]) -> None:
        if self._db is None:
            self._dir = tempfile.TemporaryDirectory(prefix="snapshot-import-")
            self._db = sqlite3.connect(Path(self._dir.name) / "spill.sqlite3")
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(
                "CREATE TABLE spill (key INTEGER, line INTEGER, number TEXT, title TEXT, "
                "surname TEXT, full_names TEXT, city TEXT, postal_code TEXT, category TEXT, "
                "status TEXT)"
            )
        self._db.executemany(
            "INSERT INTO spill VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(key, line, *values) for line, values in rows],
        )
        self.rows += len(rows)

    def groups(self) -> Iterator[ReadGroup]:
        if self._db is None:
            return
        cursor = self._db.execute("SELECT * FROM spill ORDER BY key, line")
        current: int | None = None
        lines: list[int] = []
        rows: list[tuple[str | None, ...]] = []
        for key, line, *values in cursor:
            if key != current and rows:
                yield ReadGroup(rows[0][0], tuple(rows), tuple(lines))
                lines, rows = [], []
            current = key
            lines.append(line)
            rows.append(tuple(values))
        if rows:
            yield ReadGroup(rows[0][0], tuple(rows), tuple(lines))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        if self._dir is not None:
            self._dir.cleanup()


# --- reports and summary ------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """A rejected row or a warning, for the operator."""

    kind: str  # "rejected" | "warning"
    line: int
    reason: str
    registration_number: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "line": self.line,
            "registration_number": self.registration_number,
            "reason": self.reason,
        }


@dataclass
class ImportSummary:
    source: str
    as_of: datetime
    rows_read: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    warnings: int = 0
    registrations: int = 0  # numbers whose answer was applied
    effects: Counter = field(default_factory=Counter)  # decide()'s effect -> numbers
    status_events: int = 0
    batches: int = 0
    spilled_rows: int = 0
    search_queued: int = 0  # practitioners queued for the search index
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.rows_rejected else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "summary",
            "source": self.source,
            "as_of": self.as_of.isoformat(),
            "rows_read": self.rows_read,
            "rows_imported": self.rows_imported,
            "rows_rejected": self.rows_rejected,
            "warnings": self.warnings,
            "registrations": self.registrations,
            "created": self.effects["created"],
            "status_changed": self.effects["changed"],
            "unchanged": self.effects["unchanged"],
            "ignored_stale": self.effects["ignored_stale"],
            "status_events": self.status_events,
            "search_queued": self.search_queued,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_read / self.seconds) if self.seconds else None,
        }


# --- pass 2: applying ---------------------------------------------------------------------


def _comparable(rows: list[dict[str, Any]]) -> tuple:
    return tuple(sorted((r["position"], r["category"], r["raw_status"], r["status"]) for r in rows))


def _digest_of(group: Group) -> str:
    text = "\x1e".join(["\x1f".join([v or "" for v in _row_values(r)]) for r in group.rows])
    return hashlib.sha256(text.encode()).hexdigest()


class GroupOutcome(NamedTuple):
    """What applying one group did, for the summary and the warnings (sent back from the
    worker processes, one per number)."""

    effect: str
    event_due: bool
    unknown_raw_statuses: tuple[str, ...]


@dataclass(slots=True)
class _Planned:
    group: Group
    result: LookupResult
    decision: Decision
    row: Any  # the stored belief the decision rests on, or None for a new number
    # Filled by ``BatchWriter._prepare``, as the driver takes them: the practitioner's row
    # (INSERT values, or UPDATE values then the id; None when the answer is stale), the
    # history row and the category rows (each still without the practitioner's id), and
    # the category rows in ``_comparable`` form (None: the stored ones stay as they are).
    prepared: bool = False
    practitioner: tuple | None = None
    check: tuple = ()
    categories: list[tuple] = field(default_factory=list)
    comparable: tuple | None = None


class BatchWriter:
    """Decides and writes one batch of groups; works the same in a worker process.

    The rules run outside the write transaction (so two workers overlap); the write
    transaction then checks, cheaply, that no other writer (a live verify, the recheck job)
    checked any of these numbers meanwhile, and decides those again on what is stored now.
    On SQLite the write transaction is ``BEGIN IMMEDIATE``: it waits for the write lock
    instead of failing when another connection committed since this one last read.
    """

    def __init__(
        self,
        session: Session,
        policy: RegistryPolicy,
        *,
        as_of: datetime,
        source: str,
        on_batch: Callable[[Session, list[int]], int] | None = None,
        write_lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.session = session
        self.policy = policy
        self.as_of = as_of
        self.source = source
        self.on_batch = on_batch
        self.write_lock = write_lock if write_lock is not None else nullcontext()
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        self._driver_statements: _Statements | None = None

    def apply(self, groups: list[Group]) -> tuple[list[GroupOutcome], int]:
        """Write the groups' answers; returns each group's outcome and how many were queued
        for the search index. Commits; retries once when a concurrent insert collides."""
        try:
            return self._apply(groups)
        except IntegrityError:
            self.session.rollback()
            return self._apply(groups)

    def _apply(self, groups: list[Group]) -> tuple[list[GroupOutcome], int]:
        session = self.session
        now = utcnow()
        wanted = [g.registration_number for g in groups]
        stored = self._beliefs(wanted)
        session.commit()  # end the read: the rules below hold no transaction open
        planned = [
            self._plan(group, stored.get(group.registration_number), now) for group in groups
        ]
        self._prepare(planned, now)  # the rows as the driver takes them, before the lock

        # SQLite takes one writer at a time. Between this import's own workers a shared
        # lock hands the turn over at once; SQLite's busy handler alone would sleep (up to
        # 100 ms at a time) while another worker writes. PostgreSQL needs no such turns.
        with self.write_lock if self.sqlite else nullcontext():
            self._begin_write()
            fingerprints = self._statements().fingerprints_of(session, wanted)
            moved = [
                item.group.registration_number
                for item in planned
                if _fingerprint(item.row) != fingerprints.get(item.group.registration_number)
            ]
            if moved:  # another writer got there first: decide again on what it wrote
                fresh = self._beliefs(moved)
                again = set(moved)
                planned = [
                    self._plan(item.group, fresh.get(item.group.registration_number), now)
                    if item.group.registration_number in again
                    else item
                    for item in planned
                ]
            queued = self._write(planned, now)
            session.commit()
        return [
            GroupOutcome(
                item.decision.effect,
                item.decision.event_due,
                tuple(item.decision.unknown_raw_statuses),
            )
            for item in planned
        ], queued

    def _begin_write(self) -> None:
        if self.sqlite:
            self.session.execute(text("BEGIN IMMEDIATE"))

    def _beliefs(self, wanted: list[str]) -> dict[str, Any]:
        return {
            row.registration_number: row
            for row in self._statements().beliefs_of(self.session, wanted)
        }

    def _plan(self, group: Group, row: Any, now: datetime) -> _Planned:
        result = LookupResult(
            registration_number=group.registration_number,
            outcome=Outcome.OK,
            observed_at=self.as_of,
            source=self.source,
            rows=group.rows,
            digest=_digest_of(group),
        )
        decision = decide(Belief.of(row) if row else None, result, self.policy, now=now)
        return _Planned(group, result, decision, row)

    def _prepare(self, planned: list[_Planned], now: datetime) -> None:
        """Everything of the written rows that needs no transaction: the values, in
        statement order, converted for the driver (``_Planned.prepared``)."""
        statements = self._statements()
        practitioners: list[_Planned] = []
        checks: list[tuple] = []
        for item in planned:
            decision, row, result = item.decision, item.row, item.result
            checks.append(_check_values(history_values(result, decision, now)))
            item.prepared = True
            if decision.effect == "ignored_stale":
                continue  # older than the belief: history only, the practitioner stays as is
            facts = list(_NO_FACT_VALUES if row is None else _stored_facts(row))
            wanted: list[dict[str, Any]] | None = None
            if decision.copy_register_facts:
                for name, value in register_facts(result).items():
                    facts[_FACT_INDEX[name]] = value
                wanted = category_rows(result, decision)
            elif decision.clear_register_rows:
                facts[_RAW_STATUS_INDEX] = None
                wanted = []
            if wanted is not None:
                item.categories = [_category_values(values) for values in wanted]
                if row is not None:
                    item.comparable = _comparable(wanted)
            belief = _belief_values(decision.after)
            if row is None:
                number = item.group.registration_number
                prefix = numbers.split(number)[0]
                item.practitioner = (number, prefix, *belief, *facts, now, now)
            else:
                item.practitioner = (*belief, *facts, now, row.id)
            practitioners.append(item)
        for item, values in zip(planned, statements.insert_checks.convert(checks), strict=True):
            item.check = values
        new = [item for item in practitioners if item.row is None]
        old = [item for item in practitioners if item.row is not None]
        for group, statement in (
            (new, statements.insert_practitioners),
            (old, statements.update_practitioners),
        ):
            converted = statement.convert([item.practitioner for item in group])
            for item, values in zip(group, converted, strict=True):
                item.practitioner = values

    def _write(self, planned: list[_Planned], now: datetime) -> int:
        """The bulk statements for a decided batch (inside the write transaction).

        The three large tables are written through the driver's own ``executemany`` with
        the rows ``_prepare`` built (``_DriverStatement``); status events, rare in an
        import, go through Core, so that the notification queue sees them.
        """
        session = self.session
        statements = self._statements()
        unprepared = [item for item in planned if not item.prepared]
        if unprepared:  # decided again inside the transaction
            self._prepare(unprepared, now)
        inserts: list[tuple] = []
        updates: list[tuple] = []
        for item in planned:
            if item.practitioner is not None:
                (updates if item.row is not None else inserts).append(item.practitioner)

        ids = {item.row.registration_number: item.row.id for item in planned if item.row}
        if inserts:
            # Plain executemany, then read the ids back: portable, and far faster on SQLite
            # than INSERT ... RETURNING, which SQLAlchemy runs there one row at a time.
            statements.insert_practitioners.execute(session, inserts)
            ids.update(statements.ids_of(session, [values[0] for values in inserts]))
        if updates:
            statements.update_practitioners.execute(session, updates)

        stored_categories = self._categories_of(
            [item.row.id for item in planned if item.comparable is not None]
        )
        replace_ids: list[int] = []
        category_values: list[tuple] = []
        check_values: list[tuple] = []
        event_rows: list[dict[str, Any]] = []
        updated: list[int] = []
        for item in planned:
            decision, row = item.decision, item.row
            number = item.group.registration_number
            pid = ids[number]
            check_values.append((*item.check, pid))
            if decision.effect == "ignored_stale":
                continue
            if row is not None:
                updated.append(pid)
            if item.comparable is None:  # a new practitioner (or no rows to write)
                category_values += [(*values, pid) for values in item.categories]
            elif stored_categories.get(pid, ()) != item.comparable:
                replace_ids.append(pid)
                category_values += [(*values, pid) for values in item.categories]
            if decision.event_due:
                event_rows.append(
                    {
                        **event_values(number, item.result, decision),
                        "practitioner_id": pid,
                        "event_id": str(uuid.uuid4()),
                    }
                )
        if replace_ids:
            session.execute(delete(CATEGORIES).where(CATEGORIES.c.practitioner_id.in_(replace_ids)))
        statements.insert_categories.execute(session, category_values)
        statements.insert_checks.execute(session, check_values)
        if event_rows:
            session.execute(insert(EVENTS), event_rows)
        if self.on_batch is not None and updated:
            return self.on_batch(session, updated)
        return 0

    def _statements(self) -> _Statements:
        if self._driver_statements is None:
            self._driver_statements = _Statements(self.session.get_bind().dialect)
        return self._driver_statements

    def _categories_of(self, practitioner_ids: list[int]) -> dict[int, tuple]:
        """The stored category rows of each practitioner, comparable with ``_comparable``."""
        if not practitioner_ids:
            return {}
        stored: dict[int, list[tuple]] = {}
        for pid, position, category, raw_status, status in self._statements().categories_of(
            self.session, practitioner_ids
        ):
            stored.setdefault(pid, []).append((position, category, raw_status, status))
        return {pid: tuple(sorted(rows)) for pid, rows in stored.items()}


def _fingerprint(row: Any) -> tuple[int, datetime | None] | None:
    """What shows that a stored belief is still the one a decision rested on."""
    return None if row is None else (row.id, row.last_checked_at)


# --- worker processes -----------------------------------------------------------------------


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Fewer, cheaper cyclic garbage collections while batches are applied.

    What is alive at the start (the app, the models, the digest of pass 1) lives until the
    end: it is frozen out of the collector's scans (``gc.freeze``), and young collections
    run every 20,000 allocations instead of 700. A batch's rows, tuples and dicts are
    freed by reference counting as before; only cycles wait a little longer. (For 250,000
    rows in one process: collections from 4.3 to 0.6 CPU seconds.)
    """
    threshold = gc.get_threshold()
    # Already frozen (before forking the workers): what was frozen stays so, or the
    # next full collection would touch, and so copy, every page the workers share.
    was_frozen = gc.get_freeze_count() > 0
    gc.freeze()
    gc.set_threshold(max(threshold[0], 20_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if not was_frozen:
            gc.unfreeze()


_worker_writer: BatchWriter | None = None
# WAL pages after which a worker's commit checkpoints the WAL into the database file (SQLite's
# default: 1,000). Every batch dirties most leaf pages of the random ``next_check_at``
# index, so each checkpoint copies them again and syncs the file twice, inside the write
# lock. At 10,000 pages (a WAL of up to 40 MB on disk, none of it in memory), measured for
# 250,000 rows: fdatasync 308 -> 42, page writes 578,000 -> 501,000, page reads
# 422,000 -> 345,000; the write lock held 12 to 22 % less.
WORKER_WAL_AUTOCHECKPOINT = 10_000


def _checkpoint_less_often(dbapi_connection: Any, _record: Any) -> None:
    """A worker's SQLite connections checkpoint the WAL every ``WORKER_WAL_AUTOCHECKPOINT``
    pages (set as each connects, after the app's own pragmas)."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA wal_autocheckpoint={WORKER_WAL_AUTOCHECKPOINT}")
    cursor.close()


def _worker_start(
    app: Any,
    policy: RegistryPolicy,
    as_of: datetime,
    source: str,
    on_batch: Callable[[Session, list[int]], int] | None,
    write_lock: Any,
) -> None:
    """In a forked worker: its own connections, app context and session."""
    global _worker_writer
    from directory.extensions import db

    with app.app_context():
        db.engine.dispose(close=False)  # the parent's pooled connections are not ours
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _checkpoint_less_often)
    context = app.app_context()
    context.push()
    # What the worker holds now lives as long as it does: keep it out of the collector's
    # scans. (Measured, 250,000 rows, two workers: CPU 21.4 -> 17.9 s. Raising the young
    # threshold here too, as ``_rare_collections`` does in the parent, cost 50 MB PSS.)
    gc.freeze()
    _worker_writer = BatchWriter(
        db.session, policy, as_of=as_of, source=source, on_batch=on_batch, write_lock=write_lock
    )


class BatchFailed(RuntimeError):
    """A batch could not be written (in a worker process); the message says why."""


def _worker_apply(batch: list[tuple[str, tuple[tuple, ...]]]) -> tuple[list[GroupOutcome], int]:
    assert _worker_writer is not None
    groups = [
        Group(number, tuple([RegisterRow(*values) for values in rows]), ())
        for number, rows in batch
    ]
    try:
        return _worker_writer.apply(groups)
    except Exception as exc:  # sent back as plain text: not every exception pickles
        _worker_writer.session.rollback()
        raise BatchFailed(f"{type(exc).__name__}: {exc}") from None


def _as_tuples(groups: list[ReadGroup]) -> list[tuple[str, tuple[tuple, ...]]]:
    """Groups as plain tuples: cheap to send to a worker."""
    return [(g.registration_number, g.values) for g in groups]


# --- the import -----------------------------------------------------------------------------


class SnapshotImporter:
    """Pass 1 and pass 2 over one snapshot, in this process or with worker processes.

    Use as a context manager: with ``workers`` > 1 the worker processes are forked on
    entry, while this process is still small, and stopped on exit::

        with SnapshotImporter(session, policy, as_of=..., workers=2) as importer:
            digest = importer.scan(snapshot)  # SnapshotError here changes nothing
            summary = importer.run(snapshot, digest)
    """

    def __init__(
        self,
        session: Session,
        policy: RegistryPolicy,
        *,
        as_of: datetime,
        source: str,
        note: Callable[[Note], None] = lambda _note: None,
        on_batch: Callable[[Session, list[int]], int] | None = None,
        batch_rows: int = BATCH_ROWS,
        workers: int = 1,
    ) -> None:
        self.session = session
        self.policy = policy
        self.note = note
        self.batch_rows = batch_rows
        self.workers = workers
        self.summary = ImportSummary(source=source[:200], as_of=as_of)
        self.writer = BatchWriter(
            session, policy, as_of=as_of, source=self.summary.source, on_batch=on_batch
        )
        self.on_batch = on_batch
        self._pool: Any = None
        self._in_flight: deque[tuple[list[ReadGroup], Any]] = deque()
        self._pending: list[ReadGroup] = []
        self._pending_rows = 0
        self._read_rows: _ReadRows | None = None
        self._read_rows_of: tuple[Snapshot, Digest] | None = None

    # --- worker pool ---------------------------------------------------------------------
    def __enter__(self) -> SnapshotImporter:
        if self.workers > 1:
            import multiprocessing

            from flask import current_app

            from directory.extensions import db

            self.session.close()
            db.engine.dispose()  # no open connection may cross the fork
            # Keep the garbage collector off the objects the workers inherit: its
            # bookkeeping writes would copy every shared page into each worker.
            gc.collect()
            gc.freeze()
            context = multiprocessing.get_context("fork")
            self._pool = context.Pool(
                self.workers,
                initializer=_worker_start,
                initargs=(
                    current_app._get_current_object(),
                    self.policy,
                    self.summary.as_of,
                    self.summary.source,
                    self.on_batch,
                    context.Lock(),  # the workers' write lock (see BatchWriter._apply)
                ),
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_read_rows()
        if self._pool is not None:
            if exc[0] is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()
            self._pool = None

    # --- the passes ----------------------------------------------------------------------
    def scan(self, snapshot: Snapshot) -> Digest:
        """Pass 1 (raises SnapshotError, before any write, when it is no snapshot)."""
        started = time.monotonic()
        self._close_read_rows()
        self._read_rows = _ReadRows()
        with _rare_collections():
            if self._pool is None:
                digest = scan(snapshot, self._read_rows)
            else:
                digest = self._scan_read_ahead(snapshot, self._read_rows)
        self._read_rows_of = (snapshot, digest)
        self.summary.seconds += time.monotonic() - started
        return digest

    def _scan_read_ahead(self, snapshot: Snapshot, keep: _ReadRows) -> Digest:
        """``scan`` on two cores: a forked process reads and validates the file
        (``_read_ahead``) while this one keeps its rows and digests them. The workers are
        idle until pass 1 ends; this halves its time (the serial part of an import)."""
        import multiprocessing

        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        reader = context.Process(
            target=_read_ahead, args=(snapshot, send), name="snapshot-reader", daemon=True
        )
        reader.start()
        send.close()
        digest = Digest()
        try:
            while True:
                try:
                    data = receive.recv_bytes()
                except EOFError:
                    raise RuntimeError("the process reading the snapshot stopped") from None
                if not data:
                    break
                tag, body = data[:1], memoryview(data)[1:]
                if tag == b"R":
                    keep.add_chunk(body)
                    digest.add_chunk(marshal.loads(body))
                elif tag == b"E":
                    raise SnapshotError(bytes(body).decode())
                else:
                    raise RuntimeError(f"reading the snapshot failed: {bytes(body).decode()}")
        finally:
            receive.close()
            reader.join(timeout=10)
            if reader.is_alive():
                reader.terminate()
                reader.join()
        keep.finish()
        return digest

    def _values(
        self, snapshot: Snapshot, digest: Digest
    ) -> Iterator[tuple[int, tuple[str | None, ...] | RowProblem]]:
        """Pass 2's rows, as value tuples: those pass 1 kept, else the file read again."""
        kept, kept_for = self._read_rows, self._read_rows_of or (None, None)
        if kept is not None and kept.finished and kept_for[0] is snapshot and kept_for[1] is digest:
            return kept.values()
        return snapshot.values()

    def _close_read_rows(self) -> None:
        if self._read_rows is not None:
            self._read_rows.close()
            self._read_rows = None
            self._read_rows_of = None

    def run(self, snapshot: Snapshot, digest: Digest) -> ImportSummary:
        """Pass 2: group, decide and write; notes as they come; the summary at the end."""
        started = time.monotonic()
        summary = self.summary
        spill = _Spill()
        run_key: int | None = None
        run: list[tuple[int, tuple[str | None, ...]]] = []

        def end_run() -> None:
            nonlocal run_key, run
            if run and run_key is not None:
                spill.add(run_key, run)  # incomplete: its other rows come later in the file
            run_key, run = None, []

        with _rare_collections():
            try:
                for line, item in self._values(snapshot, digest):
                    summary.rows_read += 1
                    if isinstance(item, RowProblem):
                        self._reject(line, item.reason, item.registration_number)
                        continue
                    number = item[0]
                    key = number_key(number)
                    conflict = digest.conflicts.get(key)
                    if conflict is not None:
                        self._reject(
                            line,
                            f"conflicting rows for this number ({conflict}): "
                            "none of its rows imported",
                            number,
                        )
                        continue
                    repeated = digest.duplicates.get(line)
                    if repeated is not None:
                        summary.rows_imported += 1
                        self._warn(line, f"repeats line {repeated} exactly: imported once", number)
                        continue
                    expected = digest.row_count(key)
                    if expected == 1:
                        end_run()
                        self._add(ReadGroup(number, (item,), (line,)))
                        continue
                    if key != run_key:
                        end_run()
                        run_key = key
                    run.append((line, item))
                    if len(run) == expected:
                        self._add(
                            ReadGroup(number, tuple(r for _, r in run), tuple(n for n, _ in run))
                        )
                        run_key, run = None, []
                end_run()
                summary.spilled_rows = spill.rows
                for group in spill.groups():
                    self._add(group)
                self._flush()
                while self._in_flight:
                    self._collect()
            finally:
                spill.close()
                self._close_read_rows()
        summary.seconds += time.monotonic() - started  # both passes
        return summary

    # --- batches -------------------------------------------------------------------------
    def _add(self, group: ReadGroup) -> None:
        self._pending.append(group)
        self._pending_rows += len(group.values)
        if self._pending_rows >= self.batch_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        groups, self._pending, self._pending_rows = self._pending, [], 0
        if self._pool is None:
            self._account(groups, self.writer.apply([group.group() for group in groups]))
            return
        while len(self._in_flight) >= 2 * self.workers:  # bounded: memory stays flat
            self._collect()
        self._in_flight.append(
            (groups, self._pool.apply_async(_worker_apply, (_as_tuples(groups),)))
        )

    def _collect(self) -> None:
        """Account for the oldest batch in flight (notes stay in batch order)."""
        groups, pending = self._in_flight.popleft()
        self._account(groups, pending.get())

    def _account(self, groups: list[ReadGroup], applied: tuple[list[GroupOutcome], int]) -> None:
        outcomes, queued = applied
        summary = self.summary
        summary.batches += 1
        summary.search_queued += queued
        for group, outcome in zip(groups, outcomes, strict=True):
            summary.registrations += 1
            summary.rows_imported += len(group.values)
            summary.effects[outcome.effect] += 1
            if outcome.event_due:
                summary.status_events += 1
            if outcome.unknown_raw_statuses:
                unknown = set(outcome.unknown_raw_statuses)
                for line, values in zip(group.lines, group.values, strict=True):
                    row = RegisterRow(*values)
                    if row.status in unknown:
                        self._warn(
                            line,
                            f"status {row.status!r} (category {row.category!r}) is not in "
                            "the status mapping: imported as 'unknown', never shown as verified",
                            group.registration_number,
                        )

    def _reject(self, line: int, reason: str, number: str | None) -> None:
        self.summary.rows_rejected += 1
        self.note(Note("rejected", line, reason, number))

    def _warn(self, line: int, reason: str, number: str | None) -> None:
        self.summary.warnings += 1
        self.note(Note("warning", line, reason, number))
