"""Answering queries from the whoosh index (``SearchBackend``).

How a query is answered (see docs/search.md for what each step bought):

1. ``understand`` turns the text into filters (services, places, a registration number) and
   free words. Typos are corrected against the service vocabulary and the index's words.
2. Filters are answered from document sets cached per index generation (one set per service,
   city, province..., read once from the postings) and intersected in Python. "Currently
   verified" is a slice of the verified documents sorted by ``verified_at``, cut for every
   query at the window ``verification.verified_window`` gives for now (the one rule, with
   its clock-skew guard): the index never goes stale with time.
3. Only the free words go to whoosh (AND of words, each word an OR over the weighted text
   fields; quoted phrases as phrase queries), restricted to the filtered set.
4. Totals and facets come from the exact matching set; ranking asks whoosh for the top of a
   page only when no other signal has to be combined with its score.
5. Results are cached per (generation, plan, verified cut, sort, page); a new generation
   (any index commit or a reindex) starts with empty caches.
"""

from __future__ import annotations

import copy
import heapq
import logging
import os
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import chain
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from sqlalchemy import Engine, func, select
from whoosh import index as whoosh_index
from whoosh.analysis import STOP_WORDS
from whoosh.query import And, Or, Phrase, Query, Term
from whoosh.reading import MultiReader, SegmentReader
from whoosh.searching import Searcher

from directory.listings import vocabulary
from directory.listings.models import Clinic, Service
from directory.listings.places import city_key, distance_km, find_place
from directory.registry.policy import RegistryPolicy
from directory.registry.verification import verdict, verified_window
from directory.search import text
from directory.search.backend import (
    ClinicRef,
    FacetValue,
    Origin,
    QueryError,
    SearchHit,
    SearchQuery,
    SearchResults,
)
from directory.search.interfaces import NoIndex
from directory.search.snippets import highlight
from directory.search.understand import Places, Plan, understand, validate
from directory.search.whoosh import store
from directory.search.whoosh.caches import GenerationView, Part, Scored, SegmentCache, first_in
from directory.search.whoosh.documents import (
    FIELD_BOOSTS,
    TEXT_FIELDS,
    analyse,
    analyzer_of,
    from_epoch_us,
)
from directory.search.whoosh.index import NO_INDEX, WhooshIndex
from directory.util.clock import utcnow
from directory.util.durations import parse_duration

log = logging.getLogger(__name__)

# How much one unit of service "strength" (a listing offering it, a description naming it)
# weighs against whoosh's text score when both rank a result.
SERVICE_WEIGHT = 0.5
CITY_FACET_LIMIT = 25
# Segments whose caches a process keeps at most (those of the generations it keeps; a
# merged-away segment's cache goes with the last kept generation that had it).
MAX_SEGMENT_CACHES = 64
# Generations whose composed caches a process keeps: the current one and the one before
# (a thread still on it after a commit, until its next freshness check).
KEPT_GENERATIONS = 2
# Facets over at most this many documents count per document; above it, per value by set
# intersection (cheaper for large sets: the work is in C).
FACET_PER_DOC_LIMIT = 3000


@dataclass
class Vocab:
    """What the database says about names: services, cities, provinces (display names)."""

    services: dict[str, str]  # slug -> name
    places: Places
    loaded_at: float


@dataclass
class ThreadState:
    pid: int
    signature: tuple[int, int] | None
    generation: Path
    ix: Any
    searcher: Any
    checked_at: float = 0.0  # monotonic time of the last freshness check


@dataclass
class Matches:
    docs: frozenset[int]
    facets: dict[str, list[FacetValue]]
    # docnum -> km from the plan's origin (documents with coordinates; None: no origin).
    distances: dict[int, float] | None = None


