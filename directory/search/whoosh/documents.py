"""What the index holds for one practitioner, built from the database with Core statements.

One document per practitioner with at least one listing, aggregating all their listings:
services (names and synonyms), clinic names, cities, provinces, descriptions, the name and
the registration number. It also keeps what the "verified" decision needs (status,
verified_at, a pending not-found) so that search can apply ``verdict``'s rule at query time
against the current time: the index never goes stale silently as time passes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Engine, select
from whoosh.analysis import CharsetFilter, LowercaseFilter, RegexTokenizer, StemFilter, StopFilter
from whoosh.columns import NumericColumn
from whoosh.fields import COLUMN, ID, KEYWORD, STORED, TEXT, Schema
from whoosh.support.charset import accent_map

from directory.listings.models import Clinic, Listing, Service, listing_services
from directory.listings.scope import within_services
from directory.registry.models import Practitioner
from directory.search import text
from directory.search.outbox import INDEXED_PRACTITIONER_COLUMNS
from directory.search.whoosh import forked
from directory.util.clock import as_utc

# Joins the values of one text field (services, clinics, descriptions): a token no query
# produces, so a phrase never matches across two values ("botox" + "travel vaccines").
SEPARATOR = " xqxsepxqx "

# The id of the one document that is not a practitioner: the outbox cursor, stored in the
# index itself so that it commits atomically with the documents it accounts for.
CURSOR_DOC_ID = "__outbox_cursor__"
PRACTITIONER_KIND = "p"

# Field weights in relevance: what a practitioner offers counts above what they write.
FIELD_BOOSTS: dict[str, float] = {
    "services": 4.0,
    "name": 3.0,
    "clinics": 2.0,
    "places": 1.5,
    "description": 1.0,
}
TEXT_FIELDS = tuple(FIELD_BOOSTS)

# Service text and descriptions: stemmed, stop words dropped ("hair loss" ~ "losing hair").
# ``text.stem`` is the same stemmer, for highlighting and typo checks.
STEM_ANALYZER = (
    RegexTokenizer(text.WORD)
    | LowercaseFilter()
    | CharsetFilter(accent_map)
    | StopFilter(minsize=1)
    | StemFilter(stemfn=text.porter_stem, cachesize=50000)
)
# Names, clinics and places: no stemming ("Botha" must not meet "Both"), no stop words
# ("van der Merwe").
NAME_ANALYZER = RegexTokenizer(text.WORD) | LowercaseFilter() | CharsetFilter(accent_map)
STEMMED_FIELDS = frozenset({"services", "description"})


def analyse(analyzer, value: str) -> list[str]:
    """The terms an analyzer makes of a text (what the index stores for it)."""
    return [token.text for token in analyzer(value)]


def analyzer_of(fieldname: str):
    return STEM_ANALYZER if fieldname in STEMMED_FIELDS else NAME_ANALYZER


# ``verified_at``'s column: the bytes ``NUMERIC(int, bits=64, signed=False, sortable=True)``
# wrote into its column (an index built before this field became a column reads the same
# values from it). As a NUMERIC the field also indexed 16 terms per document (its range
# tiers), about 141,000 of a national index's 258,000 terms and 336,000 postings that no
# query reads, written by every rebuild and moved by every re-verification.
VERIFIED_AT_COLUMN = NumericColumn("Q", default=2**64 - 1)


def make_schema() -> Schema:
    return Schema(
        pid=ID(stored=True, unique=True),
        kind=ID(),
        number=ID(stored=True),
        name=TEXT(analyzer=NAME_ANALYZER, phrase=True),
        services=TEXT(analyzer=STEM_ANALYZER, phrase=True),
        clinics=TEXT(analyzer=NAME_ANALYZER, phrase=True),
        places=TEXT(analyzer=NAME_ANALYZER, phrase=True),
        description=TEXT(analyzer=STEM_ANALYZER, phrase=True),
        # Filters: exact keys (folded), comma separated so that "cape town" is one term.
        service=KEYWORD(commas=True),
        city=KEYWORD(commas=True),
        province=KEYWORD(commas=True),
        clinic=KEYWORD(commas=True),
        postcode=KEYWORD(commas=True),
        # A service repeated once per listing offering it and per description naming it:
        # its postings' weights rank "who does this treatment most" without scoring text.
        strength=KEYWORD(commas=True, scorable=True),
        # The services within this registration's scope of practice, as ``listings.scope``
        # says (the rule's one home; the index only keeps its answer): a verified-only
        # search for a treatment keeps only practitioners within scope for it.
        within=KEYWORD(commas=True),
        status=ID(),
        pending=ID(),
        # Microseconds, 0 for never: a column only (search reads it per document to sort and
        # to cut the verified window; no query looks its terms up). See VERIFIED_AT_COLUMN.
        verified_at=COLUMN(VERIFIED_AT_COLUMN),
        sort_name=ID(sortable=True),
        # The clinics' coordinates, "lat,lon;lat,lon" ("" for none): a column, so that
        # distances for a whole matching set are read without the stored fields.
        geo=ID(sortable=True),
        # Unstemmed folded words of the document: the vocabulary for "did you mean".
        words=KEYWORD(commas=False, lowercase=True),
        payload=STORED(),
        excerpt=STORED(),  # the descriptions as written, for snippets
        digest=STORED(),
    )


@dataclass
class _Listing:
    clinic_slug: str
    clinic_name: str
    city: str
    province: str
    postal_code: str
    description: str
    services: list[tuple[str, str, list[str]]]  # (slug, name, synonyms)
    latitude: float | None = None
    longitude: float | None = None


def epoch_us(value: datetime | None) -> int:
    """Microseconds since the epoch (0 for never): exact, so query-time cut-offs are exact."""
    if value is None:
        return 0
    delta = as_utc(value) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(value: int) -> datetime | None:
    if not value:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + _us(value)


def _us(value: int):
    from datetime import timedelta

    return timedelta(microseconds=value)


def _chunks(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def build_documents(
    conn: Connection, practitioner_ids: Iterable[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Index documents for these practitioners (all listed ones when None).

    A practitioner missing from the answer has no document: deleted, or no listing left.
    """
    if practitioner_ids is None:
        return _build(conn, None)
    ids = sorted({int(i) for i in practitioner_ids})
    docs: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        docs.update(_build(conn, chunk))
    return docs


