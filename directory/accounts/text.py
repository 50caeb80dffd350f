"""A clinic's description: plain text, or a small Markdown subset (paragraphs, line breaks,
*emphasis*, **strong**, lists and links), rendered without raw HTML and then sanitised with
nh3 so that only those elements, and http(s)/mailto links, can ever reach a page."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_markdown = MarkdownIt("zero", {"html": False, "linkify": False}).enable(
    ["emphasis", "list", "link", "newline", "paragraph"]
)
TAGS = {"p", "br", "em", "strong", "ul", "ol", "li", "a"}
ATTRIBUTES = {"a": {"href"}}
SCHEMES = {"http", "https", "mailto"}


def render_description(text: str | None) -> Markup:
    if not text:
        return Markup("")
    html = _markdown.render(text)
    clean = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=SCHEMES,
        link_rel="nofollow noopener ugc",
    )
    return Markup(clean)  # sanitised by nh3 just above
