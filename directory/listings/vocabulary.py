"""The service vocabulary: the treatments patients search for and the words they use for them.

The vocabulary is data (``data/services.json``), loaded into the ``services`` table by
``sync_services()`` (an idempotent upsert; no data migration). Everything that turns words
into a service goes through this module, so the import, the search and the API agree:

- ``term_key(text)``: the comparison key (case, spaces, punctuation and accents ignored);
- ``resolve_slug(text)`` / ``resolve_service(text)``: a slug, a name or a synonym -> one service;
- ``find_services(text)``: the services named inside free text ("botox in durban"),
  for query understanding;
- ``suggest_service(text)``: the closest service to a misspelling, for "did you mean".
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from types import MappingProxyType

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from sqlalchemy import select
from sqlalchemy.orm import Session

from directory.extensions import db
from directory.listings.models import Service

SLUG_SHAPE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# The longest term in the vocabulary, in words ("PRP (platelet-rich plasma)" is four).
_MAX_TERM_WORDS = 6
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class ServiceTerm:
    """One entry of the vocabulary file."""

    slug: str
    name: str
    description: str
    synonyms: tuple[str, ...]

    @property
    def terms(self) -> tuple[str, ...]:
        """Every way of naming this service: slug, name, synonyms."""
        return (self.slug, self.name, *self.synonyms)


@dataclass(frozen=True)
class ServiceMatch:
    """A service named inside free text, with where (character offsets) it was named."""

    slug: str
    text: str
    start: int
    end: int


class VocabularyError(ValueError):
    """The vocabulary file itself is wrong (duplicate slug, a term naming two services...)."""


def term_key(text: str) -> str:
    """The comparison key: accents, case, spaces and punctuation ignored.

    ``"Hair re-growth"``, ``"hair regrowth"`` and ``"HAIR  REGROWTH!"`` share one key.
    """
    if type(text) is str:
        return _term_key(text)
    return _fold_key(str(text))


@lru_cache(maxsize=65536)
def _term_key(text: str) -> str:
    # Remembered: every search asks it of the same city and service names many times
    # (facet labels, places, the vocabulary).
    return _fold_key(text)


def _fold_key(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    without_marks = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in without_marks.casefold() if c.isalnum())


@cache
def service_terms() -> tuple[ServiceTerm, ...]:
    """The services in ``data/services.json``, checked: slugs unique, every term unambiguous."""
    raw = json.loads(resources.files(__package__).joinpath("data/services.json").read_text())
    terms = tuple(
        ServiceTerm(
            slug=item["slug"],
            name=item["name"],
            description=item["description"],
            synonyms=tuple(item.get("synonyms", ())),
        )
        for item in raw
    )
    _term_index(terms)  # raises VocabularyError on a clash
    return terms


def _term_index(terms: Iterable[ServiceTerm]) -> dict[str, str]:
    index: dict[str, str] = {}
    for service in terms:
        if not SLUG_SHAPE.match(service.slug):
            raise VocabularyError(f"service slug {service.slug!r} is not lower-case-with-dashes")
        for term in service.terms:
            key = term_key(term)
            if not key:
                raise VocabularyError(f"service {service.slug!r} has an empty term {term!r}")
            owner = index.setdefault(key, service.slug)
            if owner != service.slug:
                raise VocabularyError(
                    f"the term {term!r} names both {owner!r} and {service.slug!r}"
                )
    return index


@cache
def term_index() -> dict[str, str]:
    """term key -> service slug, for every slug, name and synonym."""
    return _term_index(service_terms())


@cache
def by_slug() -> Mapping[str, ServiceTerm]:
    """slug -> the vocabulary entry (read-only, built once)."""
    return MappingProxyType({s.slug: s for s in service_terms()})


@cache
def _term_keys() -> tuple[str, ...]:
    return tuple(term_index())


def resolve_slug(text: str | None) -> str | None:
    """The slug of the service ``text`` names (slug, name or synonym), or None."""
    if text is None:
        return None
    key = term_key(text)
    return term_index().get(key) if key else None


def resolve_service(text: str | None, session: Session | None = None) -> Service | None:
    """The ``Service`` row ``text`` names (slug, name or synonym, in any case or spelling of
    spaces and punctuation), or None. Needs the table loaded (``sync_services``)."""
    session = session or db.session
    slug = resolve_slug(text)
    if slug is None:
        # A service added to the table by other means is still reachable by its slug.
        candidate = (text or "").strip().lower()
        if not SLUG_SHAPE.match(candidate):
            return None
        slug = candidate
    return session.scalar(select(Service).where(Service.slug == slug))


def suggest_service(text: str | None) -> ServiceTerm | None:
    """The service whose name or synonym is closest to ``text`` (a likely misspelling).

    Close means a few typed letters away: one edit for words up to four letters, two up to
    eight, three beyond.
    """
    key = term_key(text or "")
    index = term_index()
    if key in index:
        return by_slug()[index[key]]
    if len(key) < 4:  # too short to guess from
        return None
    max_edits = 1 if len(key) <= 4 else 2 if len(key) <= 8 else 3
    best = process.extractOne(
        key, _term_keys(), scorer=Levenshtein.distance, score_cutoff=max_edits
    )
    return by_slug()[index[best[0]]] if best else None


def find_services(text: str) -> list[ServiceMatch]:
    """The services named in free text, longest phrase first, left to right.

    ``"botox and lip fillers in Durban"`` -> botulinum-toxin (0-5), dermal-fillers (10-21).
    Words are matched by ``term_key`` over runs of consecutive words, so "hair re-growth"
    and "platelet rich plasma" are found as well as their dictionary spellings.
    """
    words = [(m.start(), m.end(), term_key(m.group())) for m in _WORD.finditer(text or "")]
    index = term_index()
    found: list[ServiceMatch] = []
    i = 0
    while i < len(words):
        for j in range(min(len(words), i + _MAX_TERM_WORDS), i, -1):
            key = "".join(w[2] for w in words[i:j])
            slug = index.get(key)
            if slug:
                start, end = words[i][0], words[j - 1][1]
                found.append(ServiceMatch(slug, text[start:end], start, end))
                i = j
                break
        else:
            i += 1
    return found


def without_matches(text: str, matches: Iterable[ServiceMatch]) -> str:
    """``text`` with the matched service phrases cut out (what is left for free-text search)."""
    pieces, position = [], 0
    for match in sorted(matches, key=lambda m: m.start):
        pieces.append(text[position : match.start])
        position = match.end
    pieces.append(text[position:])
    return re.sub(r"\s+", " ", " ".join(pieces)).strip()


@dataclass(frozen=True)
class SyncReport:
    created: int
    updated: int
    unchanged: int
    # Services in the table that the vocabulary file no longer lists (kept: listings use them).
    not_in_vocabulary: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "not_in_vocabulary": list(self.not_in_vocabulary),
        }


def sync_services(session: Session | None = None) -> SyncReport:
    """Upsert the vocabulary file into the ``services`` table. Idempotent; the caller commits.

    Nothing is deleted: a service dropped from the file may still be offered by listings.
    """
    session = session or db.session
    existing = {s.slug: s for s in session.scalars(select(Service))}
    created = updated = unchanged = 0
    for term in service_terms():
        row = existing.get(term.slug)
        synonyms = list(term.synonyms)
        if row is None:
            session.add(
                Service(
                    slug=term.slug,
                    name=term.name,
                    description=term.description,
                    synonyms=synonyms,
                )
            )
            created += 1
        elif (row.name, row.description, list(row.synonyms or [])) != (
            term.name,
            term.description,
            synonyms,
        ):
            row.name, row.description, row.synonyms = term.name, term.description, synonyms
            updated += 1
        else:
            unchanged += 1
    session.flush()
    extra = tuple(sorted(set(existing) - set(by_slug())))
    return SyncReport(created, updated, unchanged, extra)


def ensure_services(session: Session | None = None) -> None:
    """Load the vocabulary when the table is empty (first import on a fresh database)."""
    session = session or db.session
    if session.scalar(select(Service.id).limit(1)) is None:
        sync_services(session)
