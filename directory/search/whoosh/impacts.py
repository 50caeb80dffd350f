"""Scoring a free word from its postings as arrays, instead of whoosh's matchers.

A free word is an OR of single terms over the weighted text fields. whoosh scores it one
posting at a time in Python (a matcher tree, a scorer call per posting): for a common word
that is tens of thousands of calls, the largest cost of a first-time query (profile:
docs/benchmarks.md). Here each term's postings of a segment are read once, block by block,
into numpy arrays (document numbers, term frequencies; deleted documents included: every
generation subtracts its own deletions), the field lengths of a segment once per field, and
the word is scored with whoosh's BM25F formula and whoosh's own statistics (``idf`` and
average field length from the top-level searcher, as ``BM25FScorer`` takes them), summed over
the fields. The scores are whoosh's, to the last bit or two of a float sum;
``tests/test_search_impacts.py`` compares them with whoosh's searcher on every word.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from math import log

import numpy as np
from whoosh.query import Or, Term
from whoosh.reading import TermNotFound
from whoosh.scoring import BM25F
from whoosh.util.numeric import byte_to_length

# whoosh's byte -> length decoding of stored field lengths, as a lookup table.
_LENGTHS = np.array([float(byte_to_length(b)) if b else 0.0 for b in range(256)])
_EMPTY = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


def plain_terms(query) -> list[tuple[str, str, float]] | None:
    """(field, text, boost) of a Term or an OR of Terms (no coordination bonus); else None."""
    if isinstance(query, Term):
        return [(query.fieldname, query.text, query.boost)]
    if isinstance(query, Or) and query.boost == 1.0 and not query.scale and not query.minmatch:
        found = []
        for sub in query.subqueries:
            if not isinstance(sub, Term):
                return None
            found.append((sub.fieldname, sub.text, sub.boost))
        return found
    return None


def supports(leaf) -> bool:
    """Whether this searcher scores with plain BM25F (the project's default weighting)."""
    return type(leaf.weighting) is BM25F


class SegmentPostings:
    """A segment's term postings and field lengths as arrays, each read once."""

    def __init__(self) -> None:
        self.terms: dict[tuple[str, bytes], tuple[np.ndarray, np.ndarray]] = {}
        self.lengths: dict[str, np.ndarray] = {}
        self.lock = threading.Lock()

    def term(self, reader, fieldname: str, btext: bytes) -> tuple[np.ndarray, np.ndarray]:
        key = (fieldname, btext)
        found = self.terms.get(key)
        if found is None:
            found = read_postings(reader, fieldname, btext)
            with self.lock:
                if len(self.terms) > 200_000:  # a bound, far above a real vocabulary
                    self.terms.clear()
                self.terms[key] = found
        return found

    def field_lengths(self, reader, fieldname: str) -> np.ndarray:
        found = self.lengths.get(fieldname)
        if found is None:
            found = self.lengths[fieldname] = _read_lengths(reader, fieldname)
        return found


def read_postings(reader, fieldname: str, text: str | bytes) -> tuple[np.ndarray, np.ndarray]:
    """(document numbers, weights) of a term's postings in a segment, deleted documents
    included."""
    if fieldname not in reader.schema:
        return _EMPTY
    btext = text if isinstance(text, bytes) else reader.schema[fieldname].to_bytes(text)
    try:
        matcher = reader._terms.matcher(fieldname, btext, reader.schema[fieldname].format)
    except TermNotFound:
        return _EMPTY
    ids: list[int] = []
    weights: list[float] = []
    if type(matcher).__name__ == "W3LeafMatcher":  # whoosh's own codec: whole blocks
        while matcher.is_active():
            matcher._read_ids()
            matcher._read_weights()
            ids.extend(matcher._ids)
            weights.extend(matcher._weights)
            matcher._next_block()
    else:  # pragma: no cover - another codec: one posting at a time
        while matcher.is_active():
            ids.append(matcher.id())
            weights.append(matcher.weight())
            matcher.next()
    return np.array(ids, dtype=np.int64), np.array(weights, dtype=np.float64)


def _read_lengths(reader, fieldname: str) -> np.ndarray:
    """Every document's length in the field, as whoosh's scorer reads it."""
    count = reader.doc_count_all()
    try:
        column = reader._perdoc._cached_reader(f"_{fieldname}_len", _lengths_column())
        if column is None:
            return np.zeros(count)
        raw = np.fromiter((column[d] for d in range(count)), dtype=np.uint8, count=count)
        return _LENGTHS[raw]
    except Exception:  # pragma: no cover - another codec
        return np.array(
            [float(reader.doc_field_length(d, fieldname, 1) or 0) for d in range(count)]
        )


def _lengths_column():
    from whoosh.codec.whoosh3 import LENGTHS_COLUMN

    return LENGTHS_COLUMN


def score_terms(
    postings: SegmentPostings,
    leaf,
    terms,
    doc_frequency: Callable[[str, bytes], int] | None = None,
) -> dict[int, float]:
    """docnum -> the OR of ``terms`` scored as whoosh's BM25F scores it in ``leaf``.

    ``doc_frequency`` (the generation's, ``GenerationView.doc_frequency``): a term's
    document frequency counted from each segment's postings already read, for whoosh's
    ``idf`` formula; without it, whoosh's searcher looks the term up in every segment,
    again for each new generation."""
    reader = leaf.reader()
    parent = leaf.get_parent()
    weighting = leaf.weighting
    all_ids, all_scores = [], []
    for fieldname, text, boost in terms:
        field = reader.schema[fieldname]
        try:
            btext = field.to_bytes(text)
        except ValueError:
            continue
        ids, tf = postings.term(reader, fieldname, btext)
        if not len(ids):
            continue
        if not field.scorable:  # pragma: no cover - every text field is scorable
            scores = tf.copy()
        else:
            b = weighting._field_B.get(fieldname, weighting.B)
            k1 = weighting.K1
            if doc_frequency is None:
                idf = parent.idf(fieldname, btext)
            else:  # whoosh's WeightingModel.idf, with the same counts
                idf = log(parent.doc_count_all() / (doc_frequency(fieldname, btext) + 1)) + 1
            avgfl = parent.avg_field_length(fieldname) or 1
            fl = postings.field_lengths(reader, fieldname)[ids]
            # bm25(idf, tf, fl, avgfl, B, K1), element-wise, in whoosh's order of operations
            scores = idf * ((tf * (k1 + 1)) / (tf + k1 * ((1 - b) + b * fl / avgfl)))
        if boost != 1.0:
            scores = scores * boost
        all_ids.append(ids)
        all_scores.append(scores)
    if not all_ids:
        return {}
    if len(all_ids) == 1:
        return dict(zip(all_ids[0].tolist(), all_scores[0].tolist(), strict=True))
    ids = np.concatenate(all_ids)
    summed = np.bincount(ids, weights=np.concatenate(all_scores))
    matched = np.unique(ids)
    return dict(zip(matched.tolist(), summed[matched].tolist(), strict=True))


__all__ = ["SegmentPostings", "plain_terms", "read_postings", "score_terms", "supports"]
