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
   anything is written.
2. ``import_snapshot``: read again; a number whose rows are all adjacent (the usual case)
   is grouped in memory; rows of numbers scattered through the file wait in a temporary
   SQLite file until the end. Complete groups are applied in batches.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, bindparam, delete, insert, select, update
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
from importers.sources.snapshot import RowProblem, Snapshot

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


def _bulk_table(table: Table) -> Table:
    """A copy of ``table`` for the bulk statements, its UTC date-time columns memoised."""
    copy = table.to_metadata(MetaData())
    for column in copy.columns:
        if isinstance(column.type, UTCDateTime):
            column.type = _RepeatedUTCDateTime()
    return copy


PRACTITIONERS = _bulk_table(Practitioner.__table__)
CATEGORIES = _bulk_table(RegistrationCategory.__table__)
CHECKS = _bulk_table(VerificationCheck.__table__)
EVENTS = _bulk_table(StatusEvent.__table__)
FACT_COLUMNS = ("title", "surname", "full_names", "city", "postal_code", "category", "raw_status")
NO_FACTS = dict.fromkeys(FACT_COLUMNS)
BELIEF_COLUMNS = [
    PRACTITIONERS.c[name] for name in ("id", "registration_number", *Belief.FIELDS, *FACT_COLUMNS)
]
_MASK = (1 << 64) - 1


# --- pass 1: a compact digest per number ----------------------------------------------


def number_key(canonical: str) -> int:
    """A canonical number as one exact integer (prefix letters base 27, then the digits)."""
    code = 0
    for letter in canonical[:-7]:
        code = code * 27 + (ord(letter) - 64)
    return code * 10_000_000 + int(canonical[-7:])


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
        key = number_key(row.registration_number)
        names = _h((_norm(row.title), _norm(row.surname), _norm(row.full_names)))
        category = _h(_norm(row.category))
        status = _h(_norm(row.status))
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
                        f"line {line} gives category {row.category!r} another status than "
                        f"line {seen_line}"
                    )
                return
        self.more.setdefault(key, []).append((category, status, line))

    def row_count(self, key: int) -> int:
        """Distinct rows (categories) of a number."""
        extra = self.more.get(key)
        return 1 + len(extra) if extra else 1


def scan(snapshot: Snapshot) -> Digest:
    """Pass 1. Raises SnapshotError when the file turns out not to be a snapshot."""
    digest = Digest()
    for line, item in snapshot.rows():
        digest.rows += 1
        if isinstance(item, RowProblem):
            digest.problems += 1
        else:
            digest.add(line, item)
    return digest


# --- pass 2: grouping ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Group:
    """Every row of one number: one register answer."""

    registration_number: str
    rows: tuple[RegisterRow, ...]
    lines: tuple[int, ...]


class _Spill:
    """Rows of numbers whose rows are scattered through the file, kept on disk."""

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory | None = None
        self._db: sqlite3.Connection | None = None
        self.rows = 0

    def add(self, key: int, rows: list[tuple[int, RegisterRow]]) -> None:
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
            [
                (
                    key,
                    line,
                    r.registration_number,
                    r.title,
                    r.surname,
                    r.full_names,
                    r.city,
                    r.postal_code,
                    r.category,
                    r.status,
                )
                for line, r in rows
            ],
        )
        self.rows += len(rows)

    def groups(self) -> Iterator[Group]:
        if self._db is None:
            return
        cursor = self._db.execute("SELECT * FROM spill ORDER BY key, line")
        current: int | None = None
        lines: list[int] = []
        rows: list[RegisterRow] = []
        for key, line, *values in cursor:
            if key != current and rows:
                yield Group(rows[0].registration_number, tuple(rows), tuple(lines))
                lines, rows = [], []
            current = key
            lines.append(line)
            rows.append(RegisterRow(*values))
        if rows:
            yield Group(rows[0].registration_number, tuple(rows), tuple(lines))

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
    text = "\x1e".join(
        "\x1f".join(
            v or ""
            for v in (
                r.registration_number,
                r.title,
                r.surname,
                r.full_names,
                r.city,
                r.postal_code,
                r.category,
                r.status,
            )
        )
        for r in group.rows
    )
    return hashlib.sha256(text.encode()).hexdigest()


