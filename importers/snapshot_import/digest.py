"""Pass 1: a compact digest of every number in a snapshot, in a few integers per row."""

from __future__ import annotations

import marshal
from dataclasses import dataclass, field

from directory.registry.lookups import RegisterRow
from importers.snapshot_import.rows import _kept_chunks, _ReadRows, read_ahead_chunks
from importers.snapshot_import.rules import (
    Relation,
    Sign,
    contradiction_warning,
    relation,
    sign,
)
from importers.sources.snapshot import Snapshot

_MASK = (1 << 64) - 1
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


@dataclass
class Digest:
    """What pass 1 learnt about each number, in a few integers per row (``rules.Sign``s and
    line numbers: nothing here holds the file's text).

    ``first`` packs, per number, its first row's line and ``Sign`` into one int (most
    numbers have one row: one int each, not a tuple of four); ``more`` lists its further
    rows (not repeats) as (``Sign``, line); ``duplicates`` and ``conflicts`` the lines that repeat
    or contradict an earlier row of their number, and the warning each gets (``rules``).
    """

    first: dict[int, int] = field(default_factory=dict)
    more: dict[int, list[tuple[Sign, int]]] = field(default_factory=dict)
    duplicates: dict[int, int] = field(default_factory=dict)  # line -> the line it repeats
    conflicts: dict[int, str] = field(default_factory=dict)  # line -> the warning
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
        category: str,
        status: str,
    ) -> None:
        key = number_key(number)
        this = sign(title, surname, full_names, category, status)
        packed = self.first.get(key)
        if packed is None:
            self.first[key] = line | this.names << 32 | this.category << 96 | this.status << 160
            return
        first = _unpack(packed)
        status_line: int | None = None
        for seen, seen_line in [first, *self.more.get(key, ())]:
            kind = relation(seen, this)
            if kind is Relation.REPEAT:
                self.duplicates[line] = seen_line
                return
            if kind is Relation.OTHER_STATUS and status_line is None:
                status_line = seen_line
        names_line = first[1] if first[0].names != this.names else None
        if status_line is not None or names_line is not None:
            self.conflicts[line] = contradiction_warning(
                line, category, status_line=status_line, names_line=names_line
            )
        self.more.setdefault(key, []).append((this, line))

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


def _unpack(packed: int) -> tuple[Sign, int]:
    """A first row's (``Sign``, line), from ``Digest.first``."""
    return (
        Sign((packed >> 32) & _MASK, (packed >> 96) & _MASK, (packed >> 160) & _MASK),
        packed & 0xFFFFFFFF,
    )
