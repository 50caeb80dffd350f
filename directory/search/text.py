"""Text rules shared by indexing and querying: folding, word keys, and the analyzers.

One place decides what a "word" is, so that a query word and an indexed word always meet:
``re-growth`` is two words everywhere, accents are folded (``Müller`` finds ``Muller``),
case never matters.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from whoosh.analysis import (
    CharsetFilter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.lang.porter import stem as porter_stem
from whoosh.support.charset import accent_map

WORD = re.compile(r"\w+")

# Service text and descriptions: stemmed, stop words dropped ("hair loss" ~ "losing hair").
STEM_ANALYZER = (
    RegexTokenizer(WORD)
    | LowercaseFilter()
    | CharsetFilter(accent_map)
    | StopFilter(minsize=1)
    | StemFilter(stemfn=porter_stem, cachesize=50000)
)
# Names, clinics and places: no stemming ("Botha" must not meet "Both"), no stop words
# ("van der Merwe").
NAME_ANALYZER = RegexTokenizer(WORD) | LowercaseFilter() | CharsetFilter(accent_map)


def fold(text: str) -> str:
    """Lower case without accents, whitespace collapsed: the comparison form of any text."""
    if text.isascii():
        return " ".join(text.lower().split())
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


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The stemmed form of one folded word, as ``STEM_ANALYZER`` indexes it."""
    return porter_stem(word)


@lru_cache(maxsize=65536)
def stem_key(word: str) -> str:
    """A word as typed -> the form ``STEM_ANALYZER`` indexes (folded, then stemmed)."""
    return stem(fold(word))
