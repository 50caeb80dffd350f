"""Register snapshot files: an export of the register, one row per category row.

Two formats, told apart by content (the extension is only a hint):

* CSV with a header row naming the register's eight columns (Title, Surname, Fullname,
  Registration, City, Postal Code, Category, Status) in any order, names matched as the
  iRegister client matches them (case, spaces and punctuation ignored); comma, semicolon
  or tab separated; UTF-8 with or without a byte-order mark; CRLF or LF line ends.
* JSON Lines: one object per line with the same eight keys.

Reading is streamed: ``Snapshot.rows()`` yields ``(line_number, RegisterRow | RowProblem)``
one row at a time, so a file of any size is read in bounded memory. A row that is wrong
(bad number, missing value, wrong number of fields) is a ``RowProblem`` naming its line; a
file that cannot be a snapshot at all (empty, binary, not UTF-8, wrong columns) raises
``SnapshotError`` - from ``Snapshot.open`` when the start of the file shows it, or from
``rows()`` when it only shows later (an undecodable byte deep in the file).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from directory.registry import numbers
from directory.registry.lookups import RegisterRow
from directory.util.clock import utcnow
from importers.sources.hpcsa import COLUMN_HEADINGS, DOCUMENTED_ORDER, HEADINGS, heading_key

FIELD_HEADING = {
    HEADINGS[key]: name for key, name in zip(DOCUMENTED_ORDER, COLUMN_HEADINGS, strict=True)
}
# A row without these is rejected; the others may be blank.
REQUIRED_FIELDS = ("registration_number", "surname", "category", "status")
FIELDS = tuple(HEADINGS[key] for key in DOCUMENTED_ORDER)
SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t")


class SnapshotError(ValueError):
    """The file cannot be read as a register snapshot; the message says why."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that cannot be imported, and why (a plain sentence)."""

    line: int
    reason: str
    registration_number: str | None = None  # canonical, when the number itself was fine
    raw_number: str | None = None


SnapshotItem = tuple[int, RegisterRow | RowProblem]


# A registration number as the register writes it (prefix, at most one space, seven
# digits), after ``_clean``.
_REGISTER_FORM = re.compile(r"([A-Z]{2,4}) ?([0-9]{7})").fullmatch


def _clean(value: Any) -> str | None:
    """Trimmed text with inner runs of white space as one space; None when blank."""
    if value is None:
        return None
    if value.__class__ is not str:
        value = str(value)
    return " ".join(value.split()) or None


def row_from_values(line: int, values: Sequence[Any]) -> RegisterRow | RowProblem:
    """Validate one row's values (in ``FIELDS`` order) into a ``RegisterRow``."""
    checked = checked_values(line, values)
    return checked if checked.__class__ is RowProblem else RegisterRow(*checked)


def checked_values(line: int, values: Sequence[Any]) -> tuple[str | None, ...] | RowProblem:
    """``row_from_values`` as a plain tuple, in ``RegisterRow`` field order (a bulk import
    makes its ``RegisterRow``s only where it needs them)."""
    # ``_clean`` inlined for text (every CSV value): a bulk import does this eight times a row.
    title, surname, full_names, raw_number, city, postal_code, category, status = [
        (" ".join(value.split()) or None) if value.__class__ is str else _clean(value)
        for value in values
    ]
    register_form = _REGISTER_FORM(raw_number) if raw_number else None
    if register_form is not None and register_form[1] in numbers.known_prefixes():
        # The register's own form of a known prefix ("MP 0000123" once cleaned): what
        # ``numbers.normalise`` returns for it, at a quarter of the cost (a test checks).
        number = register_form[1] + register_form[2]
    else:
        try:
            number = numbers.normalise(raw_number or "")
        except numbers.RegistrationNumberError as exc:
            # The message already offers the likely number when there is one.
            return RowProblem(line, f"bad registration number: {exc}", raw_number=raw_number)
    if not (surname and category and status):
        given = {"surname": surname, "category": category, "status": status}
        missing = [FIELD_HEADING[f] for f in REQUIRED_FIELDS if f in given and not given[f]]
        return RowProblem(
            line,
            "missing required value(s): " + ", ".join(missing),
            registration_number=number,
            raw_number=raw_number,
        )
    return (number, title, surname, full_names, city, postal_code, category, status)