def iter_all_documents(conn: Connection, batch: int = 2000) -> Iterator[dict[str, Any]]:
    """Every listed practitioner's document, in batches (bounded memory for a rebuild)."""
    listed = conn.execute(select(Listing.practitioner_id).distinct()).scalars().all()
    for chunk in _chunks(sorted(listed), batch):
        yield from _build(conn, chunk).values()


def documents_read_beside(
    engine: Engine, read=None, *, fork: bool | None = None
) -> Iterator[dict[str, Any]]:
    """``iter_all_documents`` read in a forked child process while the caller indexes what
    it has already received (a rebuild: reading the database and building the documents is
    a fifth of its CPU time, and a machine with two cores can do it beside the indexing).
    The child reads on its own connection, after everything the caller did before asking,
    and sends pickled batches through a pipe. In-process, as ``iter_all_documents``, when
    another thread is running (a fork copies no thread, and a lock one holds would stay
    held in the child), for an in-memory SQLite database, or when ``fork`` is False.
    ``read(conn)`` yields the documents (``iter_all_documents`` by default)."""
    read = read or iter_all_documents
    if fork is None:
        fork = threading.active_count() == 1 and not _in_memory(engine)
    if not fork or not hasattr(os, "fork"):
        with engine.connect() as conn:
            yield from read(conn)
        return

    def read_all(send) -> None:
        engine.dispose(close=False)  # the parent's pooled connections stay its own
        with engine.connect() as conn:
            batch: list[dict[str, Any]] = []
            for doc in read(conn):
                batch.append(doc)
                if len(batch) == 500:
                    send(batch)
                    batch = []
            send(batch)

    with forked.beside(read_all, "reading the documents") as receive:
        for batch in receive():
            yield from batch


def _in_memory(engine: Engine) -> bool:
    """An in-memory SQLite database: another process opening it would find it empty."""
    url = engine.url
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _build(conn: Connection, ids: list[int] | None) -> dict[int, dict[str, Any]]:
    listing_q = select(
        Listing.id,
        Listing.practitioner_id,
        Listing.description,
        Clinic.slug,
        Clinic.name,
        Clinic.city,
        Clinic.province,
        Clinic.postal_code,
        Clinic.latitude,
        Clinic.longitude,
    ).join(Clinic, Clinic.id == Listing.clinic_id)
    if ids is not None:
        listing_q = listing_q.where(Listing.practitioner_id.in_(ids))
    listing_rows = conn.execute(listing_q.order_by(Listing.id)).all()
    if not listing_rows:
        return {}
    listing_ids = [row[0] for row in listing_rows]

    services_of: dict[int, list[tuple[str, str, list[str]]]] = defaultdict(list)
    service_q = (
        select(listing_services.c.listing_id, Service.slug, Service.name, Service.synonyms)
        .join(Service, Service.id == listing_services.c.service_id)
        .order_by(Service.name)
    )
    if ids is not None:
        service_q = service_q.where(listing_services.c.listing_id.in_(listing_ids))
    for listing_id, slug, name, synonyms in conn.execute(service_q):
        services_of[listing_id].append((slug, name, list(synonyms or [])))

    listings_of: dict[int, list[_Listing]] = defaultdict(list)
    for lid, pid, description, c_slug, c_name, city, province, postal, lat, lon in listing_rows:
        listings_of[pid].append(
            _Listing(
                c_slug, c_name, city or "", province or "", postal or "",
                description or "", services_of.get(lid, []), lat, lon,
            )
        )  # fmt: skip

    p_cols = [getattr(Practitioner, name) for name in INDEXED_PRACTITIONER_COLUMNS]
    practitioner_q = select(Practitioner.id, *p_cols)
    practitioner_q = practitioner_q.where(Practitioner.id.in_(list(listings_of)))
    docs: dict[int, dict[str, Any]] = {}
    for row in conn.execute(practitioner_q):
        values = dict(zip(("id", *INDEXED_PRACTITIONER_COLUMNS), row, strict=True))
        docs[row[0]] = document_for(values, listings_of[row[0]])
    return docs


