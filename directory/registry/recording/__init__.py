"""What happens when the register answers: the one place that applies its answers.

Every register answer, one or a batch, live or from a snapshot, is applied here, through
the pure rules of ``checks.decide``, and what it changed is said through one signal
(``signals.registrations_changed``, sent by ``signals.announce`` inside the writing
transaction). Two strategies, side by side, share those rules, value builders and signal:

- one answer (``one.py``): ``apply_answer`` / ``record_check`` lock the registration's row,
  read it again, decide, and write through the ORM; used by ``flask registry verify``, the
  recheck job, a patient's live check and the demo data. The caller commits.
- a batch of answers (``bulk.py``, statements in ``bulk_sql.py``): ``apply_answers`` /
  ``BatchWriter`` decide a batch outside the write transaction, re-check what moved under
  the write lock (``BEGIN IMMEDIATE`` on SQLite, row locks on PostgreSQL) and write with the
  driver's own ``executemany``; one transaction per batch, committed here. Used by the
  snapshot import (``importers/snapshot_import``), whose worker processes share one
  ``write_lock``.

Each strategy keeps its tricks to itself; callers see ``LookupResult``s in and a
``CheckEffect`` (one answer) or ``AppliedAnswer``s (a batch) out.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.orm import Session

from directory.registry.lookups import LookupResult
from directory.registry.policy import RegistryPolicy
from directory.registry.recording.bulk import AppliedAnswer, BatchWriter
from directory.registry.recording.one import apply_answer, lock_registration, record_check


def apply_answers(
    session: Session,
    results: list[LookupResult],
    policy: RegistryPolicy,
    *,
    write_lock: AbstractContextManager[Any] | None = None,
) -> list[AppliedAnswer]:
    """Apply a batch of answers (one per number) in one transaction and commit it; returns
    what each did, in order. A caller that sends many batches keeps one ``BatchWriter``
    (its statements are built once)."""
    return BatchWriter(session, policy, write_lock=write_lock).apply(results)


__all__ = [
    "AppliedAnswer",
    "BatchWriter",
    "apply_answer",
    "apply_answers",
    "lock_registration",
    "record_check",
]
