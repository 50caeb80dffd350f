"""A batch of register answers: ``checks.decide`` for each, then the bulk statements.

The batch side of the one write path (``directory.registry.recording``): the same rules
(``checks.decide``), value builders and signal (``signals.announce``) as one answer
(``one.py``), applied a batch of numbers per transaction with the driver-level statements of
``bulk_sql.py``. It takes ``LookupResult``s from any source; today the snapshot import
(``importers/snapshot_import``) sends its batches here, from one process or from several
forked workers that share one write lock.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, insert, text
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
from directory.registry.lookups import LookupResult
from directory.registry.policy import RegistryPolicy
from directory.registry.recording.bulk_sql import (
    _FACT_INDEX,
    _NO_FACT_VALUES,
    _RAW_STATUS_INDEX,
    CATEGORIES,
    EVENTS,
    _belief_values,
    _category_values,
    _check_values,
    _Statements,
    _stored_facts,
)
from directory.registry.signals import announce
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow


def _comparable(rows: list[dict[str, Any]]) -> tuple:
    return tuple(sorted((r["position"], r["category"], r["raw_status"], r["status"]) for r in rows))


class AppliedAnswer(NamedTuple):
    """What applying one answer of a batch did, for the caller's summary and warnings (a
    named tuple: one per number, sent back from worker processes)."""

    effect: str
    event_due: bool
    unknown_raw_statuses: tuple[str, ...]


@dataclass(slots=True)
class _Planned:
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
    """Decides and writes batches of register answers; works the same in a worker process.

    The rules run outside the write transaction (so two workers overlap); the write
    transaction then checks, cheaply, that no other writer (a live verify, the recheck job)
    checked any of these numbers meanwhile, and decides those again on what is stored now.
    On SQLite the write transaction is ``BEGIN IMMEDIATE``: it waits for the write lock
    instead of failing when another connection committed since this one last read.

    ``write_lock`` is shared by writers that take turns on SQLite (the snapshot import's
    forked workers); each answer carries its own date, ``undated`` mark and source.
    """

    def __init__(
        self,
        session: Session,
        policy: RegistryPolicy,
        *,
        write_lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.session = session
        self.policy = policy
        self.write_lock = write_lock if write_lock is not None else nullcontext()
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        self._driver_statements: _Statements | None = None

    def apply(self, results: list[LookupResult]) -> list[AppliedAnswer]:
        """Write the answers (one per number) and announce what changed; returns what each
        did, in order. Commits; retries once when a concurrent insert collides.

        As for one answer, a number the directory does not hold is stored only from an
        answer that lists it: a not-found or a failure for such a number is refused
        (``ValueError``, before anything is written; ``apply_answer`` skips it instead).
        """
        if not results:
            return []
        try:
            return self._apply(results)
        except IntegrityError:
            self.session.rollback()
            return self._apply(results)

    def _apply(self, results: list[LookupResult]) -> list[AppliedAnswer]:
        session = self.session
        now = utcnow()
        wanted = [r.registration_number for r in results]
        stored = self._beliefs(wanted)
        session.commit()  # end the read: the rules below hold no transaction open
        planned = [
            self._plan(result, stored.get(result.registration_number), now) for result in results
        ]
        self._prepare(planned, now)  # the rows as the driver takes them, before the lock

        # SQLite takes one writer at a time. Between the batch writers of one import's
        # workers a shared lock hands the turn over at once; SQLite's busy handler alone
        # would sleep (up to 100 ms at a time) while another worker writes. PostgreSQL
        # needs no such turns.
        with self.write_lock if self.sqlite else nullcontext():
            self._begin_write()
            fingerprints = self._statements().fingerprints_of(session, wanted)
            moved = [
                item.result.registration_number
                for item in planned
                if _fingerprint(item.row) != fingerprints.get(item.result.registration_number)
            ]
            if moved:  # another writer got there first: decide again on what it wrote
                fresh = self._beliefs(moved)
                again = set(moved)
                planned = [
                    self._plan(item.result, fresh.get(item.result.registration_number), now)
                    if item.result.registration_number in again
                    else item
                    for item in planned
                ]
            self._write(planned, now)
            session.commit()
        return [
            AppliedAnswer(
                item.decision.effect,
                item.decision.event_due,
                tuple(item.decision.unknown_raw_statuses),
            )
            for item in planned
        ]

    def _begin_write(self) -> None:
        if self.sqlite:
            self.session.execute(text("BEGIN IMMEDIATE"))

    def _beliefs(self, wanted: list[str]) -> dict[str, Any]:
        return {
            row.registration_number: row
            for row in self._statements().beliefs_of(self.session, wanted)
        }

    def _plan(self, result: LookupResult, row: Any, now: datetime) -> _Planned:
        if row is None and (result.outcome is not Outcome.OK or not result.rows):
            raise ValueError(
                f"{result.registration_number} is not in the directory and the answer lists "
                "no rows: nothing to store"
            )
        decision = decide(Belief.of(row) if row else None, result, self.policy, now=now)
        return _Planned(result, decision, row)

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
                number = item.result.registration_number
                prefix = numbers.split(number)[0]
                item.practitioner = (number, prefix, *belief, *facts, now, now)
            else:
                item.practitioner = (*belief, *facts, now, row.id)
            practitioners.append(item)
        for item, values in zip(planned, statements.insert_checks.convert(checks), strict=True):
            item.check = values
        new = [item for item in practitioners if item.row is None]
        old = [item for item in practitioners if item.row is not None]
        for items, statement in (
            (new, statements.insert_practitioners),
            (old, statements.update_practitioners),
        ):
            converted = statement.convert([item.practitioner for item in items])
            for item, values in zip(items, converted, strict=True):
                item.practitioner = values

    def _write(self, planned: list[_Planned], now: datetime) -> None:
        """The bulk statements for a decided batch (inside the write transaction), then
        ``registrations_changed`` for what they changed (search and notifications add their
        outbox rows in this transaction, as for a live answer).

        The three large tables are written through the driver's own ``executemany`` with
        the rows ``_prepare`` built (``_DriverStatement``); status events, rare in an
        import, go through Core.
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
            number = item.result.registration_number
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
        sources = {item.result.source for item in planned}
        if len(sources) == 1:  # the usual batch: one snapshot's answers, one signal
            announce(
                session,
                source=sources.pop(),
                practitioner_ids=updated,
                event_ids=[row["event_id"] for row in event_rows],
            )
            return
        # Answers from several sources: one signal per source, as each says what it changed.
        source_of = {ids[item.result.registration_number]: item.result.source for item in planned}
        updated_ids = set(updated)
        for source in sorted(sources):
            announce(
                session,
                source=source,
                practitioner_ids=[
                    pid for pid, of in source_of.items() if of == source and pid in updated_ids
                ],
                event_ids=[
                    row["event_id"]
                    for row in event_rows
                    if source_of[row["practitioner_id"]] == source
                ],
            )

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
