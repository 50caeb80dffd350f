"""What a search reads from the index, cached so that a small index commit costs little.

Every outbox apply is a whoosh commit: old versions of the changed documents are marked
deleted where they are, new versions go into a small new segment at the end. The first
segment (after a rebuild: nearly every document) keeps its files and its document numbers
for ever; only its deletions grow. So:

- ``BaseCache`` holds what the first segment says (document sets per filter value, column
  values, service strengths, per-word scores, orders), computed once per segment and shared
  by every later generation and every thread of the process;
- ``GenerationView`` composes, per generation: the base's answer minus the documents
  deleted since, plus what the few documents of the later segments say. Its own caches
  (plans, match sets, result pages) start empty with each generation.

Document numbers are the generation's global numbers; the first segment starts at 0, so
its local numbers are global ones.
"""

from __future__ import annotations

import heapq
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from whoosh.query import Query
from whoosh.reading import TermNotFound

from directory.registry.statuses import Status
from directory.search.documents import PRACTITIONER_KIND


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


# --- reading one segment ---------------------------------------------------------------


def _term_docs(leaf, offset: int, fieldname: str, value: str) -> list[int]:
    try:
        matcher = leaf.reader().postings(fieldname, value)
    except TermNotFound:
        return []
    return [docnum + offset for docnum in matcher.all_ids()]


def _term_weights(leaf, offset: int, fieldname: str, value: str) -> dict[int, int]:
    try:
        matcher = leaf.reader().postings(fieldname, value)
    except TermNotFound:
        return {}
    found = {}
    while matcher.is_active():
        found[matcher.id() + offset] = int(matcher.weight())
        matcher.next()
    return found


def _column(leaf, fieldname: str) -> list:
    return list(leaf.reader().column_reader(fieldname))


def _scores(leaf, offset: int, query: Query) -> dict[int, float]:
    results = leaf.search(query, limit=None, terms=False)
    return {docnum + offset: score for score, docnum in results.top_n}


def _recency_key(verified_at: list[int], names: list[str]):
    return lambda d: (-verified_at[d], names[d])


class BaseCache:
    """What the first segment of an index holds. Its files never change, so nothing here
    goes stale; documents deleted later are subtracted by each ``GenerationView``."""

    def __init__(self, key: tuple[str, str], size: int, score_budget: int) -> None:
        self.key = key
        self.size = size
        self.term_sets: dict[tuple[str, str], frozenset[int]] = {}
        self.columns: dict[str, list] = {}
        self.per_doc: dict[str, list[tuple[str, ...]]] = {}
        self.strengths: dict[str, dict[int, int]] = {}
        self.orders: dict[tuple, list[int]] = {}
        self.scored: LRU = LRU(100_000, budget=score_budget)
        self.stored: LRU = LRU(50_000 if size else 0)
        self.verified: tuple[list[int], list[int]] | None = None
        self.lock = threading.Lock()

    def term_set(self, leaf, fieldname: str, value: str) -> frozenset[int]:
        found = self.term_sets.get((fieldname, value))
        if found is None:
            found = frozenset(_term_docs(leaf, 0, fieldname, value))
            self.term_sets[(fieldname, value)] = found
        return found

    def column(self, leaf, fieldname: str) -> list:
        found = self.columns.get(fieldname)
        if found is None:
            found = _column(leaf, fieldname)
            self.columns[fieldname] = found
        return found


@dataclass
class Scored:
    """One free word's (or phrase's) matches in a generation: docnum -> whoosh score."""

    scores: dict[int, float]
    base_scores: dict[int, float]  # the first segment's, deleted documents included
    base_order: list[int]
    tail_order: list[int]


