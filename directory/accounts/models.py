"""Clinic accounts: users and their roles, their sessions, API tokens, the audit log,
listings held for a site admin, and the listings a suspended clinic has set aside. The clinic
and its listings themselves live in ``directory.listings`` (one home, written through
``directory.listings.imports``), and so do the facts that a clinic is suspended or claimed
(``directory.listings.standing``)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from directory.extensions import db
from directory.listings.models import Clinic
from directory.util.clock import UTCDateTime, utcnow


class Role(enum.StrEnum):
    CLINIC_ADMIN = "clinic_admin"  # one clinic: its profile, listings, users and tokens
    CLINIC_STAFF = "clinic_staff"  # one clinic: its profile and listings only
    SITE_ADMIN = "site_admin"  # every clinic, the moderation queue, suspensions

    @property
    def is_clinic_role(self) -> bool:
        return self is not Role.SITE_ADMIN


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-case
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    clinic_id: Mapped[int | None] = mapped_column(
        ForeignKey("clinics.id", ondelete="CASCADE"), index=True
    )
    # Part of every session's id: raising it signs the user out everywhere.
    session_generation: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    clinic: Mapped[Clinic | None] = relationship()

    # Flask-Login's user interface
    is_active = True
    is_anonymous = False

    @property
    def is_authenticated(self) -> bool:
        return True

    # The key of the session this object was loaded for (not stored here: ``UserSession``).
    session_key = None  # str, set by services.open_session and the user loader

    def get_id(self) -> str:
        return f"{self.id}:{self.session_generation}:{self.session_key or ''}"

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    @property
    def is_site_admin(self) -> bool:
        return self.role == Role.SITE_ADMIN

    @property
    def is_clinic_admin(self) -> bool:
        return self.role == Role.CLINIC_ADMIN


class ApiToken(db.Model):
    """A clinic's API token: only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to tell tokens apart
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    clinic: Mapped[Clinic] = relationship()
    created_by: Mapped[User | None] = relationship()


class UserSession(db.Model):
    """A signed-in session, so that signing out ends it on the server: a copy of the cookie
    made before then no longer signs anyone in. Only the SHA-256 of its key is stored; the
    key travels in the (signed) session cookie."""

    __tablename__ = "user_sessions"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEntry(db.Model):
    """One change to a clinic's data: who, when, what it was before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int | None] = mapped_column(
        ForeignKey("clinics.id", ondelete="SET NULL"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(300))  # "a@b.example", "token 'ERP' (a@b...)"
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(200))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class HeldListing(db.Model):
    """A listing whose name did not match the register's: not public until a site admin
    approves it (then it is written through the listing rules like any other)."""

    __tablename__ = "held_listings"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"), index=True)
    registration_number: Mapped[str] = mapped_column(String(20))
    name_given: Mapped[str] = mapped_column(String(200))
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    register_name: Mapped[str] = mapped_column(String(300))
    register_record: Mapped[dict] = mapped_column(JSON, default=dict)
    score: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(12), default="held", index=True)
    requested_by: Mapped[str] = mapped_column(String(300))
    decided_by: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    clinic: Mapped[Clinic] = relationship()


class ClinicSuspension(db.Model):
    """The listings a suspended clinic has set aside (out of the directory and search),
    written back through the listing rules when it is restored, and why and by whom. That
    the clinic is suspended is ``Clinic.suspended_at`` (``directory.listings.standing``)."""

    __tablename__ = "clinic_suspensions"

    clinic_id: Mapped[int] = mapped_column(
        ForeignKey("clinics.id", ondelete="CASCADE"), primary_key=True
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    suspended_by: Mapped[str] = mapped_column(String(300))
    suspended_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    listings: Mapped[list[dict]] = mapped_column(JSON, default=list)

    clinic: Mapped[Clinic] = relationship()


class IssuedLink(db.Model):
    """An invitation or claim link that was sent: its random id travels in the signed token,
    so the link works only while this row is neither used nor revoked (one use, cancellable)."""

    __tablename__ = "issued_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random, in the token
    purpose: Mapped[str] = mapped_column(String(10))  # "invite" or "claim"
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
