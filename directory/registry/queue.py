"""The recheck queue as the app sees it: asking for registrations to be checked again soon.

The recheck job (``importers/recheck/claims.py``) takes registrations that were never checked
first, then those whose ``next_check_at`` has passed, longest-waiting first. ``checks.decide``
sets ``next_check_at`` after every answer; the one other write is here: something a person
told us (a patient's report of concern) that makes the register's word worth asking for
again now. It only ever brings a check forward, never pushes one back, and it leaves a
registration whose last look-up failed to its back-off (the register was not answering, and
asking again at once is what the back-off exists to prevent).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from directory.registry.models import Practitioner
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow


def check_soon(
    session: Session, practitioner_ids: Iterable[int], now: datetime | None = None
) -> int:
    """Make each registration due now (the caller commits); returns how many moved forward.

    A registration already due (or never checked) keeps its place; one backing off after a
    failed look-up keeps its back-off.
    """
    ids = sorted(set(practitioner_ids))
    if not ids:
        return 0
    now = now or utcnow()
    table = Practitioner.__table__
    result = session.execute(
        update(table)
        .where(
            table.c.id.in_(ids),
            table.c.next_check_at > now,
            or_(table.c.last_outcome.is_(None), table.c.last_outcome != Outcome.ERROR.value),
        )
        .values(next_check_at=now)
    )
    return result.rowcount or 0
