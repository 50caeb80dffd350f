"""Verifying a list of numbers: reading the list, and the results file.

The everyday job of a practice manager checking a staff list: a text, CSV or Excel file
with registration numbers somewhere in it. ``read_number_list`` finds the column (the one
whose values read as registration numbers; a header such as "HPCSA registration" breaks
ties), reads every entry through ``numbers.normalise`` and keeps the ones that cannot be
numbers (with their row, why, and the suggested number) for the report: nothing in the
column is skipped silently, not a blank cell in a row that has other data, nor a formula
cell the spreadsheet program never saved a value for. (Pacing and retries are the one
politeness stack every command shares: ``importers/politeness/``.) ``ResultsFile`` is the
``--out`` CSV: one row per number, flushed as it goes, and read back on a re-run so numbers
already answered are not asked again.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator
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


class Formula(str):
    """A formula cell whose workbook holds no computed value (files written by programs
    that do not calculate, openpyxl among them): its text is the formula."""


def _cell_text(value: Any, formula: Any = None) -> str:
    """A cell as text. ``formula`` is the same cell read without computed values: when
    the value is missing but a formula is there, the cell is a ``Formula``, not blank."""
    if value is None:
        if isinstance(formula, str) and formula.startswith("="):
            return Formula(formula)
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a spreadsheet turned digits into a number
    return str(value).strip()


# A number a spreadsheet stored as a float and wrote back as text: "MP0690069.0".
_FLOAT_TAIL = re.compile(r"^(.*\d)\.0+$")


def read_number(text: str) -> str:
    """``numbers.normalise``, also reading a spreadsheet float's ``.0`` tail away.

    Raises ``RegistrationNumberError`` (the message of the text as written) otherwise. A
    bare number (``690069``, from a numeric cell) stays refused: without its prefix it is
    not a registration number (a serial number looks the same).
    """
    try:
        return numbers.normalise(text)
    except numbers.RegistrationNumberError:
        match = _FLOAT_TAIL.match(text.strip())
        if match:
            try:
                return numbers.normalise(match.group(1))
            except numbers.RegistrationNumberError:
                pass
        raise


def _open_workbook(path: Path, *, data_only: bool) -> Any:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        return load_workbook(path, read_only=True, data_only=data_only)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise NumberListError(f"{path} cannot be read as an Excel workbook: {exc}") from None
    except Exception as exc:  # zipfile.BadZipFile and friends: a damaged file
        raise NumberListError(f"{path} is not a readable .xlsx workbook: {exc}") from None


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Every row of the active sheet: the values a spreadsheet program last computed, and
    for a formula cell without one, its formula (read from a second, formula-only pass)."""
    values_book = _open_workbook(path, data_only=True)
    formulas_book = _open_workbook(path, data_only=False)
    try:
        sheet, formulas = values_book.active, formulas_book.active
        if sheet is None or formulas is None:
            raise NumberListError(f"{path} has no worksheet")
        pairs = itertools.zip_longest(
            sheet.iter_rows(values_only=True), formulas.iter_rows(values_only=True), fillvalue=()
        )
        for index, (values, written) in enumerate(pairs, start=1):
            yield (
                index,
                [_cell_text(v, f) for v, f in itertools.zip_longest(values or (), written or ())],
            )
    finally:
        values_book.close()
        formulas_book.close()


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
    if isinstance(text, Formula):
        return False
    try:
        read_number(text)
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
        if isinstance(text, Formula):
            entries.append(
                ListEntry(
                    index,
                    str(text),
                    None,
                    f"a formula ({text}) with no saved value in the file: open it in a "
                    "spreadsheet program and save it, or paste the values",
                )
            )
            continue
        if not text:  # the row has other data (blank rows were dropped above)
            entries.append(
                ListEntry(index, "", None, f"no registration number in column {column + 1}")
            )
            continue
        try:
            entries.append(ListEntry(index, text, read_number(text)))
        except numbers.RegistrationNumberError as exc:
            entries.append(ListEntry(index, text, None, str(exc), exc.suggestion))
    return NumberList(entries, how, kind)


def _header_strength(cell: str) -> int:
    """2: a header that says "registration" or "HPCSA"; 1: one of the plainer names in
    ``NUMBER_HEADINGS`` ("Number", "Reg no"); 0: not a numbers header."""
    key = heading_key(cell)
    if "registration" in key or "hpcsa" in key:
        return 2
    return 1 if key in NUMBER_HEADINGS else 0


def _find_column(rows: list[tuple[int, list[str]]]) -> tuple[int | None, int | None, str]:
    """(column index, header row or None, how it was found).

    The column whose values (in the first ``SAMPLE_ROWS`` rows) read as registration
    numbers most often wins; a header naming registration numbers breaks a tie and marks
    the first row as a header. So a plain "Number" column of serial numbers never wins over
    "HPCSA registration", and a column of numbers found without a header still works.
    """
    first_index, first_cells = rows[0]
    strength = [_header_strength(cell) for cell in first_cells]
    has_header = any(strength)
    sample = rows[1:SAMPLE_ROWS] if has_header else rows[:SAMPLE_ROWS]
    width = max(len(cells) for _, cells in rows[:SAMPLE_ROWS])
    strength += [0] * (width - len(strength))
    hits = [0] * width
    for _, cells in sample:
        for position, cell in enumerate(cells):
            if cell and _is_number(cell):
                hits[position] += 1
    best = max(range(width), key=lambda i: (hits[i], strength[i], -i))
    if hits[best] == 0 and strength[best] == 0:
        return None, None, ""
    header = first_cells[best] if best < len(first_cells) else ""
    if has_header:
        how = "" if strength[best] else " (found by its contents)"
        return best, first_index, f"column {best + 1} (header {header!r}){how}"
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
    ``not_found``) and drops the rest (errors, invalid entries), which the run redoes. A
    kept row's judgement (``status``, ``verified``, ``verified_at``, ``headline``) is made
    again by ``judge`` (number, row -> fields) from what the system holds now: "verified"
    an earlier run wrote may have stopped being true since (a suspension, or a confirmation
    grown too old).
    """

    def __init__(self, path: Path, answered: dict[str, dict[str, str]]) -> None:
        self.path = path
        self.answered = answered
        self._handle: io.TextIOWrapper | None = None
        self._writer: Any = None

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        protect: Iterable[Path] = (),
        judge: Callable[[str, dict[str, str]], dict[str, Any]] | None = None,
    ) -> ResultsFile:
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
        if judge is not None:
            for number, row in answered.items():
                fresh = judge(number, row)
                if "verified" in fresh:
                    fresh["verified"] = "true" if fresh["verified"] else "false"
                row.update({k: "" if v is None else str(v) for k, v in fresh.items()})
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
