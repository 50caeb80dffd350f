"""Reading and validating a snapshot's rows once, and keeping them for pass 2.

``importers.sources.snapshot`` reads and validates the file; this module keeps what it gave
(``_ReadRows``: plain tuples in ``marshal`` chunks in an unnamed temporary file), so pass 2
neither parses nor validates the file again and sees exactly the rows pass 1 digested.
With worker processes, the reading runs in a forked process (``read_ahead_chunks``) while
the importer digests what it sends. In pass 2, one number's rows (``ReadGroup``) become the
register answer they are (``snapshot_answer``), which the one write path applies
(``directory.registry.recording``).
"""

from __future__ import annotations

import hashlib
import marshal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import fields
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple

from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.statuses import Outcome
from importers.sources.snapshot import RowProblem, Snapshot, SnapshotError, SnapshotItem

# A register row as a plain tuple, in field order (for the kept rows):
# ``RegisterRow(*_row_values(row))`` is the row again. (``attrgetter``: one C call.)
_row_values: Callable[[RegisterRow], tuple[str | None, ...]] = attrgetter(
    *(f.name for f in fields(RegisterRow))
)


def _kept_chunks(snapshot: Snapshot) -> Iterator[list[tuple]]:
    """The snapshot's rows, read and validated, as ``_ReadRows`` keeps them, a chunk at a
    time: a row as (line, *values), a problem as (line, reason, number, raw number)."""
    size = _ReadRows.CHUNK
    chunk: list[tuple] = []
    for line, item in snapshot.values():
        if item.__class__ is RowProblem:
            chunk.append((line, item.reason, item.registration_number, item.raw_number))
        else:
            chunk.append((line, *item))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _read_ahead(snapshot: Snapshot, send: Any) -> None:
    """In a forked process: pass 1's reading and validating (``_kept_chunks``), each chunk
    sent down ``send`` as ``b"R"`` + its ``marshal`` bytes; then ``b""`` at the end, or
    ``b"E"`` + a SnapshotError's message, or ``b"X"`` + any other error's."""
    try:
        for chunk in _kept_chunks(snapshot):
            send.send_bytes(b"R" + marshal.dumps(chunk))
    except SnapshotError as exc:
        send.send_bytes(b"E" + str(exc).encode())
    except Exception as exc:
        send.send_bytes(b"X" + f"{type(exc).__name__}: {exc}".encode())
    else:
        send.send_bytes(b"")
    finally:
        send.close()


class _ReadRows:
    """Pass 1's rows, read and validated, for pass 2: plain tuples in ``marshal`` chunks in
    an unnamed temporary file, so that pass 2 neither parses nor validates the file again
    (and sees exactly the rows pass 1 digested). Memory: one chunk at a time."""

    CHUNK = 4096

    def __init__(self) -> None:
        # Closed by close(); unnamed, so gone with the process whatever happens.
        self._file = tempfile.TemporaryFile(prefix="snapshot-import-rows-")  # noqa: SIM115
        self._chunk: list[tuple] = []
        self.finished = False

    def add(self, line: int, item: RegisterRow | RowProblem) -> None:
        if isinstance(item, RowProblem):  # four values; a row is nine
            self._chunk.append((line, item.reason, item.registration_number, item.raw_number))
        else:
            self._chunk.append((line, *_row_values(item)))
        if len(self._chunk) >= self.CHUNK:
            self._write_chunk()

    def _write_chunk(self) -> None:
        data, self._chunk = marshal.dumps(self._chunk), []
        self._write(data)

    def add_chunk(self, data: bytes | memoryview) -> None:
        """A chunk of rows as ``marshal.dumps`` made it (after any added one by one)."""
        if self._chunk:
            self._write_chunk()
        self._write(data)

    def _write(self, data: bytes | memoryview) -> None:
        # Length-prefixed: ``marshal.load`` on a file reads value by value.
        self._file.write(len(data).to_bytes(8, "little"))
        self._file.write(data)

    def finish(self) -> None:
        if self._chunk:
            self._write_chunk()
        self._file.flush()
        self.finished = True

    def rows(self) -> Iterator[SnapshotItem]:
        """The rows again, in file order, as ``Snapshot.rows()`` gave them."""
        for line, item in self.values():
            yield line, item if item.__class__ is RowProblem else RegisterRow(*item)

    def values(self) -> Iterator[tuple[int, tuple[str | None, ...] | RowProblem]]:
        """The rows again, in file order, as ``Snapshot.values()`` gave them."""
        self._file.seek(0)
        while True:
            size = self._file.read(8)
            if not size:
                return
            for values in marshal.loads(self._file.read(int.from_bytes(size, "little"))):
                if len(values) == 9:
                    yield values[0], values[1:]
                else:
                    yield values[0], RowProblem(*values)

    def close(self) -> None:
        self._file.close()


# --- pass 2: grouping ---------------------------------------------------------------------


class ReadGroup(NamedTuple):
    """Every row of one number as pass 2 reads them: plain value tuples in ``RegisterRow``
    field order (cheap to group, and to send to a worker process, which makes the
    register answer the rules read: ``snapshot_answer``)."""

    registration_number: str
    values: tuple[tuple[str | None, ...], ...]
    lines: tuple[int, ...]


def response_digest(values: tuple[tuple[str | None, ...], ...]) -> str:
    """The response digest of one number's rows (value tuples in ``RegisterRow`` field
    order), as its history row records it: the same rows give the same digest."""
    joined = "\x1e".join(["\x1f".join([v or "" for v in row]) for row in values])
    return hashlib.sha256(joined.encode()).hexdigest()


def snapshot_answer(
    number: str,
    values: tuple[tuple[str | None, ...], ...],
    *,
    as_of: datetime,
    undated: bool,
    source: str,
) -> LookupResult:
    """One number's rows in the snapshot as the register answer they are (outcome ok,
    ``observed_at`` the snapshot's date), for the one write path's batch writer."""
    return LookupResult(
        registration_number=number,
        outcome=Outcome.OK,
        observed_at=as_of,
        undated=undated,
        source=source,
        rows=tuple([RegisterRow(*v) for v in values]),
        digest=response_digest(values),
    )


def read_ahead_chunks(snapshot: Snapshot) -> Iterator[bytes | memoryview]:
    """``_kept_chunks(snapshot)``, each ``marshal``-ed, read and validated in a forked
    process (``_read_ahead``) while the caller digests them: pass 1 on two cores. (The batch
    workers are idle until pass 1 ends, and pass 1 is the serial part of an import.)
    Raises SnapshotError as reading in this process would."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    reader = context.Process(
        target=_read_ahead, args=(snapshot, send), name="snapshot-reader", daemon=True
    )
    reader.start()
    send.close()
    try:
        while True:
            try:
                data = receive.recv_bytes()
            except EOFError:
                raise RuntimeError("the process reading the snapshot stopped") from None
            if not data:
                return
            tag, body = data[:1], memoryview(data)[1:]
            if tag == b"R":
                yield body
            elif tag == b"E":
                raise SnapshotError(bytes(body).decode())
            else:
                raise RuntimeError(f"reading the snapshot failed: {bytes(body).decode()}")
    finally:
        receive.close()
        reader.join(timeout=10)
        if reader.is_alive():
            reader.terminate()
            reader.join()
