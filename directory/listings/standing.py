"""A clinic's standing: whether it is suspended (its listings out of the directory) and
whether it keeps its own record (claimed: an operator's bulk import no longer changes it).

Both are facts about the clinic, kept on the ``clinics`` row, so that every reader in
``directory.listings`` (the import above all) and above it can ask without knowing about
accounts. Who may change them is decided by ``directory.accounts``, which sets them only
through these functions. See docs/clinics.md.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from directory.listings.models import Clinic
from directory.util.clock import utcnow


def is_suspended(clinic: Clinic) -> bool:
    return clinic.suspended_at is not None


def set_suspended(session: Session, clinic: Clinic, suspended: bool) -> None:
    """Suspend or restore (the caller takes the listings out or puts them back)."""
    _set(session, clinic, suspended_at=(clinic.suspended_at or utcnow()) if suspended else None)


def is_claimed(clinic: Clinic) -> bool:
    return clinic.claimed_at is not None


def set_claimed(session: Session, clinic: Clinic, claimed: bool) -> None:
    """Claimed while the clinic has an admin of its own; unclaimed when it has none."""
    _set(session, clinic, claimed_at=(clinic.claimed_at or utcnow()) if claimed else None)


def _set(session: Session, clinic: Clinic, **values) -> None:
    """Written as its own UPDATE, so that the clinic's ``version`` stays: its standing is not
    an edit of its profile, and must not make an edit someone has open look stale."""
    session.flush()
    session.execute(
        update(Clinic)
        .where(Clinic.id == clinic.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    for key, value in values.items():
        set_committed_value(clinic, key, value)
    session.expire(clinic, ["updated_at"])


def suspended_clinic_ids(session: Session) -> set[int]:
    return set(session.scalars(select(Clinic.id).where(Clinic.suspended_at.is_not(None))))


def suspended_slug(session: Session, slug: str) -> bool:
    """Whether the clinic at ``slug`` (as written in a URL or a file) is suspended."""
    found = session.scalar(
        select(Clinic.id).where(
            Clinic.slug == str(slug or "").strip().lower(), Clinic.suspended_at.is_not(None)
        )
    )
    return found is not None
