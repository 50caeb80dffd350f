"""The index directory: generations, the ``CURRENT`` pointer, and the locks around them.

Layout under ``SEARCH_INDEX_DIR``::

    CURRENT                 the name of the generation searches read (replaced atomically)
    gen-20260101T120000-ab12/   one complete whoosh index (+ its outbox cursor, inside it)
    build.lock              held while a generation is being built (one rebuild at a time)

``flask search reindex`` builds a new generation next to the current one and then replaces
``CURRENT`` with ``os.replace`` (atomic on POSIX): searches that opened the old generation
finish on it, the next search opens the new one. The previous generation is kept (a worker
may still be reading it); older ones are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh.index import FileIndex

from directory.search.interfaces import BuildInProgress
from directory.search.whoosh.documents import make_schema

POINTER = "CURRENT"
PREFIX = "gen-"


def pointer_path(root: Path) -> Path:
    return root / POINTER


def pointer_signature(root: Path) -> tuple[int, int] | None:
    """Changes whenever ``CURRENT`` is replaced (inode and mtime): cheap to poll per search."""
    try:
        st = os.stat(pointer_path(root))
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def current_generation(root: Path) -> Path | None:
    """The generation directory searches should read, or None when there is no index yet."""
    try:
        name = pointer_path(root).read_text().strip()
    except FileNotFoundError:
        return None
    if not name.startswith(PREFIX) or "/" in name:
        return None
    path = root / name
    return path if _current_schema(path) else None


def _current_schema(path: Path) -> bool:
    """A complete index with every field this code writes and reads. A generation built by
    an older version (a field added since, e.g. ``within``) counts as no index: the next
    search or ``flask search sync`` builds a new one instead of failing on the missing field."""
    try:
        ix = whoosh_index.open_dir(str(path))
    except (whoosh_index.EmptyIndexError, OSError, ValueError):
        return False
    try:
        return set(make_schema().names()) <= set(ix.schema.names())
    finally:
        ix.close()


def new_generation(root: Path) -> tuple[Path, FileIndex]:
    """An empty index in a fresh generation directory (not yet current)."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = root / f"{PREFIX}{stamp}-{secrets.token_hex(3)}"
    path.mkdir()
    return path, whoosh_index.create_in(str(path), make_schema())


def switch_to(root: Path, generation: Path, keep: int = 2) -> None:
    """Make ``generation`` current atomically, then prune all but the ``keep`` newest."""
    tmp = root / f".{POINTER}.{os.getpid()}.{secrets.token_hex(3)}"
    tmp.write_text(generation.name + "\n")
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, pointer_path(root))
    _fsync_dir(root)
    prune_generations(root, keep=keep)


def generations(root: Path) -> list[Path]:
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def prune_generations(root: Path, keep: int = 2) -> list[Path]:
    """Keep the current generation and the newest complete ones up to ``keep`` in all;
    remove the rest, including leftovers of builds that died half-way. Call it only under
    the build lock (no build in progress)."""
    current = current_generation(root)
    kept = 1 if current is not None else 0
    removed = []
    for path in reversed(generations(root)):
        if path == current:
            continue
        if kept < keep and whoosh_index.exists_in(str(path)):
            kept += 1
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def build_lock(root: Path, *, blocking: bool) -> Iterator[None]:
    """One build at a time per index directory (across processes: an ``flock``)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "build.lock", "a+") as handle:
        flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle.fileno(), flags)
        except BlockingIOError as exc:
            raise BuildInProgress("another process is rebuilding the search index") from exc
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
