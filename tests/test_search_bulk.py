"""A rebuild writes its segment in bulk (``directory/search/whoosh/bulk.py``): the files must
be whoosh's own, byte for byte, and a rebuilt index must answer as one whoosh built
document by document."""

from __future__ import annotations

import functools
import os
import random
from datetime import timedelta
from pathlib import Path

import pytest
from whoosh import index as whoosh_index
from whoosh.query import Phrase

from directory.extensions import db
from directory.registry.models import Practitioner
from directory.search import SearchQuery, get_index_keeper
from directory.search.whoosh import bulk as bulk_module
from directory.search.whoosh import store
from directory.search.whoosh.bulk import BulkWriter
from directory.search.whoosh.documents import build_documents, make_schema
from directory.search.whoosh.following import Cursor
from tests.test_search_support import NOW, numbers_of, seed

TRICKY_WORDS = [
    "the", "and", "of", "botox", "Botox", "BOTOX", "injections", "injection", "Müller",
    "Ödegaard", "naïve", "façade", "\uff26\uff35\uff2c\uff2c",
    "co-operate", "x", "a", "I", "élan", "Ærø",
    "under_score", "3.141", "2026", "van", "der", "Merwe", "peels", "peeling", "laser",
    "xqxsepxqx", "ß", "İstanbul", "ﬁne", "hair", "loss", "losing", "acne",
]  # fmt: skip


def _tricky_documents(count: int, first_pid: int) -> list[dict]:
    """Documents whose text exercises what analysis can get wrong: stop words first (the
    renumbered positions), repeated words, accents, case, ligatures, empty values, long
    values (lengths past exact bytes), and common terms with more than one block."""
    rng = random.Random(20261206)
    docs = []
    for i in range(count):

        def text(n: int) -> str:
            return " ".join(rng.choice(TRICKY_WORDS) for _ in range(n))

        long = rng.random() < 0.1
        docs.append({
            "pid": str(first_pid + i),
            "kind": "p",
            "number": f"MP{9900000 + i}",
            "name": f"Dr {text(rng.randint(0, 3))} MP{9900000 + i}",
            "services": text(rng.randint(0, 300 if long else 12)),
            "clinics": " xqxsepxqx ".join(text(2) for _ in range(rng.randint(0, 3))),
            "places": text(rng.randint(0, 4)),
            "description": text(rng.randint(0, 500 if long else 30)),
            "excerpt": text(5),
            "service": ",".join(rng.sample(["botox", "acne", "peels", " laser "], 2)),
            "city": rng.choice(["cape town", "durban", ""]),
            "province": rng.choice(["gauteng", "western cape,gauteng"]),
            "clinic": "",
            "postcode": rng.choice(["8001", "4001,8001", ""]),
            "strength": ",".join(rng.choices(["botox", "acne"], k=rng.randint(0, 5))),
            "status": rng.choice(["active", "suspended"]),
            "pending": rng.choice(["0", "1"]),
            "verified_at": rng.choice([0, 1_700_000_000_000_000 + i * 1_000_003]),
            "sort_name": f"{text(1)}\t{text(2)}\tMP{9900000 + i}",
            "words": " ".join(sorted(set(text(rng.randint(0, 40)).lower().split()))),
            "payload": {"number": f"MP{9900000 + i}", "i": i},
            "digest": f"{i:040x}",
        })  # fmt: skip
    return docs


def _segment_files(path: Path) -> dict[str, bytes]:
    """The segment's files by what follows the segment's random name."""
    files = {}
    for f in path.iterdir():
        if f.suffix == ".toc" or "LOCK" in f.name or f.is_dir():
            continue
        files[f.name.split(".", 1)[1]] = f.read_bytes()
    return files


def _write(path: Path, docs: list[dict], bulk: bool, fork: bool = False) -> dict[str, bytes]:
    path.mkdir()
    ix = whoosh_index.create_in(str(path), make_schema())
    writer = ix.writer(compound=False)
    if bulk:
        writer = BulkWriter(writer)
    for doc in docs:
        writer.add_document(**doc)
    if bulk:
        writer.commit(fork=fork)
    else:
        writer.commit()
    return _segment_files(path)