class WhooshSearch:
    """``SearchBackend`` over the whoosh index that ``keeper`` keeps in line with the
    database."""

    name = "whoosh"

    def __init__(self, app, keeper: WhooshIndex) -> None:
        config = app.config
        self.app = app
        self.keeper = keeper
        self.root = keeper.root
        self.max_age = RegistryPolicy.from_config(config).verification_max_age
        self.cache_size = int(config["SEARCH_CACHE_SIZE"])
        self.vocab_ttl = float(config["SEARCH_VOCABULARY_TTL"])
        # Cached per-word scores, in documents summed over words (about 100 bytes each).
        self.score_budget = int(config["SEARCH_SCORE_CACHE_DOCS"])
        self.refresh_seconds = float(config["SEARCH_REFRESH_SECONDS"])
        self.build_wait = parse_duration(config["SEARCH_BUILD_WAIT"]).total_seconds()
        self._local = threading.local()
        self._views: OrderedDict[tuple[str, int], GenerationView] = OrderedDict()
        self._segments: OrderedDict[tuple[str, str], SegmentCache] = OrderedDict()
        self._views_lock = threading.Lock()
        self._vocab: Vocab | None = None

    # --- plumbing ----------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        from directory.extensions import db

        with self.app.app_context():
            return db.engine

    def _state(self) -> ThreadState:
        """This thread's searcher on the current generation, opened or refreshed as needed.

        Freshness is checked at most every ``SEARCH_REFRESH_SECONDS`` (two stats of the
        index directory), and at once after this process applied a change itself, so a
        writer sees its own change on its next search.
        """
        state: ThreadState | None = getattr(self._local, "state", None)
        clock = time.monotonic()
        if (
            state is not None
            and state.pid == os.getpid()
            and clock - state.checked_at < self.refresh_seconds
            and self.keeper.applied_at < state.checked_at
        ):
            return state
        # Never a search from a missing index or one behind the outbox's retention: start
        # building one and wait for it a little, else NoIndex (503 with Retry-After).
        self.keeper.ready(wait=self.build_wait)
        signature = store.pointer_signature(self.root)
        if state is None or state.pid != os.getpid() or state.signature != signature:
            if state is not None and state.pid == os.getpid():
                state.searcher.close()
                self._local.state = None  # closed: never reused, even if no index follows
            generation = store.current_generation(self.root)
            if generation is None:  # replaced between the two looks: the next one has it
                raise NoIndex(NO_INDEX)
            ix = whoosh_index.open_dir(str(generation))
            state = ThreadState(os.getpid(), signature, generation, ix, ix.searcher())
            self._local.state = state
            state.checked_at = clock
            return state
        elif not state.searcher.up_to_date():
            # Not ``refresh()``: it reuses segment readers by segment id with their old
            # deletions, and would keep serving documents replaced since.
            state.searcher = _renewed_searcher(state.ix, state.searcher)
        state.checked_at = clock
        return state

    def _view(self, state: ThreadState) -> GenerationView:
        searcher = state.searcher
        key = (state.generation.name, searcher.reader().generation())
        with self._views_lock:
            view = self._views.get(key)
            if view is not None:
                self._views.move_to_end(key)
                return view
            parts = []
            for leaf, offset in searcher.leaf_searchers():
                reader = leaf.reader()
                segment = reader.segment()
                segment_key = (state.generation.name, segment.segment_id() if segment else "")
                cache = self._segments.get(segment_key)
                if cache is None:
                    cache = SegmentCache(segment_key, self.cache_size, self.score_budget)
                    self._segments[segment_key] = cache
                self._segments.move_to_end(segment_key)
                deleted = frozenset(getattr(reader, "deleted_docs_set", ()))
                parts.append(Part(cache, offset, reader.doc_count_all(), deleted))
            view = GenerationView(key, parts, self.cache_size, self.score_budget)
            self._views[key] = view
            while len(self._views) > KEPT_GENERATIONS:
                self._views.popitem(last=False)
            # Caches of segments no kept generation has (merged away since) are dropped
            # at once: on a live index each commit merges small segments, and their caches
            # (stored fields, scores) would otherwise linger until 64 had piled up.
            kept = {
                part.cache.key for kept_view in self._views.values() for part in kept_view.parts
            }
            for stale in [k for k in self._segments if k not in kept]:
                del self._segments[stale]
            while len(self._segments) > MAX_SEGMENT_CACHES:
                self._segments.popitem(last=False)
        return view

    def vocab(self) -> Vocab:
        current = self._vocab
        if (
            current is not None
            and time.monotonic() - current.loaded_at < self.vocab_ttl
            and current.loaded_at > self.keeper.applied_at  # a write here may rename
        ):
            return current
        with self.engine.connect() as conn:
            services = dict(conn.execute(select(Service.slug, Service.name)).all())
            cities: dict[str, str] = {}
            for city, _count in conn.execute(
                select(Clinic.city, func.count()).group_by(Clinic.city).order_by(func.count())
            ):
                if city and text.key(city):
                    cities[text.key(city)] = city  # the most common spelling wins
            provinces: dict[str, str] = {}
            for (province,) in conn.execute(select(Clinic.province).distinct()):
                if province and text.key(province):
                    provinces[text.key(province)] = province
        longest = max((len(k.split()) for k in cities), default=1)
        self._vocab = Vocab(services, Places(cities, provinces, longest), time.monotonic())
        return self._vocab

    def _index_words(self, view, searcher) -> list[tuple[list[str], dict[str, int]]]:
        """Each segment's "did you mean" words with their document frequencies (read once
        per segment, never again: no reload of the whole vocabulary on the request path)."""
        leaves = view.leaves(searcher)
        return [part.cache.words(leaf) for part, leaf in zip(view.parts, leaves, strict=True)]

    # --- the interface -----------------------------------------------------------------

    def warm(self) -> None:
        """Read now what first queries would otherwise read: the index's segments (filter
        sets, the within-scope sets, columns, the verified window's lists, the name, recency
        and service orders, field lengths), the names from the database and the suggestion
        words. Called once in gunicorn's master before it forks (``config/gunicorn.conf.py``),
        so every worker starts with them.

        It never starts building a missing index (that runs in a thread, and a thread
        running while the master forks leaves its locks held in every worker): a new host's
        workers start cold and build it themselves (``NoIndex`` is raised here)."""
        self.keeper.servable()
        state = self._state()
        view = self._view(state)
        searcher = state.searcher
        self.vocab()
        self._index_words(view, searcher)
        view.all_docs(searcher)
        view.verified_set(
            searcher, view.verified_cut(searcher, verified_window(None, self.max_age))
        )
        view.name_order(searcher)
        view.recency_order(searcher)
        for fieldname in ("service", "within", "city", "province"):
            view.doc_values(searcher, fieldname)
            for value in view.field_values(searcher, fieldname):
                view.term_set(searcher, fieldname, value)
        for slug in view.field_values(searcher, "service"):
            view.strength_order(searcher, slug)
        self._city_doc_groups(view, searcher)  # city facets by city (suburbs, old names)
        view.geo(searcher)  # clinic coordinates, for searches with a place
        for part, leaf in zip(view.parts, view.leaves(searcher), strict=True):
            for fieldname in TEXT_FIELDS:
                part.cache.postings.field_lengths(leaf.reader(), fieldname)
        self.search(SearchQuery(text="warm up", place="cape town"))  # the vocabularies

    def search(self, query: SearchQuery, *, now: datetime | None = None) -> SearchResults:
        """Raises QueryError (plain message) for a query that cannot be run."""
        if not isinstance(query, SearchQuery):
            raise QueryError("not a search query")
        validate(query)  # before anything uses its values as cache keys
        state = self._state()
        view = self._view(state)
        searcher = state.searcher
        now = now or utcnow()

        plan_key = (
            query.text, query.place, query.service, query.city, query.province,
            query.clinic, query.status, query.page, query.per_page, query.sort,
            query.near, query.radius_km,
        )  # fmt: skip
        plan = view.plans.get_(plan_key)
        if plan is None:
            plan = self._plan(query, view, searcher)
            view.plans.put(plan_key, plan)

        cut = view.verified_cut(searcher, verified_window(now, self.max_age))
        result_key = (plan.key(), cut, query.include_unverified, query.sort, query.page,
                      query.per_page)  # fmt: skip
        cached = view.results.get_(result_key)
        if cached is not None:
            hits, total, facets = cached
        else:
            matches = self._matches(view, searcher, plan, cut, query.include_unverified)
            ranked = self._rank(view, searcher, plan, matches, query)
            marks = self._highlight_terms(plan)
            # Exact to cache: a hit's "verified" depends on time only through the cut.
            hits = [
                self._page_hit(view, searcher, d, score, marks, now, plan.origin, cut)
                for d, score in ranked
            ]
            total, facets = len(matches.docs), matches.facets
            view.results.put(result_key, (hits, total, facets))
        return SearchResults(
            hits=list(hits),
            total=total,
            page=query.page,
            per_page=query.per_page,
            facets=facets,
            did_you_mean=plan.did_you_mean,
            understood=dict(plan.understood),
            origin=plan.origin,
        )

    # --- steps -------------------------------------------------------------------------

    def _plan(self, query: SearchQuery, view, searcher) -> Plan:
        vocab = self.vocab()

        def known_service(term: str) -> str | None:
            slug = vocabulary.resolve_slug(term) or term.strip().lower()
            return slug if slug in vocab.services else None

        def known_word(word: str) -> bool:
            # Each segment's "did you mean" words (read once per segment): a dictionary
            # look-up, where asking the reader looks the term up in every segment's files.
            segments = self._index_words(view, searcher)
            return all(any(w in freq for _, freq in segments) for w in word.split())

        def suggest_word(word: str) -> str | None:
            """The closest index word (fewest edits, then most documents, then first in
            order), searched segment by segment."""
            segments = self._index_words(view, searcher)
            max_edits = 1 if len(word) <= 5 else 2
            distances: dict[str, int] = {}
            for words, _ in segments:
                for found, distance, _ in process.extract(
                    word, words, scorer=Levenshtein.distance, score_cutoff=max_edits, limit=8
                ):
                    distances[found] = min(distance, distances.get(found, distance))
            if not distances:
                return None

            def documents(candidate: str) -> int:
                return sum(freq.get(candidate, 0) for _, freq in segments)

            return min(distances, key=lambda w: (distances[w], -documents(w), w))

        return understand(query, vocab.places, known_service, known_word, suggest_word)

    def _matches(self, view, searcher, plan: Plan, cut: tuple, everyone: bool) -> Matches:
        """The exact set of matching documents (filters, verified window, free words)."""
        key = (plan.key(), cut if not everyone else None)
        found = view.matches.get_(key)
        if found is not None:
            return found
        sets: list[frozenset[int]] = []
        for slug in plan.services:
            sets.append(view.term_set(searcher, "service", slug))
        for value in plan.cities:
            sets.append(self._city_set(view, searcher, city_key(value)))
        for value in plan.provinces:
            sets.append(view.term_set(searcher, "province", value))
        for value in plan.postcodes:
            sets.append(view.term_set(searcher, "postcode", value))
        for value in plan.clinics:
            sets.append(view.term_set(searcher, "clinic", value))
        if plan.number:
            sets.append(view.term_set(searcher, "number", plan.number))
        if plan.status:
            sets.append(view.term_set(searcher, "status", plan.status))
        if not everyone:
            sets.append(view.verified_set(searcher, cut))
            # Verified AND within scope for each treatment searched (listings.scope's answer,
            # stored per document).
            for slug in plan.services:
                sets.append(view.term_set(searcher, "within", slug))
        for scored in self._scored(view, searcher, plan):
            sets.append(scored.scores.keys())  # type: ignore[arg-type]
        if sets:
            sets.sort(key=len)
            docs = frozenset(sets[0])
            for other in sets[1:]:
                if not docs:
                    break
                docs = (
                    docs & other
                    if isinstance(other, frozenset)
                    else frozenset(d for d in docs if d in other)
                )
        else:
            docs = view.all_docs(searcher)
        distances = None
        if plan.origin is not None:
            distances = _distances(view.geo(searcher), docs, plan.origin)
            if plan.radius_km is not None:
                docs = frozenset(d for d, km in distances.items() if km <= plan.radius_km)
        matches = Matches(docs, self._facets(view, searcher, docs, everyone), distances)
        view.matches.put(key, matches, weight=len(docs) + 1)
        return matches

    def _city_set(self, view, searcher, group: str) -> frozenset[int]:
        """The documents with a clinic in this city or one of its suburbs, however each
        clinic wrote it ("Sandton", "Port Elizabeth"): the index's city values that
        ``places.city_key`` puts in the group, united once per generation."""
        found = view.term_sets.get(("city~", group))
        if found is None:
            members = self._city_groups(view, searcher).get(group, ())
            found = frozenset().union(
                *(view.term_set(searcher, "city", value) for value in members)
            )
            view.term_sets[("city~", group)] = found
        return found

    def _city_doc_groups(self, view, searcher) -> list[tuple[str, ...]]:
        """docnum -> the city groups of its clinics (each once; a group is ``city_key`` of a
        city value, as in ``_city_groups``), once per segment: city facets count as fast as
        service facets, and a commit does not recompute them for every document."""
        return view.doc_keys(searcher, "city", "city~", city_key)

    @staticmethod
    def _city_groups(view, searcher) -> dict[str, tuple[str, ...]]:
        found = view.values.get("city~")
        if found is None:
            groups: dict[str, list[str]] = {}
            for value in view.field_values(searcher, "city"):
                groups.setdefault(city_key(value), []).append(value)
            found = {group: tuple(values) for group, values in groups.items()}
            view.values["city~"] = found  # type: ignore[assignment]
        return found  # type: ignore[return-value]

    def _facets(
        self, view, searcher, docs: frozenset[int], everyone: bool
    ) -> dict[str, list[FacetValue]]:
        """Counts per service and city over the exact matching set. A city counts its
        suburbs and its other names (``_city_set``): choosing it finds what it counted. In a
        verified-only view a treatment counts only the practitioners within scope for it
        (field ``within``): the count its link then finds."""
        vocab = self.vocab()
        counts: dict[str, Counter] = {}
        groups = self._city_groups(view, searcher)
        service_field = "service" if everyone else "within"
        if len(docs) <= FACET_PER_DOC_LIMIT:
            for fieldname, per_doc in (
                ("service", view.doc_values(searcher, service_field)),
                ("city", self._city_doc_groups(view, searcher)),
            ):
                counts[fieldname] = Counter(chain.from_iterable(map(per_doc.__getitem__, docs)))
        else:
            counts["service"] = Counter(
                {
                    value: len(docs & view.term_set(searcher, service_field, value))
                    for value in view.field_values(searcher, service_field)
                }
            )
            counts["city"] = Counter(
                {group: len(docs & self._city_set(view, searcher, group)) for group in groups}
            )
        services = [
            FacetValue(slug, vocab.services.get(slug, slug), n)
            for slug, n in counts["service"].items()
            if n
        ]
        cities = []
        for group, n in counts["city"].items():
            if n:
                value = groups[group][0]
                place = find_place(value)
                name = place.city if place else vocab.places.cities.get(value, value.title())
                cities.append(FacetValue(name, name, n))
        services.sort(key=lambda f: (-f.count, f.label))
        cities.sort(key=lambda f: (-f.count, f.label))
        return {"services": services, "cities": cities[:CITY_FACET_LIMIT]}

    def _text_parts(self, plan: Plan) -> list[tuple[tuple, Query]]:
        """One whoosh query per free word, phrase and unplaced place word: each is scored
        on its own and cached; their AND is the intersection, their score the sum (exactly
        what whoosh computes for the AND of them)."""
        parts: list[tuple[tuple, Query]] = []
        for word in plan.words:
            alternatives = _field_terms(word)
            if alternatives:
                parts.append((("w", word), Or(alternatives)))
        for phrase in plan.phrases:
            alternatives = []
            for fieldname in TEXT_FIELDS:
                terms = analyse(analyzer_of(fieldname), " ".join(phrase))
                boost = FIELD_BOOSTS[fieldname]
                if len(terms) > 1:
                    alternatives.append(Phrase(fieldname, terms, boost=boost))
                elif terms:
                    alternatives.append(Term(fieldname, terms[0], boost=boost))
            if alternatives:
                parts.append((("p", phrase), Or(alternatives)))
        for word in plan.place_words:
            terms = analyse(analyzer_of("places"), word)
            if terms:
                query = And([Term("places", t) for t in terms]) if len(terms) > 1 else None
                parts.append((("pl", word), query or Term("places", terms[0])))
        return parts

    def _scored(self, view, searcher, plan: Plan) -> list[Scored]:
        return [view.scored_matches(searcher, key, q) for key, q in self._text_parts(plan)]

    def _rank(
        self, view, searcher, plan: Plan, matches: Matches, query: SearchQuery
    ) -> list[tuple[int, float]]:
        """The (docnum, score) pairs of the requested page."""
        docs = matches.docs
        start = (query.page - 1) * query.per_page
        end = start + query.per_page
        if start >= len(docs):
            return []
        if query.sort == "distance" and matches.distances is not None:
            # Nearest first; a practitioner none of whose clinics gave coordinates last.
            far = float("inf")
            distances, recency = matches.distances, view.recency_key(searcher)
            top = heapq.nsmallest(end, docs, key=lambda d: (distances.get(d, far), *recency(d)))
            return [(d, 0.0) for d in top[start:end]]
        if query.sort == "name":
            names = view.names(searcher)
            order = view.name_order(searcher)
            top = first_in(docs, end, order, names.__getitem__, len(view.all_docs(searcher)))
            return [(d, 0.0) for d in top[start:end]]
        recency = view.recency_key(searcher)
        if query.sort == "verified":
            order = view.recency_order(searcher)
            top = first_in(docs, end, order, recency, len(view.all_docs(searcher)))
            return [(d, 0.0) for d in top[start:end]]

        scored = self._scored(view, searcher, plan)
        strengths = [view.strength(searcher, slug) for slug in plan.services]
        if not scored and not strengths:
            order = view.recency_order(searcher)
            top = first_in(docs, end, order, recency, len(view.all_docs(searcher)))
            return [(d, 0.0) for d in top[start:end]]
        if len(scored) + len(strengths) == 1:
            # One signal: its order is precomputed; walk it.
            if scored:
                scores: dict[int, float] | dict[int, int] = scored[0].scores
                order = view.scored_order(searcher, scored[0], self._text_parts(plan)[0][1])
                weight = 1.0
            else:
                scores = strengths[0]
                order = view.strength_order(searcher, plan.services[0])
                weight = SERVICE_WEIGHT
            top = first_in(docs, end, order, lambda d: (-scores[d], *recency(d)), len(scores))
            return [(d, weight * scores[d]) for d in top[start:end]]

        maps = [s.scores for s in scored]

        def score(d: int) -> float:
            return sum(m[d] for m in maps) + SERVICE_WEIGHT * sum(s.get(d, 0) for s in strengths)

        totals = {d: score(d) for d in docs}
        top = heapq.nsmallest(end, docs, key=lambda d: (-totals[d], *recency(d)))
        return [(d, totals[d]) for d in top[start:end]]

    def _page_hit(
        self,
        view,
        searcher,
        docnum: int,
        score: float,
        marks: frozenset[str],
        now: datetime,
        origin: Origin | None,
        cut: tuple,
    ) -> SearchHit:
        """``_hit``, kept per generation: a hit depends on the document, the marked words,
        the origin and, for ``verified``, on time only through the verified cut (as the
        result cache); only its score is the query's own."""
        key = (docnum, marks, origin, cut)
        hit = view.hits.get_(key)
        if hit is None:
            hit = self._hit(view, searcher, docnum, score, marks, now, origin)
            view.hits.put(key, hit)
        elif hit.score != float(score):
            hit = replace(hit, score=float(score))
        return hit

    def _hit(
        self,
        view,
        searcher,
        docnum: int,
        score: float,
        marks: frozenset[str],
        now: datetime,
        origin: Origin | None,
    ) -> SearchHit:
        stored = view.stored(searcher, docnum)
        payload = stored["payload"]
        verified_at = from_epoch_us(payload["verified_at"])
        belief = SimpleNamespace(
            status=payload["status"],
            verified_at=verified_at,
            not_found_pending_since=from_epoch_us(payload["pending_since"]),
        )
        decided = verdict(belief, now=now, max_age_=self.max_age)
        clinics = _clinic_refs(payload["clinics"], origin)
        return SearchHit(
            registration_number=payload["number"],
            name=payload["name"],
            status=payload["status"],
            verified=decided.verified,
            verified_at=verified_at,
            services=tuple(payload["services"]),
            service_names=tuple(payload["service_names"]),
            clinics=clinics,
            snippet=highlight(stored.get("excerpt") or "", marks),
            score=float(score),
            distance_km=clinics[0].distance_km if clinics else None,
        )

    def _highlight_terms(self, plan: Plan) -> frozenset[str]:
        words = [*plan.words, *(w for phrase in plan.phrases for w in phrase)]
        vocab = self.vocab()
        for slug in plan.services:
            words.extend(text.words(vocab.services.get(slug, "")))
            term = vocabulary.by_slug().get(slug)
            if term is not None:
                for synonym in term.synonyms:
                    words.extend(text.words(synonym))
        return frozenset(text.stem(w) for w in words if w not in STOP_WORDS)


