"""Any input: results or a QueryError with a plain message, never anything else."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from directory.search import QueryError, SearchQuery, get_search_backend
from tests.test_search_support import numbers_of, seed

NASTY = [
    "",
    " ",
    '"',
    '""',
    '"unbalanced quote',
    "botox AND fillers",
    "botox OR fillers",
    "NOT botox",
    "AND",
    "OR OR OR",
    "botox*",
    "*",
    "?",
    "bo?ox",
    "name:Sampleton",
    "services:botox",
    "pid:1",
    "kind:cursor",
    "__outbox_cursor__",
    "(botox",
    "botox)",
    "[a TO z]",
    "{a TO z}",
    "botox^10",
    "botox~2",
    "title:(a OR b) AND -c",
    "-",
    "+botox -fillers",
    "\\",
    "\\\\\\",
    "%",
    "'; DROP TABLE practitioners; --",
    "<script>alert(1)</script>",
    "&lt;b&gt;",
    "\x00",
    "botox\x00fillers",
    "\x1b[31mred\x1b[0m",
    "\u200b\u200bbotox\u200b",  # zero-width spaces
    "\u202ebotox",  # right-to-left override
    "\ufeffbotox",
    "\ud800",  # a lone surrogate
    "\uff42\uff4f\uff54\uff4f\uff58",  # full-width
    "BOTOX",
    "Botox™",
    "Müller-Demo",
    "mesothérapie",
    "ботокс",
    "ボトックス",
    "🙂",
    "💉 botox 💉",
    "e\u0301",  # combining accent
    "a" * 300,
    "botox " * 500,
    "x" * 10_240,  # a 10 kB query
    "\n".join(["botox"] * 2000),
    "MP",
    "MP0",
    "MP 0910003 MP 0910001",
    "MPO910003",
    "0910003",
    "12345678901234567890",
    "-1",
    "1e308",
    "NaN",
    "in",
    "in in in",
    "near me",
    "the",
    "in George",
    "botox in",
    "\t\r\n",
    '"botox" "fillers" "a b" "c d" "e f" "g h"',
    '"""',
    "“vampire facial”",
    "\u2019",
]


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


@pytest.fixture
def directory(app):
    with app.app_context():
        seed()
        yield get_search_backend()


def check(backend, **fields) -> None:
    try:
        results = backend.search(SearchQuery(**fields))
    except QueryError as exc:
        message = str(exc)
        assert message.strip(), fields
        assert "Traceback" not in message and len(message) < 300, message
        return
    assert results.total >= len(results.hits)
    assert all(hit.registration_number for hit in results.hits)
    for hit in results.hits:
        assert "<script" not in hit.snippet


@pytest.mark.parametrize("text", NASTY, ids=lambda t: repr(t[:20]))
def test_nasty_text_never_raises_anything_but_query_error(directory, text):
    check(directory, text=text)
    check(directory, text=text, include_unverified=True, sort="name")


@pytest.mark.parametrize("field", ["place", "city", "province", "clinic"])
def test_nasty_filters(directory, field):
    for value in NASTY:
        check(directory, **{field: value})


def test_nasty_service_and_status_filters_are_plain_query_errors(directory):
    for value in NASTY:
        check(directory, service=value)
        check(directory, status=value)


def test_wrong_types_are_query_errors(directory):
    for fields in (
        {"text": 42},
        {"text": b"botox"},
        {"place": ["Durban"]},
        {"service": 3},
        {"page": 1.5},
        {"page": None},
        {"per_page": "20"},
        {"sort": None},
        {"include_unverified": "yes"},
    ):
        check(directory, **fields)


def test_syntax_is_words_not_whoosh_syntax(directory):
    # Field syntax does not reach into fields, and the cursor document is never a hit.
    assert directory.search(SearchQuery(text="kind:cursor", include_unverified=True)).total == 0
    assert numbers_of(directory.search(SearchQuery(text="name:Sampleton"))) == []
    assert numbers_of(directory.search(SearchQuery(text="Sampleton"))) == ["MP0910002"]
    # Boolean words and wildcards are just words (or nothing): the service still counts.
    assert directory.search(SearchQuery(text="botox AND", include_unverified=True)).total == 4
    assert directory.search(SearchQuery(text="botox*", include_unverified=True)).total == 4
    # Full-width and zero-width characters are normalised.
    full_width = "\uff42\uff4f\uff54\uff4f\uff58"
    assert directory.search(SearchQuery(text=full_width, include_unverified=True)).total == 4
    assert directory.search(SearchQuery(text="\u200bbotox", include_unverified=True)).total == 4


def test_a_ten_kilobyte_query_uses_its_beginning(directory):
    results = directory.search(SearchQuery(text="mesotherapy " + "x" * 10_240))
    assert "truncated" in results.understood
    results = directory.search(SearchQuery(text="botox " * 2000, include_unverified=True))
    assert results.total == 4


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    text=st.text(max_size=60),
    place=st.text(max_size=20),
    page=st.integers(min_value=-2, max_value=5),
    per_page=st.integers(min_value=-1, max_value=120),
    sort=st.sampled_from(["relevance", "name", "verified", "bogus"]),
)
def test_fuzzed_queries(directory, text, place, page, per_page, sort):
    check(directory, text=text, place=place, page=page, per_page=per_page, sort=sort)


def test_random_mixtures_of_real_words_and_junk(directory):
    rng = random.Random(4)
    vocabulary = [
        "botox", "mesotherapy", "in", "Durban", "Cape", "Town", '"', "AND", "*", ":", "MP",
        "0910003", "hair", "loss", "NOT", "(", ")", "-", "george", "peel", "\x00", "é",
    ]  # fmt: skip
    for _ in range(300):
        words = rng.choices(vocabulary, k=rng.randint(0, 8))
        glue = rng.choice([" ", "", "  ", "\t"])
        check(directory, text=glue.join(words), include_unverified=rng.random() < 0.5)
