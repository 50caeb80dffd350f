"""Query understanding: turn what a patient typed into filters and free words.

Services (names, synonyms, misspellings) and places (cities, provinces, postal codes) become
filters answered from cached document sets. A place is a city of the index or any name the
gazetteer (``listings/places.py``) knows: a renamed city ("port elizabeth" is Gqeberha), a
short form ("Jozi"), a suburb ("Sandton" filters Johannesburg and measures distances from
Sandton); its words are never "corrected" into other words. A registration number becomes
an exact match; only the words left over go to whoosh. User text is never parsed as whoosh
syntax: ``AND``, ``*``, ``field:value`` are just words (or punctuation), and only "quoted
phrases" mean something.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from directory.listings import vocabulary
from directory.listings.places import (
    Place,
    canonical_province,
    curated_keys,
    find_place,
    gazetteer,
)
from directory.listings.vocabulary import term_key
from directory.registry import numbers
from directory.registry.statuses import Status
from directory.search import text
from directory.search.backend import (
    MAX_PER_PAGE,
    MAX_RADIUS_KM,
    SORT_ORDERS,
    NoOrigin,
    Origin,
    QueryError,
    SearchQuery,
)
from directory.search.text import STOP_WORDS

MAX_QUERY_CHARS = 400  # longer text is cut (a 10 kB paste still searches its beginning)
MAX_QUERY_WORDS = 16
MAX_PHRASES = 4
PHRASE = re.compile(r"[\"“”„«»]([^\"“”„«»]*)[\"“”„«»]")
PLACE_MARKERS = frozenset({"in", "near", "around", "at"})
# Words that carry no meaning once a service or place is understood ("botox treatment near
# me in durban"). Generic search words only: services themselves live in the vocabulary.
FILLER = frozenset(
    {"treatment", "treatments", "therapy", "doctor", "doctors", "dr", "clinic", "clinics",
     "near", "me", "specialist", "specialists", "practitioner", "practitioners", "best",
     "good", "cheap", "affordable", "my", "around"}
)  # fmt: skip


@dataclass(frozen=True)
class Places:
    """What the index knows about places: folded key -> display name."""

    cities: dict[str, str]
    provinces: dict[str, str]
    max_city_words: int = 4

    def place(self, phrase: str) -> tuple[str, Place | None] | None:
        """(the city key to filter on, the gazetteer's place) for a phrase of folded words
        that names a city of the index or a place of the gazetteer; None otherwise."""
        found = find_place(phrase)
        if phrase in self.cities:
            return phrase, found
        if found is not None:
            return text.key(found.city), found
        return None

    def listed(self, city: str) -> bool:
        """Some clinic of the index is in this city (or one of its suburbs)."""
        return city in self.cities or any(
            (place := find_place(key)) is not None and text.key(place.city) == city
            for key in self.cities
        )


@dataclass
class Plan:
    """A query understood: every field is exact, so the plan is also the cache key."""

    services: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    provinces: tuple[str, ...] = ()
    postcodes: tuple[str, ...] = ()
    clinics: tuple[str, ...] = ()
    number: str | None = None
    status: str | None = None
    words: tuple[str, ...] = ()  # folded free words for whoosh
    phrases: tuple[tuple[str, ...], ...] = ()  # folded words of each quoted phrase
    place_words: tuple[str, ...] = ()  # a "where" we could not place: matched in places only
    origin: Origin | None = None  # where distances are measured from
    radius_km: float | None = None
    did_you_mean: str | None = None
    understood: dict[str, str] = field(default_factory=dict)

    def key(self) -> tuple:
        return (
            self.services, self.cities, self.provinces, self.postcodes, self.clinics,
            self.number, self.status, self.words, self.phrases, self.place_words,
            self.origin, self.radius_km,
        )  # fmt: skip

    @property
    def has_text(self) -> bool:
        return bool(self.words or self.phrases or self.place_words)


def clean(raw: str | None) -> tuple[str, bool]:
    """Unicode-normalised text without control or format characters, cut to size."""
    if not raw:
        return "", False
    if not isinstance(raw, str):
        raise QueryError("the search text must be text")
    normal = unicodedata.normalize("NFKC", raw)
    kept = "".join(
        ch if not unicodedata.category(ch).startswith(("C", "Z")) else " " for ch in normal
    )
    kept = " ".join(kept.split())
    if len(kept) > MAX_QUERY_CHARS:
        return kept[:MAX_QUERY_CHARS].rsplit(" ", 1)[0], True
    return kept, False


def validate(query: SearchQuery) -> None:
    """Raise QueryError with a plain message for paging, sorting or filter values we cannot use."""
    for name in ("text", "place", "service", "city", "province", "clinic", "status"):
        value = getattr(query, name)
        if value is not None and not isinstance(value, str):
            raise QueryError(f"{name} must be text")
    if not isinstance(query.include_unverified, bool):
        raise QueryError("include_unverified must be true or false")
    if not isinstance(query.page, int) or isinstance(query.page, bool) or query.page < 1:
        raise QueryError("the page must be a whole number from 1")
    if query.page > 100_000:
        raise QueryError("the page number is too large")
    per_page = query.per_page
    if not isinstance(per_page, int) or isinstance(per_page, bool):
        raise QueryError(f"results per page must be a whole number from 1 to {MAX_PER_PAGE}")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise QueryError(f"results per page must be from 1 to {MAX_PER_PAGE}")
    if query.sort not in SORT_ORDERS:
        raise QueryError(f"sort must be one of: {', '.join(SORT_ORDERS)}")
    if query.near is not None:
        near = query.near
        if (
            not isinstance(near, tuple)
            or len(near) != 2
            or not all(_number(v) for v in near)
            or not (-90 <= near[0] <= 90 and -180 <= near[1] <= 180)
        ):
            raise QueryError("a location is a latitude (-90 to 90) and a longitude (-180 to 180)")
    if query.radius_km is not None and not (
        _number(query.radius_km) and 0 < query.radius_km <= MAX_RADIUS_KM
    ):
        raise QueryError(
            f"a distance limit is a number of kilometres, more than 0 and at most {MAX_RADIUS_KM}"
        )
    if query.status:
        try:
            Status(str(query.status).strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in Status)
            raise QueryError(f"status must be one of: {names}") from None


def _number(value) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value == value
        and abs(value) != float("inf")
    )


def understand(
    query: SearchQuery,
    places: Places,
    known_service: Callable[[str], str | None],
    known_word: Callable[[str], bool],
    suggest_word: Callable[[str], str | None],
) -> Plan:
    """The plan for a query. ``known_service(slug_or_term)`` -> slug in the database or None;
    ``known_word(word)`` -> is this folded word in the index; ``suggest_word(word)`` -> the
    closest indexed word."""
    validate(query)
    plan = Plan()
    services: list[str] = []
    cities: list[str] = []
    provinces: list[str] = []
    postcodes: list[str] = []

    # Explicit filters.
    if query.service and query.service.strip():
        slug = known_service(query.service.strip())
        if slug is None:
            raise QueryError(f"there is no service called {query.service.strip()[:80]!r}")
        services.append(slug)
    if query.city and query.city.strip():
        cities.append(text.key(clean(query.city)[0]))
    if query.province and query.province.strip():
        wanted = clean(query.province)[0]
        provinces.append(text.key(canonical_province(wanted) or wanted))
    if query.clinic and query.clinic.strip():
        plan.clinics = (clean(query.clinic)[0].lower(),)
    if query.status and query.status.strip():
        plan.status = Status(query.status.strip().lower()).value

    # The free text.
    raw, truncated = clean(query.text)
    if truncated:
        plan.understood["truncated"] = f"only the first {MAX_QUERY_CHARS} characters were used"
    phrases: list[tuple[str, ...]] = []
    for match in PHRASE.finditer(raw):
        inner = match.group(1)
        slug = vocabulary.resolve_slug(inner)
        if slug and known_service(slug):
            services.append(known_service(slug))
        elif text.words(inner) and len(phrases) < MAX_PHRASES:
            phrases.append(tuple(text.words(inner)))
    rest = PHRASE.sub(" ", raw)
    rest = re.sub(r"[\"“”„«»]", " ", rest)

    corrections: dict[str, str] = {}
    tokens = _tokens(rest)[: MAX_QUERY_WORDS * 2]
    tokens, number = _take_number(tokens)
    if number:
        plan.number = number
        plan.understood["registration_number"] = number

    # Services named in the text (longest phrase first), then misspellings of one.
    remaining_text = " ".join(tokens)
    for match in vocabulary.find_services(remaining_text):
        slug = known_service(match.slug)
        if slug:
            services.append(slug)
    remaining_text = vocabulary.without_matches(
        remaining_text,
        [m for m in vocabulary.find_services(remaining_text) if known_service(m.slug)],
    )
    tokens = remaining_text.split()

    kept: list[str] = []
    in_places = _place_positions([text.key(t) for t in tokens], places)
    for position, token in enumerate(tokens):
        folded = text.key(token)
        if not folded or folded in STOP_WORDS or known_word(folded) or len(folded) < 4:
            kept.append(token)
            continue
        if position in in_places or canonical_province(folded):
            kept.append(token)  # a place's words are not typos ("port elizabeth")
            continue
        guess = vocabulary.suggest_service(folded)
        if guess is not None and known_service(guess.slug):
            services.append(known_service(guess.slug))
            corrections[token] = guess.name.lower()
            continue
        better = suggest_word(folded)
        if better:
            corrections[token] = better
            kept.append(better)
        else:
            kept.append(token)
    tokens = kept

    # Places in the text: "... in <place>", or a place ending the text after a service, or
    # a text that is only a place. A lone surname that is also a town stays a word.
    keys = [text.key(t) for t in tokens]
    origins: list[tuple[str, Place | None] | None] = []  # (city key, the gazetteer's place)
    place_hit = _find_place(keys, places, service_seen=bool(services))
    if place_hit is not None:
        start, end, kind, place_key = place_hit
        (cities if kind == "city" else provinces).append(place_key)
        if kind == "city":
            origins.append(places.place(" ".join(keys[start:end])))
        del tokens[start:end]
        del keys[start:end]
        if start > 0 and keys[start - 1] in PLACE_MARKERS:
            del tokens[start - 1]
            del keys[start - 1]

    # The "where" box.
    place_raw, _ = clean(query.place)
    if place_raw:
        origins.append(_understand_place(place_raw, places, cities, provinces, postcodes, plan))
    located = [o for o in origins if o is not None]  # places the gazetteer does not know: none
    _locate(query, plan, cities, located)

    understood_something = bool(services or cities or provinces or plan.number)
    free = [k for k in keys if k and k not in STOP_WORDS]
    words = [w for w in free if not (understood_something and w in FILLER)]
    if not understood_something and not words and free:
        words = free
    plan.words = tuple(dict.fromkeys(w for k in words for w in k.split()))[:MAX_QUERY_WORDS]
    plan.phrases = tuple(phrases)
    plan.services = tuple(sorted(set(services)))
    plan.cities = tuple(sorted(set(cities)))
    plan.provinces = tuple(sorted(set(provinces)))
    plan.postcodes = tuple(sorted(set(postcodes)))
    if plan.services:
        plan.understood["service"] = ",".join(plan.services)
    if plan.cities:
        plan.understood["city"] = ",".join(_city_label(c, places, located) for c in plan.cities)
    if plan.provinces:
        plan.understood["province"] = ",".join(places.provinces.get(p, p) for p in plan.provinces)
    if corrections:
        corrected = raw
        for wrong, right in corrections.items():
            corrected = re.sub(rf"(?<!\w){re.escape(wrong)}(?!\w)", right, corrected)
        plan.did_you_mean = corrected
    return plan


def _tokens(raw: str) -> list[str]:
    """Words as typed (punctuation such as ``*``, ``:``, ``(`` separates words)."""
    return re.findall(r"[^\W_]+(?:['\u2019-][^\W_]+)*", raw)


def _take_number(tokens: list[str]) -> tuple[list[str], str | None]:
    """A registration number typed as one word (MP0912345) or two (MP 0912345)."""
    prefixes = numbers.known_prefixes()
    for i, token in enumerate(tokens):
        candidates = []
        match = re.fullmatch(r"([A-Za-z]{2,4})(\d{3,7})", token)
        if match and match.group(1).upper() in prefixes:
            candidates.append((i, i + 1, token))
        if (
            token.upper() in prefixes
            and i + 1 < len(tokens)
            and re.fullmatch(r"\d{3,7}", tokens[i + 1])
        ):
            candidates.append((i, i + 2, token + tokens[i + 1]))
        for start, end, typed in candidates:
            try:
                canonical = numbers.normalise(typed)
            except numbers.RegistrationNumberError:
                continue
            return tokens[:start] + tokens[end:], canonical
    return tokens, None


GAZETTEER_WORDS = 4  # the longest name the gazetteer knows, in words


def _place_spans(keys: list[str], places: Places):
    """(start, end, "city"|"province", key, place) of the longest place phrase starting at
    each word that begins one."""
    n = len(keys)
    width = max(places.max_city_words, GAZETTEER_WORDS)
    for start in range(n):
        for end in range(min(n, start + width), start, -1):
            phrase = " ".join(keys[start:end])
            hit = places.place(phrase)
            if hit is not None:
                yield start, end, "city", hit[0], hit[1]
                break
            if phrase in places.provinces and len(phrase) > 3:  # not "mp", "gp", "wc"
                yield start, end, "province", phrase, None
                break


def _place_positions(keys: list[str], places: Places) -> set[int]:
    return {i for start, end, *_ in _place_spans(keys, places) for i in range(start, end)}


def _find_place(
    keys: list[str], places: Places, *, service_seen: bool
) -> tuple[int, int, str, str] | None:
    """(start, end, "city"|"province", key) of a place in the words, when it reads as one:
    after "in"/"near"/"at", or ending the text after a service, or the whole text. A single
    word only the gazetteer knows as a town (no clinic there, not a curated name) counts
    only after such a marker: "Nigel" or "Alice" typed alone are names."""
    n = len(keys)
    for start, end, kind, key, _ in _place_spans(keys, places):
        after_marker = start > 0 and keys[start - 1] in PLACE_MARKERS
        at_end = end == n
        whole = start == 0 and at_end
        strong = (
            kind == "province"
            or end - start > 1
            or places.listed(key)
            or term_key(" ".join(keys[start:end])) in curated_keys()
        )
        if after_marker or (strong and ((at_end and service_seen) or whole)):
            return start, end, kind, key
    return None


def _locate(
    query: SearchQuery,
    plan: Plan,
    cities: list[str],
    origins: list[tuple[str, Place | None]],
) -> None:
    """Where distances are measured from: the device's location, else the first place named
    that has coordinates. A distance limit replaces that place's city filter (a clinic 4 km
    from Sandton in Randburg is within 10 km). Nearest first or a limit with nothing to
    measure from: ``NoOrigin``."""
    located = next(((key, p) for key, p in origins if p is not None and p.coordinates), None)
    if query.near is not None:
        plan.origin = Origin("your location", round(query.near[0], 4), round(query.near[1], 4))
    elif located is not None:
        plan.origin = Origin(located[1].label, *located[1].coordinates)
    if plan.origin is None and (query.radius_km is not None or query.sort == "distance"):
        raise NoOrigin(
            "“Nearest first” and a distance limit need a place to measure from: type a town, "
            "city or suburb, or use your location"
        )
    if query.radius_km is not None:
        plan.radius_km = float(query.radius_km)
        if query.near is None and located is not None and located[0] in cities:
            cities.remove(located[0])
        plan.understood["radius"] = f"{plan.radius_km:g} km"


def _city_label(city: str, places: Places, origins: list[tuple[str, Place | None]]) -> str:
    for key, place in origins:
        if key == city and place is not None:
            return place.label
    return places.cities.get(city, city)


def _understand_place(
    raw: str,
    places: Places,
    cities: list[str],
    provinces: list[str],
    postcodes: list[str],
    plan: Plan,
) -> tuple[str, Place | None] | None:
    key = text.key(raw)
    if re.fullmatch(r"\d{4}", key):
        postcodes.append(key)
        plan.understood["postcode"] = key
        return None
    hit = places.place(key)
    if hit is not None:
        cities.append(hit[0])
        return hit
    province = canonical_province(raw)
    if province:
        provinces.append(text.key(province))
        return None
    if key in places.provinces:
        provinces.append(key)
        return None
    keys = key.split()
    # "Sea Point, Cape Town": the first place named inside (the most precise, as people write).
    found = next(
        ((start, end, kind, k) for start, end, kind, k, _ in _place_spans(keys, places)), None
    )
    if found is not None:
        start, end, kind, found_key = found
        if kind == "province":
            provinces.append(found_key)
            return None
        cities.append(found_key)
        return places.place(" ".join(keys[start:end]))
    from rapidfuzz import fuzz, process

    choices = {**{k: term_key(k) for k in places.cities}, **{k: k for k in gazetteer()}}
    best = process.extractOne(term_key(raw), choices, scorer=fuzz.ratio, score_cutoff=85)
    if best:
        hit = places.place(best[2])
        if hit is not None:
            cities.append(hit[0])
            plan.understood["place_corrected"] = hit[1].label if hit[1] else places.cities[hit[0]]
            return hit
    plan.place_words = tuple(w for w in keys if w not in STOP_WORDS)
    return None
