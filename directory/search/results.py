"""What a view of search results shows: the engine's hits judged by the database now, and
the practitioners the words of the search name.

Every view of search results (the results page, a service page, ``/api/v1/search``,
``/api/v1/services/<slug>``) comes from ``shown_results``; no view decides for itself.

- **The results.** Each hit is paired with its ``current_standings`` entry (the database's
  word, judged by ``verification.verdict``), never with the index's copy. In a verified-only
  view (``include_unverified`` false) a hit whose practitioner is not verified now is left
  out, whatever the index says: the index may lag a suspension by seconds (an outbox not yet
  applied, a bulk write whose index update has not run), a card may not. A search for a
  treatment keeps, in that view, only practitioners who are verified **and** within scope of
  practice for it (``listings.scope``, judged from the database's prefix and category; the
  engine filters by the same answer, stored in its index). Every entry of a search for a
  treatment carries its ``scope`` for it (the least favourable, when several are searched),
  in every view. A hit whose
  practitioner is gone from the database, or a second hit for the same number, is left out
  in every view.
- **The total** is the engine's count less the hits of this page that were left out: a
  one-page answer counts exactly what it shows; on a longer list the count of the other
  pages may lag the index by the same seconds. Facets are the index's counts as they are.
- **The named practitioners.** A search whose words name practitioners (a registration
  number in any typed form, or words that are all words of a listed practitioner's names)
  shows them apart, on the first page, each with their badge, whatever the register says
  of them: a patient who checks their own practitioner must hear "suspended", not "no
  match". At most ``MAX_NAMED``, not-verified ones first; one already among the page's
  results is not repeated.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace

from directory.listings import vocabulary
from directory.listings.scope import ScopeAnswer, least_favourable, scope_of
from directory.registry import numbers
from directory.registry.professions import profession_of
from directory.registry.verification import Standing, Verdict, current_standings
from directory.search import text
from directory.search.backend import (
    QueryError,
    SearchBackend,
    SearchHit,
    SearchQuery,
    SearchResults,
)

# At most this many practitioners are shown as named by one search.
MAX_NAMED = 5
# A name is at most this many words (titles and initials aside); longer text is not a name.
MAX_NAME_WORDS = 4
# The practitioners whose indexed text has the typed name: how many of the engine's best
# are checked against their names in the database.
NAME_CANDIDATES = 20
# Words that precede a name and are not part of it (the register keeps titles apart).
TITLES = frozenset(
    {"dr", "doctor", "prof", "professor", "mr", "mrs", "ms", "miss", "mx", "sr", "sister"}
)
# A registration number inside free text: 2-4 letters, then digits (spaces, dashes, dots or
# slashes allowed between them, as people type them); ``numbers.normalise`` decides.
_NUMBER_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2,4}[\s\-./]*\d(?:[\d\s\-./]*\d)?(?![A-Za-z0-9])"
)

_LETTERS = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Entry:
    """One practitioner as a view shows it: the engine's hit (None for a practitioner named
    by number whom the index does not hold) and the database's word on them now."""

    hit: SearchHit | None
    standing: Standing
    named_by: str | None = None  # "name" or "registration_number" for a named practitioner
    # Scope of practice for the treatment searched (None: the search names no treatment).
    scope: ScopeAnswer | None = None

    @property
    def verdict(self) -> Verdict:
        return self.standing.verdict

    @property
    def profession(self) -> str:
        return profession_of(self.standing.registration_number, self.standing.category)

    @property
    def shown_by_default(self) -> bool:
        """Verified, and within scope for the treatment searched (if any)."""
        return self.verdict.verified and (self.scope is None or self.scope.within)

    @property
    def registration_number(self) -> str:
        return self.standing.registration_number


@dataclass(frozen=True)
class ShownResults:
    """A view's answer: ``results`` is the engine's, with ``total`` as shown (see above)."""

    results: SearchResults
    entries: list[Entry]
    named: list[Entry]
    # More practitioners carry the typed name than ``named`` holds.
    named_more: bool = False


@dataclass(frozen=True)
class Naming:
    """What the words of a search name: registration numbers, or the words of a name."""

    numbers: tuple[str, ...] = ()
    words: tuple[str, ...] = ()


