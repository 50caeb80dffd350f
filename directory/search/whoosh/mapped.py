"""A compound segment's files read straight from its memory map, not copied into the heap.

whoosh maps a compound segment file (``*.seg``: every file of a segment in one) and hands
out each file inside it as a ``BufferFile`` over a ``memoryview`` of the map. But
``BufferFile.__init__`` also wraps the view in ``io.BytesIO(buf)``, and ``BytesIO`` *copies*
anything that is not ``bytes``: every reader that opens a segment copies that segment's
postings and term index into its own heap. On the benchmark index (a 70 MB segment) that is
54 MB per open searcher (``.pst`` 33 MB, ``.trm`` 21 MB), held by gunicorn's master after
``warm()`` and held again, privately, by every worker when it opens its own searcher
(docs/benchmarks.md, "Issue 11: worker memory"). Nearly all of whoosh's reading goes
through ``get`` / ``get_array`` on the view itself; the copy served only the few sequential
reads (``read``, ``read_pickle``, headers).

``MappedFile`` is a ``BufferFile`` whose sequential reads are served from the view too: the
pages stay the kernel's page cache, shared by every process that maps the segment, and
nothing is copied but what is read. ``install()`` makes whoosh's ``CompoundStorage`` hand
out ``MappedFile``; the bytes read are the same, so everything whoosh reads is unchanged
(``tests/test_search_mapped.py``).
"""

from __future__ import annotations

import io

from whoosh.filedb import compound
from whoosh.filedb.structfile import BufferFile


class ViewReader(io.RawIOBase):
    """A read-only, seekable file over a ``memoryview`` (or ``bytes``), without a copy."""

    def __init__(self, view) -> None:
        super().__init__()
        self._view = memoryview(view).cast("B") if not isinstance(view, bytes) else view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = len(self._view) + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def read(self, size: int | None = -1) -> bytes:
        start = min(self._pos, len(self._view))
        end = len(self._view) if size is None or size < 0 else min(start + size, len(self._view))
        self._pos = max(self._pos, end)
        return bytes(self._view[start:end])

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer) -> int:
        data = self.read(len(memoryview(buffer).cast("B")))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        start = min(self._pos, len(self._view))
        end = len(self._view) if size is None or size < 0 else min(start + size, len(self._view))
        found = bytes(self._view[start:end]).find(b"\n")  # rare: headers only
        if found >= 0:
            end = start + found + 1
        self._pos = max(self._pos, end)
        return bytes(self._view[start:end])

    def close(self) -> None:
        self._view = b""
        super().close()


class MappedFile(BufferFile):
    """``BufferFile`` over a view of a memory map, reading from the view (no heap copy)."""

    def __init__(self, buf, name=None, onclose=None) -> None:
        self._buf = buf
        self._name = name
        self.file = ViewReader(buf)
        self.onclose = onclose
        self.is_real = False
        self.is_closed = False

    def subset(self, position, length, name=None):
        return MappedFile(self._buf[position : position + length], name=name or self._name)


def _open_file(self, name, *args, **kwargs):
    """``CompoundStorage.open_file``, handing out ``MappedFile`` for a mapped segment."""
    if self.is_closed:
        raise compound.StorageError("Storage was closed")
    if self._source:
        offset, length = self.range(name)
        return MappedFile(memoryview(self._source)[offset : offset + length], name=name)
    return _whoosh_open_file(self, name, *args, **kwargs)


_whoosh_open_file = compound.CompoundStorage.open_file


def install() -> None:
    """Make whoosh's compound segments hand out ``MappedFile`` (idempotent)."""
    compound.CompoundStorage.open_file = _open_file


__all__ = ["MappedFile", "ViewReader", "install"]