@pytest.mark.parametrize("fork", [False, True], ids=["one-process", "fields-encoded-beside"])
def test_the_bulk_writer_writes_whooshs_own_files(app, tmp_path, fork):
    """Also with about half of the fields' postings encoded by a forked child process."""
    with app.app_context():
        seed()
        with db.engine.connect() as conn:
            docs = list(build_documents(conn).values())
    assert len(docs) > 10
    docs += _tricky_documents(400, first_pid=100_000)
    whooshs = _write(tmp_path / "whoosh", docs, bulk=False)
    forks, real_fork = [], os.fork
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bulk_module.os, "fork", lambda: forks.append(1) or real_fork())
        bulks = _write(tmp_path / "bulk", docs, bulk=True, fork=fork)
    assert len(forks) == (1 if fork else 0)
    assert {".pst", ".trm", "_stored.col"} <= {"." + k if "." not in k else k for k in whooshs}
    assert sorted(bulks) == sorted(whooshs)
    for name, content in whooshs.items():
        assert bulks[name] == content, name
    # The common words really went past one block of postings.
    reader = whoosh_index.open_dir(str(tmp_path / "bulk")).reader()
    assert reader.doc_frequency("services", b"botox") > 128


def test_every_position_written_is_read_back(tmp_path):
    """Phrase searches read positions back: every gap between a word's repeats must survive
    the index's encoding. (whoosh-ng 5.4 read a value ending in the byte 0x2E, a gap of 46,
    as a pickle and failed: docs/benchmarks.md, "whoosh-reloaded or whoosh-ng".)"""
    field = make_schema()["description"]
    for gap in range(1, 1025):
        for poslist in ([gap], [0, gap], [3, 3 + gap, 3 + 2 * gap]):
            assert field.format.decode_positions(field.format.encode(poslist)) == poslist
    # The same through a written index: a word repeated 46 words apart, found as a phrase.
    filler = " ".join(f"w{i}" for i in range(45))
    docs = [{**doc, "description": text} for doc, text in zip(
        _tricky_documents(2, first_pid=200_000),
        [f"peels {filler} chemical peels", "chemical peels"], strict=True,
    )]  # fmt: skip
    _write(tmp_path / "bulk", docs, bulk=True)
    with whoosh_index.open_dir(str(tmp_path / "bulk")).searcher() as searcher:
        words = [token.text for token in field.analyzer("chemical peels")]
        found = searcher.search(Phrase("description", words), limit=None)
        assert sorted(hit["pid"] for hit in found) == ["200000", "200001"]


def test_a_failure_in_the_process_encoding_postings_is_raised_in_the_commit(tmp_path):
    """The forked child's error reaches the rebuild (which then cancels the writer)."""
    parent = os.getpid()
    encode = bulk_module._Field.encode

    def failing_in_the_child(self, *args):
        if os.getpid() != parent:
            raise ValueError("a broken encoder")
        return encode(self, *args)

    docs = _tricky_documents(50, first_pid=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bulk_module._Field, "encode", failing_in_the_child)
        with pytest.raises(RuntimeError, match="encoding postings failed: ValueError: a broken"):
            _write(tmp_path / "bulk", docs, bulk=True, fork=True)


def test_the_bulk_writer_refuses_an_analyzer_it_cannot_split_per_token(tmp_path):
    """A filter that looks at neighbouring tokens (here: shingles) is left to whoosh."""
    from whoosh.analysis import RegexTokenizer, ShingleFilter
    from whoosh.fields import TEXT, Schema

    schema = Schema(body=TEXT(analyzer=RegexTokenizer() | ShingleFilter(size=2)))
    docs = [{"body": "one two three"}, {"body": "two three four"}]
    for bulk in (False, True):
        path = tmp_path / str(bulk)
        path.mkdir()
        ix = whoosh_index.create_in(str(path), schema)
        writer = ix.writer(compound=False)
        if bulk:
            writer = BulkWriter(writer)
            assert writer.fields["body"].tokens is None
        for doc in docs:
            writer.add_document(**doc)
        writer.commit()
    assert _segment_files(tmp_path / "True") == _segment_files(tmp_path / "False")