def naming(typed: str) -> Naming:
    """The registration numbers in ``typed`` (any typed form ``numbers.normalise`` reads, with
    a prefix the register uses), or else, when every word of it could be part of a name,
    those words (folded, titles and initials dropped).

    Words that name a treatment are not a name (``"botox"`` searches for the treatment).
    """
    typed = typed.strip()
    if not typed:
        return Naming()
    found: list[str] = []
    if any(ch.isdigit() for ch in typed):
        pieces = [typed, *(m.group() for m in _NUMBER_IN_TEXT.finditer(typed))]
        for piece in pieces:
            # Only a prefix the register uses (``normalise`` would warn about any other).
            letters = _LETTERS.match(unicodedata.normalize("NFKC", piece).strip())
            if letters is None or letters.group().upper() not in numbers.known_prefixes():
                continue
            try:
                found.append(numbers.normalise(piece))
            except numbers.RegistrationNumberError:
                continue
        if found:
            return Naming(numbers=tuple(dict.fromkeys(found))[:MAX_NAMED])
        return Naming()  # digits that are no number: not a name either
    words = [w for w in text.words(typed) if w not in TITLES and len(w) > 1]
    if not words or len(words) > MAX_NAME_WORDS or not all(w.isalpha() for w in words):
        return Naming()
    if vocabulary.find_services(" ".join(words)):
        return Naming()
    return Naming(words=tuple(dict.fromkeys(words)))


def _name_candidates(backend: SearchBackend, wanted: Naming) -> list[SearchHit]:
    """Hits of everyone (verified or not) whose indexed text has the typed name: the
    candidates; their names are then checked against the database."""
    try:
        found = backend.search(
            SearchQuery(
                text=" ".join(wanted.words), include_unverified=True, per_page=NAME_CANDIDATES
            )
        )
    except QueryError:
        return []
    return list(found.hits)


def _has_name(standing: Standing, words: Sequence[str]) -> bool:
    """Every typed word is a whole word of the practitioner's name in the database."""
    return set(words) <= set(text.words(standing.display_name))


def searched_services(results: SearchResults) -> tuple[str, ...]:
    """The treatments (slugs) a search is for: its service filter and the ones its words
    name, as the engine understood them."""
    return tuple(s for s in results.understood.get("service", "").split(",") if s)


def treatment_scope(services: Sequence[str], standing: Standing) -> ScopeAnswer | None:
    """The scope of practice of this registration for the treatments searched (the least
    favourable of them), or None when the search names no treatment."""
    return least_favourable(
        scope_of(slug, standing.registration_number, standing.category) for slug in services
    )


def shown_results(
    backend: SearchBackend, query: SearchQuery, results: SearchResults
) -> ShownResults:
    """The one decision of what a view of ``results`` (the engine's answer to ``query``)
    shows: see the module's docstring."""
    wanted = naming(query.text) if query.page == 1 else Naming()
    if wanted.words and results.did_you_mean:
        # A typed word the index does not know is in no listed practitioner's name.
        wanted = Naming()
    candidates = _name_candidates(backend, wanted) if wanted.words else []
    standings = current_standings(
        [
            *(hit.registration_number for hit in results.hits),
            *(hit.registration_number for hit in candidates),
            *wanted.numbers,
        ]
    )

    services = searched_services(results)
    entries: list[Entry] = []
    seen: set[str] = set()
    for hit in results.hits:
        standing = standings.get(hit.registration_number)
        if standing is None or hit.registration_number in seen:
            continue  # gone from the database (the index lags a deletion), or a stale twin
        seen.add(hit.registration_number)
        entry = Entry(hit, standing, scope=treatment_scope(services, standing))
        if not query.include_unverified and not entry.shown_by_default:
            continue  # the index still calls it verified (or in scope); the database does not
        entries.append(entry)
    left_out = len(results.hits) - len(entries)
    shown = replace(results, total=max(results.total - left_out, 0))

    shown_numbers = {entry.registration_number for entry in entries}
    named: list[Entry] = []
    if wanted.numbers:
        hits = {hit.registration_number: hit for hit in [*results.hits, *candidates]}
        for number in wanted.numbers:
            if number in standings and number not in shown_numbers:
                standing = standings[number]
                named.append(
                    Entry(
                        hits.get(number),
                        standing,
                        "registration_number",
                        treatment_scope(services, standing),
                    )
                )
    for hit in candidates:
        standing = standings.get(hit.registration_number)
        if (
            standing is not None
            and hit.registration_number not in shown_numbers
            and _has_name(standing, wanted.words)
        ):
            shown_numbers.add(hit.registration_number)
            named.append(Entry(hit, standing, "name", treatment_scope(services, standing)))
    named.sort(key=lambda entry: entry.verdict.verified)  # stable: not verified first
    return ShownResults(shown, entries, named[:MAX_NAMED], len(named) > MAX_NAMED)
