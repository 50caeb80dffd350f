"""What an engine offers: one interface for querying, one for keeping its index.

Callers (the site, the API, ``flask search``, the after-commit hook in ``__init__``) speak
only these two and the types in ``backend.py``; ``get_search_backend()`` and
``get_index_keeper()`` hand out the app's implementations. The implementations live beside
this file: ``whoosh/`` (the engine) and ``null.py`` (an engine that holds nothing, for tests
and apps that need no search).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # backend.py re-exports SearchBackend from here
    from directory.search.backend import SearchQuery, SearchResults


class SearchBackend(Protocol):
    """Answering queries."""

    def search(self, query: SearchQuery, *, now: datetime | None = None) -> SearchResults:
        """Raises QueryError for a query that cannot be run; never anything else for input.

        ``now`` (default: the current time) is the moment "currently verified" is judged at.
        """
        ...

    def warm(self) -> None:
        """Prepare what first queries need (once per process, before serving)."""
        ...


@dataclass
class ApplyResult:
    """What one ``apply_pending`` did."""

    state: str  # "applied", "idle" (nothing new), "locked", "no-index"
    rows: int = 0
    practitioners: int = 0
    upserted: int = 0
    deleted: int = 0
    passes: int = 0
    cursor: int = 0
    generation: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RebuildReport:
    generation: str
    documents: int
    seconds: float
    caught_up: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "documents": self.documents,
            "seconds": round(self.seconds, 2),
            "caught_up": self.caught_up,
        }


@dataclass
class DriftReport:
    generation: str | None
    documents_expected: int = 0
    documents_indexed: int = 0
    missing: list[str] = field(default_factory=list)  # registration numbers / ids
    extra: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    outbox_backlog: int = 0
    last_sync_age_seconds: float | None = None

    @property
    def drift(self) -> bool:
        return bool(self.missing or self.extra or self.stale) or self.generation is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "documents_expected": self.documents_expected,
            "documents_indexed": self.documents_indexed,
            "missing": len(self.missing),
            "extra": len(self.extra),
            "stale": len(self.stale),
            "outbox_backlog": self.outbox_backlog,
            "last_sync_age_seconds": self.last_sync_age_seconds,
            "drift": self.drift,
        }


@dataclass
class IndexStatus:
    """This host's index as it stands: for ``/readyz`` and ``/metrics``."""

    generation: str
    documents: int
    backlog: int = 0  # outbox rows this index has not applied yet
    age_seconds: float | None = None  # since the index last changed
    lag_seconds: float = 0.0  # age of the oldest outbox row not applied yet (0: none)


class NoIndex(LookupError):
    """This host has no index it may serve from yet (one is being built): searches answer
    503 with ``Retry-After: RETRY_AFTER`` seconds, ``/readyz`` answers 503."""

    RETRY_AFTER = 30


class IndexBehind(NoIndex):
    """This host's index may have missed outbox rows that were pruned since (the host was
    away longer than ``SEARCH_OUTBOX_RETENTION``): it must be rebuilt before it serves."""


class BuildInProgress(RuntimeError):
    """Another process is rebuilding this index."""


class IndexKeeper(Protocol):
    """Keeping an index in line with the database (which writes ``search_outbox`` rows)."""

    def apply_pending(self, *, blocking: bool) -> ApplyResult:
        """Apply the outbox rows this index has not applied yet. ``blocking=False`` (the
        after-commit path) never waits: a busy index answers ``locked`` and catches up
        later; ``blocking=True`` (``flask search sync``) waits, and builds the first index
        when there is none."""
        ...

    def rebuild(self) -> RebuildReport:
        """Build the whole index afresh from the database and switch to it atomically.
        Raises ``BuildInProgress`` when another process is rebuilding."""
        ...

    def check(self, *, fix: bool = False) -> DriftReport:
        """Compare every document the database implies with what the index holds;
        ``fix`` rewrites the drifting ones after reporting."""
        ...

    def update_practitioners(self, practitioner_ids) -> int:
        """Rewrite these practitioners' documents now (waits for the index)."""
        ...

    def ready(self, *, wait: float = 0.0) -> None:
        """Return when this host's index can serve searches. Otherwise start building one
        in the background (at most one build per index directory at a time), wait up to
        ``wait`` seconds for it, and raise ``NoIndex`` (none yet) or ``IndexBehind`` (one
        that missed pruned outbox rows) if it is still not there."""
        ...

    def status(self, *, backlog: bool = True) -> IndexStatus:
        """Open this host's index and say what it holds (cheap; writes nothing). Raises
        ``NoIndex`` when none has been built. ``backlog=False`` skips reading the outbox."""
        ...
