"""What the system believes about each registration, and the never-rewritten history of checks."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, relationship

from directory.extensions import db
from directory.util.clock import UTCDateTime, utcnow


def format_display_name(title: str | None, full_names: str | None, surname: str | None) -> str:
    """ "Dr Thandi Example" from the register's upper-case "DR", "THANDI", "EXAMPLE"."""
    parts = (title, full_names, surname)
    return " ".join(p.strip().title() if p.isupper() else p.strip() for p in parts if p)


class Practitioner(db.Model):
    """One registration number and the system's current belief about it.

    ``status`` changes only on an answer from the register (a check with outcome ``ok``
    or a confirmed ``not_found``); an ``error`` check only touches the bookkeeping
    (``last_checked_at``, ``consecutive_failures``, ``next_check_at``).
    """

    __tablename__ = "practitioners"

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_number: Mapped[str] = mapped_column(String(12), unique=True)
    prefix: Mapped[str] = mapped_column(String(4))
    title: Mapped[str | None] = mapped_column(String(20))
    surname: Mapped[str | None] = mapped_column(String(120))
    full_names: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(120))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    # The first category row the register listed; every row is in ``categories``.
    category: Mapped[str | None] = mapped_column(String(120))
    # The raw status string(s) the register gave, " / "-joined when several rows.
    raw_status: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="unknown", index=True)
    # When the register's answer that set ``status`` was given (snapshot date or lookup).
    status_as_of: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the register last confirmed this registration with an answer of rows.
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # First unconfirmed not-found for a registration the register had confirmed.
    not_found_pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the newest register answer applied (any "ok" or "not_found", pending or not) was
    # given: an answer older than this is stale and changes nothing.
    last_answer_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Recheck work claims: who holds this registration and until when.
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    categories: Mapped[list[RegistrationCategory]] = relationship(
        back_populates="practitioner",
        cascade="all, delete-orphan",
        order_by="RegistrationCategory.position",
    )

    __table_args__ = (Index("ix_practitioners_due", "next_check_at"),)

    @property
    def display_name(self) -> str:
        return format_display_name(self.title, self.full_names, self.surname)

    def __repr__(self) -> str:
        return f"<Practitioner {self.registration_number} {self.status}>"


class RegistrationCategory(db.Model):
    """One category row the register listed for a number (several rows are common)."""

    __tablename__ = "registration_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    category: Mapped[str] = mapped_column(String(120))
    raw_status: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16))

    practitioner: Mapped[Practitioner] = relationship(back_populates="categories")

    __table_args__ = (UniqueConstraint("practitioner_id", "category"),)


class VerificationCheck(db.Model):
    """One look-up or snapshot row: appended for every check, never rewritten or deleted."""

    __tablename__ = "verification_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    # When the register's answer is from (a snapshot's as-of date, or the look-up time).
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Indexed: the status pages read a window of recent checks (directory/status).
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    raw_status: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str | None] = mapped_column(String(16))
    response_digest: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    # What the check did to the belief: "changed", "unchanged", "pending_not_found",
    # "ignored_stale" (an answer older than the current belief), "no_effect" (errors).
    effect: Mapped[str | None] = mapped_column(String(24))

    practitioner: Mapped[Practitioner] = relationship()

    __table_args__ = (Index("ix_verification_checks_practitioner_time", "practitioner_id", "id"),)


class StatusEvent(db.Model):
    """A change of canonical status: the audit trail, the public change feed, notifications."""

    __tablename__ = "status_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(
        String(36), unique=True, default=lambda: str(uuid.uuid4())
    )
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    registration_number: Mapped[str] = mapped_column(String(12))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    source: Mapped[str] = mapped_column(String(200))

    practitioner: Mapped[Practitioner] = relationship()


class HistoryIsAppendOnly(RuntimeError):
    pass


@event.listens_for(VerificationCheck, "before_update")
@event.listens_for(StatusEvent, "before_update")
def _refuse_rewrite(mapper, connection, target) -> None:
    raise HistoryIsAppendOnly(f"{type(target).__name__} rows are never rewritten")


@event.listens_for(VerificationCheck, "before_delete")
@event.listens_for(StatusEvent, "before_delete")
def _refuse_delete(mapper, connection, target) -> None:
    raise HistoryIsAppendOnly(f"{type(target).__name__} rows are never deleted")


APPEND_ONLY_TABLES = frozenset({VerificationCheck.__tablename__, StatusEvent.__tablename__})


def append_only_ddl(dialect: str, table: str) -> list[str]:
    """Triggers that make the database itself refuse to update or delete ``table``'s rows,
    whoever asks: raw SQL, another program, a cascade from a deleted practitioner.

    Installed with the table by ``create_all`` (below) and by migration 0002, which keeps
    its own frozen copy of these statements, as migrations do.
    """
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_never_rewritten BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} rows are never rewritten'); END",
            f"CREATE TRIGGER {table}_never_deleted BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} rows are never deleted'); END",
        ]
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION history_is_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME "
            "|| ' rows are never ' || CASE TG_OP WHEN 'UPDATE' THEN 'rewritten' "
            "ELSE 'deleted' END; END $$",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION history_is_append_only()",
        ]
    return []  # another database: the ORM guards above still apply


def _install_append_only_triggers(table, connection, **_) -> None:
    for statement in append_only_ddl(connection.dialect.name, table.name):
        connection.exec_driver_sql(statement)


for _model in (VerificationCheck, StatusEvent):
    event.listen(_model.__table__, "after_create", _install_append_only_triggers)


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_rewrite(state: ORMExecuteState) -> None:
    """``session.execute(update(VerificationCheck)...)`` and bulk deletes skip the mapper
    events above; refuse them here too. (Raw SQL meets the database's own triggers.)"""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in APPEND_ONLY_TABLES:
        verb = "rewritten" if state.is_update else "deleted"
        raise HistoryIsAppendOnly(f"{table.name} rows are never {verb}")
