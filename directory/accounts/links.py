"""Signed, time-limited, single-use links sent by email: claiming a clinic, resetting a
password, accepting an invitation.

Each token is signed with SECRET_KEY (itsdangerous) under its own salt, expires after its
setting's age, and carries what makes it single-use:

- an invitation and a claim carry the random id of their row in ``issued_links``: the link
  works only while that row is neither used nor revoked, and following it through marks the
  row used in the same transaction that creates the account (so removing the account later
  does not bring the link back). A claim also works only while the clinic has no admin and
  the address it was sent to is still the one on record;
- a reset carries a fingerprint of the password hash: once the password changes, it is dead.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from directory.accounts.models import IssuedLink
from directory.listings.models import Clinic
from directory.util.clock import utcnow
from directory.util.durations import parse_duration

SETTINGS = {
    "claim": "CLAIM_LINK_MAX_AGE",
    "reset": "PASSWORD_RESET_MAX_AGE",
    "invite": "INVITATION_MAX_AGE",
}


class LinkInvalid(ValueError):
    """The link is expired, altered, or already used: said plainly to the person."""


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"accounts.{purpose}")


def make(purpose: str, payload: dict[str, Any]) -> str:
    return _serializer(purpose).dumps(payload)


def read(purpose: str, token: str) -> dict[str, Any]:
    max_age = parse_duration(current_app.config[SETTINGS[purpose]]).total_seconds()
    try:
        payload = _serializer(purpose).loads(token or "", max_age=max_age)
    except SignatureExpired as exc:
        raise LinkInvalid("This link has expired: ask for a new one.") from exc
    except BadSignature as exc:
        raise LinkInvalid("This link is not valid: check that it was copied whole.") from exc
    if not isinstance(payload, dict):
        raise LinkInvalid("This link is not valid.")
    return payload


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


# --- invitations and claims: one row per link sent -------------------------------------------

USED = "This link has already been used: ask for a new one."
REVOKED = "This link was cancelled: ask for a new one."


def issue(
    session: Session, purpose: str, clinic: Clinic, email: str, role: str | None = None
) -> str:
    """A new signed link naming a fresh ``issued_links`` row (added to the session)."""
    row = IssuedLink(
        id=secrets.token_hex(16), purpose=purpose, clinic_id=clinic.id, email=email, role=role
    )
    session.add(row)
    payload = {"i": row.id, "c": clinic.id, "e": email}
    if role is not None:
        payload["r"] = role
    return make(purpose, payload)


def issued(session: Session, purpose: str, payload: dict[str, Any]) -> IssuedLink:
    """The link's row, while it can still be followed; LinkInvalid otherwise."""
    row = session.get(IssuedLink, payload.get("i")) if isinstance(payload.get("i"), str) else None
    if row is None or row.purpose != purpose:
        raise LinkInvalid("This link is not valid: ask for a new one.")
    if row.used_at is not None:
        raise LinkInvalid(USED)
    if row.revoked_at is not None:
        raise LinkInvalid(REVOKED)
    return row


def mark_used(session: Session, row: IssuedLink) -> None:
    """Marks the link used, in the caller's transaction; a concurrent use wins once only."""
    done = session.execute(
        update(IssuedLink)
        .where(
            IssuedLink.id == row.id,
            IssuedLink.used_at.is_(None),
            IssuedLink.revoked_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise LinkInvalid(USED)


def revoke(session: Session, purpose: str, clinic_id: int, email: str | None = None) -> int:
    """Cancels the clinic's unused links of that purpose (to that address, when given)."""
    query = update(IssuedLink).where(
        IssuedLink.purpose == purpose,
        IssuedLink.clinic_id == clinic_id,
        IssuedLink.used_at.is_(None),
        IssuedLink.revoked_at.is_(None),
    )
    if email is not None:
        query = query.where(IssuedLink.email == email)
    done = session.execute(
        query.values(revoked_at=utcnow()).execution_options(synchronize_session=False)
    )
    return done.rowcount


def pending(session: Session, purpose: str, clinic_id: int) -> list[IssuedLink]:
    return list(
        session.scalars(
            select(IssuedLink)
            .where(
                IssuedLink.purpose == purpose,
                IssuedLink.clinic_id == clinic_id,
                IssuedLink.used_at.is_(None),
                IssuedLink.revoked_at.is_(None),
            )
            .order_by(IssuedLink.created_at)
        )
    )
