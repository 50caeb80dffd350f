"""Verifying a list of numbers: reading the list, and the results file.

The everyday job of a practice manager checking a staff list: a text, CSV or Excel file
with registration numbers somewhere in it. ``read_number_list`` finds the column, reads
every entry through ``numbers.normalise`` and keeps the ones that cannot be numbers (with
their row and the suggested number) for the report. (Pacing and retries are the one
politeness stack every command shares: ``importers/politeness/``.) ``ResultsFile`` is the
``--out`` CSV: one row per number, flushed as it goes, and read back on a re-run so numbers
already answered are not asked again.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from directory.registry import numbers
from directory.registry.statuses import Outcome
from importers.sources.hpcsa import heading_key

# Header names that say "this column holds registration numbers" (as heading keys).
NUMBER_HEADINGS = {
    "registration",
    "registrationnumber",
    "registrationno",
    "regnumber",
    "regno",
    "regnr",
    "hpcsa",
    "hpcsanumber",
    "hpcsano",
    "hpcsaregistration",
    "hpcsaregistrationnumber",
    "hpcsaregno",
    "number",
    "practitionernumber",
    "mpnumber",
}
SAMPLE_ROWS = 200  # rows read to find the column by content
LIST_DELIMITERS = (",", ";", "\t", "|")


class NumberListError(ValueError):
    """The list cannot be read at all; the message says why."""


@dataclass(frozen=True)
class ListEntry:
    """One non-blank cell of the numbers column."""

    row: int  # as the user sees it: the line of a text/CSV file, the row of a sheet
    text: str
    number: str | None  # canonical, or None when it cannot be a number
    error: str | None = None
    suggestion: str | None = None


@dataclass(frozen=True)
class NumberList:
    entries: list[ListEntry]
    column: str  # how the column was found, for the report
    kind: str  # "xlsx" | "csv" | "text"

    @property
    def valid(self) -> list[ListEntry]:
        return [e for e in self.entries if e.number is not None]

    @property
    def invalid(self) -> list[ListEntry]:
        return [e for e in self.entries if e.number is None]


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a spreadsheet turned digits into a number
    return str(value).strip()


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise NumberListError(f"{path} cannot be read as an Excel workbook: {exc}") from None
    except Exception as exc:  # zipfile.BadZipFile and friends: a damaged file
        raise NumberListError(f"{path} is not a readable .xlsx workbook: {exc}") from None
    try:
        sheet = workbook.active
        if sheet is None:
            raise NumberListError(f"{path} has no worksheet")
        for index, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield index, [_cell_text(v) for v in values]
    finally:
        workbook.close()


def _unreadable(path: Path, exc: OSError) -> NumberListError:
    """Why ``path`` could not be opened, in the operator's words."""
    if isinstance(exc, FileNotFoundError):
        return NumberListError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return NumberListError(f"{path} is a directory, not a list of numbers")
    return NumberListError(f"{path} cannot be read: {exc.strerror or exc}")


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if b"\x00" in data[:65536]:
        raise NumberListError(f"{path} is a binary file, not a text, CSV or .xlsx list")
    try:
        return codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet programs on Windows save "CSV" in Windows-1252; numbers are ASCII.
        return data.decode("cp1252", errors="replace")


def _text_rows(text: str) -> tuple[str, Iterator[tuple[int, list[str]]]]:
    lines = text.splitlines()
    sample = [line for line in lines[:SAMPLE_ROWS] if line.strip()]
    delimiter = None
    best = 0.0
    for candidate in LIST_DELIMITERS:
        widths = [len(r) for r in csv.reader(sample, delimiter=candidate)]
        multi = sum(1 for w in widths if w > 1)
        share = multi / len(widths) if widths else 0.0
        if share >= 0.8 and share > best:
            delimiter, best = candidate, share
    if delimiter is None:
        return "text", ((i, [line.strip()]) for i, line in enumerate(lines, start=1))

    def rows() -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        end = 0
        for record in reader:
            start, end = end + 1, reader.line_num
            yield start, [cell.strip() for cell in record]

    return "csv", rows()


def _is_number(text: str) -> bool:
    try:
        numbers.normalise(text)
    except numbers.RegistrationNumberError:
        return False
    return True


