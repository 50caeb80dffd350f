"""An engine that holds nothing (``SEARCH_BACKEND = "null"``): for tests and apps that need
no search. Queries are checked like any engine's (a bad one raises ``QueryError``) and find
nothing; the keeper applies nothing, so outbox rows wait for a real engine."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from directory.search.backend import QueryError, SearchQuery, SearchResults
from directory.search.interfaces import ApplyResult, DriftReport, IndexStatus, RebuildReport
from directory.search.understand import validate


class NullSearch:
    name = "null"

    def warm(self) -> None:
        pass

    def search(self, query: SearchQuery, *, now: datetime | None = None) -> SearchResults:
        if not isinstance(query, SearchQuery):
            raise QueryError("not a search query")
        validate(query)
        return SearchResults(hits=[], total=0, page=query.page, per_page=query.per_page)


class NullIndex:
    def apply_pending(self, *, blocking: bool) -> ApplyResult:
        return ApplyResult("no-index")

    def rebuild(self) -> RebuildReport:
        return RebuildReport("null", 0, 0.0, ApplyResult("no-index").as_dict())

    def check(self, *, fix: bool = False) -> DriftReport:
        # Nothing is indexed, and nothing is expected to be: no drift to report.
        return DriftReport("null")

    def update_practitioners(self, practitioner_ids: Iterable[int]) -> int:
        return 0

    def ready(self, *, wait: float = 0.0) -> None:
        pass

    def status(self, *, backlog: bool = True) -> IndexStatus:
        return IndexStatus("null", 0)
