"""Writing a whole segment at once, for a rebuild: the files whoosh's own ``SegmentWriter``
writes, byte for byte, without its per-posting work.

whoosh writes a segment one posting at a time: each token passes through a chain of Python
generators, each posting is pickled into an on-disk sorting pool, merged back, and written
with a per-posting call that also looks the document's field length up again. On the
benchmark's 21,000 documents (3.2 million postings) that was 70 CPU seconds of a rebuild
(profile: docs/benchmarks.md). Here:

- **Analysis per distinct token.** A field whose analyzer is a ``RegexTokenizer`` (or
  ``IDTokenizer``) followed by filters that each transform one token on its own (lower case,
  character folding, stop words, stemming, stripping) is tokenized with the tokenizer's own
  regular expression in C, and each distinct raw token is run once through whoosh's own
  filters, the answer remembered. Positions follow ``StopFilter``'s renumbering rule. Any
  other field (``NUMERIC``, or an analyzer with another filter) goes through whoosh's
  ``field.index`` as usual.
- **Postings kept in memory** as flat arrays per field (document numbers, term ids,
  weights, encoded values), not pickled into a sorting pool, and grouped by term with numpy
  at the end (a stable sort: documents stay in the order they were added).
- **Each term encoded at once**, as ``W3PostingsWriter`` and ``W3FieldWriter`` write it: the
  same pickled blocks of 128 postings, block and term statistics, zlib level and term-index
  rows (``_Field.encode`` follows their code step by step), with the field lengths taken
  from what was just computed. Small blocks' compressions are remembered (``_Compressor``).
- **On two cores**: encoding touches no file, so about half of the fields are encoded by a
  forked child process while the parent encodes the others (``BulkWriter.commit``); the
  parent then writes each field's bytes in whoosh's order (``_Field.emit``: one write per
  file and field, the term rows' postings offsets settled there).

The per-document part (stored fields, lengths, columns) is whoosh's own per-document writer,
called as ``SegmentWriter.add_document`` calls it. ``tests/test_search_bulk.py`` checks that
the files written are identical to whoosh's for the same documents.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import zlib
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from pickle import dumps
from typing import Any

from whoosh import formats
from whoosh.analysis import (
    CharsetFilter,
    IDTokenizer,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
    StripFilter,
)
from whoosh.analysis.acore import Token
from whoosh.analysis.analyzers import CompositeAnalyzer
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Codec, W3FieldWriter, W3TermInfo
from whoosh.fields import FieldType
from whoosh.system import pack_int, pack_long, pack_uint, pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte

from directory.search.whoosh import forked

# Filters that transform each token on its own (no look at the tokens around it).
_PER_TOKEN_FILTERS = (LowercaseFilter, CharsetFilter, StopFilter, StemFilter, StripFilter)
_FORMATS = (formats.Existence, formats.Frequency, formats.Positions)


STOPPED = -1  # the term id of a stop word


class _Tokens:
    """One field's analyzer, applied per distinct raw token (see the module's docstring).
    Raw tokens map to the field's term ids (``STOPPED`` for a stop word)."""

    def __init__(self, tokenizer, filters: list, positions: bool, term_id) -> None:
        self.whole = isinstance(tokenizer, IDTokenizer)
        self.regex = None if self.whole else tokenizer.expression
        self.findall = self.regex is not None and self.regex.groups == 0
        self.filters = filters
        # StopFilter(renumber=True): the first kept token keeps its position, each later
        # kept token takes the next one.
        self.renumber = positions and any(isinstance(f, StopFilter) and f.renumber for f in filters)
        self.term_id = term_id
        self.ids: dict[str, int] = {}

    @classmethod
    def of(cls, field, term_id) -> _Tokens | None:
        """The fast path for this field, or None when whoosh's own ``index`` must do it."""
        fmt = field.format
        if type(field).index is not FieldType.index or type(fmt) not in _FORMATS:
            return None
        if field.separate_spelling() or field.vector:
            return None
        analyzer = field.analyzer
        items = list(analyzer.items) if isinstance(analyzer, CompositeAnalyzer) else [analyzer]
        tokenizer, filters = items[0], items[1:]
        positions = type(fmt) is formats.Positions
        if type(tokenizer) is RegexTokenizer:
            if tokenizer.gaps:
                return None
        elif type(tokenizer) is not IDTokenizer or positions:
            return None
        if not all(type(f) in _PER_TOKEN_FILTERS for f in filters):
            return None
        if sum(type(f) is StopFilter for f in filters) > 1:
            return None
        return cls(tokenizer, filters, positions, term_id)

    def learn(self, raw: str) -> int:
        """The term id of one raw token, through whoosh's own filters."""
        if not self.filters:
            found = self.ids[raw] = self.term_id(raw.encode("utf-8"))
            return found
        token = Token(False, False, removestops=True, mode="index")
        token.text = raw
        token.boost = 1.0
        token.stopped = False
        stream = iter([token])
        for f in self.filters:
            stream = f(stream)
        out = [(t.text, t.boost) for t in stream]
        if len(out) > 1 or (out and out[0][1] != 1.0):
            raise ValueError(f"filter chain is not one token in, one token out: {raw!r}")
        found = self.ids[raw] = self.term_id(out[0][0].encode("utf-8")) if out else STOPPED
        return found

    def terms(self, value: str) -> list[int]:
        """The term id of every raw token of the value, in order."""
        if self.whole:
            raws = [value]
        elif self.findall:
            raws = self.regex.findall(value)
        else:
            raws = [m.group(0) for m in self.regex.finditer(value)]
        try:
            return list(map(self.ids.__getitem__, raws))
        except KeyError:
            ids = self.ids
            return [ids[raw] if raw in ids else self.learn(raw) for raw in raws]

    def positions(self, terms: list[int]) -> dict[int, list[int]]:
        """Each term id with its positions."""
        found: dict[int, list[int]] = {}
        if self.renumber:
            pos = None
            for i, t in enumerate(terms):
                if t == STOPPED:
                    continue
                pos = i if pos is None else pos + 1
                if t in found:
                    found[t].append(pos)
                else:
                    found[t] = [pos]
        else:
            for i, t in enumerate(terms):
                if t == STOPPED:
                    continue
                if t in found:
                    found[t].append(i)
                else:
                    found[t] = [i]
        return found


