"""Compound segments read from their memory map (``whoosh/mapped.py``): whoosh reads exactly
what it read from its own heap copy, and the segment's files are no longer copied."""

from __future__ import annotations

import io
import pickle

import pytest
from whoosh import fields, index
from whoosh.filedb import compound
from whoosh.query import Or, Prefix, Term

from directory.search.whoosh import mapped


def test_view_reader_reads_as_bytesio_does():
    data = pickle.dumps({"a": [1, 2, 3]}) + b"line one\nline two\nlast" + bytes(range(256))
    ops = [
        ("read", 5), ("tell",), ("seek", 0, io.SEEK_SET), ("pickle",), ("tell",),
        ("readline", -1), ("readline", 4), ("readline", -1), ("read", 3),
        ("seek", -10, io.SEEK_END), ("read", 100), ("read", 5), ("tell",),
        ("seek", 3, io.SEEK_SET), ("seek", 7, io.SEEK_CUR), ("read", -1), ("read", 1),
        ("seek", len(data) + 50, io.SEEK_SET), ("read", 4), ("tell",), ("readline", -1),
        ("seek", 2, io.SEEK_SET), ("readinto", 6), ("tell",), ("read", None),
    ]  # fmt: skip
    for source in (memoryview(data), data):
        expected, found = io.BytesIO(data), mapped.ViewReader(source)
        for op in ops:
            results = []
            for f in (expected, found):
                if op[0] == "pickle":
                    results.append(pickle.load(f))
                elif op[0] == "readinto":
                    buf = bytearray(op[1])
                    results.append((f.readinto(buf), bytes(buf)))
                else:
                    results.append(getattr(f, op[0])(*op[1:]))
            assert results[0] == results[1], op
    with pytest.raises(ValueError):
        mapped.ViewReader(data).seek(-1)


def _build(path, count: int = 3000):
    schema = fields.Schema(
        id=fields.ID(stored=True, unique=True),
        body=fields.TEXT(stored=True),
        tag=fields.KEYWORD(stored=True),
        rank=fields.NUMERIC(stored=True, sortable=True),
    )
    ix = index.create_in(str(path), schema)
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
    ]
    with ix.writer() as writer:  # one compound segment (whoosh's default)
        for n in range(count):
            body = " ".join(words[(n * k) % len(words)] for k in range(1, 2 + n % 9))
            writer.add_document(
                id=f"d{n}", body=f"{body} n{n % 97}", tag=words[n % 5], rank=(n * 7919) % 1000
            )
    return ix


def _answers(ix) -> list:
    with ix.searcher() as searcher:
        found = []
        for query in (
            Term("body", "alpha"),
            Or([Term("body", "gamma"), Term("tag", "beta")]),
            Prefix("body", "n1"),
            Term("tag", "delta"),
        ):
            results = searcher.search(query, limit=None, sortedby="rank")
            found.append([(hit.docnum, hit["id"], hit.score, hit["rank"]) for hit in results])
            results = searcher.search(query, limit=25)
            found.append([(hit.docnum, hit.score, dict(hit)) for hit in results])
        reader = searcher.reader()
        found.append(list(reader.column_reader("rank")))
        found.append([reader.doc_field_length(d, "body") for d in range(0, 3000, 37)])
        found.append(list(reader.lexicon("body")))
        return found


def test_compound_segments_read_the_same_without_a_copy(tmp_path, monkeypatch):
    ix = _build(tmp_path)
    assert any(name.endswith(".seg") for name in ix.storage.list())  # a compound segment
    mapped.install()
    with ix.searcher() as searcher:
        opened = searcher.reader()._terms._postfile
        assert isinstance(opened, mapped.MappedFile)
        assert isinstance(opened.file, mapped.ViewReader)  # not io.BytesIO: no copy
    ours = _answers(index.open_dir(str(tmp_path)))
    monkeypatch.setattr(compound.CompoundStorage, "open_file", mapped._whoosh_open_file)
    with ix.searcher() as searcher:
        assert isinstance(searcher.reader()._terms._postfile.file, io.BytesIO)  # whoosh's copy
    assert _answers(index.open_dir(str(tmp_path))) == ours
    assert len(ours[0]) > 100
