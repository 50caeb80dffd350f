"""South African provinces: the nine canonical names and the spellings people use for them."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from directory.listings.vocabulary import term_key


@cache
def _provinces() -> dict[str, tuple[str, ...]]:
    raw = json.loads(resources.files(__package__).joinpath("data/provinces.json").read_text())
    return {name: tuple(spellings) for name, spellings in raw.items() if not name.startswith("_")}


def provinces() -> tuple[str, ...]:
    """The nine canonical province names, alphabetically."""
    return tuple(sorted(_provinces()))


@cache
def _province_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for name, spellings in _provinces().items():
        for spelling in (name, *spellings):
            index[term_key(spelling)] = name
    return index


def canonical_province(text: str | None) -> str | None:
    """``"kzn"``, ``"Kwazulu Natal"``, ``"W. Cape"`` -> the canonical name; None if not one."""
    if text is None:
        return None
    return _province_index().get(term_key(text))
