"""Places and distances on the results page and in the API: what a patient and an API client
see for renamed cities, suburbs, "nearest first", a distance limit and "use my location".
The directory is the fictional one in tests/places_support.py, on SQLite and on PostgreSQL."""

from __future__ import annotations

import re

import pytest

from tests.conftest import DATABASES
from tests.places_support import drop_places_app, places_app
from tests.test_web_pages import text_of


@pytest.fixture(scope="module", params=DATABASES)
def client(request, tmp_path_factory):
    """One app per database for the module (every test here only reads)."""
    base = tmp_path_factory.mktemp(f"web-places-{request.param}")
    url = request.getfixturevalue("pg_database_url") if request.param == "postgresql" else None
    app = places_app(base, url)
    yield app.test_client()
    drop_places_app(app)


def cards(html: bytes) -> list[str]:
    return re.findall(r'<article class="card" aria-labelledby="card-(\w+)"', html.decode())


def distances(html: bytes) -> list[str]:
    return re.findall(r'<span class="card__distance">· ([^<]+)</span>', html.decode())


def sort_options(html: bytes) -> list[str]:
    select = re.search(r'<select id="sort" name="sort">(.*?)</select>', html.decode(), re.S)
    return re.findall(r'<option value="(\w+)"', select.group(1))


def test_fillers_port_elizabeth_finds_gqeberha_and_never_sport(client):
    page = client.get("/search?q=fillers+port+elizabeth")
    assert page.status_code == 200
    assert sorted(cards(page.data)) == ["MP0920001", "MP0920002"]
    words = text_of(page.data)
    assert "Did you mean" not in words and "sport" not in words
    assert "city Gqeberha" in words
    assert "Distances are from Gqeberha, as the crow flies." in words


@pytest.mark.parametrize("where", ["PE", "Port Elizabeth", "Nelson Mandela Bay", "gqberha"])
def test_the_where_box_knows_the_names(client, where):
    page = client.get("/search", query_string={"q": "fillers", "where": where})
    assert sorted(cards(page.data)) == ["MP0920001", "MP0920002"]


def test_botox_sandton_nearest_first_with_distances(client):
    page = client.get("/search?q=botox+sandton&sort=distance")
    assert cards(page.data) == ["MP0920003", "MP0920005", "MP0920004", "MP0920006"]
    # The clinic without coordinates shows no distance rather than a guess.
    assert distances(page.data) == ["under 1 km", "6 km", "11 km"]
    assert "Sandton Sample Rooms, Sandton" in text_of(page.data)
    assert sort_options(page.data) == ["relevance", "name", "verified", "distance"]
    assert '<option value="distance" selected>Nearest first</option>' in page.data.decode()


def test_a_distance_limit_on_the_page(client):
    page = client.get("/search?q=botox+sandton&radius=10")
    assert sorted(cards(page.data)) == ["MP0920003", "MP0920005"]
    html = page.data.decode()
    assert '<option value="10" selected>Within 10 km</option>' in html
    assert "Distance: <strong>within 10 km</strong>" in html
    remove = re.search(r'Distance: <strong>within 10 km</strong> <a href="([^"]+)"', html)
    assert "radius" not in remove.group(1)


def test_without_a_place_there_is_no_nearest_first(client):
    page = client.get("/search?q=botox")
    assert "distance" not in sort_options(page.data)
    assert distances(page.data) == []
    assert 'id="radius"' not in page.data.decode()


def test_nearest_first_without_a_place_keeps_the_search_and_says_why(client):
    # A new search typed on a page sorted nearest first, without a place this time.
    page = client.get("/search?q=botox&sort=distance&radius=10")
    assert page.status_code == 200
    assert len(cards(page.data)) == 6
    words = text_of(page.data)
    assert "need a place to measure from" in words
    assert "these results are sorted by best match" in words


def test_my_location_sorts_nearest_first(client):
    page = client.get("/search?q=botox&near=-33.93,18.42")
    assert cards(page.data)[0] == "MP0920007"
    assert distances(page.data)[0] == "under 1 km"
    assert "near your location" in text_of(page.data)
    assert "Distances are from your location" in text_of(page.data)


