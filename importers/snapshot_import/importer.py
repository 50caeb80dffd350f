"""The orchestrator: pass 1 and pass 2 over one snapshot (``SnapshotImporter``)."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from directory.registry.lookups import RegisterRow
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import AppliedAnswer, BatchWriter
from importers.snapshot_import.digest import Digest, number_key, scan
from importers.snapshot_import.rows import ReadGroup, _ReadRows, snapshot_answer
from importers.snapshot_import.rules import repeat_warning
from importers.snapshot_import.spill import _Spill
from importers.snapshot_import.workers import (
    _as_tuples,
    _rare_collections,
    _worker_apply,
    start_pool,
)
from importers.sources.snapshot import RowProblem, Snapshot

BATCH_ROWS = 2000


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
    # True when ``as_of`` is only the file's modification time (no ``--as-of``): then the
    # import lifts no adverse or pending status (``checks.decide``).
    undated: bool = False
    rows_read: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    warnings: int = 0
    registrations: int = 0  # numbers whose answer was applied
    effects: Counter = field(default_factory=Counter)  # decide()'s effect -> numbers
    status_events: int = 0
    batches: int = 0
    spilled_rows: int = 0
    seconds: float = 0.0

    @property
    def as_of_note(self) -> str:
        """What the human summary adds after the date: where it comes from, when undated."""
        if not self.undated:
            return ""
        return (
            " (the file's modification time, as no --as-of was given: this import lifts no "
            "adverse or pending status)"
        )

    @property
    def exit_code(self) -> int:
        return 1 if self.rows_rejected else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "summary",
            "source": self.source,
            "as_of": self.as_of.isoformat(),
            "as_of_from": "file modification time" if self.undated else "--as-of",
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
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_read / self.seconds) if self.seconds else None,
        }


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
        undated: bool = False,
        source: str,
        note: Callable[[Note], None] = lambda _note: None,
        batch_rows: int = BATCH_ROWS,
        workers: int = 1,
    ) -> None:
        self.session = session
        self.policy = policy
        self.note = note
        self.batch_rows = batch_rows
        self.workers = workers
        self.summary = ImportSummary(source=source[:200], as_of=as_of, undated=undated)
        self.writer = BatchWriter(session, policy)
        self._pool: Any = None
        self._in_flight: deque[tuple[list[ReadGroup], Any]] = deque()
        self._pending: list[ReadGroup] = []
        self._pending_rows = 0
        self._read_rows: _ReadRows | None = None
        self._read_rows_of: tuple[Snapshot, Digest] | None = None

    # --- worker pool ---------------------------------------------------------------------
    def __enter__(self) -> SnapshotImporter:
        if self.workers > 1:
            self._pool = start_pool(
                self.workers,
                self.session,
                self.policy,
                as_of=self.summary.as_of,
                undated=self.summary.undated,
                source=self.summary.source,
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
            digest = scan(snapshot, self._read_rows, read_ahead=self._pool is not None)
        self._read_rows_of = (snapshot, digest)
        self.summary.seconds += time.monotonic() - started
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
                    repeated = digest.duplicates.get(line)
                    if repeated is not None:
                        summary.rows_imported += 1
                        self._warn(line, repeat_warning(repeated), number)
                        continue
                    contradiction = digest.conflicts.get(line)
                    if contradiction is not None:  # imported all the same (``rules``)
                        self._warn(line, contradiction, number)
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
            summary = self.summary
            answers = [
                snapshot_answer(
                    group.registration_number,
                    group.values,
                    as_of=summary.as_of,
                    undated=summary.undated,
                    source=summary.source,
                )
                for group in groups
            ]
            self._account(groups, self.writer.apply(answers))
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

    def _account(self, groups: list[ReadGroup], outcomes: list[AppliedAnswer]) -> None:
        summary = self.summary
        summary.batches += 1
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