def read_number_list(path: str | Path) -> NumberList:
    """Every entry of the numbers column of a text, CSV or .xlsx file.

    Raises NumberListError when the file cannot be read or no column holds numbers.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            magic = handle.read(8)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        raise NumberListError(f"{path} is an old-style .xls workbook: save it as .xlsx or CSV")
    if magic.startswith(b"PK\x03\x04") or path.suffix.lower() in (".xlsx", ".xlsm"):
        kind = "xlsx"
        rows = list(_xlsx_rows(path))
    else:
        kind, row_iter = _text_rows(_decode(path))
        rows = list(row_iter)
    rows = [(index, cells) for index, cells in rows if any(cells)]
    if not rows:
        raise NumberListError(f"{path} holds no registration numbers (it is empty)")

    column, header_row, how = _find_column(rows)
    if column is None:
        raise NumberListError(
            f"{path}: no column holds registration numbers (looked for a header such as "
            "'Registration number' or 'HPCSA number', and for cells like MP0012345)"
        )
    entries = []
    for index, cells in rows:
        if index == header_row:
            continue
        text = cells[column] if column < len(cells) else ""
        if not text:
            continue
        try:
            entries.append(ListEntry(index, text, numbers.normalise(text)))
        except numbers.RegistrationNumberError as exc:
            entries.append(ListEntry(index, text, None, str(exc), exc.suggestion))
    return NumberList(entries, how, kind)


def _find_column(rows: list[tuple[int, list[str]]]) -> tuple[int | None, int | None, str]:
    """(column index, header row or None, how it was found)."""
    first_index, first_cells = rows[0]
    for position, cell in enumerate(first_cells):
        key = heading_key(cell)
        if key in NUMBER_HEADINGS or "registration" in key or "hpcsa" in key:
            return position, first_index, f"column {position + 1} (header {cell!r})"
    width = max(len(cells) for _, cells in rows[:SAMPLE_ROWS])
    hits = [0] * width
    for _, cells in rows[:SAMPLE_ROWS]:
        for position, cell in enumerate(cells):
            if cell and _is_number(cell):
                hits[position] += 1
    best = max(range(width), key=lambda i: hits[i])
    if hits[best] == 0:
        return None, None, ""
    header = first_cells[best] if best < len(first_cells) else ""
    # A first row whose cell has no digit at all is a header, not a bad number.
    header_row = first_index if header and not any(c.isdigit() for c in header) else None
    label = f"column {best + 1}" + (f" ({header!r})" if header_row else "")
    return best, header_row, label + " (found by its contents)"


# --- the results file ---------------------------------------------------------------------

RESULT_COLUMNS = (
    "registration_number",
    "input",
    "row",
    "outcome",
    "status",
    "raw_status",
    "verified",
    "verified_at",
    "headline",
    "checked_at",
    "error",
)
ANSWERED = {Outcome.OK.value, Outcome.NOT_FOUND.value}


class ResultsFile:
    """The ``--out`` CSV: one row per number, each flushed as soon as it is known.

    Opening an existing results file keeps the numbers the register answered (``ok`` or
    ``not_found``) and drops the rest (errors, invalid entries), which the run redoes.
    """

    def __init__(self, path: Path, answered: dict[str, dict[str, str]]) -> None:
        self.path = path
        self.answered = answered
        self._handle: io.TextIOWrapper | None = None
        self._writer: Any = None

    @classmethod
    def open(cls, path: str | Path, *, protect: Iterable[Path] = ()) -> ResultsFile:
        """Read what an earlier run answered, rewrite the file with just that, and append."""
        path = Path(path)
        for other in protect:
            if other.exists() and path.exists() and os.path.samefile(other, path):
                raise NumberListError(f"--out {path} is the input list: choose another file")
        if path.suffix.lower() != ".csv":
            raise NumberListError(f"--out {path}: the results file is a CSV (name it *.csv)")
        answered: dict[str, dict[str, str]] = {}
        if path.exists() and path.stat().st_size:
            try:
                with path.open(newline="", encoding="utf-8") as handle:
                    reader = csv.DictReader(handle)
                    if not reader.fieldnames or not {"registration_number", "outcome"} <= set(
                        reader.fieldnames
                    ):
                        raise NumberListError(
                            f"--out {path} exists and is not a results file of this command; "
                            "choose another path (it was left untouched)"
                        )
                    for row in reader:
                        if row.get("outcome") in ANSWERED and row.get("registration_number"):
                            answered[row["registration_number"]] = row
            except (UnicodeDecodeError, csv.Error) as exc:
                raise NumberListError(
                    f"--out {path} exists and cannot be read as a results file ({exc}); "
                    "choose another path (it was left untouched)"
                ) from None
        elif path.parent and not path.parent.exists():
            raise NumberListError(f"--out {path}: the folder {path.parent} does not exist")
        results = cls(path, answered)
        results._rewrite()
        return results

    def _rewrite(self) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, RESULT_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in self.answered.values():
                writer.writerow(row)
        os.replace(temporary, self.path)
        self._handle = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, RESULT_COLUMNS, extrasaction="ignore")

    def write(self, row: dict[str, Any]) -> None:
        assert self._writer is not None and self._handle is not None
        self._writer.writerow({k: "" if row.get(k) is None else row[k] for k in RESULT_COLUMNS})
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