class _Field:
    """One field's postings in memory, in the order they were added: flat arrays of
    document numbers, term ids and weights (and encoded values), grouped by term at the end.
    """

    def __init__(self, name: str, field) -> None:
        self.name = name
        self.field = field
        self.format = fmt = field.format
        self.kind = type(fmt)
        self.boost = fmt.field_boost if fmt else 1.0
        self.names: list[bytes] = []
        self.ids: dict[bytes, int] = {}
        self.tokens = _Tokens.of(field, self.term_id) if field.indexed else None
        self.fixed = fmt.fixed_value_size() if fmt else 0
        self.keeps_values = self.fixed != 0
        self.docs = array("I")
        self.tids = array("I")
        self.weights = array("d")
        self.values: list[bytes] = []
        self.encoded: dict[Any, bytes] = {}
        self.lengths = array("I") if field.scorable else None
        self.seen: dict[str, tuple] | None = {}  # value -> its postings (see _remember)
        self.hits = self.misses = 0

    def term_id(self, tbytes: bytes) -> int:
        found = self.ids.get(tbytes)
        if found is None:
            found = self.ids[tbytes] = len(self.names)
            self.names.append(tbytes)
        return found

    def index(self, docnum: int, value, fieldboost: float) -> int:
        """Add the value's postings for this document; returns the sum of frequencies."""
        tokens = self.tokens
        if tokens is None or not isinstance(value, str):
            return self._add(docnum, self.field.index(value), fieldboost)
        seen = self.seen if fieldboost == 1.0 else None
        postings = seen.get(value) if seen is not None else None
        if postings is not None:
            self.hits += 1
        else:
            postings = self._postings(tokens, value, self.boost * fieldboost)
            if seen is not None:
                self._remember(seen, value, postings)
        tids, weights, values, length = postings
        self.tids.extend(tids)
        self.weights.extend(weights)
        if values:
            self.values.extend(values)
        self.docs.extend(repeat(docnum, len(tids)))
        return length

    def _postings(self, tokens: _Tokens, value: str, weight: float):
        """(term ids, weights, encoded values, sum of frequencies) of one value."""
        terms = tokens.terms(value)
        kind = self.kind
        if kind is formats.Existence:
            unique = set(terms)
            unique.discard(STOPPED)
            return tuple(unique), (weight,) * len(unique), (), len(unique)
        if kind is formats.Frequency:
            counts = Counter(terms)
            counts.pop(STOPPED, None)
            freqs = tuple(counts.values())
            values = tuple(map(self._frequency, freqs))
        else:
            counts = tokens.positions(terms)
            freqs = tuple(map(len, counts.values()))
            values = tuple(map(self._positions, counts.values()))
        return tuple(counts), tuple([float(n) * weight for n in freqs]), values, sum(freqs)

    def _remember(self, seen: dict, value: str, postings) -> None:
        """Values repeat in some fields (the services offered, places, clinic names, the
        filter keys): their postings are remembered while at least a third of the values
        are repeats; a field of unique values stops remembering."""
        self.misses += 1
        if self.misses > 1000 and self.misses > 2 * self.hits:
            self.seen = None
            return
        if len(seen) < 50_000:
            seen[value] = postings

    def _frequency(self, n: int) -> bytes:
        found = self.encoded.get(n)
        if found is None:
            found = self.encoded[n] = pack_uint(n)
        return found

    def _positions(self, poslist: list[int]) -> bytes:
        key = poslist[0] if len(poslist) == 1 else tuple(poslist)
        found = self.encoded.get(key)
        if found is None:
            found = self.encoded[key] = self.format.encode(poslist)
        return found

    def _add(self, docnum: int, items, fieldboost: float) -> int:
        length = 0
        keeps = self.keeps_values
        term_id = self.term_id
        for tbytes, freq, weight, vbytes in items:
            length += freq
            self.docs.append(docnum)
            self.tids.append(term_id(tbytes))
            self.weights.append(weight * fieldboost)
            if keeps:
                if not vbytes:
                    raise ValueError(f"{self.name}: a posting without a value")
                self.values.append(vbytes)
        return length

    def set_length(self, docnum: int, length: int) -> None:
        lengths = self.lengths
        if lengths is None:
            return
        while len(lengths) <= docnum:
            lengths.append(0)
        lengths[docnum] = byte_to_length(length_to_byte(length)) if length else 0

    def _grouped(self):
        """Per term in whoosh's order (terms by their bytes, documents ascending): its bytes,
        document numbers, their gaps (to the previous posting), weights, weights as float32,
        the documents' field lengths (None for a field without lengths) and values."""
        import numpy as np

        names = self.names
        by_bytes = sorted(range(len(names)), key=names.__getitem__)
        rank = np.empty(len(names), dtype=np.int64)
        rank[by_bytes] = np.arange(len(names))
        ranks = rank[np.frombuffer(self.tids, dtype=np.uint32)]
        order = np.argsort(ranks, kind="stable")  # documents stay ascending within a term
        ranks = ranks[order]
        starts = np.flatnonzero(np.r_[True, ranks[1:] != ranks[:-1]]).tolist()
        ends = [*starts[1:], len(ranks)]
        weights = np.frombuffer(self.weights, dtype=np.float64)[order]
        docs = np.frombuffer(self.docs, dtype=np.uint32)[order].astype(np.int64)
        gaps = np.diff(docs, prepend=0).tolist()
        lengths = None
        if self.lengths is not None:
            known = np.zeros(int(docs.max()) + 1, dtype=np.int64)
            given = np.frombuffer(self.lengths, dtype=np.uint32)[: len(known)]
            known[: len(given)] = given
            lengths = known[docs].tolist()
        docs = docs.tolist()
        singles = weights.astype(np.float32).tolist()
        weights = weights.tolist()
        values = [self.values[i] for i in order.tolist()] if self.values else None
        for term, start, end in zip(by_bytes, starts, ends, strict=True):
            yield (names[term], docs[start:end], gaps[start:end], weights[start:end],
                   singles[start:end], lengths[start:end] if lengths is not None else None,
                   values[start:end] if values is not None else None)  # fmt: skip

    def cost(self) -> float:
        """Estimated seconds ``encode`` takes (measured on the benchmark's rebuild: per
        posting and per term, more with positions)."""
        positions = self.kind is formats.Positions
        per_posting, per_term = (2.7e-6, 40e-6) if positions else (1.0e-6, 19e-6)
        return len(self.tids) * per_posting + len(self.names) * per_term

    def encode(self, fieldid: int, how: _Layout, compress: _Compressor) -> tuple[bytes, list]:
        """Every term's postings, in whoosh's order: what ``W3FieldWriter`` and
        ``W3PostingsWriter`` write for them, one term at a time, as the field's postings
        bytes (from offset 0: nothing in them depends on where they land in the file) and
        its term-index rows ``(key, term info without its extent, start, length, hash)``
        (``emit`` places them). Touches no file, so a forked process can do it."""
        if array("I").itemsize != 4:
            raise RuntimeError("array('I') is not 32 bits on this platform")
        limit, comp, hashfn = how.blocklimit, how.compression, how.hashfn
        prefix = pack_ushort(fieldid)
        out = bytearray()
        rows = []
        fixed = self.fixed
        variable = fixed is None or fixed < 0
        pack_info = W3TermInfo._struct.pack
        for tbytes, ids, gaps, weights, singles, lengths, values in self._grouped():
            n = len(ids)
            startoffset = len(out)
            out += WHOOSH3_HEADER_MAGIC
            total = 0
            minlength = None
            maxlength = 0
            maxweight = 0
            for start in range(0, n, limit):
                end = start + limit
                block = ids[start:end]
                ws = weights[start:end]
                fws = singles[start:end]
                top = max(ws)
                blockweight = top if top > 0 else 0
                lo = None
                hi = 0
                if lengths is not None:
                    ls = lengths[start:end]
                    lo = min(filter(None, ls), default=None)
                    hi = max(ls)
                # W3TermInfo.add_block
                total += sum(fws)
                minlength = lo if minlength is None else min(minlength, lo)
                if hi > maxlength:
                    maxlength = hi
                if blockweight > maxweight:
                    maxweight = blockweight
                # W3PostingsWriter._write_block
                if fws.count(1.0) == len(fws):
                    mini_weights = None
                elif fws.count(fws[0]) == len(fws):
                    mini_weights = fws[0]
                else:
                    mini_weights = tuple(fws)
                if values is None or fixed == 0:
                    mini_values = None
                elif variable:
                    # Distinct objects, as whoosh's own writer has them (a pickle refers
                    # back to an object it has already written).
                    mini_values = tuple([bytes(bytearray(v)) for v in values[start:end]])
                else:
                    mini_values = b"".join(values[start:end])
                deltas = gaps[start:end]  # whoosh's delta_encode: each block from 0
                deltas[0] = block[0]
                data = dumps((tuple(deltas), mini_weights, mini_values), 2)
                if comp:
                    data = compress(data, comp)
                info = dumps(
                    (len(block), block[-1], blockweight, comp,
                     length_to_byte(lo), length_to_byte(hi)),
                    2,
                )  # fmt: skip
                size = len(info) + len(data)
                out += pack_int(-size if end >= n else size)
                out += info
                out += data
            terminfo = pack_info(
                False, total, n, 0 if minlength is None else length_to_byte(minlength),
                length_to_byte(maxlength), maxweight, ids[0], ids[-1],
            )  # fmt: skip
            key = prefix + tbytes
            rows.append((key, terminfo, startoffset, len(out) - startoffset, hashfn(key)))
        return bytes(out), rows

    def emit(self, fieldwriter, fieldid: int, postings: bytes, rows: list) -> None:
        """Write what ``encode`` made where whoosh's ``W3FieldWriter`` would: the postings
        at the end of the postings file, each term's row (its extent now known) in the
        terms file's ordered hash table."""
        fieldwriter.start_field(self.name, self.field)
        if fieldwriter._fieldid != fieldid:
            raise RuntimeError(f"{self.name}: field id {fieldwriter._fieldid}, not {fieldid}")
        postfile = fieldwriter._postfile
        base = postfile.tell()
        tindex = fieldwriter._tindex
        tbase = tindex.dbfile.tell()
        index = tindex.index
        buckets = tindex.buckets
        lastkey = tindex.lastkey
        pack_lengths = _KEY_VALUE_LENGTHS.pack
        out = bytearray()  # the terms file's rows, written at once
        for key, terminfo, start, length, h in rows:
            if key <= lastkey:
                raise ValueError(f"Keys must increase: {lastkey!r}..{key!r}")
            value = terminfo + pack_long(base + start) + pack_int(length)
            pos = tbase + len(out)
            index.append(pos)
            out += pack_lengths(len(key), len(value))
            out += key
            out += value
            buckets[h & 255].append((h, pos))
            lastkey = key
        postfile.write(postings)
        tindex.dbfile.write(bytes(out))
        tindex.lastkey = lastkey
        fieldwriter.finish_field()


