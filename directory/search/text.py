"""Text rules shared by indexing and querying: folding, word keys, stemming.

One place decides what a "word" is, so that a query word and an indexed word always meet:
``re-growth`` is two words everywhere, accents are folded (``Müller`` finds ``Muller``),
case never matters.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# The Porter stemmer and the English stop-word list are whoosh's implementations: language
# rules the index's analyzers (``whoosh/documents.py``) and the query side must share.
from whoosh.analysis import STOP_WORDS
from whoosh.lang.porter import stem as porter_stem

WORD = re.compile(r"\w+")
__all__ = ["STOP_WORDS", "WORD", "fold", "key", "porter_stem", "stem", "stem_key", "words"]


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


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The stemmed form of one folded word, as ``STEM_ANALYZER`` indexes it."""
    return porter_stem(word)


@lru_cache(maxsize=65536)
def stem_key(word: str) -> str:
    """A word as typed -> the form ``STEM_ANALYZER`` indexes (folded, then stemmed)."""
    return stem(fold(word))
