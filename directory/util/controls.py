"""Control characters in text people type: one definition for pages, forms and messages.

C0 controls, DEL and the C1 controls are never shown back to anyone. In a one-line value (a
query string) the whitespace controls (tab, newline, the separators) become a space, since
they separated words, and the rest are dropped. In a message of several lines (a report of
concern) newlines and tabs stay, as typed, and every other control is dropped.
"""

from __future__ import annotations

import re

CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_WHITESPACE_CONTROLS = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85]")
_CONTROLS_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """``text`` without control characters, its whitespace controls turned into spaces."""
    return CONTROLS.sub("", _WHITESPACE_CONTROLS.sub(" ", text))


def lines(text: str) -> str:
    """``text`` with its line breaks (``\\r\\n`` and ``\\r`` read as ``\\n``) and tabs kept,
    every other control character dropped."""
    return _CONTROLS_BUT_LINES.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