def column_map(headings: list[Any], *, what: str) -> dict[str, int]:
    """Field name -> position, by heading; raises SnapshotError on missing or doubled ones."""
    positions: dict[str, int] = {}
    for index, heading in enumerate(headings):
        field = HEADINGS.get(heading_key(heading))
        if field is None:
            continue  # extra columns are allowed and ignored
        if field in positions:
            raise SnapshotError(f"{what} names the column {heading!r} twice")
        positions[field] = index
    missing = [FIELD_HEADING[f] for f in FIELDS if f not in positions]
    if missing:
        raise SnapshotError(
            f"{what} lacks the column(s) {', '.join(missing)}; a snapshot needs "
            f"{', '.join(COLUMN_HEADINGS)} (any order, any case)"
        )
    return positions


def _sniff(path: Path) -> tuple[str, str]:
    """(format, first text) from the start of the file; raises SnapshotError."""
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SnapshotError(f"{path} is a directory, not a snapshot file") from None
    except OSError as exc:
        raise SnapshotError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    if not head.strip():
        raise SnapshotError(f"{path} is empty: a snapshot needs a header row and data rows")
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise SnapshotError(
            f"{path} is a spreadsheet, not a snapshot: save it as CSV (UTF-8) first"
        )
    if b"\x00" in head:
        raise SnapshotError(f"{path} is a binary file, not a CSV or JSON Lines snapshot")
    try:
        # Not final: a character may be cut in two at the end of the sample.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise SnapshotError(
            f"{path} is not UTF-8 text (undecodable byte at offset {exc.start}); "
            "export the snapshot as UTF-8"
        ) from None
    first = text.lstrip()[:1]
    if first == "{":
        return "jsonl", text
    if first == "[":
        raise SnapshotError(
            f"{path} is one JSON document; a snapshot is JSON Lines (one object per line)"
        )
    return "csv", text


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


