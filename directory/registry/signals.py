"""What happens when the register's answers change a registration: one signal says so.

The one write path for register answers (``directory.registry.recording``:
``apply_answer`` for one answer, ``apply_answers`` / ``BatchWriter`` for a batch, such as a
snapshot import's) sends ``registrations_changed`` once per write (a batch that mixes
sources: once per source), inside the writing transaction, after its rows are written.
Every domain that must follow a registration subscribes in its own ``init_app``:

- search (``directory/search``) queues index updates for the listed practitioners among
  ``practitioner_ids``;
- notifications (``directory/notifications``) give each new status event in ``event_ids``
  its change-feed entry and its webhook and email rows.

Subscribers write on ``session``'s connection, so what they add commits or rolls back with
the change itself (a transactional outbox); they never commit.

So the answer to "what happens when a status changes?" is: ``grep registrations_changed``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from blinker import Namespace
from flask import current_app, has_app_context
from sqlalchemy.orm import Session

_signals = Namespace()

registrations_changed = _signals.signal("registrations-changed")
"""``send(app, session=..., changes=RegistrationChanges(...))``; ``app`` may be None
(a script without an application: subscribers then do what needs no settings)."""


@dataclass(frozen=True)
class RegistrationChanges:
    """What one write did to registrations, as the subscribers need it."""

    source: str  # the answers' source: "hpcsa", "snapshot:<file>", "demo"...
    practitioner_ids: frozenset[int]  # every registration whose row the write touched
    event_ids: tuple[str, ...] = ()  # the status events it wrote (``StatusEvent.event_id``)

    @property
    def empty(self) -> bool:
        return not self.practitioner_ids and not self.event_ids


def announce(
    session: Session,
    *,
    source: str,
    practitioner_ids: Iterable[int],
    event_ids: Iterable[str] = (),
) -> RegistrationChanges:
    """Send ``registrations_changed`` for a write just flushed on ``session``."""
    changes = RegistrationChanges(
        source=source,
        practitioner_ids=frozenset(int(i) for i in practitioner_ids if i is not None),
        event_ids=tuple(event_ids),
    )
    if not changes.empty:
        app = current_app._get_current_object() if has_app_context() else None  # type: ignore[attr-defined]
        registrations_changed.send(app, session=session, changes=changes)
    return changes