class _Batcher:
    """Applies complete groups, ``batch_rows`` rows per transaction."""

    def __init__(
        self,
        session: Session,
        policy: RegistryPolicy,
        summary: ImportSummary,
        note: Callable[[Note], None],
        on_batch: Callable[[Session, list[int]], int] | None,
        batch_rows: int,
    ) -> None:
        self.session = session
        self.policy = policy
        self.summary = summary
        self.note = note
        self.on_batch = on_batch
        self.batch_rows = batch_rows
        self.pending: list[Group] = []
        self.pending_rows = 0

    def add(self, group: Group) -> None:
        self.pending.append(group)
        self.pending_rows += len(group.rows)
        if self.pending_rows >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        groups, self.pending, self.pending_rows = self.pending, [], 0
        try:
            outcome = self._apply(groups)
        except IntegrityError:
            # A number inserted meanwhile by another process (a live verify): read again.
            self.session.rollback()
            outcome = self._apply(groups)
        self.session.commit()
        self._account(groups, outcome)

    def _apply(self, groups: list[Group]) -> list[tuple[Group, Decision]]:
        """Decide every group of the batch and write the decisions (not committed)."""
        session, summary, policy = self.session, self.summary, self.policy
        now = utcnow()
        wanted = [g.registration_number for g in groups]
        existing = {
            row.registration_number: row
            for row in session.execute(
                select(*BELIEF_COLUMNS)
                .where(PRACTITIONERS.c.registration_number.in_(wanted))
                .with_for_update()
            )
        }
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        decided: list[tuple[Group, LookupResult, Decision, Any]] = []
        for group in groups:
            number = group.registration_number
            result = LookupResult(
                registration_number=number,
                outcome=Outcome.OK,
                observed_at=summary.as_of,
                source=summary.source,
                rows=group.rows,
                digest=_digest_of(group),
            )
            row = existing.get(number)
            decision = decide(Belief.of(row) if row else None, result, policy, now=now)
            decided.append((group, result, decision, row))
            if decision.effect == "ignored_stale":
                continue  # older than the belief: history only, the practitioner stays as is
            values = decision.after.values()
            if row is None:
                values.update(NO_FACTS)
            else:
                values.update({name: getattr(row, name) for name in FACT_COLUMNS})
            if decision.copy_register_facts:
                values.update(register_facts(result))
            elif decision.clear_register_rows:
                values["raw_status"] = None
            values["updated_at"] = now
            if row is None:
                values["registration_number"] = number
                values["prefix"] = numbers.split(number)[0]
                values["created_at"] = now
                inserts.append(values)
            else:
                values["_pid"] = row.id
                updates.append(values)

        ids = {row.registration_number: row.id for row in existing.values()}
        if inserts:
            # Plain executemany, then read the ids back: portable, and far faster on SQLite
            # than INSERT ... RETURNING, which SQLAlchemy runs there one row at a time.
            session.execute(insert(PRACTITIONERS), inserts)
            found = session.execute(
                select(PRACTITIONERS.c.registration_number, PRACTITIONERS.c.id).where(
                    PRACTITIONERS.c.registration_number.in_(
                        [v["registration_number"] for v in inserts]
                    )
                )
            )
            ids.update((number, pid) for number, pid in found)
        if updates:
            session.execute(
                update(PRACTITIONERS).where(PRACTITIONERS.c.id == bindparam("_pid")), updates
            )

        stored_categories = self._categories_of(
            [row.id for _, _, d, row in decided if row is not None and d.effect != "ignored_stale"]
        )
        replace_ids: list[int] = []
        category_values: list[dict[str, Any]] = []
        check_values: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        touched: list[int] = []
        for group, result, decision, row in decided:
            pid = ids[group.registration_number]
            check_values.append({**history_values(result, decision, now), "practitioner_id": pid})
            if decision.effect == "ignored_stale":
                continue
            if row is not None:
                touched.append(pid)
            if decision.copy_register_facts or decision.clear_register_rows:
                wanted_rows = (
                    category_rows(result, decision) if decision.copy_register_facts else []
                )
                if row is None or stored_categories.get(pid, ()) != _comparable(wanted_rows):
                    if row is not None:
                        replace_ids.append(pid)
                    category_values += [{**v, "practitioner_id": pid} for v in wanted_rows]
            if decision.event_due:
                event_rows.append(
                    {
                        **event_values(group.registration_number, result, decision),
                        "practitioner_id": pid,
                        "event_id": str(uuid.uuid4()),
                    }
                )
        if replace_ids:
            session.execute(delete(CATEGORIES).where(CATEGORIES.c.practitioner_id.in_(replace_ids)))
        if category_values:
            session.execute(insert(CATEGORIES), category_values)
        session.execute(insert(CHECKS), check_values)
        if event_rows:
            session.execute(insert(EVENTS), event_rows)
        if self.on_batch is not None and touched:
            self.summary.search_queued += self.on_batch(session, touched)
        return [(group, decision) for group, _, decision, _ in decided]

    def _categories_of(self, practitioner_ids: list[int]) -> dict[int, tuple]:
        """The stored category rows of each practitioner, comparable with ``_comparable``."""
        if not practitioner_ids:
            return {}
        stored: dict[int, list[tuple]] = {}
        for pid, position, category, raw_status, status in self.session.execute(
            select(
                CATEGORIES.c.practitioner_id,
                CATEGORIES.c.position,
                CATEGORIES.c.category,
                CATEGORIES.c.raw_status,
                CATEGORIES.c.status,
            ).where(CATEGORIES.c.practitioner_id.in_(practitioner_ids))
        ):
            stored.setdefault(pid, []).append((position, category, raw_status, status))
        return {pid: tuple(sorted(rows)) for pid, rows in stored.items()}

    def _account(self, groups: list[Group], outcome: list[tuple[Group, Any]]) -> None:
        summary = self.summary
        summary.batches += 1
        for group, decision in outcome:
            summary.registrations += 1
            summary.rows_imported += len(group.rows)
            summary.effects[decision.effect] += 1
            if decision.event_due:
                summary.status_events += 1
            unknown = set(decision.unknown_raw_statuses)
            if unknown:
                for line, row in zip(group.lines, group.rows, strict=True):
                    if row.status in unknown:
                        self.warn(
                            line,
                            f"status {row.status!r} (category {row.category!r}) is not in "
                            "the status mapping: imported as 'unknown', never shown as verified",
                            group.registration_number,
                        )

    def warn(self, line: int, reason: str, number: str | None) -> None:
        self.summary.warnings += 1
        self.note(Note("warning", line, reason, number))


