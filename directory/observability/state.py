"""What the database and this host's index hold now: for ``/metrics`` and ``/readyz``.

Each function is one or two cheap queries; none writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, func, select, text

from directory.extensions import db
from directory.util.clock import utcnow

# Buckets of "the register last answered for this registration ... ago" (verified_at).
AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("under_1d", timedelta(days=1)),
    ("under_7d", timedelta(days=7)),
    ("under_30d", timedelta(days=30)),
)
OLDER, NEVER = "30d_or_more", "never"


def registrations_by_age() -> dict[str, int]:
    """Registrations by the age of the register's last answer for them (``verified_at``)."""
    from directory.registry.models import Practitioner

    now = utcnow()
    column = Practitioner.verified_at
    bucket = case(
        (column.is_(None), NEVER),
        *[(column >= now - age, name) for name, age in AGE_BUCKETS],
        else_=OLDER,
    )
    counts = {name: 0 for name, _ in AGE_BUCKETS} | {OLDER: 0, NEVER: 0}
    for name, count in db.session.execute(select(bucket, func.count()).group_by(bucket)):
        counts[name] = count
    return counts


@dataclass
class IndexState:
    generation: str | None = None
    documents: int = 0
    backlog: int = 0  # search outbox rows this index has not applied
    age_seconds: float | None = None  # since the index last changed (its newest commit)
    lag_seconds: float = 0.0  # age of the oldest outbox row not applied yet (0: none)
    notifications_pending: int = 0


def database_answers() -> None:
    db.session.execute(text("SELECT 1")).scalar()


def index_answers() -> int:
    """Open this host's current index and count its documents. Raises ``NoIndex`` when it
    has none, ``IndexBehind`` when it is behind the outbox's retention; either way a build
    has been started in the background, so a new host gets ready by itself."""
    from directory.search import get_index_keeper

    keeper = get_index_keeper()
    keeper.ready()
    return keeper.status(backlog=False).documents


def index_state() -> IndexState:
    from directory.notifications.models import DeliveryState, NotificationOutbox
    from directory.search import get_index_keeper
    from directory.search.interfaces import NoIndex

    state = IndexState()
    pending = select(func.count()).where(NotificationOutbox.state == DeliveryState.PENDING)
    state.notifications_pending = db.session.execute(pending).scalar() or 0
    try:
        status = get_index_keeper().status()
    except NoIndex:
        return state
    state.generation = status.generation
    state.documents = status.documents
    state.backlog = status.backlog
    state.age_seconds = status.age_seconds
    state.lag_seconds = status.lag_seconds
    return state