@dataclass
class GenerationView:
    """A generation's view: base answers minus deletions, plus the later segments."""

    key: tuple[str, int]
    base: BaseCache
    deleted: frozenset[int]  # documents of the first segment deleted in this generation
    size: int
    score_budget: int
    term_sets: dict[tuple[str, str], frozenset[int]] = field(default_factory=dict)
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    per_doc: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    columns: dict[str, list] = field(default_factory=dict)
    strengths: dict[str, dict[int, int]] = field(default_factory=dict)
    tail_orders: dict[tuple, list[int]] = field(default_factory=dict)
    tail_verified: tuple[list[int], list[int]] | None = None
    verified_sets: LRU = field(default_factory=lambda: LRU(8))
    plans: LRU = field(init=False)
    matches: LRU = field(init=False)
    results: LRU = field(init=False)
    scored: LRU = field(init=False)

    def __post_init__(self) -> None:
        self.plans = LRU(self.size)
        self.matches = LRU(self.size)
        self.results = LRU(self.size)
        self.scored = LRU(100_000, budget=self.score_budget)

    @staticmethod
    def leaves(searcher) -> tuple[Any, list[tuple[Any, int]]]:
        """The first segment's searcher, and the later ones with their offsets."""
        leaves = list(searcher.leaf_searchers())
        return leaves[0][0], [(leaf, offset) for leaf, offset in leaves[1:]]

    # --- document sets -----------------------------------------------------------------

    def term_set(self, searcher, fieldname: str, value: str) -> frozenset[int]:
        found = self.term_sets.get((fieldname, value))
        if found is None:
            base_leaf, tail = self.leaves(searcher)
            found = self.base.term_set(base_leaf, fieldname, value)
            if self.deleted:
                found = found - self.deleted
            extra = [d for leaf, offset in tail for d in _term_docs(leaf, offset, fieldname, value)]
            if extra:
                found = found | frozenset(extra)
            self.term_sets[(fieldname, value)] = found
        return found

    def all_docs(self, searcher) -> frozenset[int]:
        return self.term_set(searcher, "kind", PRACTITIONER_KIND)

    def field_values(self, searcher, fieldname: str) -> tuple[str, ...]:
        found = self.values.get(fieldname)
        if found is None:
            found = tuple(searcher.reader().field_terms(fieldname))
            self.values[fieldname] = found
        return found

    def doc_values(self, searcher, fieldname: str) -> list[tuple[str, ...]]:
        """docnum -> the field's values (services, cities), for per-document facet counts."""
        found = self.per_doc.get(fieldname)
        if found is None:
            base_leaf, tail = self.leaves(searcher)
            base = self.base.per_doc.get(fieldname)
            if base is None:
                base = _per_doc(
                    base_leaf.reader().doc_count_all(),
                    [
                        (value, self.base.term_set(base_leaf, fieldname, value))
                        for value in self.field_values(searcher, fieldname)
                    ],
                )
                self.base.per_doc[fieldname] = base
            found = list(base)
            found.extend([()] * (searcher.reader().doc_count_all() - len(found)))
            for value in self.field_values(searcher, fieldname):
                for leaf, offset in tail:
                    for docnum in _term_docs(leaf, offset, fieldname, value):
                        found[docnum] = (*found[docnum], value)
            self.per_doc[fieldname] = found
        return found

    def column(self, searcher, fieldname: str) -> list:
        """The column's value for every docnum of the generation (deleted ones included)."""
        found = self.columns.get(fieldname)
        if found is None:
            base_leaf, tail = self.leaves(searcher)
            found = list(self.base.column(base_leaf, fieldname))
            for leaf, _ in tail:
                found.extend(_column(leaf, fieldname))
            self.columns[fieldname] = found
        return found

    def verified_at(self, searcher) -> list[int]:
        return self.column(searcher, "verified_at")

    def names(self, searcher) -> list[str]:
        return self.column(searcher, "sort_name")

    # --- orders ------------------------------------------------------------------------

    def _order(self, searcher, name, docs_fn, key) -> Iterator[int]:
        """Documents in ``key`` order: the first segment's part sorted once per segment,
        the later segments' part sorted per generation, merged lazily. ``key`` must give
        deleted documents of the first segment their old place."""
        count = self.base_count(searcher)
        base = self.base.orders.get(name)
        if base is None:
            base = sorted((d for d in docs_fn() if d < count), key=key)
            self.base.orders[name] = base
        tail = self.tail_orders.get(name)
        if tail is None:
            tail = sorted((d for d in docs_fn() if d >= count), key=key)
            self.tail_orders[name] = tail
        return heapq.merge(base, tail, key=key) if tail else iter(base)

    def base_count(self, searcher) -> int:
        base_leaf, _ = self.leaves(searcher)
        return base_leaf.reader().doc_count_all()

    def name_order(self, searcher) -> Iterator[int]:
        names = self.names(searcher)
        return self._order(searcher, "name", lambda: self.all_docs(searcher), names.__getitem__)

    def recency_key(self, searcher):
        """Most recently verified first, then by name: every order's tie-break."""
        return _recency_key(self.verified_at(searcher), self.names(searcher))

    def recency_order(self, searcher) -> Iterator[int]:
        return self._order(
            searcher, "recency", lambda: self.all_docs(searcher), self.recency_key(searcher)
        )

    # --- services and free words ---------------------------------------------------------

    def strength(self, searcher, slug: str) -> dict[int, int]:
        """docnum -> how strongly the practitioner offers this service (postings weights)."""
        found = self.strengths.get(slug)
        if found is None:
            base_leaf, tail = self.leaves(searcher)
            base = self.base.strengths.get(slug)
            if base is None:
                base = _term_weights(base_leaf, 0, "strength", slug)
                self.base.strengths[slug] = base
            found = {d: w for d, w in base.items() if d not in self.deleted}
            for leaf, offset in tail:
                found.update(_term_weights(leaf, offset, "strength", slug))
            self.strengths[slug] = found
        return found

    def strength_order(self, searcher, slug: str) -> Iterator[int]:
        weights = self.strength(searcher, slug)
        old = self.base.strengths.get(slug, {})
        recency = self.recency_key(searcher)

        def key(d: int) -> tuple:
            return (-(weights[d] if d in weights else old.get(d, 0)), *recency(d))

        return self._order(searcher, ("strength", slug), lambda: weights, key)

    def scored_matches(self, searcher, key: tuple, query: Query) -> Scored:
        """All documents matching one free word (or phrase) with whoosh's score: whoosh
        scores the first segment once per segment, the later segments per generation."""
        found = self.scored.get_(key)
        if found is not None:
            return found
        base_leaf, tail = self.leaves(searcher)
        base = self.base.scored.get_(key)
        if base is None:
            scores = _scores(base_leaf, 0, query)
            recency = self.recency_key(searcher)
            order = sorted(scores, key=lambda d: (-scores[d], *recency(d)))
            base = (scores, order)
            self.base.scored.put(key, base, weight=len(scores) + 1)
        base_scores, base_order = base
        scores = {d: s for d, s in base_scores.items() if d not in self.deleted}
        tail_scores: dict[int, float] = {}
        for leaf, offset in tail:
            tail_scores.update(_scores(leaf, offset, query))
        scores.update(tail_scores)
        recency = self.recency_key(searcher)
        tail_order = sorted(tail_scores, key=lambda d: (-scores[d], *recency(d)))
        found = Scored(scores, base_scores, base_order, tail_order)
        self.scored.put(key, found, weight=len(scores) + 1)
        return found

    def scored_order(self, searcher, scored: Scored) -> Iterator[int]:
        recency = self.recency_key(searcher)
        scores, old = scored.scores, scored.base_scores
        if not scored.tail_order:
            return iter(scored.base_order)

        def key(d: int) -> tuple:
            return (-(scores[d] if d in scores else old.get(d, 0.0)), *recency(d))

        return heapq.merge(scored.base_order, scored.tail_order, key=key)

    # --- the verified window -------------------------------------------------------------

    def _verified_lists(self, searcher) -> tuple[tuple[list[int], list[int]], ...]:
        base_leaf, tail = self.leaves(searcher)
        if self.base.verified is None:
            with self.base.lock:
                if self.base.verified is None:
                    active = self.base.term_set(base_leaf, "status", Status.ACTIVE.value)
                    clear = self.base.term_set(base_leaf, "pending", "0")
                    values = self.base.column(base_leaf, "verified_at")
                    pairs = sorted((values[d], d) for d in active & clear if values[d] > 0)
                    self.base.verified = ([v for v, _ in pairs], [d for _, d in pairs])
        if self.tail_verified is None:
            values = self.verified_at(searcher)
            active = [
                d for leaf, offset in tail for d in _term_docs(leaf, offset, "status", "active")
            ]
            clear = {d for leaf, offset in tail for d in _term_docs(leaf, offset, "pending", "0")}
            pairs = sorted((values[d], d) for d in active if d in clear and values[d] > 0)
            self.tail_verified = ([v for v, _ in pairs], [d for _, d in pairs])
        return self.base.verified, self.tail_verified

    def verified_cut(self, searcher, cutoff_us: int) -> tuple[int, int]:
        """Where, in verified_at order, the currently verified documents start (first
        segment, later segments). Cached sets are keyed by it: it moves only when someone
        leaves the window."""
        (base_values, _), (tail_values, _) = self._verified_lists(searcher)
        return bisect_right(base_values, cutoff_us), bisect_right(tail_values, cutoff_us)

    def verified_set(self, searcher, cut: tuple[int, int]) -> frozenset[int]:
        found = self.verified_sets.get_(cut)
        if found is None:
            (_, base_docs), (_, tail_docs) = self._verified_lists(searcher)
            found = frozenset(base_docs[cut[0] :])
            if self.deleted:
                found = found - self.deleted
            if tail_docs[cut[1] :]:
                found = found | frozenset(tail_docs[cut[1] :])
            self.verified_sets.put(cut, found)
        return found

    # --- stored fields -------------------------------------------------------------------

    def stored(self, searcher, docnum: int) -> dict:
        """A document's stored fields (kept per first segment: they never change there)."""
        found = self.base.stored.get_(docnum)
        if found is None:
            found = searcher.stored_fields(docnum)
            base_leaf, _ = self.leaves(searcher)
            if docnum < base_leaf.reader().doc_count_all():
                self.base.stored.put(docnum, found)
        return found


def _per_doc(count: int, sets: list[tuple[str, frozenset[int]]]) -> list[tuple[str, ...]]:
    lists: list[list[str]] = [[] for _ in range(count)]
    for value, docs in sets:
        for docnum in docs:
            lists[docnum].append(value)
    return [tuple(values) for values in lists]


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