class Snapshot:
    """One snapshot file, checked at open; ``rows()`` streams it (and can be called again)."""

    def __init__(self, path: Path, fmt: str, delimiter: str | None = None) -> None:
        self.path = path
        self.format = fmt
        self.delimiter = delimiter

    @classmethod
    def open(cls, path: str | Path) -> Snapshot:
        """Check that ``path`` can be a snapshot; raises SnapshotError saying why not."""
        path = Path(path)
        fmt, text = _sniff(path)
        if fmt == "jsonl":
            first = _first_line(text)
            try:
                obj = json.loads(first)
            except ValueError:
                raise SnapshotError(
                    f"{path}: the first line is not a JSON object, so this is not JSON Lines"
                ) from None
            if not isinstance(obj, dict):
                raise SnapshotError(f"{path}: the first line is not a JSON object")
            column_map(list(obj), what=f"{path}: the first JSON object")
            return cls(path, fmt)
        header_line = _first_line(text)
        delimiter = _pick_delimiter(header_line)
        headings = next(csv.reader([header_line], delimiter=delimiter), [])
        column_map(headings, what=f"{path}: the header row")
        return cls(path, fmt, delimiter)

    @property
    def name(self) -> str:
        return self.path.name

    def modified_at(self) -> datetime:
        """The file's modification time, never later than now: the date an import without
        ``--as-of`` gives the snapshot (the export is at most that recent)."""
        modified = datetime.fromtimestamp(self.path.stat().st_mtime, UTC)
        return min(modified, utcnow())

    def rows(self) -> Iterator[SnapshotItem]:
        """Every data row in file order, as (line number, row or problem)."""
        return self._read(row_from_values)

    def values(self) -> Iterator[tuple[int, tuple[str | None, ...] | RowProblem]]:
        """``rows()`` with each row as a plain tuple in ``RegisterRow`` field order."""
        return self._read(checked_values)

    def _read(self, check: Callable[[int, Sequence[Any]], Any]) -> Iterator[tuple[int, Any]]:
        with self.path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            lines = _Lines(text, self.path)
            if self.format == "jsonl":
                yield from self._jsonl_rows(lines, check)
            else:
                yield from self._csv_rows(lines, check)

    def _csv_rows(
        self, lines: _Lines, check: Callable[[int, Sequence[Any]], Any]
    ) -> Iterator[tuple[int, Any]]:
        reader = csv.reader(lines, delimiter=self.delimiter or ",")
        positions: Callable[[list[str]], tuple[str, ...]] | None = None
        width = 0
        end_of_previous = 0  # a quoted value may span lines: a record starts after the last
        try:
            for record in reader:
                start, end_of_previous = end_of_previous + 1, lines.count
                if not "".join(record).strip():  # no cell holds more than white space
                    continue
                if positions is None:
                    found = column_map(record, what=f"{self.path}: the header row")
                    positions = itemgetter(*(found[f] for f in FIELDS))
                    width = len(record)
                    continue
                if len(record) != width:
                    yield (
                        start,
                        RowProblem(
                            start,
                            f"has {len(record)} values but the header names {width} columns "
                            "(an unquoted separator inside a value?)",
                        ),
                    )
                    continue
                yield start, check(start, positions(record))
        except csv.Error as exc:
            raise SnapshotError(
                f"{self.path}: unreadable as CSV near line {lines.count}: {exc}"
            ) from None

    def _jsonl_rows(
        self, lines: _Lines, check: Callable[[int, Sequence[Any]], Any]
    ) -> Iterator[tuple[int, Any]]:
        keys: dict[str, str] = {}  # a JSON key -> field ("" when not a column), learnt once
        for line in lines:
            number = lines.count
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                yield number, RowProblem(number, f"not valid JSON ({getattr(exc, 'msg', exc)})")
                continue
            if not isinstance(obj, dict):
                yield number, RowProblem(number, "not a JSON object")
                continue
            values: dict[str, Any] = {}
            nested: list[str] = []
            for key, value in obj.items():
                field = keys.get(key)
                if field is None:
                    field = keys[key] = HEADINGS.get(heading_key(key), "")
                if not field:
                    continue
                if isinstance(value, dict | list):
                    nested.append(FIELD_HEADING[field])
                values[field] = value
            if nested:
                yield (
                    number,
                    RowProblem(number, "value(s) that are not plain text: " + ", ".join(nested)),
                )
                continue
            absent = [FIELD_HEADING[f] for f in FIELDS if f not in values]
            if absent:
                yield number, RowProblem(number, "missing key(s): " + ", ".join(absent))
                continue
            yield number, check(number, [values[f] for f in FIELDS])


class _Lines:
    """Physical lines of a text stream, counted; file-level faults raise SnapshotError."""

    def __init__(self, text: io.TextIOWrapper, path: Path) -> None:
        self._text = text
        self._path = path
        self.count = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            line = self._text.readline()
        except UnicodeDecodeError as exc:
            raise SnapshotError(
                f"{self._path} is not UTF-8 text (undecodable byte after line {self.count}: "
                f"{exc.reason}); export the snapshot as UTF-8"
            ) from None
        if not line:
            raise StopIteration
        self.count += 1
        if "\x00" in line:
            raise SnapshotError(
                f"{self._path} holds binary data (a NUL byte on line {self.count}); "
                "it is not a text snapshot"
            )
        return line


def _pick_delimiter(header_line: str) -> str:
    """The separator that splits the header into the most known headings."""
    best, best_hits = ",", -1
    for delimiter in DELIMITERS:
        cells = next(csv.reader([header_line], delimiter=delimiter), [])
        hits = sum(1 for cell in cells if heading_key(cell) in HEADINGS)
        if hits > best_hits:
            best, best_hits = delimiter, hits
    return best


def read_snapshot(path: str | Path) -> Iterator[SnapshotItem]:
    """Open and stream a snapshot in one call (raises SnapshotError as ``Snapshot`` does)."""
    return Snapshot.open(path).rows()
