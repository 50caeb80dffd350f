"""A page of search hits joined to what the database says of each practitioner now."""

from __future__ import annotations

from collections.abc import Sequence

from directory.registry.verification import Standing, current_standings
from directory.search.backend import SearchHit


def hits_with_standings(hits: Sequence[SearchHit]) -> list[tuple[SearchHit, Standing]]:
    """The hits in the engine's order, each with its ``current_standings`` entry.

    The site's result cards and the API's results both come from here. A hit whose
    practitioner is no longer in the database is dropped (the index lags a deletion), as
    is a second hit for the same number (an index may hold a stale twin).
    """
    standings = current_standings(hit.registration_number for hit in hits)
    paired = []
    for hit in hits:
        standing = standings.pop(hit.registration_number, None)
        if standing is not None:
            paired.append((hit, standing))
    return paired
