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
    spans = []
    if wanted:
        for match in text.WORD.finditer(source):
            if text.stem_key(match.group()) in wanted:
                spans.append(match.span())
    if spans:
        first = spans[0][0]
        start = max(0, first - width // 3)
        # Start on a word boundary.
        if start > 0:
            space = source.find(" ", start, first)
            start = space + 1 if space != -1 else start
    else:
        start = 0
    end = min(len(source), start + width)
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
