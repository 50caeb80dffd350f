"""Pass 1: a compact digest of every number in a snapshot, in a few integers per row."""

from __future__ import annotations

import marshal
from dataclasses import dataclass, field
from typing import Any

from directory.registry.lookups import RegisterRow
from importers.snapshot_import.rows import _kept_chunks, _ReadRows, read_ahead_chunks
from importers.sources.snapshot import Snapshot

_MASK = (1 << 64) - 1

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


def scan(snapshot: Snapshot, keep: _ReadRows | None = None, *, read_ahead: bool = False) -> Digest:
    """Pass 1. Raises SnapshotError when the file turns out not to be a snapshot.

    With ``keep``, every row as read (and validated) is kept there for pass 2. With
    ``read_ahead``, another process reads and validates the file (``read_ahead_chunks``).
    """
    digest = Digest()
    if read_ahead:
        for data in read_ahead_chunks(snapshot):
            if keep is not None:
                keep.add_chunk(data)
            digest.add_chunk(marshal.loads(data))
    else:
        for chunk in _kept_chunks(snapshot):
            if keep is not None:
                keep.add_chunk(marshal.dumps(chunk))
            digest.add_chunk(chunk)
    if keep is not None:
        keep.finish()
    return digest
