"""Progress of a run: a live bar on a terminal, plain periodic log lines otherwise (cron)."""

from __future__ import annotations

import logging
import time
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from importers.recheck.runner import RunSummary

log = logging.getLogger("importers.recheck")


class Progress(Protocol):
    def start(self, total: int | None) -> None: ...

    def advance(self, summary: RunSummary) -> None: ...

    def finish(self, summary: RunSummary) -> None: ...


def describe(summary: RunSummary) -> str:
    """One short line: what a run has done so far."""
    return (
        f"{summary.checked} checked, {summary.changed_total} changed, "
        f"{summary.errors} errors, {summary.skipped} skipped"
    )


class NullProgress:
    def start(self, total: int | None) -> None:
        pass

    def advance(self, summary: RunSummary) -> None:
        pass

    def finish(self, summary: RunSummary) -> None:
        pass


class LogProgress:
    """A log line every ``every`` seconds (and none for runs shorter than that)."""

    def __init__(self, every: float = 10.0, clock=time.monotonic) -> None:
        self.every = every
        self._clock = clock
        self._total: int | None = None
        self._started = 0.0
        self._last = 0.0

    def start(self, total: int | None) -> None:
        self._total = total
        self._started = self._last = self._clock()
        log.info("recheck: %s registration(s) to check", "?" if total is None else total)

    def advance(self, summary: RunSummary) -> None:
        now = self._clock()
        if now - self._last < self.every:
            return
        self._last = now
        done = summary.checked + summary.skipped
        of = f"/{self._total}" if self._total is not None else ""
        rate = summary.checked / (now - self._started) if now > self._started else 0.0
        log.info("recheck: %d%s done: %s; %.2f lookups/s", done, of, describe(summary), rate)

    def finish(self, summary: RunSummary) -> None:
        pass


class RichProgress:
    """A rich progress bar (on stderr, so stdout keeps the summary or the JSON lines)."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("recheck"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[line]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=False,
        )
        self._task = None

    def start(self, total: int | None) -> None:
        self._bar.start()
        self._task = self._bar.add_task("recheck", total=total, line="")

    def advance(self, summary: RunSummary) -> None:
        if self._task is not None:
            self._bar.update(
                self._task, completed=summary.checked + summary.skipped, line=describe(summary)
            )

    def finish(self, summary: RunSummary) -> None:
        if self._task is not None:
            self.advance(summary)
        self._bar.stop()


def progress_for(stream: IO[str], *, every: float) -> Progress:
    """A bar when ``stream`` is a terminal, log lines otherwise."""
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return RichProgress(stream)
    return LogProgress(every)
