"""Free words scored from postings as arrays (``whoosh/impacts.py``) score exactly as whoosh's
searcher does, on one segment and on several with deletions."""

from __future__ import annotations

import pytest
from whoosh.query import Or

from directory.extensions import db
from directory.search import SearchQuery, get_index_keeper, get_search_backend
from directory.search.whoosh import impacts
from directory.search.whoosh.search import _field_terms
from tests.test_search_support import NOW, register_says, seed


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


def _compare_every_word(backend) -> int:
    state = backend._state()
    view = backend._view(state)
    words = sorted(
        {w for part_words, _ in backend._index_words(view, state.searcher) for w in part_words}
    )
    # The generation's document frequencies from each segment's postings (what
    # GenerationView.scored_matches scores with) give whoosh's idf too.
    doc_frequency = view.doc_frequency(state.searcher)
    compared = 0
    for leaf, _offset in state.searcher.leaf_searchers():
        postings = impacts.SegmentPostings()
        reader = leaf.reader()
        deleted = reader.deleted_docs_set if reader.has_deletions() else frozenset()
        for word in [*words, "dr", "nosuchword"]:
            query = Or(_field_terms(word))
            expected = {d: s for s, d in leaf.search(query, limit=None, terms=False).top_n}
            terms = impacts.plain_terms(query)
            assert terms is not None and impacts.supports(leaf)
            for counted in (None, doc_frequency):
                found = impacts.score_terms(postings, leaf, terms, counted)
                found = {d: s for d, s in found.items() if d not in deleted}
                assert set(found) == set(expected), word
                for docnum, score in expected.items():
                    assert abs(found[docnum] - score) <= 1e-12 * max(1.0, abs(score)), word
            compared += 1
    return compared


def test_array_scores_equal_whooshs_on_every_word(app, monkeypatch):
    import directory.search.whoosh.following as following_module

    monkeypatch.setattr(following_module, "MERGE_ON_APPLY", False)  # keep several segments
    with app.app_context():
        seed()
        backend = get_search_backend()
        get_index_keeper().rebuild()
        assert _compare_every_word(backend) > 100
        register_says("MP0910002", surname="Arrayson")  # replaced: deleted in segment one
        db.session.commit()
        register_says("MP0910012", "SUSPENDED")
        db.session.commit()
        assert len(backend._state().searcher.leaf_searchers()) > 1
        assert _compare_every_word(backend) > 100


def test_only_plain_words_take_the_array_path():
    from whoosh.query import And, Phrase, Term

    assert impacts.plain_terms(Term("name", "botha", boost=3.0)) == [("name", "botha", 3.0)]
    assert impacts.plain_terms(Or([Term("name", "a"), Term("places", "b")])) is not None
    assert impacts.plain_terms(Or([Term("name", "a"), Phrase("services", ["b", "c"])])) is None
    assert impacts.plain_terms(And([Term("places", "cape"), Term("places", "town")])) is None
    assert impacts.plain_terms(Or([Term("name", "a")], scale=0.9)) is None


def test_search_results_unchanged_by_the_array_path(app, monkeypatch):
    """The same answers (order and scores) with the array path switched off."""
    queries = [
        SearchQuery(text="injections", include_unverified=True, per_page=100),
        SearchQuery(text="cape town skin", include_unverified=True, per_page=100),
        SearchQuery(text="dr sampleton", include_unverified=True, per_page=100),
        SearchQuery(text='"stubborn fat" mesotherapy', include_unverified=True, per_page=100),
    ]
    with app.app_context():
        seed()
        backend = get_search_backend()
        with_arrays = [backend.search(q, now=NOW) for q in queries]
        monkeypatch.setattr(impacts, "supports", lambda leaf: False)
        from directory.search.whoosh import create

        plain, _ = create(app)
        for query, fast in zip(queries, with_arrays, strict=True):
            slow = plain.search(query, now=NOW)
            assert [h.registration_number for h in fast.hits] == [
                h.registration_number for h in slow.hits
            ], query
            assert [round(h.score, 9) for h in fast.hits] == [round(h.score, 9) for h in slow.hits]
            assert fast.total == slow.total and fast.facets == slow.facets


def test_warm_reads_ahead_what_first_queries_need(app, monkeypatch):
    """After ``warm()`` (gunicorn's master calls it before forking), first queries with
    filters, places and orders read no filter, order or strength postings themselves."""
    with app.app_context():
        seed()
        get_index_keeper().ensure_index()  # the master warms an index the host already has
        backend = get_search_backend()
        backend.warm()
        read = []
        original = impacts.read_postings

        def recording(reader, fieldname, text):
            read.append(fieldname)
            return original(reader, fieldname, text)

        monkeypatch.setattr(impacts, "read_postings", recording)
        for query in [
            SearchQuery(service="acne", city="Cape Town", sort="name", include_unverified=True),
            SearchQuery(text="botox", place="Durban"),
            SearchQuery(sort="verified", per_page=5),
            SearchQuery(text="mesotherapy", province="Gauteng"),
        ]:
            backend.search(query, now=NOW)
        assert not set(read) - {"name", "services", "clinics", "places", "description"}


def test_a_rebuild_does_not_look_for_missing_length_columns_per_posting(app, monkeypatch):
    """whoosh asks for a field length per posting while writing a segment; for the fields
    that store none (keywords, IDs) it used to look for the column file each time."""
    from whoosh.filedb.filestore import FileStorage

    calls = []
    original = FileStorage.file_exists

    def counting(self, name):
        calls.append(name)
        return original(self, name)

    with app.app_context():
        seed()
        monkeypatch.setattr(FileStorage, "file_exists", counting)
        get_index_keeper().rebuild()
        monkeypatch.undo()
        assert len(calls) < 200, len(calls)  # a few per field and segment, not per posting
        backend = get_search_backend()
        results = backend.search(SearchQuery(text="botox", include_unverified=True), now=NOW)
        assert results.total == 4


def test_suggestions_read_each_segments_words_once(app, monkeypatch):
    """The "did you mean" words are read once per segment, never again on a request (they
    used to be re-read in full for the whole index every SEARCH_VOCABULARY_TTL seconds)."""
    from whoosh.reading import IndexReader

    with app.app_context():
        seed()
        backend = get_search_backend()
        backend.vocab_ttl = 0  # SEARCH_VOCABULARY_TTL = 0: names reloaded on every search
        first = backend.search(SearchQuery(text="samplton", include_unverified=True), now=NOW)
        assert first.did_you_mean == "sampleton"  # from the index's own words
        reads = []
        original = IndexReader.iter_field

        def counting(self, fieldname, prefix=""):
            reads.append(fieldname)
            return original(self, fieldname, prefix)

        monkeypatch.setattr(IndexReader, "iter_field", counting)
        again = backend.search(SearchQuery(text="examplestien", include_unverified=True), now=NOW)
        assert again.did_you_mean == "examplestein"
        assert "words" not in reads
