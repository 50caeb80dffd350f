"""Caches of what a search reads from the index, so that a small index commit costs little.

Every outbox apply is a whoosh commit: old versions of the changed documents are marked
deleted where they are, new versions go into a small new segment. A segment's files never
change afterwards; only its deletions grow. So:

- ``SegmentCache`` holds what one segment says (document sets per filter value, column
  values, service strengths, per-word scores, orders), in the segment's own document
  numbers, computed once per segment and shared by every generation and thread;
- ``GenerationView`` composes, per generation, the segments' answers: shifted by each
  segment's offset, minus the documents deleted in this generation. Its own caches (plans,
  match sets, result pages) start empty with each generation.

After a commit only the new small segment is read from the index; everything else is
set arithmetic on cached sets.
"""

from __future__ import annotations

import heapq
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from whoosh.query import Query

from directory.registry.verification import VerifiedWindow
from directory.search.whoosh.documents import PRACTITIONER_KIND, epoch_us


def _impacts():
    """``impacts`` (numpy), imported by the first search that needs it, not at start-up: a
    command that never searches (an import, a recheck) never loads numpy."""
    from directory.search.whoosh import impacts

    return impacts


# Built search hits kept per generation (about 1.5 kB each).
HIT_CACHE_SIZE = 512

# Documents whose stored fields a segment's cache keeps.
STORED_CACHE_DOCS = 512


class LRU(OrderedDict):
    """A small thread-safe LRU; ``budget`` bounds the summed ``weight`` of its values."""

    def __init__(self, size: int, budget: int | None = None) -> None:
        super().__init__()
        self.size = size
        self.budget = budget
        self.weight = 0
        self.weights: dict[Any, int] = {}
        self.lock = threading.Lock()

    def get_(self, key):
        with self.lock:
            value = self.get(key)
            if value is not None:
                self.move_to_end(key)
            return value

    def put(self, key, value, weight: int = 1) -> None:
        if self.size <= 0:
            return
        with self.lock:
            if key in self:
                self.weight -= self.weights.pop(key, 0)
            self[key] = value
            self.weights[key] = weight
            self.weight += weight
            self.move_to_end(key)
            while len(self) > 1 and (
                len(self) > self.size or (self.budget is not None and self.weight > self.budget)
            ):
                old, _ = self.popitem(last=False)
                self.weight -= self.weights.pop(old, 0)


