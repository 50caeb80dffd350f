"""The spill store: rows of numbers scattered through the file wait on disk until the end."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from importers.snapshot_import.rows import ReadGroup


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