@pytest.mark.parametrize(
    "query,notice",
    [
        ("near=north", "Your location was not used"),
        ("near=95,10", "Your location was not used"),
        ("radius=far", "is not a distance in kilometres"),
        ("radius=100000", "The largest distance limit is 500 km"),
    ],
)
def test_bad_distance_values_are_notices_not_errors(client, query, notice):
    page = client.get(f"/search?q=botox+sandton&{query}")
    assert page.status_code == 200
    assert notice in text_of(page.data)
    assert cards(page.data)


def test_cards_are_compact_and_one_link(client):
    html = client.get("/search?q=botox+sandton").data.decode()
    card = re.search(r'<article class="card".*?</article>', html, re.S).group(0)
    # The name's link, stretched over the card; only the clinic's contact links (here:
    # directions, from its coordinates) sit above it.
    links = re.findall(r"<a ([^>]*)>", card)
    assert [attrs for attrs in links if "data-contact" not in attrs] == [
        'class="card__link" href="/practitioners/MP0920004"'
    ]
    assert "card__facts" not in card


def test_use_my_location_is_a_local_script_the_policy_allows(client):
    page = client.get("/search?q=botox")
    html = page.data.decode()
    assert '<button type="button" class="button button--link near-me" data-near-me hidden>' in html
    # Linked by its fingerprinted name (directory/web/delivery.py), like every asset.
    assert re.search(r'<script src="/assets/near-me\.[0-9a-f]{12}\.js" defer></script>', html)
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    assert "geolocation=(self)" in page.headers["Permissions-Policy"]
    script = client.get("/assets/near-me.js")
    assert script.status_code == 200 and "javascript" in script.mimetype
    assert "http" not in script.data.decode()  # nothing fetched from anywhere else


# --- the API ---------------------------------------------------------------------------------


def test_api_distances_nearest_first_and_origin(client):
    body = client.get("/api/v1/search?q=botox+sandton&sort=distance").get_json()
    assert [r["registration_number"] for r in body["results"]] == [
        "MP0920003", "MP0920005", "MP0920004", "MP0920006",
    ]  # fmt: skip
    assert body["origin"] == {"label": "Sandton, Johannesburg", "latitude": -26.1076,
                              "longitude": 28.0567}  # fmt: skip
    first, last = body["results"][0], body["results"][-1]
    assert first["distance_km"] == 0.0 and first["clinics"][0]["distance_km"] == 0.0
    assert last["distance_km"] is None and last["clinics"][0]["distance_km"] is None
    assert body["understood"]["city"] == "Sandton, Johannesburg"


def test_api_radius_and_near(client):
    body = client.get("/api/v1/search?q=botox&where=sandton&radius=10").get_json()
    assert {r["registration_number"] for r in body["results"]} == {"MP0920003", "MP0920005"}
    near = client.get("/api/v1/search?near=-33.93,18.42&radius=5&sort=distance").get_json()
    assert [r["registration_number"] for r in near["results"]] == ["MP0920007", "MP0920009"]
    assert near["origin"]["label"] == "your location"


def test_api_without_a_place_has_no_distances(client):
    body = client.get("/api/v1/search?q=botox").get_json()
    assert body["origin"] is None
    assert all(r["distance_km"] is None for r in body["results"])


@pytest.mark.parametrize(
    "query,code",
    [
        ("q=botox&sort=distance", "needs_place"),
        ("q=botox&radius=10", "needs_place"),
        ("q=botox+sandton&radius=0", None),
        ("q=botox+sandton&radius=501", None),
        ("q=botox+sandton&radius=nan", None),
        ("q=botox&near=north", None),
        ("q=botox&near=91,0", None),
        ("q=botox&near=1,2,3", None),
    ],
)
def test_api_bad_distance_values_are_problems(client, query, code):
    response = client.get(f"/api/v1/search?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    if code:
        assert response.get_json()["code"] == code


def test_openapi_documents_near_radius_and_distance(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    params = {
        p["name"]: p for p in doc["paths"]["/api/v1/search"]["get"]["parameters"] if "name" in p
    }
    assert "distance" in params["sort"]["schema"]["enum"]
    assert params["near"]["schema"]["type"] == "string"
    assert params["radius"]["schema"]["type"] == "number"
    result = doc["components"]["schemas"]["SearchResult"]["properties"]
    assert "distance_km" in result
    assert "origin" in doc["components"]["schemas"]["SearchResponse"]["properties"]