QUERIES = [
    SearchQuery(text="botox", include_unverified=True, per_page=100),
    SearchQuery(text="botox", per_page=5, page=2),
    SearchQuery(text="peels", per_page=100),
    SearchQuery(text="injections", include_unverified=True, per_page=100),
    SearchQuery(text="mesotheraphy", per_page=100),
    SearchQuery(text='"chemical peels"', include_unverified=True, per_page=100),
    SearchQuery(text="skin clinic", include_unverified=True, per_page=100),
    SearchQuery(text="acne cape town", include_unverified=True, per_page=100),
    SearchQuery(service="acne", include_unverified=True, sort="name", per_page=100),
    SearchQuery(include_unverified=True, sort="verified", per_page=100),
    SearchQuery(include_unverified=True, sort="name", per_page=100),
    SearchQuery(province="Gauteng", include_unverified=True, per_page=100),
    SearchQuery(city="Cape Town", include_unverified=True, per_page=100),
]


def _rebuilt_answers_like_built_one_by_one(app, monkeypatch) -> None:
    from directory.search import whoosh
    from directory.search.whoosh import documents
    from directory.search.whoosh import index as index_module

    # As under `flask search reindex` (one thread): the documents read in a child process.
    beside = functools.partial(documents.documents_read_beside, fork=True)
    monkeypatch.setattr(index_module, "documents_read_beside", beside)
    with app.app_context():
        seed()
        db.session.commit()
        ids = sorted(db.session.scalars(db.select(Practitioner.id)))
        rebuilt_backend = whoosh.create(app)[0]
        get_index_keeper().rebuild()

        root = Path(app.config["SEARCH_INDEX_DIR"] + "-one-by-one")
        generation, _ = store.new_generation(root)
        store.switch_to(root, generation)
        app.config["SEARCH_INDEX_DIR"] = str(root)
        one_by_one, keeper = whoosh.create(app)
        for start in range(0, len(ids), 4):  # several of whoosh's own segments
            keeper.update_practitioners(ids[start : start + 4])
        ix = whoosh_index.open_dir(str(generation))
        # The rebuild's one other document (its outbox cursor counts in the statistics).
        writer = ix.writer()
        writer.add_document(**Cursor().document())
        writer.commit(merge=False)
        assert len(whoosh_index.open_dir(str(generation))._segments()) > 1

        for query in QUERIES:
            rebuilt = rebuilt_backend.search(query, now=NOW)
            built = one_by_one.search(query, now=NOW)
            assert rebuilt.total == built.total, query
            assert rebuilt.facets == built.facets, query
            assert numbers_of(rebuilt) == numbers_of(built), query
            assert [h.score for h in rebuilt.hits] == pytest.approx(
                [h.score for h in built.hits], rel=1e-9
            ), query
            assert rebuilt.did_you_mean == built.did_you_mean, query
        assert any(rebuilt_backend.search(q, now=NOW).total for q in QUERIES)


def test_a_rebuilt_index_answers_like_one_built_document_by_document(app, monkeypatch):
    _rebuilt_answers_like_built_one_by_one(app, monkeypatch)


def test_a_rebuilt_index_answers_like_one_built_document_by_document_on_postgresql(
    pg_app, monkeypatch
):
    _rebuilt_answers_like_built_one_by_one(pg_app, monkeypatch)


def _documents_read_beside(app) -> None:
    from directory.search.whoosh import documents

    with app.app_context():
        seed()
        db.session.commit()
        with db.engine.connect() as conn:
            expected = list(documents.iter_all_documents(conn))
        assert len(expected) > 10
        # fork=True: also with the test's register server thread running.
        assert list(documents.documents_read_beside(db.engine, fork=True)) == expected
        assert list(documents.documents_read_beside(db.engine, fork=False)) == expected
        # A consumer that stops early does not wait for the child forever.
        beside = documents.documents_read_beside(db.engine, fork=True)
        assert next(beside) == expected[0]
        beside.close()
        # The parent's connections still work after the child has gone.
        assert db.session.scalar(db.select(db.func.count(Practitioner.id))) > 10


def test_documents_are_read_in_a_child_process_beside_the_indexing(app):
    _documents_read_beside(app)


def test_documents_are_read_in_a_child_process_on_postgresql(pg_app):
    _documents_read_beside(pg_app)


def test_a_failure_in_the_reading_child_is_raised_in_the_rebuild(app, monkeypatch):
    from directory.search.whoosh import documents

    def broken(conn, batch=2000):
        yield from ()
        raise ValueError("the database went away")

    with app.app_context():
        seed()
        db.session.commit()
        monkeypatch.setattr(documents, "iter_all_documents", broken)
        with pytest.raises(RuntimeError, match="the database went away"):
            list(documents.documents_read_beside(db.engine, fork=True))


