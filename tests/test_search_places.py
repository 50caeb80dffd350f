"""Places people type and distances, through the search engine (whoosh) on SQLite and on
PostgreSQL: renamed cities, short forms and suburbs find their city's clinics; a place with
coordinates gives each hit its distance, "nearest first" and a distance limit. The directory
is the fictional one in tests/places_support.py."""

from __future__ import annotations

import json
import math

import pytest

from directory.search import get_search_backend
from directory.search.backend import NoOrigin, QueryError, SearchQuery
from directory.search.null import NullSearch
from tests.places_support import drop_places_app, places_app
from tests.test_search_support import NOW, numbers_of

GQEBERHA = {"MP0920001", "MP0920002"}
JOHANNESBURG_BOTOX = {"MP0920003", "MP0920004", "MP0920005", "MP0920006"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"places-{request.param}")
    url = request.getfixturevalue("pg_database_url") if request.param == "postgresql" else None
    app = places_app(base, url)
    with app.app_context():
        yield get_search_backend()
    drop_places_app(app)


def search(backend, **kwargs):
    return backend.search(SearchQuery(include_unverified=True, **kwargs), now=NOW)


@pytest.mark.parametrize(
    "text,place",
    [
        ("fillers port elizabeth", ""),
        ("fillers in port elizabeth", ""),
        ("fillers gqeberha", ""),
        ("fillers PE", ""),
        ("fillers in P.E.", ""),
        ("fillers nelson mandela bay", ""),
        ("fillers", "Port Elizabeth"),
        ("fillers", "PE"),
        ("fillers", "Summerstrand"),
    ],
)
def test_a_renamed_city_by_any_name_finds_both_spellings(backend, text, place):
    results = search(backend, text=text, place=place)
    assert set(numbers_of(results)) == GQEBERHA
    assert results.did_you_mean is None  # never "fillers sport elizabeth"
    assert results.understood["city"].endswith("Gqeberha")
    assert results.origin is not None


@pytest.mark.parametrize(
    "text", ["botox sandton", "botox in sandton", "botox jozi", "botox joburg", "botox JHB",
             "botox rosebank", "botox johannesburg"]
)  # fmt: skip
def test_a_suburb_or_short_form_finds_its_city(backend, text):
    results = search(backend, text=text)
    assert set(numbers_of(results)) == JOHANNESBURG_BOTOX
    assert results.did_you_mean is None


def test_a_suburb_measures_from_itself(backend):
    results = search(backend, text="botox sandton")
    assert results.origin.label == "Sandton, Johannesburg"
    km = {hit.registration_number: hit.distance_km for hit in results.hits}
    assert km["MP0920003"] == 0.0
    assert 5 < km["MP0920005"] < 7  # Randburg
    assert 10 < km["MP0920004"] < 12  # Johannesburg's centre
    assert km["MP0920006"] is None  # the clinic gave no coordinates: no distance invented


def test_short_forms_of_other_cities(backend):
    assert numbers_of(search(backend, text="botox cpt")) == ["MP0920007"]
    assert numbers_of(search(backend, text="botox in tshwane")) == ["MP0920008"]


def test_nearest_first(backend):
    results = search(backend, text="botox sandton", sort="distance")
    assert numbers_of(results) == ["MP0920003", "MP0920005", "MP0920004", "MP0920006"]


def test_a_distance_limit_replaces_the_city(backend):
    assert set(numbers_of(search(backend, text="botox sandton", radius_km=10))) == {
        "MP0920003",
        "MP0920005",
    }
    wide = search(backend, text="botox", place="Sandton", radius_km=50, sort="distance")
    # Pretoria is in Tshwane, not Johannesburg, but within 50 km; no coordinates: left out.
    assert numbers_of(wide) == ["MP0920003", "MP0920005", "MP0920004", "MP0920008"]
    assert wide.understood["radius"] == "50 km"
    assert wide.total == 4