def import_snapshot(
    session: Session,
    snapshot: Snapshot,
    policy: RegistryPolicy,
    *,
    as_of: datetime,
    note: Callable[[Note], None] = lambda _note: None,
    on_batch: Callable[[Session, list[int]], int] | None = None,
    batch_rows: int = BATCH_ROWS,
    digest: Digest | None = None,
) -> ImportSummary:
    """Import ``snapshot`` as the register's answer as of ``as_of`` (aware UTC).

    ``note`` receives each rejected row and warning as it is found. ``on_batch`` is called
    inside each batch's transaction with the ids of the existing practitioners it updated
    (Core statements skip the ORM flush hooks that feed the search outbox) and returns how
    many it queued for the search index. Raises
    SnapshotError (from pass 1, before any write) when the file is not a snapshot.
    """
    started = time.monotonic()
    digest = digest or scan(snapshot)
    summary = ImportSummary(source=f"snapshot:{snapshot.name}"[:200], as_of=as_of)
    batcher = _Batcher(session, policy, summary, note, on_batch, batch_rows)
    spill = _Spill()

    def reject(line: int, reason: str, number: str | None) -> None:
        summary.rows_rejected += 1
        note(Note("rejected", line, reason, number))

    run_key: int | None = None
    run: list[tuple[int, RegisterRow]] = []

    def end_run() -> None:
        nonlocal run_key, run
        if run and run_key is not None:
            spill.add(run_key, run)  # incomplete: its other rows come later in the file
        run_key, run = None, []

    try:
        for line, item in snapshot.rows():
            summary.rows_read += 1
            if isinstance(item, RowProblem):
                reject(line, item.reason, item.registration_number)
                continue
            number = item.registration_number
            key = number_key(number)
            conflict = digest.conflicts.get(key)
            if conflict is not None:
                reject(
                    line,
                    f"conflicting rows for this number ({conflict}): none of its rows imported",
                    number,
                )
                continue
            repeated = digest.duplicates.get(line)
            if repeated is not None:
                summary.rows_imported += 1
                batcher.warn(line, f"repeats line {repeated} exactly: imported once", number)
                continue
            expected = digest.row_count(key)
            if expected == 1:
                end_run()
                batcher.add(Group(number, (item,), (line,)))
                continue
            if key != run_key:
                end_run()
                run_key = key
            run.append((line, item))
            if len(run) == expected:
                batcher.add(Group(number, tuple(r for _, r in run), tuple(n for n, _ in run)))
                run_key, run = None, []
        end_run()
        summary.spilled_rows = spill.rows
        for group in spill.groups():
            batcher.add(group)
        batcher.flush()
    finally:
        spill.close()
    summary.seconds = time.monotonic() - started
    return summary