class SegmentCache:
    """What one segment holds, in its own document numbers. Its files never change, so
    nothing here goes stale; each generation subtracts the documents deleted since."""

    def __init__(self, key: tuple[str, str], size: int, score_budget: int) -> None:
        self.key = key
        self.term_sets: dict[tuple[str, str], frozenset[int]] = {}
        self.values: dict[str, tuple[str, ...]] = {}
        self.word_list: tuple[list[str], dict[str, int]] | None = None
        self.columns: dict[str, list] = {}
        self.per_doc: dict[str, list[tuple[str, ...]]] = {}
        self.strengths: dict[str, dict[int, int]] = {}
        self.orders: dict[Any, list[int]] = {}
        self.scored = LRU(100_000, budget=score_budget)
        # Orders of one word's matches by score: one per word ever searched, so bounded as
        # the scores are (the other orders are a few per segment: by name, by recency...).
        self.word_orders = LRU(100_000, budget=score_budget)
        self.postings = _impacts().SegmentPostings()
        # Hits' stored fields (3-4 KB each): a first-time page reads a dozen, and reading
        # one from the mapped segment is cheap; before, up to 50,000 per segment (every
        # document of it in a long-lived worker: 20+ MB).
        self.stored = LRU(min(size, STORED_CACHE_DOCS))
        self.verified: dict[str, tuple[list[int], list[int]]] = {}
        self.geo_points: list[tuple[tuple[float, float], ...]] | None = None

    # Everything below reads the segment through ``leaf`` (a searcher on it).

    def term_set(self, leaf, fieldname: str, value: str) -> frozenset[int]:
        """The segment's documents with this term, deleted ones included (each generation
        subtracts its own deletions), read from the postings a block at a time."""
        found = self.term_sets.get((fieldname, value))
        if found is None:
            ids, _ = _impacts().read_postings(leaf.reader(), fieldname, value)
            found = frozenset(ids.tolist())
            self.term_sets[(fieldname, value)] = found
        return found

    def words(self, leaf) -> tuple[list[str], dict[str, int]]:
        """The segment's "did you mean" vocabulary, sorted, with each word's document
        frequency (read once: a segment never changes)."""
        found = self.word_list
        if found is None:
            words: list[str] = []
            freq: dict[str, int] = {}
            for word, info in leaf.reader().iter_field("words"):
                word = word.decode("utf-8") if isinstance(word, bytes) else word
                words.append(word)
                freq[word] = info.doc_frequency()
            found = self.word_list = (words, freq)
        return found

    def field_values(self, leaf, fieldname: str) -> tuple[str, ...]:
        found = self.values.get(fieldname)
        if found is None:
            found = self.values[fieldname] = tuple(leaf.reader().field_terms(fieldname))
        return found

    def column(self, leaf, fieldname: str) -> list:
        found = self.columns.get(fieldname)
        if found is None:
            found = list(leaf.reader().column_reader(fieldname))
            self.columns[fieldname] = found
        return found

    def geo(self, leaf) -> list[tuple[tuple[float, float], ...]]:
        """Each document's clinic coordinates, parsed once (none in an index built before
        the ``geo`` column existed: ``flask search reindex`` adds them)."""
        found = self.geo_points
        if found is None:
            reader = leaf.reader()
            if "geo" not in reader.schema or not reader.has_column("geo"):
                found = [()] * reader.doc_count_all()
            else:
                found = [_points(value) for value in self.column(leaf, "geo")]
            self.geo_points = found
        return found

    def strength(self, leaf, slug: str) -> dict[int, int]:
        found = self.strengths.get(slug)
        if found is None:
            ids, weights = _impacts().read_postings(leaf.reader(), "strength", slug)
            found = dict(zip(ids.tolist(), weights.astype(int).tolist(), strict=True))
            self.strengths[slug] = found
        return found

    def scores(
        self, leaf, key: tuple, query: Query, doc_frequency: Callable | None = None
    ) -> dict[int, float]:
        """docnum -> whoosh's score of ``query`` (one free word or phrase) in this segment.
        A word (an OR of single terms) is scored from the term's postings as arrays, with
        whoosh's own BM25F formula and statistics (``impacts.py``; ``doc_frequency``: the
        generation's, see ``GenerationView.doc_frequency``); anything else (a phrase) by
        whoosh's searcher."""
        found = self.scored.get_(key)
        if found is None:
            terms = _impacts().plain_terms(query)
            if terms is not None and _impacts().supports(leaf):
                found = _impacts().score_terms(self.postings, leaf, terms, doc_frequency)
            else:
                results = leaf.search(query, limit=None, terms=False)
                found = {docnum: score for score, docnum in results.top_n}
            self.scored.put(key, found, weight=len(found) + 1)
        return found

    def recency_key(self, leaf) -> Callable[[int], tuple]:
        verified_at = self.column(leaf, "verified_at")
        names = self.column(leaf, "sort_name")
        return lambda d: (-verified_at[d], names[d])

    def order(self, name: Any, docs: Callable[[], Any], key: Callable[[int], Any]) -> list[int]:
        """Local documents sorted by ``key``, once per segment (keys here never change)."""
        found = self.orders.get(name)
        if found is None:
            found = sorted(docs(), key=key)
            self.orders[name] = found
        return found

    def word_order(self, name: Any, docs: Callable[[], Any], key: Callable[[int], Any]) -> list:
        """As ``order``, for the matches of one searched word (kept while the budget lasts)."""
        found = self.word_orders.get_(name)
        if found is None:
            found = sorted(docs(), key=key)
            self.word_orders.put(name, found, weight=len(found) + 1)
        return found

    def verified_lists(self, leaf, status: str) -> tuple[list[int], list[int]]:
        """(verified_at, docnum) of documents with this status, a confirmation date and no
        pending not-found, sorted: the candidates of ``verification.VerifiedWindow``."""
        found = self.verified.get(status)
        if found is None:
            candidates = self.term_set(leaf, "status", status)
            clear = self.term_set(leaf, "pending", "0")
            values = self.column(leaf, "verified_at")
            pairs = sorted((values[d], d) for d in candidates & clear if values[d] > 0)
            found = self.verified[status] = ([v for v, _ in pairs], [d for _, d in pairs])
        return found


