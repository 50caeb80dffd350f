"""Signed, time-limited, single-use links sent by email: claiming a clinic, resetting a
password, accepting an invitation.

Each token is signed with SECRET_KEY (itsdangerous) under its own salt, expires after its
setting's age, and carries what makes it single-use without a table of used tokens:

- a claim names the clinic and the address on record it was sent to; it works only while
  the clinic has no admin and that address is still the one on record;
- a reset carries a fingerprint of the password hash: once the password changes, it is dead;
- an invitation works only while no account has the invited address.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

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
