"""The profession in words ("Medical doctor", "Physiotherapist"), from the register's prefix
and category: the one place that says it, for every card, profile and API answer.

Data: ``data/professions.json`` (one wording per prefix of ``data/prefixes.json``, and
category words that name the profession more exactly, e.g. ``PS`` + "INTERN PSYCHOLOGIST"
-> "Intern psychologist"). The register says only the prefix and the category; the words
are ours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from directory.registry import numbers


@dataclass(frozen=True)
class _CategoryWords:
    prefix: str
    contains: str
    words: str


@dataclass(frozen=True)
class _Professions:
    by_prefix: dict[str, str]
    unknown_prefix: str
    categories: tuple[_CategoryWords, ...]


@cache
def _professions() -> _Professions:
    raw = json.loads(resources.files(__package__).joinpath("data/professions.json").read_text())
    return _Professions(
        by_prefix=dict(raw["prefixes"]),
        unknown_prefix=raw["unknown_prefix"],
        categories=tuple(
            _CategoryWords(c["prefix"], c["contains"].upper(), c["words"])
            for c in raw["categories"]
        ),
    )


def prefix_of(registration_number: str) -> str:
    """The register prefix of a canonical number (``MP0000123`` -> ``MP``); "" if not one."""
    try:
        return numbers.split(registration_number)[0]
    except numbers.RegistrationNumberError:
        return ""


def profession(prefix: str, category: str | None = None) -> str:
    """The profession in words: ``("MP", "INDEPENDENT PRACTICE")`` -> "Medical doctor",
    ``("PS", "INTERN PSYCHOLOGIST")`` -> "Intern psychologist"; a prefix the data does not
    know -> "Health professional"."""
    data = _professions()
    folded = " ".join((category or "").upper().split())
    if folded:
        for rule in data.categories:
            if rule.prefix == prefix and rule.contains in folded:
                return rule.words
    return data.by_prefix.get(prefix, data.unknown_prefix)


def profession_of(registration_number: str, category: str | None = None) -> str:
    """``profession`` for a canonical registration number."""
    return profession(prefix_of(registration_number), category)


def registered(words: str) -> str:
    """ "a registered physiotherapist" ("a registered counsellor", not "registered registered
    counsellor"): the profession inside a sentence."""
    lowered = words[0].lower() + words[1:] if words else words
    return f"a {lowered}" if lowered.startswith("registered ") else f"a registered {lowered}"
