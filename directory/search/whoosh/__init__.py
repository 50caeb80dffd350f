"""The whoosh engine: everything that knows whoosh lives in this folder.

- ``search.py``: ``WhooshSearch``, the ``SearchBackend`` (query understanding to whoosh
  queries, ranking, facets, hits);
- ``caches.py``: what a search reads from the index, cached per segment and per generation;
- ``index.py``: ``WhooshIndex``, the ``IndexKeeper`` (rebuild, apply the outbox, check);
- ``following.py``: the index's outbox cursor and the applying of outbox rows;
- ``documents.py``: the schema, the analyzers, and a practitioner's document built from the
  database;
- ``store.py``: the index directory's generations, ``CURRENT`` pointer and build lock;
- ``mapped.py``: compound segments read from their memory map, not copied into the heap.
"""

from __future__ import annotations

from directory.search.whoosh import mapped

mapped.install()

from directory.search.whoosh.index import WhooshIndex  # noqa: E402
from directory.search.whoosh.search import WhooshSearch  # noqa: E402

__all__ = ["WhooshIndex", "WhooshSearch", "create"]


def create(app) -> tuple[WhooshSearch, WhooshIndex]:
    """The app's query side and index keeper (the query side follows the keeper's writes)."""
    keeper = WhooshIndex(app)
    return WhooshSearch(app, keeper), keeper