def _renewed_searcher(ix, old):
    """A searcher on the index's latest generation that reuses the open files of segments
    the old searcher already read (opening a large segment copies its term index: tens of
    milliseconds per commit otherwise). Each reused reader is a copy carrying the new
    segment object, hence the new deletions. The old searcher is dropped, not closed: its
    files live on in the copies. Falls back to a plain new searcher on any surprise."""
    try:
        toc = ix._read_toc()
        previous = {
            reader.segment().segment_id(): reader
            for reader, _ in old.reader().leaf_readers()
            if isinstance(reader, SegmentReader)
        }
        readers = []
        for segment in toc.segments:
            prior = previous.get(segment.segment_id())
            if prior is None:
                reader = SegmentReader(ix.storage, toc.schema, segment, generation=toc.generation)
            else:
                reader = copy.copy(prior)
                reader.__dict__.pop("deleted_docs_set", None)  # a cached property
                reader._segment = segment
                reader._gen = toc.generation
                perdoc = copy.copy(prior._perdoc)
                perdoc._segment = segment  # deletions are read from the segment
                reader._perdoc = perdoc
            readers.append(reader)
        if len(readers) == 1:
            combined = readers[0]
        elif readers:
            combined = MultiReader(readers, generation=toc.generation)
        else:
            return ix.searcher()
        return Searcher(combined, fromindex=ix)
    except Exception:
        log.warning("reusing segment readers failed; opening a new searcher", exc_info=True)
        return ix.searcher()


