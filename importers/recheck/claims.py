"""Claiming recheck work with a lease, so that several runs at once share it safely.

A registration is *due* when ``next_check_at`` is unset (never checked) or has passed. A run
claims due registrations a small batch at a time by writing its name and an expiry into
``lease_owner`` / ``lease_expires_at``, in one atomic statement per claim:

* SQLite: ``UPDATE ... WHERE id IN (SELECT id ... LIMIT n) RETURNING id, ...`` (SQLite
  serialises writers, so two runs can never take the same row), or, before SQLite 3.35
  (no RETURNING), the same UPDATE followed by a SELECT of the rows it marked;
* PostgreSQL: the same UPDATE whose subquery is ``SELECT ... FOR UPDATE SKIP LOCKED``, so
  concurrent runs skip each other's rows instead of waiting on them (no deadlock, all
  progress).

Order: never-checked first (by id), then the longest-waiting (``next_check_at``); each step
is its own statement, so that both use the ``next_check_at`` index on either database.
A row whose lease has not expired is never claimed; a crashed run's leases expire. A lease
is released in the same transaction that records the registration's result
(``settle``), so a result is recorded only by the run that holds the lease. A run never
claims a registration checked since it started, whatever its schedule says.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from directory.registry.models import Practitioner
from directory.util.clock import utcnow

T = Practitioner.__table__.c


def make_owner() -> str:
    """A name for one run that says where it runs: host, pid and a random suffix."""
    return f"{socket.gethostname()[:48]}:{os.getpid()}:{secrets.token_hex(4)}"


def sqlite_has_returning() -> bool:
    return sqlite3.sqlite_version_info >= (3, 35, 0)


@dataclass(frozen=True, slots=True)
class Claim:
    """One registration a run holds."""

    id: int
    registration_number: str


def is_due(now: datetime) -> ColumnElement[bool]:
    return or_(T.next_check_at.is_(None), T.next_check_at <= now)


def lease_is_free(now: datetime) -> ColumnElement[bool]:
    return or_(T.lease_expires_at.is_(None), T.lease_expires_at < now)


def count_due(session: Session, now: datetime | None = None, *, held: bool = False) -> int:
    """Registrations due now (all of them; with ``held``, only those a run holds)."""
    now = now or utcnow()
    query = select(func.count()).select_from(Practitioner).where(is_due(now))
    if held:
        query = query.where(~lease_is_free(now))
    return session.scalar(query) or 0


class Claimer:
    """Claims, renews and releases one run's leases.

    ``run_started`` excludes registrations checked since the run began; ``include_not_due``
    (``--all``) drops the due condition but keeps that exclusion, so ``--all`` checks each
    registration once.
    """

    def __init__(
        self,
        owner: str,
        lease: timedelta,
        *,
        run_started: datetime,
        include_not_due: bool = False,
        use_returning: bool | None = None,
    ) -> None:
        if lease <= timedelta(0):
            raise ValueError("the lease must be longer than zero")
        if len(owner) > 80:
            raise ValueError("a lease owner name has at most 80 characters")
        self.owner = owner
        self.lease = lease
        self.run_started = run_started
        self.include_not_due = include_not_due
        self.use_returning = use_returning
        self._claims = 0

    # --- what may be claimed ------------------------------------------------------------
    def _eligible(self, now: datetime) -> ColumnElement[bool]:
        return and_(
            lease_is_free(now),
            or_(T.last_checked_at.is_(None), T.last_checked_at < self.run_started),
        )

    def candidate_queries(self, now: datetime) -> tuple[Select, Select]:
        """The two claim orders: never checked (by id), then by ``next_check_at``."""
        columns = (T.id, T.registration_number, T.next_check_at, T.status, T.last_checked_at)
        never = (
            select(*columns).where(T.next_check_at.is_(None), self._eligible(now)).order_by(T.id)
        )
        waited = T.next_check_at.is_not(None) if self.include_not_due else T.next_check_at <= now
        waiting = (
            select(*columns).where(waited, self._eligible(now)).order_by(T.next_check_at, T.id)
        )
        return never, waiting

    def candidates(self, session: Session, now: datetime | None = None) -> Iterator:
        """Stream what a run would claim, in order, without claiming (``--dry-run``)."""
        now = now or utcnow()
        for query in self.candidate_queries(now):
            yield from session.execute(query.execution_options(yield_per=500))

    def count_candidates(self, session: Session, now: datetime | None = None) -> int:
        now = now or utcnow()
        return sum(
            session.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0
            for q in self.candidate_queries(now)
        )

    # --- claim, renew, settle, release ------------------------------------------------
    def claim(self, session: Session, limit: int, now: datetime | None = None) -> list[Claim]:
        """Take up to ``limit`` registrations and commit. Never-checked first."""
        now = now or utcnow()
        taken: list[Claim] = []
        for query in self.candidate_queries(now):
            if len(taken) >= limit:
                break
            taken.extend(self._claim_step(session, query, limit - len(taken), now))
            session.commit()
        return taken

    def _claim_step(self, session: Session, query: Select, limit: int, now: datetime) -> list:
        dialect = session.get_bind().dialect.name
        ids = query.with_only_columns(T.id).limit(limit)
        if dialect == "postgresql":
            ids = ids.with_for_update(skip_locked=True)
        self._claims += 1
        # Distinct per claim, so that the fallback's SELECT finds exactly this claim's rows.
        until = now + self.lease + timedelta(microseconds=self._claims % 1000)
        stmt = (
            update(Practitioner.__table__)
            .where(T.id.in_(ids), lease_is_free(now))
            .values(lease_owner=self.owner, lease_expires_at=until, updated_at=T.updated_at)
        )
        returning = self.use_returning
        if returning is None:
            returning = dialect != "sqlite" or sqlite_has_returning()
        columns = (T.id, T.registration_number, T.next_check_at)
        if returning:
            rows = session.execute(stmt.returning(*columns)).all()
        else:
            session.execute(stmt)
            rows = session.execute(
                select(*columns).where(T.lease_owner == self.owner, T.lease_expires_at == until)
            ).all()
        # RETURNING gives no order: restore the claim order.
        rows.sort(key=lambda r: (r.next_check_at is not None, r.next_check_at or now, r.id))
        return [Claim(r.id, r.registration_number) for r in rows]

    def renew(self, session: Session, now: datetime | None = None) -> int:
        """Push back the expiry of every lease this run holds; returns how many."""
        now = now or utcnow()
        result = session.execute(
            update(Practitioner.__table__)
            .where(T.lease_owner == self.owner)
            .values(lease_expires_at=now + self.lease, updated_at=T.updated_at)
        )
        session.commit()
        return result.rowcount

    def settle(self, session: Session, practitioner_id: int) -> bool:
        """Release one lease inside the caller's transaction (the one recording the result).

        False when the lease is no longer this run's (it expired and another run took it):
        the caller must then record nothing.
        """
        result = session.execute(
            update(Practitioner.__table__)
            .where(T.id == practitioner_id, T.lease_owner == self.owner)
            .values(lease_owner=None, lease_expires_at=None, updated_at=T.updated_at)
        )
        return result.rowcount == 1

    def release(self, session: Session) -> int:
        """Give back everything this run still holds (unchecked: it stays due) and commit."""
        result = session.execute(
            update(Practitioner.__table__)
            .where(T.lease_owner == self.owner)
            .values(lease_owner=None, lease_expires_at=None, updated_at=T.updated_at)
        )
        session.commit()
        return result.rowcount