@lru_cache(maxsize=4096)
def _service_phrases(name: str, synonyms: tuple[str, ...]) -> tuple[str, ...]:
    """A service's name and synonyms as word keys (a small vocabulary, asked for once per
    listing and service: remembered)."""
    return (text.key(name), *(text.key(s) for s in synonyms))


def _mentions(description_words: str, phrases: Iterable[str]) -> bool:
    padded = f" {description_words} "
    return any(f" {phrase} " in padded for phrase in phrases if phrase)


def document_for(p: dict[str, Any], listings: list[_Listing]) -> dict[str, Any]:
    """The whoosh document for one practitioner and their listings."""
    name = Practitioner.display_name.fget(SimpleNamespace(**p))  # the model's one rule
    number = p["registration_number"]

    services: dict[str, tuple[str, list[str]]] = {}
    strength: list[str] = []
    clinics: dict[str, tuple[str, str, str, float | None, float | None]] = {}
    descriptions: list[str] = []
    postcodes: set[str] = set()
    for listing in listings:
        located = listing.latitude is not None and listing.longitude is not None
        clinics.setdefault(
            listing.clinic_slug,
            (
                listing.clinic_name, listing.city, listing.province,
                listing.latitude if located else None, listing.longitude if located else None,
            ),
        )  # fmt: skip
        if listing.postal_code:
            postcodes.add(listing.postal_code.strip())
        if listing.description.strip():
            descriptions.append(listing.description.strip())
        described = text.key(listing.description)
        for slug, service_name, synonyms in listing.services:
            services.setdefault(slug, (service_name, synonyms))
            strength.append(slug)
            phrases = _service_phrases(service_name, tuple(synonyms))
            if _mentions(described, phrases):
                strength.extend([slug, slug])

    service_terms = [
        term
        for slug, (service_name, synonyms) in services.items()
        for term in (service_name, slug.replace("-", " "), *synonyms)
    ]
    service_text = SEPARATOR.join(service_terms)
    cities = sorted({c[1] for c in clinics.values() if c[1]})
    provinces = sorted({c[2] for c in clinics.values() if c[2]})
    description = "\n\n".join(descriptions)
    clinic_names = [c[0] for c in clinics.values()]
    places = [*cities, *provinces, *sorted(postcodes)]
    all_text = " ".join([name, *service_terms, *clinic_names, *places, description])
    vocabulary = set(text.words(all_text))

    payload = {
        "number": number,
        "name": name,
        "category": p.get("category") or "",
        "status": p["status"] or "unknown",
        "verified_at": epoch_us(p["verified_at"]),
        "pending_since": epoch_us(p["not_found_pending_since"]),
        "services": list(services),
        "service_names": [services[s][0] for s in services],
        "clinics": [[slug, *clinics[slug]] for slug in clinics],
    }
    doc: dict[str, Any] = {
        "pid": str(p["id"]),
        "kind": PRACTITIONER_KIND,
        "number": number,
        "name": f"{name} {number}",
        "services": service_text,
        "clinics": SEPARATOR.join(clinic_names),
        "places": SEPARATOR.join(places),
        "description": SEPARATOR.join(descriptions),
        "excerpt": description,
        "service": ",".join(services),
        "city": ",".join(sorted({text.key(c) for c in cities})),
        "province": ",".join(sorted({text.key(p_) for p_ in provinces})),
        "clinic": ",".join(clinics),
        "postcode": ",".join(sorted(postcodes)),
        "strength": ",".join(strength),
        "within": ",".join(within_services(services, number, p.get("category"))),
        "status": payload["status"],
        "pending": "1" if p["not_found_pending_since"] is not None else "0",
        "verified_at": payload["verified_at"],
        "sort_name": f"{text.fold(p.get('surname') or '')}\t{text.fold(name)}\t{number}",
        "geo": ";".join(f"{c[3]:.5f},{c[4]:.5f}" for c in clinics.values() if c[3] is not None),
        "words": " ".join(sorted(vocabulary)),
        "payload": payload,
    }
    doc["digest"] = digest(doc)
    return doc


def digest(doc: dict[str, Any]) -> str:
    """A fingerprint of everything indexed, so ``flask search check`` can find stale docs."""
    material = {k: v for k, v in doc.items() if k != "digest"}
    return hashlib.sha1(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
