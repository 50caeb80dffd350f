"""Work done beside the caller in a forked child process, its results sent back pickled
through a pipe: a rebuild on two cores reads the documents, and encodes half the postings,
in a second process. One way of doing it for both, with one way of failing.

The child runs ``work(send)`` and exits without returning into the caller's code; every
``send(item)`` reaches the caller, in order, through ``receive()``. The child's exception,
or its death, becomes the caller's ``RuntimeError`` naming what it was doing. Leaving the
``with`` block closes the pipe (a child still writing stops) and reaps the child.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def beside(
    work: Callable[[Callable[[Any], None]], None], doing: str
) -> Iterator[Callable[[], Iterator[Any]]]:
    """Run ``work(send)`` in a forked child; yields ``receive``, whose iterator gives what
    the child sent until it is done. ``doing`` names the work in errors ("reading the
    documents")."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(read_end)
            out = os.fdopen(write_end, "wb")
            try:
                work(lambda item: pickle.dump(("item", item), out, pickle.HIGHEST_PROTOCOL))
                pickle.dump(("done", None), out)
                code = 0
            except BaseException as exc:  # reported to the parent (unless it has gone)
                with contextlib.suppress(BaseException):
                    pickle.dump(("error", f"{type(exc).__name__}: {exc}"), out)
            with contextlib.suppress(BaseException):
                out.close()
        finally:
            os._exit(code)
    os.close(write_end)
    incoming = os.fdopen(read_end, "rb")

    def receive() -> Iterator[Any]:
        while True:
            try:
                kind, body = pickle.load(incoming)
            except EOFError:
                raise RuntimeError(f"the process {doing} died") from None
            if kind == "done":
                return
            if kind == "error":
                raise RuntimeError(f"{doing} failed: {body}")
            yield body

    try:
        yield receive
    finally:
        incoming.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)  # the pipe is closed: a child still writing stops