@dataclass(frozen=True)
class Part:
    """One segment in one generation: where its numbers start and what is deleted in it."""

    cache: SegmentCache
    offset: int
    count: int
    deleted: frozenset[int]

    def shift(self, local: frozenset[int]) -> frozenset[int]:
        live = local - self.deleted if self.deleted else local
        if not self.offset:
            return live
        offset = self.offset
        return frozenset(d + offset for d in live)

    def compose(self, into: dict, local: dict) -> None:
        """Add a segment's ``local`` docnum -> value map to a generation's, shifted, minus
        this generation's deletions (the largest segment, at offset 0: a copy in C)."""
        if not self.offset:
            into.update(local)
            for docnum in self.deleted:
                into.pop(docnum, None)
            return
        deleted, offset = self.deleted, self.offset
        into.update((d + offset, v) for d, v in local.items() if d not in deleted)

    def live(self, docs) -> Iterator[int]:
        """Global numbers of live local documents, in the given (local) order."""
        deleted, offset = self.deleted, self.offset
        return (d + offset for d in docs if d not in deleted)


@dataclass
class Scored:
    """One free word's (or phrase's) matches in a generation: docnum -> whoosh score."""

    key: tuple
    scores: dict[int, float]


@dataclass
class GenerationView:
    """A generation: the segments' cached answers composed, and per-generation caches."""

    key: tuple[str, int]
    parts: list[Part]
    size: int
    score_budget: int
    term_sets: dict[tuple[str, str], frozenset[int]] = field(default_factory=dict)
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    per_doc: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    columns: dict[str, list] = field(default_factory=dict)
    strengths: dict[str, dict[int, int]] = field(default_factory=dict)
    verified_sets: LRU = field(default_factory=lambda: LRU(8))
    plans: LRU = field(init=False)
    matches: LRU = field(init=False)
    results: LRU = field(init=False)
    scored: LRU = field(init=False)
    hits: LRU = field(init=False)

    def __post_init__(self) -> None:
        self.plans = LRU(self.size)
        # Match sets can hold every document each: bounded in documents too, as the
        # free-word scores are (a quiet directory keeps one generation for hours).
        self.matches = LRU(self.size, budget=self.score_budget)
        self.results = LRU(self.size)
        # Built hits: a page's practitioners are often the next search's too (the named-
        # practitioner look-up of the same words, the everyone view, the next page).
        self.hits = LRU(min(self.size, HIT_CACHE_SIZE))
        self.scored = LRU(100_000, budget=self.score_budget)

    @staticmethod
    def leaves(searcher) -> list:
        return [leaf for leaf, _ in searcher.leaf_searchers()]

    def _each(self, searcher):
        return zip(self.parts, self.leaves(searcher), strict=True)

    # --- document sets -----------------------------------------------------------------

    def term_set(self, searcher, fieldname: str, value: str) -> frozenset[int]:
        found = self.term_sets.get((fieldname, value))
        if found is None:
            pieces = [
                part.shift(part.cache.term_set(leaf, fieldname, value))
                for part, leaf in self._each(searcher)
            ]
            found = pieces[0] if len(pieces) == 1 else frozenset().union(*pieces)
            self.term_sets[(fieldname, value)] = found
        return found

    def all_docs(self, searcher) -> frozenset[int]:
        return self.term_set(searcher, "kind", PRACTITIONER_KIND)

    def field_values(self, searcher, fieldname: str) -> tuple[str, ...]:
        found = self.values.get(fieldname)
        if found is None:
            terms: set[str] = set()
            for part, leaf in self._each(searcher):
                terms.update(part.cache.field_values(leaf, fieldname))
            found = self.values[fieldname] = tuple(sorted(terms))
        return found

    def doc_values(self, searcher, fieldname: str) -> list[tuple[str, ...]]:
        """docnum -> the field's values (services, cities), for per-document facet counts."""
        found = self.per_doc.get(fieldname)
        if found is None:
            found = []
            values = self.field_values(searcher, fieldname)
            for part, leaf in self._each(searcher):
                local = part.cache.per_doc.get(fieldname)
                if local is None:
                    lists: list[list[str]] = [[] for _ in range(part.count)]
                    for value in values:
                        for docnum in part.cache.term_set(leaf, fieldname, value):
                            lists[docnum].append(value)
                    local = [tuple(v) for v in lists]
                    part.cache.per_doc[fieldname] = local
                found.extend(local)
            self.per_doc[fieldname] = found
        return found

    def doc_keys(
        self, searcher, fieldname: str, name: str, key_of: Callable[[str], str]
    ) -> list[tuple[str, ...]]:
        """docnum -> the distinct ``key_of(value)`` of the document's values (the city
        groups of its clinics), computed once per segment (``key_of`` never changes its
        answer) and only concatenated per generation: a commit does not recompute them for
        every document."""
        found = self.per_doc.get(name)
        if found is None:
            self.doc_values(searcher, fieldname)  # each segment's values per document
            keys = {value: key_of(value) for value in self.field_values(searcher, fieldname)}
            found = []
            for part in self.parts:
                local = part.cache.per_doc.get(name)
                if local is None:
                    local = [
                        tuple(dict.fromkeys(keys[v] for v in values))
                        for values in part.cache.per_doc[fieldname]
                    ]
                    part.cache.per_doc[name] = local
                found.extend(local)
            self.per_doc[name] = found
        return found

    def column(self, searcher, fieldname: str) -> list:
        """The column's value for every docnum of the generation (deleted ones included)."""
        found = self.columns.get(fieldname)
        if found is None:
            found = []
            for part, leaf in self._each(searcher):
                found.extend(part.cache.column(leaf, fieldname))
            self.columns[fieldname] = found
        return found

    def geo(self, searcher) -> list[tuple[tuple[float, float], ...]]:
        """Each docnum's clinic coordinates (deleted documents included)."""
        found = self.columns.get("geo")
        if found is None:
            found = []
            for part, leaf in self._each(searcher):
                found.extend(part.cache.geo(leaf))
            self.columns["geo"] = found
        return found

    def verified_at(self, searcher) -> list[int]:
        return self.column(searcher, "verified_at")

    def names(self, searcher) -> list[str]:
        return self.column(searcher, "sort_name")

    # --- orders: each segment sorted once, merged lazily per generation ----------------

    def _merged(
        self, searcher, name, local_docs, local_key, global_key, *, per_word: bool = False
    ) -> Iterator[int]:
        streams = [
            part.live((part.cache.word_order if per_word else part.cache.order)(
                name, lambda p=part, lf=leaf: local_docs(p, lf), local_key(part, leaf)))
            for part, leaf in self._each(searcher)
        ]  # fmt: skip
        return streams[0] if len(streams) == 1 else heapq.merge(*streams, key=global_key)

    def name_order(self, searcher) -> Iterator[int]:
        names = self.names(searcher)
        return self._merged(
            searcher,
            "name",
            lambda part, leaf: part.cache.term_set(leaf, "kind", PRACTITIONER_KIND),
            lambda part, leaf: part.cache.column(leaf, "sort_name").__getitem__,
            names.__getitem__,
        )

    def recency_key(self, searcher) -> Callable[[int], tuple]:
        """Most recently verified first, then by name: every order's tie-break."""
        verified_at, names = self.verified_at(searcher), self.names(searcher)
        return lambda d: (-verified_at[d], names[d])

    def recency_order(self, searcher) -> Iterator[int]:
        return self._merged(
            searcher,
            "recency",
            lambda part, leaf: part.cache.term_set(leaf, "kind", PRACTITIONER_KIND),
            lambda part, leaf: part.cache.recency_key(leaf),
            self.recency_key(searcher),
        )

    # --- services and free words ---------------------------------------------------------

    def strength(self, searcher, slug: str) -> dict[int, int]:
        """docnum -> how strongly the practitioner offers this service (postings weights)."""
        found = self.strengths.get(slug)
        if found is None:
            found = {}
            for part, leaf in self._each(searcher):
                part.compose(found, part.cache.strength(leaf, slug))
            self.strengths[slug] = found
        return found

    def strength_order(self, searcher, slug: str) -> Iterator[int]:
        weights = self.strength(searcher, slug)
        recency = self.recency_key(searcher)

        def local_key(part, leaf):
            local, tie = part.cache.strength(leaf, slug), part.cache.recency_key(leaf)
            return lambda d: (-local[d], *tie(d))

        return self._merged(
            searcher,
            ("strength", slug),
            lambda part, leaf: part.cache.strength(leaf, slug),
            local_key,
            lambda d: (-weights[d], *recency(d)),
        )

    def scored_matches(self, searcher, key: tuple, query: Query) -> Scored:
        """All documents matching one free word (or phrase) with whoosh's score: whoosh
        scores each segment once; a generation only combines them."""
        found = self.scored.get_(key)
        if found is None:
            scores: dict[int, float] = {}
            doc_frequency = self.doc_frequency(searcher)
            for part, leaf in self._each(searcher):
                part.compose(scores, part.cache.scores(leaf, key, query, doc_frequency))
            found = Scored(key, scores)
            self.scored.put(key, found, weight=len(scores) + 1)
        return found

    def doc_frequency(self, searcher) -> Callable[[str, bytes], int]:
        """A term's document frequency in this generation as whoosh counts it (its postings
        in every segment, deleted documents included), from each segment's postings, read
        once per segment: after a commit only the new segment is looked up, where whoosh's
        ``idf`` would look the term up again in every segment."""
        readers = [(part.cache.postings, leaf.reader()) for part, leaf in self._each(searcher)]
        return lambda fieldname, btext: sum(
            len(postings.term(reader, fieldname, btext)[0]) for postings, reader in readers
        )

    def scored_order(self, searcher, scored: Scored, query: Query) -> Iterator[int]:
        scores = scored.scores
        recency = self.recency_key(searcher)

        def local_key(part, leaf):
            local, tie = part.cache.scores(leaf, scored.key, query), part.cache.recency_key(leaf)
            return lambda d: (-local[d], *tie(d))

        return self._merged(
            searcher,
            ("scored", scored.key),
            lambda part, leaf: part.cache.scores(leaf, scored.key, query),
            local_key,
            lambda d: (-scores[d], *recency(d)),
            per_word=True,
        )

    # --- the verified window -------------------------------------------------------------

    def verified_cut(self, searcher, window: VerifiedWindow) -> tuple:
        """Per segment, where in verified_at order the currently verified documents start
        and end (``window``: ``verification.verified_window``). Cached sets are keyed by it:
        it moves only when someone leaves or enters the window."""
        status = window.status.value
        after, until = epoch_us(window.after), epoch_us(window.until)
        positions = []
        for part, leaf in self._each(searcher):
            values = part.cache.verified_lists(leaf, status)[0]
            positions.append((bisect_right(values, after), bisect_right(values, until)))
        return (status, *positions)

    def verified_set(self, searcher, cut: tuple) -> frozenset[int]:
        found = self.verified_sets.get_(cut)
        if found is None:
            status, positions = cut[0], cut[1:]
            pieces = [
                part.shift(frozenset(part.cache.verified_lists(leaf, status)[1][start:end]))
                for (part, leaf), (start, end) in zip(self._each(searcher), positions, strict=True)
            ]
            found = pieces[0] if len(pieces) == 1 else frozenset().union(*pieces)
            self.verified_sets.put(cut, found)
        return found

    # --- stored fields -------------------------------------------------------------------

    def stored(self, searcher, docnum: int) -> dict:
        """A document's stored fields (kept per segment: they never change there)."""
        for part in reversed(self.parts):
            if docnum >= part.offset:
                local = docnum - part.offset
                found = part.cache.stored.get_(local)
                if found is None:
                    found = searcher.stored_fields(docnum)
                    part.cache.stored.put(local, found)
                return found
        return searcher.stored_fields(docnum)


def _points(value) -> tuple[tuple[float, float], ...]:
    """``"-26.1,28.05;-33.9,18.4"`` -> ((-26.1, 28.05), (-33.9, 18.4))."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    points = []
    for pair in (value or "").split(";"):
        if "," in pair:
            lat, lon = pair.split(",", 1)
            points.append((float(lat), float(lon)))
    return tuple(points)


def first_in(docs: frozenset[int], end: int, order: Iterator[int], key, total: int) -> list[int]:
    """The first ``end`` of ``docs`` in ``order`` (which ``key`` also sorts by): walk the
    order when the set is dense in it (a few steps per result), else a heap over the set."""
    if len(docs) * 8 >= total:
        found = []
        for docnum in order:
            if docnum in docs:
                found.append(docnum)
                if len(found) == end:
                    break
        return found
    return heapq.nsmallest(end, docs, key=key)
