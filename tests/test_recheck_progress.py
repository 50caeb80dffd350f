"""Progress: a rich bar on a terminal, plain periodic log lines otherwise."""

from __future__ import annotations

import io
import logging
from collections import Counter
from datetime import UTC, datetime

from importers.recheck.progress import LogProgress, RichProgress, describe, progress_for
from importers.recheck.runner import RunSummary


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def summary(checked: int, **kw) -> RunSummary:
    return RunSummary(started_at=datetime(2025, 1, 1, tzinfo=UTC), checked=checked, **kw)


def test_a_terminal_gets_a_bar_anything_else_log_lines():
    assert isinstance(progress_for(Terminal(), every=10), RichProgress)
    assert isinstance(progress_for(io.StringIO(), every=10), LogProgress)


def test_log_lines_come_every_interval_not_every_lookup(caplog):
    now = [0.0]
    progress = LogProgress(every=10, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="importers.recheck"):
        progress.start(100)
        for i in range(1, 61):
            now[0] = i * 0.5  # a look-up every half second for 30 s
            progress.advance(summary(i, changed=Counter({"active->suspended": 1})))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "recheck: 100 registration(s) to check"
    assert len(lines) == 1 + 3  # at 10 s, 20 s and 30 s
    assert lines[1].startswith("recheck: 20/100 done: 20 checked, 1 changed, 0 errors")
    assert "2.00 lookups/s" in lines[1]


def test_the_bar_shows_how_far_the_run_is():
    screen = Terminal()
    progress = RichProgress(screen)
    progress.start(5)
    progress.advance(summary(3, errors=1))
    progress.finish(summary(5, errors=1))
    text = screen.getvalue()
    assert "recheck" in text and "5/5" in text
    assert describe(summary(5, errors=1)) in text
