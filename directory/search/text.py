"""Text rules shared by indexing and querying: folding, word keys, and the analyzers.

One place decides what a "word" is, so that a query word and an indexed word always meet:
``re-growth`` is two words everywhere, accents are folded (``Müller`` finds ``Muller``),
case never matters.
"""

from __future__ import annotations

import re
import unicodedata

from whoosh.analysis import CharsetFilter, LowercaseFilter, RegexTokenizer, StemmingAnalyzer
from whoosh.support.charset import accent_map

WORD = re.compile(r"\w+")

# Service text and descriptions: stemmed, stop words dropped ("hair loss" ~ "losing hair").
STEM_ANALYZER = StemmingAnalyzer(expression=WORD, minsize=1) | CharsetFilter(accent_map)
# Names, clinics and places: no stemming ("Botha" must not meet "Both"), no stop words
# ("van der Merwe").
NAME_ANALYZER = RegexTokenizer(WORD) | LowercaseFilter() | CharsetFilter(accent_map)


def fold(text: str) -> str:
    """Lower case without accents, whitespace collapsed: the comparison form of any text."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


def words(text: str) -> list[str]:
    """The folded words of a text, punctuation dropped."""
    return WORD.findall(fold(text))


def key(text: str) -> str:
    """The lookup key of a name or phrase: folded words joined by single spaces."""
    return " ".join(words(text))


def analyse(analyzer, text: str) -> list[str]:
    """The terms an analyzer makes of a text (what the index stores for it)."""
    return [token.text for token in analyzer(text)]
