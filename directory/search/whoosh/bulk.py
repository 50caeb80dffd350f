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
- **Postings kept in memory** per field and term (document numbers and weights as arrays),
  not pickled into a sorting pool: a rebuild adds documents in order, so each term's list is
  already sorted.
- **Postings written a block at a time** through whoosh's own postings writer (its block
  format, statistics, compression and term index), with the field lengths taken from what
  was just computed.

The per-document part (stored fields, lengths, columns) is whoosh's own per-document writer,
called as ``SegmentWriter.add_document`` calls it. ``tests/test_search_bulk.py`` checks that
the files written are identical to whoosh's for the same documents.
"""

from __future__ import annotations

import zlib
from array import array
from collections import Counter
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
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3TermInfo
from whoosh.fields import FieldType
from whoosh.system import pack_int, pack_long, pack_uint, pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.util.numlists import delta_encode

# Filters that transform each token on its own (no look at the tokens around it).
_PER_TOKEN_FILTERS = (LowercaseFilter, CharsetFilter, StopFilter, StemFilter, StripFilter)
_FORMATS = (formats.Existence, formats.Frequency, formats.Positions)


class _Tokens:
    """One field's analyzer, applied per distinct raw token (see the module's docstring)."""

    def __init__(self, tokenizer, filters: list, positions: bool) -> None:
        self.whole = isinstance(tokenizer, IDTokenizer)
        self.regex = None if self.whole else tokenizer.expression
        self.findall = self.regex is not None and self.regex.groups == 0
        self.filters = filters
        # StopFilter(renumber=True): the first kept token keeps its position, each later
        # kept token takes the next one.
        self.renumber = positions and any(
            isinstance(f, StopFilter) and f.renumber for f in filters
        )
        self.terms: dict[str, bytes | None] = {}

    @classmethod
    def of(cls, field) -> _Tokens | None:
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
        return cls(tokenizer, filters, positions)

    def term(self, raw: str) -> bytes | None:
        """The indexed term of one raw token (None: a stop word)."""
        found = self.terms.get(raw, False)
        if found is not False:
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
        term = out[0][0].encode("utf-8") if out else None
        self.terms[raw] = term
        return term

    def split(self, value: str) -> list[str]:
        if self.whole:
            return [value]
        if self.findall:
            return self.regex.findall(value)
        return [m.group(0) for m in self.regex.finditer(value)]

    def positions(self, raws: list[str]) -> dict[bytes, list[int]]:
        """Each indexed term of the raw tokens with its positions (every raw token's term
        already known)."""
        term = self.terms.__getitem__
        found: dict[bytes, list[int]] = {}
        if self.renumber:
            pos = None
            for i, raw in enumerate(raws):
                t = term(raw)
                if t is None:
                    continue
                pos = i if pos is None else pos + 1
                if t in found:
                    found[t].append(pos)
                else:
                    found[t] = [pos]
        else:
            for i, raw in enumerate(raws):
                t = term(raw)
                if t is None:
                    continue
                if t in found:
                    found[t].append(i)
                else:
                    found[t] = [i]
        return found


class _Field:
    """One field's postings in memory: term -> (document numbers, weights, values)."""

    def __init__(self, name: str, field) -> None:
        self.name = name
        self.field = field
        self.format = fmt = field.format
        self.kind = type(fmt)
        self.boost = fmt.field_boost if fmt else 1.0
        self.tokens = _Tokens.of(field) if field.indexed else None
        self.fixed = fmt.fixed_value_size() if fmt else 0
        self.keeps_values = self.fixed != 0
        self.postings: dict[bytes, tuple[array, array, list[bytes]]] = {}
        self.encoded: dict[Any, bytes] = {}
        self.lengths = array("I") if field.scorable else None

    def index(self, docnum: int, value, fieldboost: float) -> int:
        """Add the value's postings for this document; returns the sum of frequencies."""
        tokens = self.tokens
        if tokens is None or not isinstance(value, str):
            return self._add(docnum, self.field.index(value), fieldboost)
        known = tokens.terms
        raws = tokens.split(value)
        for raw in raws:
            if raw not in known:
                tokens.term(raw)
        kind = self.kind
        if kind is formats.Positions:
            return self._add(docnum, self._positions(tokens.positions(raws)), fieldboost)
        counts = Counter(map(known.__getitem__, raws))
        counts.pop(None, None)
        weight = self.boost * fieldboost
        if kind is formats.Existence:
            return self._add_same(docnum, counts, weight, b"", 1)
        encoded = self.encoded
        postings = self.postings
        length = 0
        for t, n in counts.items():
            vbytes = encoded.get(n)
            if vbytes is None:
                vbytes = encoded[n] = pack_uint(n)
            entry = postings.get(t)
            if entry is None:
                entry = postings[t] = (array("I"), array("d"), [])
            entry[0].append(docnum)
            entry[1].append(float(n) * weight)
            entry[2].append(vbytes)
            length += n
        return length

    def _positions(self, found: dict[bytes, list[int]]):
        encoded = self.encoded
        encode = self.format.encode
        fb = self.boost
        for t, poslist in found.items():
            key = poslist[0] if len(poslist) == 1 else tuple(poslist)
            vbytes = encoded.get(key)
            if vbytes is None:
                vbytes = encoded[key] = encode(poslist)
            yield t, len(poslist), float(len(poslist)) * fb, vbytes

    def _add_same(self, docnum: int, terms, weight: float, vbytes: bytes, freq: int) -> int:
        postings = self.postings
        for t in terms:
            entry = postings.get(t)
            if entry is None:
                entry = postings[t] = (array("I"), array("d"), [])
            entry[0].append(docnum)
            entry[1].append(weight)
        return freq * len(terms)

    def _add(self, docnum: int, items, fieldboost: float) -> int:
        length = 0
        postings = self.postings
        keeps = self.keeps_values
        for tbytes, freq, weight, vbytes in items:
            length += freq
            entry = postings.get(tbytes)
            if entry is None:
                entry = postings[tbytes] = (array("I"), array("d"), [])
            entry[0].append(docnum)
            entry[1].append(weight * fieldboost)
            if keeps and vbytes:
                entry[2].append(vbytes)
        return length

    def set_length(self, docnum: int, length: int) -> None:
        lengths = self.lengths
        if lengths is None:
            return
        while len(lengths) <= docnum:
            lengths.append(0)
        lengths[docnum] = byte_to_length(length_to_byte(length)) if length else 0

    def write(self, fieldwriter) -> None:
        """Every term's postings, in whoosh's order: what ``W3FieldWriter`` and
        ``W3PostingsWriter`` write for them, one term at a time."""
        if not self.postings:
            return
        fieldwriter.start_field(self.name, self.field)
        post = fieldwriter._postwriter
        limit = post._blocklimit
        comp = post._compression
        postfile = fieldwriter._postfile
        tindex = fieldwriter._tindex
        prefix = pack_ushort(fieldwriter._fieldid)
        lengths = self.lengths
        count = len(lengths) if lengths is not None else 0
        fixed = self.fixed
        variable = fixed is None or fixed < 0
        tell = postfile.tell
        write = postfile.write
        write_int = postfile.write_int
        pack_info = W3TermInfo._struct.pack
        for tbytes in sorted(self.postings):
            ids, weights, values = self.postings[tbytes]
            n = len(ids)
            if values and len(values) != n:
                raise ValueError(f"{self.name}: some postings have no value")
            startoffset = tell()
            write(WHOOSH3_HEADER_MAGIC)
            total = 0
            minlength = None
            maxlength = 0
            maxweight = 0
            for start in range(0, n, limit):
                end = start + limit
                block = ids[start:end]
                ws = weights[start:end]
                fws = array("f", ws)
                top = max(ws)
                blockweight = top if top > 0 else 0
                lo = None
                hi = 0
                if lengths is not None:
                    ls = [x for x in (lengths[d] if d < count else 0 for d in block) if x]
                    if ls:
                        lo = min(ls)
                        hi = max(ls)
                # W3TermInfo.add_block
                total += sum(fws)
                minlength = lo if minlength is None else min(minlength, lo)
                if hi > maxlength:
                    maxlength = hi
                if blockweight > maxweight:
                    maxweight = blockweight
                # W3PostingsWriter._write_block
                if all(w == 1.0 for w in fws):
                    mini_weights = None
                elif all(w == fws[0] for w in fws):
                    mini_weights = fws[0]
                else:
                    mini_weights = tuple(fws)
                if not values or fixed == 0:
                    mini_values = None
                elif variable:
                    # Distinct objects, as whoosh's own writer has them (a pickle refers
                    # back to an object it has already written).
                    mini_values = tuple([bytes(bytearray(v)) for v in values[start:end]])
                else:
                    mini_values = b"".join(values[start:end])
                data = dumps((tuple(delta_encode(block)), mini_weights, mini_values), 2)
                if comp:
                    data = compress(data, comp)
                info = dumps(
                    (len(block), block[-1], blockweight, comp,
                     length_to_byte(lo), length_to_byte(hi)),
                    2,
                )  # fmt: skip
                size = len(info) + len(data)
                write_int(-size if end >= n else size)
                write(info)
                write(data)
            terminfo = pack_info(
                False, total, n, 0 if minlength is None else length_to_byte(minlength),
                length_to_byte(maxlength), maxweight, ids[0], ids[-1],
            ) + pack_long(startoffset) + pack_int(tell() - startoffset)  # fmt: skip
            tindex.add(prefix + tbytes, terminfo)
        fieldwriter.finish_field()


