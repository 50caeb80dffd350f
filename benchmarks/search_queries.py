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


DISTINCT_KINDS = {
    "service": 10,  # a treatment as patients type it (name or synonym), maybe misspelt later
    "service_place": 30,  # treatment + city / province / postal code (the "where" box)
    "name": 20,  # a surname, a given name + surname, a surname + city
    "misspelling": 15,  # one typo in a treatment word or a surname
    "free": 15,  # words from the descriptions and clinic names, alone or with a place
    "filters": 10,  # service/city/province filters, sorts, later pages, everyone
}


def distinct_queries(engine: Engine, count: int, seed: int = 11) -> list[dict[str, str]]:
    """``count`` different searches (no two alike: the ``/api/v1/search`` parameters differ),
    in random order, drawn from the kinds above: a stream a worker has never seen, for the
    ``live`` mode of ``search_load.py`` (which splits it into warm-up and measured parts)."""
    from directory.listings.models import Clinic, Listing, Service
    from directory.registry.models import Practitioner

    rng = random.Random(seed)
    with engine.connect() as conn:
        services = conn.execute(select(Service.slug, Service.name, Service.synonyms)).all()
        cities = [c for (c,) in conn.execute(select(Clinic.city).distinct().order_by(Clinic.city))]
        provinces = [
            p for (p,) in conn.execute(select(Clinic.province).distinct().order_by(Clinic.province))
        ]
        postcodes = [
            p
            for (p,) in conn.execute(
                select(Clinic.postal_code).distinct().order_by(Clinic.postal_code)
            )
        ]
        people = conn.execute(
            select(Practitioner.surname, Practitioner.full_names)
            .join(Listing, Listing.practitioner_id == Practitioner.id)
            .distinct()
            .order_by(Practitioner.surname, Practitioner.full_names)
        ).all()
        clinic_names = [n for (n,) in conn.execute(select(Clinic.name).limit(2000))]
        descriptions = [d for (d,) in conn.execute(select(Listing.description).limit(3000)) if d]
    terms = [name.lower() for _, name, _ in services] + [
        s.lower() for _, _, synonyms in services for s in (synonyms or [])
    ]
    slugs = [slug for slug, _, _ in services]
    surnames = sorted({s for s, _ in people if s})
    stop = {"and", "the", "for", "with", "our", "your", "are", "from", "all", "fictional"}
    free_words = sorted(
        {
            w.strip(".,:;()").lower()
            for text in [*descriptions, *clinic_names]
            for w in text.split()
            if len(w.strip(".,:;()")) >= 4 and w.strip(".,:;()").lower() not in stop
        }
    )
    long_words = [w for term in terms for w in term.split() if len(w) >= 6] + [
        s.lower() for s in surnames if len(s) >= 6
    ]
    places = cities + provinces

    def one(kind: str) -> dict[str, str]:
        if kind == "service":
            return {"q": rng.choice(terms)}
        if kind == "service_place":
            roll = rng.random()
            if roll < 0.45:
                return {"q": rng.choice(terms), "where": rng.choice(places)}
            if roll < 0.75:
                return {"q": f"{rng.choice(terms)} in {rng.choice(cities).lower()}"}
            if roll < 0.9:
                return {"q": rng.choice(terms), "where": rng.choice(postcodes)}
            return {"q": rng.choice(terms), "where": rng.choice(cities), "page": "2"}
        if kind == "name":
            surname, given = rng.choice(people)
            roll = rng.random()
            if roll < 0.4:
                return {"q": surname}
            if roll < 0.7:
                return {"q": f"{(given or '').split()[0] if given else ''} {surname}".strip()}
            return {"q": surname, "where": rng.choice(cities)}
        if kind == "misspelling":
            word = _misspell(rng, rng.choice(long_words))
            if rng.random() < 0.3:
                return {"q": word, "where": rng.choice(cities)}
            return {"q": word}
        if kind == "free":
            words = rng.sample(free_words, rng.choice((1, 1, 2)))
            if rng.random() < 0.3:
                return {"q": " ".join(words), "where": rng.choice(places)}
            return {"q": " ".join(words)}
        choice = rng.randrange(5)
        if choice == 0:
            return {"service": rng.choice(slugs), "city": rng.choice(cities), "sort": "name"}
        if choice == 1:
            return {"service": rng.choice(slugs), "province": rng.choice(provinces),
                    "page": str(rng.randrange(1, 4))}  # fmt: skip
        if choice == 2:
            return {"q": rng.choice(terms), "sort": "verified", "page": str(rng.randrange(1, 4))}
        if choice == 3:
            return {"q": rng.choice(terms), "where": rng.choice(cities),
                    "include_unverified": "true"}  # fmt: skip
        return {"city": rng.choice(cities), "sort": rng.choice(("name", "verified")),
                "page": str(rng.randrange(1, 6))}  # fmt: skip

    kinds = list(DISTINCT_KINDS)
    weights = list(DISTINCT_KINDS.values())
    seen: set[tuple] = set()
    found: list[dict[str, str]] = []
    attempts = 0
    while len(found) < count and attempts < count * 50:
        attempts += 1
        query = one(rng.choices(kinds, weights)[0])
        # Two spellings of one search ("botox in durban", "botox" + where "Durban") count as
        # one: the words of q and where together, as a set, plus the other parameters.
        words = f"{query.get('q', '')} {query.get('where', '')}".lower().split()
        rest = sorted((k, v.lower()) for k, v in query.items() if k not in ("q", "where"))
        key = (tuple(sorted(set(words) - {"in"})), tuple(rest))
        if key in seen:
            continue
        seen.add(key)
        found.append(query)
    return found
