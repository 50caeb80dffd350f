"""Highlighted snippets: a short window of a description with the matched words in <mark>.

Built from the description's tokens (the same analyzer the index used, so a stemmed query
word marks "injections" for "injection"); every piece of the source text is escaped, so a
description containing markup can never inject any.
"""

from __future__ import annotations

from collections.abc import Iterable

from markupsafe import Markup, escape

from directory.search import text

SNIPPET_CHARS = 200


def highlight(source: str, terms: Iterable[str], width: int = SNIPPET_CHARS) -> str:
    """HTML-safe excerpt of ``source`` around the first matched term (``text.stem`` forms)."""
    if not source:
        return ""
    wanted = set(terms)
    spans: list[tuple[int, int]] = []
    start, end = 0, min(len(source), width)
    if wanted:
        # Only the window around the first matched word is shown: stop reading past it.
        for match in text.WORD.finditer(source):
            if spans and match.start() >= end:
                break
            if text.stem_key(match.group()) not in wanted:
                continue
            if not spans:
                first = match.start()
                start = max(0, first - width // 3)
                if start > 0:  # start on a word boundary
                    space = source.find(" ", start, first)
                    start = space + 1 if space != -1 else start
                end = min(len(source), start + width)
            spans.append(match.span())
    if end < len(source):
        space = source.rfind(" ", start, end)
        end = space if space > start else end
    pieces: list[str] = ["…" if start > 0 else ""]
    position = start
    for s, e in spans:
        if s < start or e > end:
            continue
        pieces.append(str(escape(source[position:s])))
        pieces.append(f"<mark>{escape(source[s:e])}</mark>")
        position = e
    pieces.append(str(escape(source[position:end])))
    if end < len(source):
        pieces.append("…")
    return Markup("".join(pieces))  # a str that Jinja will not escape again