_KEY_VALUE_LENGTHS = struct.Struct("!ii")  # whoosh.filedb.filetables._lengths


@dataclass(frozen=True)
class _Layout:
    """What ``encode`` needs of the codec and the terms file: postings per block, zlib
    level, the term index's hash function."""

    blocklimit: int
    compression: int
    hashfn: Callable[[bytes], int]


def _halve(costs: dict[str, float]) -> set[str]:
    """The fields a second process encodes: about half of the estimated work, the largest
    fields dealt out first to whichever side has less."""
    mine = theirs = 0.0
    chosen: set[str] = set()
    for name in sorted(costs, key=lambda n: (-costs[n], n)):
        if theirs < mine:
            chosen.add(name)
            theirs += costs[name]
        else:
            mine += costs[name]
    return chosen


@contextlib.contextmanager
def _encoded_beside(fields: dict[str, _Field], names: set[str], ids: dict[str, int], how):
    """Encode ``names`` in a forked child process while the caller encodes the others;
    yields a function returning the child's ``{name: (postings, rows)}`` (waiting for it).
    The child encodes everything before it sends anything: a full pipe never holds it
    back to the caller's pace."""
    if not names:
        yield dict
        return

    def encode(send) -> None:
        compress = _Compressor()
        send({name: fields[name].encode(ids[name], how, compress) for name in names})

    with forked.beside(encode, "encoding postings") as receive:
        yield lambda: next(receive())


