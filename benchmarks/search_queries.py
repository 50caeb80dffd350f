"""The mixed query set of the search benchmarks, drawn from the benchmark database.

Kinds (weights): service (30 %), service + city (25 %), name (20 %), misspelling (10 %),
filters (15 %: service/city/province filters, sort by name or verification, page 2,
everyone). Each query is a dict of ``/api/v1/search`` parameters, so the in-process and the
HTTP benchmarks run the same mix.
"""

from __future__ import annotations

import random
from urllib.parse import urlencode

from sqlalchemy import Engine, select

KINDS = {"service": 30, "service_city": 25, "name": 20, "misspelling": 10, "filters": 15}


def _misspell(rng: random.Random, word: str) -> str:
    """One typo in a word of six letters or more: a doubled, dropped or swapped letter."""
    i = rng.randrange(1, len(word) - 2)
    kind = rng.choice(("double", "drop", "swap", "ph"))
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word.replace("f", "ph", 1) if "f" in word else word[:i] + word[i] + word[i:]


def query_mix(engine: Engine, count: int = 600, seed: int = 7) -> list[dict[str, str]]:
    from directory.listings.models import Clinic, Listing, Service
    from directory.registry.models import Practitioner

    rng = random.Random(seed)
    with engine.connect() as conn:
        services = conn.execute(select(Service.slug, Service.name, Service.synonyms)).all()
        cities = [c for (c,) in conn.execute(select(Clinic.city).distinct().order_by(Clinic.city))]
        provinces = [
            p for (p,) in conn.execute(select(Clinic.province).distinct().order_by(Clinic.province))
        ]
        surnames = [
            s
            for (s,) in conn.execute(
                select(Practitioner.surname)
                .join(Listing, Listing.practitioner_id == Practitioner.id)
                .distinct()
                .order_by(Practitioner.surname)
                .limit(3000)
            )
        ]
    words = [(slug, name) for slug, name, _ in services] + [
        (slug, synonym) for slug, _, synonyms in services for synonym in (synonyms or [])[:2]
    ]
    long_words = [w for _, term in words for w in term.lower().split() if len(w) >= 7]
    kinds = list(KINDS)
    weights = list(KINDS.values())
    mix: list[dict[str, str]] = []
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        if kind == "service":
            mix.append({"q": rng.choice(words)[1].lower()})
        elif kind == "service_city":
            mix.append({"q": rng.choice(words)[1].lower(), "where": rng.choice(cities)})
        elif kind == "name":
            mix.append({"q": rng.choice(surnames)})
        elif kind == "misspelling":
            mix.append({"q": _misspell(rng, rng.choice(long_words))})
        else:
            slug = rng.choice(services)[0]
            choice = rng.randrange(5)
            if choice == 0:
                mix.append({"service": slug, "city": rng.choice(cities), "sort": "name"})
            elif choice == 1:
                mix.append({"service": slug, "province": rng.choice(provinces)})
            elif choice == 2:
                mix.append({"service": slug, "sort": "verified", "page": "2"})
            elif choice == 3:
                mix.append({"q": rng.choice(words)[1].lower(), "include_unverified": "true"})
            else:
                mix.append({"city": rng.choice(cities), "status": "active", "sort": "name"})
    return mix


def as_paths(mix: list[dict[str, str]], endpoint: str = "/api/v1/search") -> list[str]:
    return [f"{endpoint}?{urlencode(params)}" for params in mix]
