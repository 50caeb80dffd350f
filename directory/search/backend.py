"""The types a search speaks: a query, its results, their hits and facets.

Views and the API speak only these (and ``SearchBackend``, the querying interface, defined in
``interfaces.py`` and importable from here too), so another engine (SQLite FTS5, PostgreSQL
full text, OpenSearch...) can be added and measured behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from directory.search.interfaces import SearchBackend

SortOrder = Literal["relevance", "name", "verified", "distance"]
SORT_ORDERS: tuple[str, ...] = ("relevance", "name", "verified", "distance")
MAX_PER_PAGE = 100
# A distance limit is from more than 0 up to this many kilometres.
MAX_RADIUS_KM = 500

__all__ = [
    "MAX_PER_PAGE",
    "MAX_RADIUS_KM",
    "SORT_ORDERS",
    "ClinicRef",
    "FacetValue",
    "NoOrigin",
    "Origin",
    "QueryError",
    "SearchBackend",
    "SearchHit",
    "SearchQuery",
    "SearchResults",
    "SortOrder",
]


class QueryError(ValueError):
    """A query that cannot be run; the message is plain words for the person who typed it."""


class NoOrigin(QueryError):
    """Nearest first or a distance limit, asked of a search with no place to measure from."""


@dataclass(frozen=True)
class Origin:
    """Where distances are measured from: a place the search named, or the device's own
    location ("near me")."""

    label: str  # "Sandton, Johannesburg", "your location"
    latitude: float
    longitude: float

    @property
    def coordinates(self) -> tuple[float, float]:
        return (self.latitude, self.longitude)


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""  # free text: treatment, name, anything
    place: str = ""  # the "where" box: a city, a province or a postal code
    service: str | None = None  # a service slug
    city: str | None = None
    province: str | None = None
    clinic: str | None = None  # a clinic slug
    status: str | None = None  # a canonical status
    include_unverified: bool = False  # default: only currently verified practitioners
    near: tuple[float, float] | None = None  # (latitude, longitude): the device's location
    radius_km: float | None = None  # only clinics this close to the place (or ``near``)
    sort: SortOrder = "relevance"
    page: int = 1
    per_page: int = 20


@dataclass(frozen=True)
class ClinicRef:
    slug: str
    name: str
    city: str
    province: str
    distance_km: float | None = None  # from the search's origin, when it has one


@dataclass(frozen=True)
class SearchHit:
    registration_number: str
    name: str
    status: str
    verified: bool
    verified_at: datetime | None
    services: tuple[str, ...]  # service slugs
    service_names: tuple[str, ...]
    clinics: tuple[ClinicRef, ...]
    snippet: str = ""  # HTML-safe, with <mark> around the words that matched
    score: float = 0.0
    # From the search's origin to the nearest of the clinics (listed nearest first); None
    # without an origin or when none of the clinics gave its coordinates.
    distance_km: float | None = None


@dataclass(frozen=True)
class FacetValue:
    value: str  # slug for services, the name for cities
    label: str
    count: int


@dataclass
class SearchResults:
    hits: list[SearchHit]
    total: int
    page: int
    per_page: int
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)  # "services", "cities"
    did_you_mean: str | None = None
    understood: dict[str, str] = field(default_factory=dict)  # e.g. {"service": "mesotherapy"}
    origin: Origin | None = None  # where distances are measured from

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))
