"""Full-text search over the directory, behind a small backend interface.

Views and the API call ``get_search_backend().search(SearchQuery(...))`` and speak only the
types in ``backend.py``. The engine is chosen by the ``SEARCH_BACKEND`` setting; the backend
is created once per app (per process) and reused.
"""

from __future__ import annotations

from flask import Flask, current_app

from directory.search.backend import (
    FacetValue,
    QueryError,
    SearchBackend,
    SearchHit,
    SearchQuery,
    SearchResults,
)

EXTENSION_KEY = "directory_search"
ENGINES = ("whoosh",)

__all__ = [
    "FacetValue",
    "QueryError",
    "SearchBackend",
    "SearchHit",
    "SearchQuery",
    "SearchResults",
    "get_search_backend",
    "init_app",
]


def _create(app: Flask) -> SearchBackend:
    engine = app.config.get("SEARCH_BACKEND", "whoosh")
    if engine == "whoosh":
        from directory.search.engine import WhooshBackend

        return WhooshBackend(app)
    raise RuntimeError(f"invalid setting SEARCH_BACKEND={engine!r}: use one of {ENGINES}")


def init_app(app: Flask) -> None:
    """Create the app's backend (so the outbox can be applied after commits), follow
    ``registrations_changed`` and register ``flask search ...``. Importing ``outbox``
    registers its session events (listings, clinics, services)."""
    from directory.registry.signals import registrations_changed
    from directory.search import outbox
    from directory.search.cli import search_cli

    registrations_changed.connect(outbox.on_registrations_changed)
    app.extensions[EXTENSION_KEY] = _create(app)
    app.cli.add_command(search_cli)


def get_search_backend() -> SearchBackend:
    """The current app's search backend (one per app and process)."""
    app = current_app._get_current_object()
    backend = app.extensions.get(EXTENSION_KEY)
    if backend is None:
        backend = app.extensions[EXTENSION_KEY] = _create(app)
    return backend