class _Compressor:
    """``zlib.compress``, remembered for small blocks during one rebuild: zlib sets up its
    whole state for each call (about 80 µs on the loaded benchmark machine, 280,000 blocks),
    and most terms of a rebuild are one posting whose block is the same bytes as other
    fields' terms of the same document (pid, number, the sort key). The memory goes with
    the writer."""

    def __init__(self) -> None:
        self.known: dict[tuple[bytes, int], bytes] = {}

    def __call__(self, data: bytes, level: int) -> bytes:
        if len(data) > 64:
            return zlib.compress(data, level)
        found = self.known.get((data, level))
        if found is None:
            if len(self.known) >= 500_000:
                self.known.clear()
            found = self.known[(data, level)] = zlib.compress(data, level)
        return found


class BulkWriter:
    """``add_document`` and ``commit`` over a whoosh ``SegmentWriter`` for a new segment."""

    def __init__(self, writer) -> None:
        if type(writer.codec) is not W3Codec or type(writer.fieldwriter) is not W3FieldWriter:
            raise TypeError(f"the bulk writer writes whoosh's W3 codec, not {writer.codec!r}")
        self.writer = writer
        self.schema = writer.schema
        self.fields = {name: _Field(name, self.schema[name]) for name in self.schema.names()}
        self.checked: set[tuple[str, ...]] = set()

    def add_document(self, **fields: Any) -> None:
        writer = self.writer
        writer._check_state()
        perdoc = writer.perdocwriter
        docnum = writer.docnum
        names = sorted(name for name in fields if not name.startswith("_"))
        plain = len(names) == len(fields)  # no boosts, no separate stored values
        docboost = 1.0 if plain else writer._doc_boost(fields)
        known = tuple(names)
        if known not in self.checked:  # whoosh's check, once per set of field names
            writer._check_fields(self.schema, names)
            self.checked.add(known)
        perdoc.start_doc(docnum)
        try:
            for name in names:
                value = fields[name]
                if value is None:
                    continue
                slot = self.fields[name]
                field = slot.field
                length = 0
                if field.indexed:
                    fieldboost = 1.0 if plain else writer._field_boost(fields, name, docboost)
                    counted = slot.index(docnum, value, fieldboost)
                    if field.scorable:
                        length = counted
                        slot.set_length(docnum, length)
                custom = value if plain else fields.get(f"_stored_{name}", value)
                if field.stored or length:  # ``add_field`` does nothing otherwise
                    perdoc.add_field(name, field, custom if field.stored else None, length)
                column = field.column_type
                if column and custom is not None:
                    perdoc.add_column_value(name, column, field.to_column_value(custom))
        except Exception:
            perdoc.cancel_doc()
            raise
        perdoc.finish_doc()
        writer._added = True
        writer.docnum += 1

    def commit(self, *, fork: bool | None = None, **kwargs: Any) -> None:
        """Write every field's postings, then let whoosh finish the segment. With ``fork``
        (by default: when only this thread runs and there is enough to write), about half
        of the fields are encoded by a forked child process while this one encodes the
        rest: on two cores, the last phase of a rebuild runs on both."""
        fieldwriter = self.writer.fieldwriter
        written = [name for name in sorted(self.fields) if self.fields[name].names]
        fieldmap = fieldwriter._fieldmap
        ids = {}
        for name in written:  # as ``W3FieldWriter.start_field`` will number them
            ids[name] = fieldmap[name] if name in fieldmap else len(fieldmap) + len(ids)
        post = fieldwriter._codec.postings_writer(None)
        how = _Layout(post._blocklimit, post._compression, fieldwriter._tindex.hashfn)
        costs = {name: self.fields[name].cost() for name in written}
        if fork is None:
            fork = threading.active_count() == 1 and sum(costs.values()) > 1.0
        theirs = _halve(costs) if fork and hasattr(os, "fork") else set()
        with _encoded_beside(self.fields, theirs, ids, how) as encoded_there:
            compress = _Compressor()
            encoded = {
                name: self.fields[name].encode(ids[name], how, compress)
                for name in written
                if name not in theirs
            }
            if theirs:
                encoded.update(encoded_there())
        for name in written:
            postings, rows = encoded.pop(name)
            self.fields[name].emit(fieldwriter, ids[name], postings, rows)
        self.fields = {}
        self.writer.commit(**kwargs)

    def cancel(self) -> None:
        self.writer.cancel()
