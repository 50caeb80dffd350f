"""Scope of practice: may a practitioner on this register offer this treatment?

The rule lives in one place, as data with its sources: ``data/scope.json``, beside the
treatment vocabulary (``data/services.json``). For each treatment it lists which registers
(by prefix: ``MP`` medical practitioners, ``DP`` dentists, ``PT`` physiotherapists...) are
``within``, ``outside`` or ``unknown``, each with a short plain-language reason and the
documents it rests on; ``"*"`` stands for every other prefix. A category rule can lower a
``within`` (an intern practises only under supervision: ``unknown``). It is this
directory's reading of those documents, not the HPCSA's word (docs/scope.md).

``scope(service_slug, prefix, category)`` is the one answer every surface shows: the pages
(practitioner, clinic, result cards), the API, the search filter (through the index, which
stores what this function says, see ``within_services``) and the reports to clinics.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from directory.listings.vocabulary import by_slug
from directory.registry import numbers
from directory.registry.professions import prefix_of, profession, registered

ScopeValue = Literal["within", "outside", "unknown"]
SCOPES: tuple[str, ...] = ("within", "outside", "unknown")
EVERY_OTHER = "*"
# The least favourable first: a view of several treatments shows the worst of them.
_ORDER = {"outside": 0, "unknown": 1, "within": 2}


class ScopeDataError(ValueError):
    """``data/scope.json`` is wrong (an unknown prefix or source, a treatment left out...)."""


@dataclass(frozen=True)
class Rule:
    scope: str
    reason: str
    sources: tuple[str, ...]  # source ids


@dataclass(frozen=True)
class ScopeAnswer:
    """One (treatment, practitioner) pair's scope, in words a patient reads."""

    service: str  # the treatment's slug
    scope: str  # "within", "outside" or "unknown"
    reason: str
    sources: tuple[str, ...]  # the documents, named in full
    profession: str  # "Physiotherapist"

    @property
    def within(self) -> bool:
        return self.scope == "within"

    @property
    def summary(self) -> str:
        """ "This treatment is not within what a registered physiotherapist may do"."""
        return self.sentence("this treatment")

    @property
    def short(self) -> str:
        """The card's words: "Within what a medical doctor may do"; an outside or unknown
        answer is never shortened (it is the summary)."""
        if self.scope != "within":
            return self.summary
        lowered = self.profession[0].lower() + self.profession[1:]
        return f"Within what a {lowered} may do"

    def sentence(self, subject: str) -> str:
        """The summary about ``subject`` ("Botulinum toxin is not within what ...")."""
        who = registered(self.profession)
        if self.scope == "unknown":
            return f"We cannot say whether {subject} is within what {who} may do"
        verb = "is" if self.scope == "within" else "is not"
        return f"{subject[0].upper()}{subject[1:]} {verb} within what {who} may do"

    def as_dict(self) -> dict:
        return {
            "service": self.service,
            "scope": self.scope,
            "summary": self.summary,
            "reason": self.reason,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class _ScopeData:
    sources: dict[str, str]
    treatments: dict[str, dict[str, Rule]]  # slug -> prefix (or "*") -> rule
    unknown_prefix: Rule
    category_rules: tuple[tuple[str, str, Rule], ...]  # (contains, from scope, rule)


def _rule(raw: dict, sources: dict[str, str], where: str) -> Rule:
    if raw.get("scope") not in SCOPES:
        raise ScopeDataError(f"{where}: scope must be one of {SCOPES}, not {raw.get('scope')!r}")
    for source in raw["sources"]:
        if source not in sources:
            raise ScopeDataError(f"{where}: unknown source {source!r}")
    return Rule(raw["scope"], raw["reason"], tuple(raw["sources"]))


@cache
def _data() -> _ScopeData:
    raw = json.loads(resources.files(__package__).joinpath("data/scope.json").read_text())
    sources = dict(raw["sources"])
    known = set(numbers.known_prefixes())
    treatments: dict[str, dict[str, Rule]] = {}
    for slug, rules in raw["treatments"].items():
        by_prefix: dict[str, Rule] = {}
        for item in rules:
            rule = _rule(item, sources, slug)
            prefixes = [EVERY_OTHER] if item["prefixes"] == EVERY_OTHER else item["prefixes"]
            for prefix in prefixes:
                if prefix != EVERY_OTHER and prefix not in known:
                    raise ScopeDataError(f"{slug}: unknown register prefix {prefix!r}")
                if prefix in by_prefix:
                    raise ScopeDataError(f"{slug}: prefix {prefix!r} has two rules")
                by_prefix[prefix] = rule
        if EVERY_OTHER not in by_prefix and not known <= set(by_prefix):
            missing = sorted(known - set(by_prefix))
            raise ScopeDataError(f"{slug}: no rule for {', '.join(missing)} (add one or '*')")
        treatments[slug] = by_prefix
    missing = sorted(set(by_slug()) - set(treatments))
    if missing:
        raise ScopeDataError(f"no scope for the treatments {', '.join(missing)}")
    category_rules = tuple(
        (
            item["contains"].upper(),
            item["within_becomes"],
            _rule({**item, "scope": item["within_becomes"]}, sources, "category_rules"),
        )
        for item in raw.get("category_rules", ())
    )
    unknown_prefix = _rule(raw["unknown_prefix"], sources, "unknown_prefix")
    return _ScopeData(sources, treatments, unknown_prefix, category_rules)


def sources() -> dict[str, str]:
    """Source id -> the document, named in full."""
    return dict(_data().sources)


def scope(service: str, prefix: str, category: str | None = None) -> ScopeAnswer:
    """May a practitioner on the register ``prefix`` (with this ``category``) offer the
    treatment ``service`` (a slug)? ``within``, ``outside`` or ``unknown``, with the reason
    and the documents it rests on. A treatment or a prefix the data does not know:
    ``unknown``."""
    data = _data()
    rules = data.treatments.get(service)
    if rules is None or prefix not in numbers.known_prefixes():
        rule = data.unknown_prefix
    else:
        rule = rules.get(prefix) or rules[EVERY_OTHER]
    folded = " ".join((category or "").upper().split())
    if rule.scope == "within" and folded:
        for contains, _becomes, lowered in data.category_rules:
            if contains in folded:
                rule = lowered
                break
    return ScopeAnswer(
        service=service,
        scope=rule.scope,
        reason=rule.reason,
        sources=tuple(data.sources[s] for s in rule.sources),
        profession=profession(prefix, category),
    )


def scope_of(service: str, registration_number: str, category: str | None = None) -> ScopeAnswer:
    """``scope`` for a canonical registration number."""
    return scope(service, prefix_of(registration_number), category)


def within_services(
    services: Iterable[str], registration_number: str, category: str | None = None
) -> list[str]:
    """The services (slugs) within scope for this registration, in the order given: what the
    search index stores so that its verified-only view can keep only in-scope pairs."""
    return [s for s in services if scope_of(s, registration_number, category).within]


def least_favourable(answers: Iterable[ScopeAnswer]) -> ScopeAnswer | None:
    """The answer that says least (outside < unknown < within), for a search naming several
    treatments; None for none."""
    return min(answers, key=lambda a: _ORDER[a.scope], default=None)


def outside_scope_notes(
    services: Iterable[str], registration_number: str, category: str | None = None
) -> list[tuple[str, str]]:
    """(service slug, message) for each service outside (or of unknown) scope for this
    registration: what an import or a clinic's edit reports. The listing is kept; the
    message says why it is not shown in a patient's default search."""
    notes = []
    for slug in services:
        answer = scope_of(slug, registration_number, category)
        if answer.within:
            continue
        name = by_slug()[slug].name if slug in by_slug() else slug
        notes.append(
            (
                slug,
                f"{answer.sentence(name)}. {answer.reason} The listing is kept, but a patient's "
                f"search for {name} shows it only when they choose to show everyone.",
            )
        )
    return notes