_COMPRESSED: dict[tuple[bytes, int], bytes] = {}


def compress(data: bytes, level: int) -> bytes:
    """``zlib.compress``, remembered for small blocks: zlib sets up its whole state for each
    call (about 80 µs on the loaded benchmark machine, 280,000 blocks), and most terms of a
    rebuild are one posting whose block is the same bytes as other fields' terms of the same
    document (pid, number, the sort key, the date's tiers)."""
    if len(data) > 64:
        return zlib.compress(data, level)
    found = _COMPRESSED.get((data, level))
    if found is None:
        if len(_COMPRESSED) >= 500_000:
            _COMPRESSED.clear()
        found = _COMPRESSED[(data, level)] = zlib.compress(data, level)
    return found


class BulkWriter:
    """``add_document`` and ``commit`` over a whoosh ``SegmentWriter`` for a new segment."""

    def __init__(self, writer) -> None:
        self.writer = writer
        self.schema = writer.schema
        self.fields = {name: _Field(name, self.schema[name]) for name in self.schema.names()}

    def add_document(self, **fields: Any) -> None:
        writer = self.writer
        writer._check_state()
        perdoc = writer.perdocwriter
        docnum = writer.docnum
        docboost = writer._doc_boost(fields)
        names = sorted(name for name in fields if not name.startswith("_"))
        writer._check_fields(self.schema, names)
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
                    fieldboost = writer._field_boost(fields, name, docboost)
                    counted = slot.index(docnum, value, fieldboost)
                    if field.scorable:
                        length = counted
                        slot.set_length(docnum, length)
                custom = fields.get(f"_stored_{name}", value)
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

    def commit(self, **kwargs: Any) -> None:
        fieldwriter = self.writer.fieldwriter
        for name in sorted(self.fields):
            self.fields[name].write(fieldwriter)
        self.fields = {}
        self.writer.commit(**kwargs)

    def cancel(self) -> None:
        self.writer.cancel()
