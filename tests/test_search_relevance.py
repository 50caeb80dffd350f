"""Relevance: a fixed set of queries and the listings that must come first.

The directory is the fictional one in tests/test_search_support.py. Each case names the
practitioners that must fill the top of the results (in any order among themselves when
given as a set, in exactly this order when given as a list) and, where it matters, who must
rank below them.
"""

from __future__ import annotations

import pytest

from directory.search import SearchQuery, get_search_backend
from tests.test_search_support import NOW, numbers_of, seed

CASES = [
    # (query, must come first, must come after them (or None), why)
    (
        SearchQuery(text="mesotherapy"),
        ["MP0910001"],
        ["MP0910002"],
        "the specialist (two clinics, writes about it) above a long menu that lists it",
    ),
    (
        SearchQuery(text="botox", include_unverified=True),
        {"MP0910004", "MP0910005", "MP0910011"},
        ["MP0910002"],
        "those who describe botox (or anti-wrinkle injections) above a mere listing",
    ),
    (
        SearchQuery(text="hair loss", include_unverified=True),
        {"MP0910001", "MP0910006"},
        None,
        "a synonym of hair regrowth; both describe it",
    ),
    (SearchQuery(text="Naidoo"), ["MP0910003"], None, "a surname"),
    (SearchQuery(text="naidoo-fictional chandra"), ["MP0910003"], None, "full name"),
    (
        SearchQuery(text='"vampire facial"', include_unverified=True),
        ["MP0910006"],
        ["MP0910002"],
        "a quoted synonym of PRP: the one who mentions it first",
    ),
    (
        SearchQuery(text="knee injections"),
        ["MP0910007"],
        None,
        "free words from a description",
    ),
    (
        SearchQuery(text="chemical peels"),
        {"MP0910009", "MP0910012"},
        ["MP0910002"],
        "named in their descriptions, only listed by the long menu",
    ),
    (
        SearchQuery(text="harbour skin", include_unverified=True),
        {"MP0910001", "MP0910004", "MP0910007"},
        None,
        "a clinic's name finds who works there",
    ),
    (SearchQuery(text="MP 0910009"), ["MP0910009"], None, "a registration number"),
    (
        SearchQuery(text="mesotheraphy durban"),
        ["MP0910001"],
        None,
        "misspelt service in a city",
    ),
    (
        SearchQuery(text="general practice", place="George"),
        ["MP0910008"],
        None,
        "service in the where box's town",
    ),
    (SearchQuery(text="weight loss"), ["MP0910003"], None, "a service by its name"),
    (
        SearchQuery(text="pigmentation melasma"),
        ["MP0910012"],
        None,
        "a service and a free word",
    ),
    (
        SearchQuery(text="sports injuries shoulder"),
        ["MP0910007"],
        None,
        "service plus a word from the description",
    ),
]


@pytest.fixture(scope="module")
def backend_and_app(tmp_path_factory, module_database_url):
    """The directory on SQLite, then on PostgreSQL: one index per database."""
    from directory import create_app
    from directory.extensions import db

    base = tmp_path_factory.mktemp("relevance")
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": module_database_url,
            "SEARCH_INDEX_DIR": str(base / "index"),
        }
    )
    with app.app_context():
        db.create_all()
        seed()
        yield get_search_backend()
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize(
    "query,first,after,why", CASES, ids=[c[0].text or c[0].place for c in CASES]
)
def test_must_come_first(backend_and_app, query, first, after, why):
    results = backend_and_app.search(query, now=NOW)
    ranked = numbers_of(results)
    head = ranked[: len(first)]
    if isinstance(first, list):
        assert head == first, (why, ranked)
    else:
        assert set(head) == first, (why, ranked)
    if after:
        for number in after:
            assert number in ranked, (why, ranked)
            assert ranked.index(number) >= len(first), (why, ranked)


def test_scores_decrease_down_the_page(backend_and_app):
    results = backend_and_app.search(SearchQuery(text="botox", include_unverified=True), now=NOW)
    scores = [hit.score for hit in results.hits]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0
