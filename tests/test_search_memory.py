"""What a process keeps between searches stays bounded on a live index: two generations'
caches, the caches of their segments only, match sets bounded in documents, a few hundred
stored documents per segment (docs/benchmarks.md, "Issue 11: worker memory")."""

from __future__ import annotations

from directory.extensions import db
from directory.search import SearchQuery, get_index_keeper, get_search_backend, whoosh
from directory.search.whoosh import caches, search
from tests.test_search_support import register_says, seed


def test_a_live_index_keeps_two_generations_and_only_their_segments(app):
    with app.app_context():
        seed()
        backend = get_search_backend()
        get_index_keeper().rebuild()
        before = backend.search(SearchQuery(text="", include_unverified=True))
        seen_segments = set(backend._segments)
        for n, number in enumerate(("MP0910002", "MP0910012") * 5):  # commits merge segments
            register_says(number, surname=f"Boundson{n}")
            db.session.commit()
            backend.search(SearchQuery(text="", include_unverified=True))
            seen_segments |= set(backend._segments)
            assert len(backend._views) <= search.KEPT_GENERATIONS
            kept = {part.cache.key for view in backend._views.values() for part in view.parts}
            assert set(backend._segments) == kept  # no cache of a segment no view has
        assert len(seen_segments) > len(backend._segments)  # some were dropped
        after = backend.search(SearchQuery(text="", include_unverified=True))
        assert after.total == before.total > 0


def test_match_sets_are_bounded_in_documents(app):
    with app.app_context():
        seed()
        backend = get_search_backend()
        get_index_keeper().rebuild()
        backend.search(SearchQuery(text=""))
        view = next(iter(backend._views.values()))
        assert view.matches.budget == backend.score_budget
        assert view.matches.weight == sum(len(m.docs) + 1 for m in view.matches.values()) > 1
        assert caches.SegmentCache(("g", "s"), 2048, 10).stored.size == caches.STORED_CACHE_DOCS


def test_word_scores_and_their_orders_are_bounded_in_documents(app):
    """Each word searched leaves, in every segment, its scores and its order by score:
    both kept within SEARCH_SCORE_CACHE_DOCS documents; a word evicted is scored again the
    same."""
    words = ["mesotherapy", "fat", "hair", "aesthetic", "family", "weight", "injected"]
    with app.app_context():
        seed()
        get_index_keeper().rebuild()
        roomy, _ = whoosh.create(app)
        expected = [roomy.search(SearchQuery(text=w, include_unverified=True)) for w in words]
        assert sum(r.total for r in expected) > 10
        app.config["SEARCH_SCORE_CACHE_DOCS"] = 2  # fewer than most words' matches
        app.config["SEARCH_CACHE_SIZE"] = 0  # no result pages: every search scores
        tight, _ = whoosh.create(app)
        for _ in range(2):  # the second time, most words were evicted: scored again
            for word, want in zip(words, expected, strict=True):
                got = tight.search(SearchQuery(text=word, include_unverified=True))
                assert [h.registration_number for h in got.hits] == [
                    h.registration_number for h in want.hits
                ]
                assert [h.score for h in got.hits] == [h.score for h in want.hits]
        for segment in tight._segments.values():
            for kept in (segment.scored, segment.word_orders):
                assert len(kept) >= 1  # the last word's is kept even past the budget
                assert kept.weight <= 2 or len(kept) == 1
                assert kept.weight == sum(len(v) + 1 for v in kept.values())


def test_lru_budget_evicts_the_oldest():
    lru = caches.LRU(10, budget=100)
    lru.put("a", 1, weight=60)
    lru.put("b", 2, weight=30)
    lru.put("c", 3, weight=30)  # 120 > 100: "a" goes
    assert list(lru) == ["b", "c"] and lru.weight == 60