def _distances(
    geo: list[tuple[tuple[float, float], ...]], docs: frozenset[int], origin: Origin
) -> dict[int, float]:
    """docnum -> km from ``origin`` to the nearest of the document's clinics, for the
    documents of ``docs`` that have coordinates."""
    here = origin.coordinates
    found: dict[int, float] = {}
    for docnum in docs:
        points = geo[docnum]
        if points:
            found[docnum] = min(distance_km(here, point) for point in points)
    return found


def _clinic_refs(stored: list[list], origin: Origin | None) -> tuple[ClinicRef, ...]:
    """A hit's clinics from its stored payload ([slug, name, city, province, lat, lon]; an
    index built before coordinates has four): nearest first when there is an origin."""
    refs = []
    for slug, name, city, province, *point in stored:
        km = None
        if origin is not None and len(point) == 2 and None not in point:
            km = round(distance_km(origin.coordinates, (point[0], point[1])), 1)
        refs.append(ClinicRef(slug, name, city, province, km))
    if origin is not None:
        refs.sort(key=lambda ref: float("inf") if ref.distance_km is None else ref.distance_km)
    return tuple(refs)


def _field_terms(word: str) -> list[Query]:
    terms: list[Query] = []
    for fieldname in TEXT_FIELDS:
        for term in analyse(analyzer_of(fieldname), word):
            terms.append(Term(fieldname, term, boost=FIELD_BOOSTS[fieldname]))
    return terms