def test_near_my_location(backend):
    results = search(backend, text="botox", near=(-33.93, 18.42), sort="distance")
    assert results.origin.label == "your location"
    assert numbers_of(results)[0] == "MP0920007"
    assert results.hits[0].distance_km < 2
    assert results.hits[0].clinics[0].distance_km == results.hits[0].distance_km
    nearby = search(backend, near=(-33.93, 18.42), radius_km=5)
    assert set(numbers_of(nearby)) == {"MP0920007", "MP0920009"}


def test_without_a_place_nothing_is_measured(backend):
    results = search(backend, text="botox")
    assert results.origin is None
    assert all(hit.distance_km is None for hit in results.hits)
    assert all(c.distance_km is None for hit in results.hits for c in hit.clinics)
    with pytest.raises(NoOrigin):
        search(backend, text="botox", sort="distance")
    with pytest.raises(NoOrigin):
        search(backend, text="botox", radius_km=10)


def test_a_city_facet_counts_its_suburbs_and_finds_what_it_counted(backend):
    results = search(backend, text="botox")
    cities = {f.value: f.count for f in results.facets["cities"]}
    assert cities == {"Johannesburg": 4, "Cape Town": 1, "Pretoria": 1}
    assert set(numbers_of(search(backend, text="botox", city="Johannesburg"))) == (
        JOHANNESBURG_BOTOX
    )
    fillers = {f.value: f.count for f in search(backend, text="fillers").facets["cities"]}
    assert fillers == {"Gqeberha": 2, "Cape Town": 1}


def test_a_town_name_alone_that_is_also_a_name_stays_a_word(backend):
    # Nigel is a town in Gauteng (and a first name): typed alone it is searched as a word.
    results = search(backend, text="nigel")
    assert "city" not in results.understood
    assert search(backend, text="botox in nigel").understood["city"] == "Nigel"


BAD = [
    {"radius_km": 0},
    {"radius_km": 501},
    {"radius_km": math.nan},
    {"radius_km": True},
    {"near": (91.0, 0.0)},
    {"near": (0.0, 181.0)},
    {"near": ("a", 1.0)},
    {"near": (1.0,)},
    {"sort": "closest"},
]


@pytest.mark.parametrize("bad", BAD)
def test_bad_distance_values_are_query_errors_in_every_engine(backend, bad):
    for engine in (backend, NullSearch()):
        with pytest.raises(QueryError):
            engine.search(SearchQuery(text="botox", place="Sandton", **bad), now=NOW)


def test_the_null_engine_accepts_distances_and_finds_nothing():
    found = NullSearch().search(
        SearchQuery(text="botox", place="Sandton", near=(-26.1, 28.0), radius_km=10,
                    sort="distance")
    )  # fmt: skip
    assert (found.hits, found.total, found.origin) == ([], 0, None)


def test_a_clinic_that_moves_is_measured_from_where_it_is_now(backend):
    from directory.extensions import db
    from directory.listings.models import Clinic

    clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == "cbd-example"))
    before = (clinic.latitude, clinic.longitude)
    try:
        clinic.latitude, clinic.longitude = -26.1080, 28.0570  # next door to Sandton's centre
        db.session.commit()
        hits = {h.registration_number: h for h in search(backend, text="botox sandton").hits}
        assert hits["MP0920004"].distance_km < 0.5
    finally:
        clinic.latitude, clinic.longitude = before
        db.session.commit()
    hits = {h.registration_number: h for h in search(backend, text="botox sandton").hits}
    assert hits["MP0920004"].distance_km > 10


def test_flask_search_query_measures_too(backend):
    from flask import current_app

    runner = current_app.test_cli_runner()
    result = runner.invoke(
        args=["search", "query", "botox", "--place", "Sandton", "--sort", "distance", "--json"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line.get("registration_number") for line in lines[:2]] == ["MP0920003", "MP0920005"]
    assert lines[0]["distance_km"] == 0.0
    assert lines[-1]["origin"] == "Sandton, Johannesburg"
    near = runner.invoke(args=["search", "query", "--near", "-33.93,18.42", "--radius", "5"])
    assert near.exit_code == 0 and "MP0920007" in near.output
    bad = runner.invoke(args=["search", "query", "botox", "--near", "north"])
    assert bad.exit_code == 1 and "a location is a latitude" in bad.output
