"""Full-text search over the directory, behind two small interfaces (``interfaces.py``).

Views and the API call ``get_search_backend().search(SearchQuery(...))`` and speak only the
types in ``backend.py``; ``flask search ...`` and the after-commit hook below keep the index
through ``get_index_keeper()``. The engine is chosen by the ``SEARCH_BACKEND`` setting
(``whoosh``, in ``whoosh/``; ``null``, in ``null.py``) and created once per app (per process).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from directory.search.backend import (
    FacetValue,
    QueryError,
    SearchHit,
    SearchQuery,
    SearchResults,
)
from directory.search.interfaces import IndexKeeper, SearchBackend

EXTENSION_KEY = "directory_search"
ENGINES = ("whoosh", "null")

log = logging.getLogger(__name__)

__all__ = [
    "FacetValue",
    "IndexKeeper",
    "QueryError",
    "SearchBackend",
    "SearchHit",
    "SearchQuery",
    "SearchResults",
    "get_index_keeper",
    "get_search_backend",
    "init_app",
]


class Engine(NamedTuple):
    search: SearchBackend
    keeper: IndexKeeper


def _create(app: Flask) -> Engine:
    engine = app.config.get("SEARCH_BACKEND", "whoosh")
    if engine == "whoosh":
        from directory.search import whoosh

        return Engine(*whoosh.create(app))
    if engine == "null":
        from directory.search.null import NullIndex, NullSearch

        return Engine(NullSearch(), NullIndex())
    raise RuntimeError(f"invalid setting SEARCH_BACKEND={engine!r}: use one of {ENGINES}")


def init_app(app: Flask) -> None:
    """Create the app's engine, follow ``registrations_changed`` and register
    ``flask search ...``. Importing ``outbox`` registers its session events (listings,
    clinics, services)."""
    from directory.registry.signals import registrations_changed
    from directory.search import outbox
    from directory.search.cli import search_cli

    registrations_changed.connect(outbox.on_registrations_changed)
    app.extensions[EXTENSION_KEY] = _create(app)
    app.cli.add_command(search_cli)


def _engine() -> Engine:
    app = current_app._get_current_object()
    engine = app.extensions.get(EXTENSION_KEY)
    if engine is None:
        engine = app.extensions[EXTENSION_KEY] = _create(app)
    return engine


def get_search_backend() -> SearchBackend:
    """The current app's querying side (one per app and process)."""
    return _engine().search


def get_index_keeper() -> IndexKeeper:
    """The current app's index keeper (one per app and process)."""
    return _engine().keeper


@event.listens_for(Session, "after_commit")
def _apply_after_commit(session: Session) -> None:
    """A committed transaction that wrote outbox rows: apply them now, without waiting
    for the index (a busy index catches up on its own retry or the next sync)."""
    from directory.search.outbox import take_written

    if not take_written(session) or not has_app_context():
        return  # nothing written, or a script without an app: `flask search sync` applies
    app = current_app._get_current_object()
    engine = app.extensions.get(EXTENSION_KEY)
    if engine is None or not app.config.get("SEARCH_APPLY_AFTER_COMMIT", True):
        return
    try:
        engine.keeper.apply_pending(blocking=False)
    except Exception:  # the change is committed; the index catches up on the next sync
        log.exception("applying the search outbox after commit failed; left for the next sync")