def test_an_in_memory_database_is_read_in_process():
    """A child process opening ``sqlite://`` would find an empty database."""
    from sqlalchemy import create_engine

    from directory.search.whoosh.documents import _in_memory

    assert _in_memory(create_engine("sqlite://"))
    assert _in_memory(create_engine("sqlite:///:memory:"))
    assert not _in_memory(create_engine("sqlite:////tmp/directory.sqlite3"))


def _schema_with_verified_at_indexed():
    """The schema as it was before ``verified_at`` became a column only: a ``NUMERIC`` whose
    16 range tiers per document were indexed as terms."""
    from whoosh.fields import NUMERIC

    schema = make_schema()
    schema.remove("verified_at")
    schema.add("verified_at", NUMERIC(int, bits=64, signed=False, sortable=True))
    return schema


QUERIES_ON_VERIFIED_AT = [
    *QUERIES,
    SearchQuery(sort="verified", per_page=100),
    SearchQuery(text="botox", sort="verified", per_page=100),
    SearchQuery(service="acne", per_page=100),
]


def _same_answers(left, right) -> None:
    for query in QUERIES_ON_VERIFIED_AT:
        a, b = left.search(query, now=NOW), right.search(query, now=NOW)
        assert a.total == b.total, query
        assert a.facets == b.facets, query
        assert numbers_of(a) == numbers_of(b), query
        assert [h.verified for h in a.hits] == [h.verified for h in b.hits], query
        assert [h.verified_at for h in a.hits] == [h.verified_at for h in b.hits], query
        assert [h.score for h in a.hits] == pytest.approx([h.score for h in b.hits], rel=1e-9)


def test_an_index_built_while_verified_at_was_indexed_still_answers_correctly(app):
    """A host upgraded to this version keeps serving the generation it has until its next
    rebuild: one built while ``verified_at`` was a ``NUMERIC`` (its terms indexed, its
    column the same bytes) must answer exactly as a rebuilt one, before and after a change
    is applied to it (whoosh's writer writes a generation with the schema it was made with).
    """
    from whoosh.fields import COLUMN, NUMERIC

    from directory.search import whoosh

    with app.app_context():
        seed()
        db.session.commit()
        rebuilt, rebuilt_keeper = whoosh.create(app)
        rebuilt_keeper.rebuild()
        generation = store.current_generation(Path(app.config["SEARCH_INDEX_DIR"]))
        reader = whoosh_index.open_dir(str(generation)).reader()
        assert isinstance(reader.schema["verified_at"], COLUMN)
        fields_with_terms = {fieldname for fieldname, _ in reader.all_terms()}
        assert "services" in fields_with_terms and "verified_at" not in fields_with_terms

        root = Path(app.config["SEARCH_INDEX_DIR"] + "-indexed-verified-at")
        old, _ = store.new_generation(root)
        ix = whoosh_index.create_in(str(old), _schema_with_verified_at_indexed())
        with db.engine.connect() as conn:
            docs = build_documents(conn)
        writer = ix.writer()
        for doc in docs.values():
            writer.add_document(**doc)
        writer.add_document(**Cursor().document())
        writer.commit()
        store.switch_to(root, old)
        assert store.current_generation(root) == old  # served, not counted as missing
        reader = whoosh_index.open_dir(str(old)).reader()
        assert isinstance(reader.schema["verified_at"], NUMERIC)
        assert len([t for t in reader.all_terms() if t[0] == "verified_at"]) > len(docs)
        app.config["SEARCH_INDEX_DIR"] = str(root)
        served, served_keeper = whoosh.create(app)
        _same_answers(served, rebuilt)

        # A re-verification moves the stale practitioner's verified_at into the window;
        # both indexes take the change through whoosh's writer.
        stale = db.session.scalar(
            db.select(Practitioner).where(Practitioner.registration_number == "MP0910004")
        )
        before = rebuilt.search(SearchQuery(sort="verified", per_page=100), now=NOW)
        assert "MP0910004" not in numbers_of(before)
        stale.verified_at = stale.status_as_of = NOW - timedelta(hours=1)
        db.session.commit()
        served_keeper.update_practitioners([stale.id])
        rebuilt_keeper.update_practitioners([stale.id])
        after = served.search(SearchQuery(sort="verified", per_page=100), now=NOW)
        assert numbers_of(after)[0] == "MP0910004"
        _same_answers(served, rebuilt)
