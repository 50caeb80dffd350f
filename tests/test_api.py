"""The JSON API, /api/v1: every endpoint, every error path, caching, and the ``verified`` flag
agreeing with the page's badge. Data comes from the fake iRegister (a real HTTP server on
loopback) through the real client and ``record_check``; all of it is fictional."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from datetime import timedelta

import pytest

from directory import create_app
from directory.api.schemas import SearchResponseSchema
from directory.extensions import db
from directory.listings.models import Clinic, Listing, Service
from directory.listings.vocabulary import sync_services
from directory.registry.checks import new_practitioner
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome
from directory.registry.verification import verdict
from directory.util.clock import utcnow
from importers.sources.hpcsa import HpcsaClient
from tests.conftest import DATABASES
from tests.fake_iregister import FakeIRegister, FakeRegister

PROBLEM = "application/problem+json"

# number -> the verdict tone the fixture register (and the rules) should give it
EXPECTED_TONES = {
    "MP0000101": "verified",  # active, confirmed just now
    "DP0000201": "verified",
    "PRC0000401": "stale",  # active, but last confirmed 40 days ago
    "PS0000301": "pending",  # active, then one unconfirmed not-found
    "MP0000103": "adverse",  # suspended
    "MP0000104": "adverse",  # erased
    "MP0000102": "adverse",  # one row active, another erased: erased wins
    "MP0000107": "adverse",  # deceased
    "MP0000106": "unknown",  # a status string the mapping does not know
}


def build_directory(app) -> None:
    """Practitioners in every verdict state, three clinics listing them, the services, and
    the search index built from that."""
    policy = RegistryPolicy.from_config(app.config)
    with app.app_context():
        sync_services(db.session)
        with HpcsaClient.from_config(app.config) as register:
            for number, tone in EXPECTED_TONES.items():
                result = register.lookup(number)
                assert result.outcome is Outcome.OK, result
                practitioner = new_practitioner(number)
                if tone == "stale":
                    result = replace(result, observed_at=utcnow() - timedelta(days=40))
                record_check(db.session, practitioner, result, policy)
                if tone == "pending":
                    db.session.flush()
                    gone = replace(result, outcome=Outcome.NOT_FOUND, rows=(), observed_at=utcnow())
                    record_check(db.session, practitioner, gone, policy)
        db.session.flush()
        by_number = {p.registration_number: p for p in db.session.scalars(db.select(Practitioner))}
        services = {s.slug: s for s in db.session.scalars(db.select(Service))}
        clinics = [
            Clinic(
                slug="fictional-rosebank-skin-clinic",
                name="Fictional Rosebank Skin Clinic",
                city="Johannesburg",
                province="Gauteng",
                phone="+27110000001",
                description="A fictional clinic for tests.",
            ),
            Clinic(
                slug="fictional-sea-point-wellness",
                name="Fictional Sea Point Wellness",
                city="Cape Town",
                province="Western Cape",
                latitude=-33.91,
                longitude=18.39,
            ),
            Clinic(
                slug="fictional-umhlanga-medical",
                name="Fictional Umhlanga Medical",
                city="Durban",
                province="KwaZulu-Natal",
            ),
        ]
        db.session.add_all(clinics)
        listed = {
            0: [
                ("MP0000101", ["mesotherapy", "botulinum-toxin"]),
                ("MP0000103", ["mesotherapy"]),
                ("PRC0000401", ["mesotherapy"]),
            ],
            1: [
                ("MP0000101", ["fat-reduction"]),
                ("DP0000201", ["mesotherapy", "prp"]),
                ("PS0000301", ["mesotherapy"]),
                ("MP0000106", ["mesotherapy"]),
            ],
            2: [
                ("MP0000104", ["mesotherapy"]),
                ("MP0000107", ["acne"]),
                ("MP0000102", ["mesotherapy"]),
            ],
        }
        for index, entries in listed.items():
            for number, slugs in entries:
                db.session.add(
                    Listing(
                        practitioner=by_number[number],
                        clinic=clinics[index],
                        services=[services[s] for s in slugs],
                        description=f"Fictional listing of {number} offering {', '.join(slugs)}.",
                    )
                )
        db.session.commit()
        from directory.search import get_index_keeper

        get_index_keeper().rebuild()


@pytest.fixture(scope="module", params=DATABASES)
def shared_app(request, tmp_path_factory):
    """One app with the data, for the tests that only read (building it takes a second):
    on SQLite, then on PostgreSQL."""
    register = FakeRegister()
    register.load_fixture()
    path = tmp_path_factory.mktemp("api")
    on_sqlite = request.param == "sqlite"
    database = (
        f"sqlite:///{path / 'api.sqlite3'}"
        if on_sqlite
        else request.getfixturevalue("pg_database_url")
    )
    with FakeIRegister(register) as server:
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "test-secret",
                "SQLALCHEMY_DATABASE_URI": database,
                "SEARCH_INDEX_DIR": str(path / "search-index"),
                "HPCSA_URL": server.url,
                "HPCSA_TIMEOUT": 2.0,
                # unexpected exceptions answer 500, as deployed, instead of reaching pytest
                "PROPAGATE_EXCEPTIONS": False,
            }
        )
        with app.app_context():
            db.create_all()
        build_directory(app)
    yield app
    with app.app_context():
        db.session.remove()
        if not on_sqlite:  # the session's PostgreSQL database is shared with pg_app tests
            db.drop_all()
        db.engine.dispose()


@pytest.fixture
def api(shared_app):
    return shared_app.test_client()


@pytest.fixture
def own_app(app):
    """A fresh app with the data, for tests that change it."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    build_directory(app)
    return app


def assert_problem(response, status: int, *, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = json.loads(response.get_data(as_text=True))
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in body["detail"] and "Error:" not in body["detail"]
    if code:
        assert body["code"] == code
    return body


# --- search -----------------------------------------------------------------------------------


def test_search_lists_only_verified_practitioners_by_default(api):
    response = api.get("/api/v1/search?q=mesotherapy")
    assert response.status_code == 200
    body = response.get_json()
    numbers_found = {r["registration_number"] for r in body["results"]}
    assert numbers_found == {"MP0000101", "DP0000201"}
    assert all(r["verified"] for r in body["results"])
    assert body["page"] == 1 and body["per_page"] == 20
    assert body["total"] == 2
    assert set(body) >= {"results", "total", "page", "per_page", "facets", "did_you_mean"}


def test_search_with_unverified_shows_each_status(api):
    body = api.get("/api/v1/search?q=mesotherapy&include_unverified=true").get_json()
    by_number = {r["registration_number"]: r for r in body["results"]}
    assert {"MP0000103", "PRC0000401", "PS0000301", "MP0000104", "MP0000106"} <= set(by_number)
    assert by_number["MP0000103"]["status"] == "suspended"
    assert by_number["MP0000103"]["verified"] is False
    assert by_number["MP0000102"]["status"] == "erased"
    assert by_number["PRC0000401"]["status"] == "active"
    assert by_number["PRC0000401"]["verified"] is False  # stale: active is not enough
    assert by_number["PS0000301"]["verified"] is False  # pending not-found
    assert by_number["MP0000101"]["verified"] is True


def test_search_result_fields_and_page_url(api):
    body = api.get("/api/v1/search?q=botox").get_json()
    [hit] = [r for r in body["results"] if r["registration_number"] == "MP0000101"]
    assert hit["name"] == "Dr Thandi Example Fictional-Ndlovu"
    assert hit["status"] == "active" and hit["verified"] is True
    assert hit["verified_at"] is not None
    assert {"slug": "botulinum-toxin", "name": "Botulinum toxin"} in hit["services"]
    assert {c["slug"] for c in hit["clinics"]} >= {"fictional-rosebank-skin-clinic"}
    assert set(hit["clinics"][0]) == {"slug", "name", "city", "province", "distance_km"}
    assert hit["url"] == "http://localhost/practitioners/MP0000101"
    assert api.get("/practitioners/MP0000101").status_code == 200


def test_search_body_is_exactly_what_its_schema_writes(api):
    """The search route builds its JSON without marshmallow (for speed); loading each answer
    with the documented schema and dumping it again must give back the same body."""
    schema = SearchResponseSchema()
    for query in (
        "q=botox",
        "q=mesotherapy&include_unverified=true&per_page=100",
        "city=Cape Town&include_unverified=true&sort=verified",
        "q=mesotheraphy",
    ):
        body = api.get(f"/api/v1/search?{query}").get_json()
        assert body["results"] or body["did_you_mean"], query
        assert schema.dump(schema.load(body)) == body, query
    stale = api.get("/api/v1/search?q=PRC0000401&include_unverified=true").get_json()
    [hit] = [r for r in stale["results"] if r["registration_number"] == "PRC0000401"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", hit["verified_at"])


def test_search_filters_and_facets(api):
    body = api.get("/api/v1/search?city=Cape Town&include_unverified=true").get_json()
    numbers_found = {r["registration_number"] for r in body["results"]}
    assert numbers_found == {"MP0000101", "DP0000201", "PS0000301", "MP0000106"}
    prp = api.get("/api/v1/search?service=prp&province=Western Cape").get_json()
    assert [r["registration_number"] for r in prp["results"]] == ["DP0000201"]
    assert "services" in body["facets"] and "cities" in body["facets"]
    for facet in body["facets"]["services"]:
        assert set(facet) == {"value", "label", "count"}
    suspended = api.get(
        "/api/v1/search?q=mesotherapy&status=suspended&include_unverified=true"
    ).get_json()
    assert [r["registration_number"] for r in suspended["results"]] == ["MP0000103"]
    clinic = api.get("/api/v1/search?clinic=fictional-umhlanga-medical&include_unverified=1")
    assert {r["registration_number"] for r in clinic.get_json()["results"]} == {
        "MP0000104",
        "MP0000107",
        "MP0000102",
    }


def test_search_paging_and_sort(api):
    first = api.get("/api/v1/search?q=mesotherapy&include_unverified=true&per_page=2&sort=name")
    body = first.get_json()
    assert body["per_page"] == 2 and len(body["results"]) == 2
    assert body["total"] >= 6 and body["pages"] == -(-body["total"] // 2)
    names = [r["name"] for r in body["results"]]
    assert names == sorted(names, key=str.casefold)
    second = api.get(
        "/api/v1/search?q=mesotherapy&include_unverified=true&per_page=2&sort=name&page=2"
    ).get_json()
    assert not {r["registration_number"] for r in second["results"]} & {
        r["registration_number"] for r in body["results"]
    }


def test_search_misspelling_offers_did_you_mean(api):
    body = api.get("/api/v1/search?q=mesotheraphy").get_json()
    assert body["did_you_mean"]
    assert "mesotherapy" in body["did_you_mean"].lower()


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("page=abc", "page"),
        ("page=0", "page"),
        ("page=1.5", "page"),
        ("page=99999999999999999999999", "page"),
        ("per_page=0", "per_page"),
        ("per_page=10000", "per_page"),
        ("per_page=-1", "per_page"),
        ("sort=popularity", "sort"),
        ("status=verified", "status"),
        ("include_unverified=maybe", "include_unverified"),
        ("q=" + "a" * 10_000, "q"),
        ("q=meso%00therapy", "q"),
        ("q=line%0Abreak", "q"),
        ("where=Cape%1BTown", "where"),
        ("city=" + "x" * 500, "city"),
    ],
)
def test_bad_search_parameters_are_400_problems(api, query, parameter):
    body = assert_problem(api.get(f"/api/v1/search?{query}"), 400, code="invalid_parameters")
    assert [e["parameter"] for e in body["errors"]] == [parameter]
    assert body["errors"][0]["location"] == "query"
    assert body["detail"].startswith(f"{parameter}: ")
    assert len(body["detail"]) < 200  # plain words, not an echo of the input


def test_several_bad_parameters_are_all_named(api):
    body = assert_problem(api.get("/api/v1/search?page=x&per_page=0&sort=z"), 400)
    assert {e["parameter"] for e in body["errors"]} == {"page", "per_page", "sort"}


@pytest.mark.parametrize(
    "text",
    [
        '"fat reduction"',
        "botox AND NOT acne OR",
        "meso*",
        "*",
        "name:ndlovu",
        "surname:(",
        "Thandí Ñdlovu 日本語 🙂",
        "((((",
        "-",
        "\u200b",
        "a" * 500,
    ],
)
def test_odd_but_allowed_text_never_fails(api, text):
    response = api.get("/api/v1/search", query_string={"q": text, "where": text[:120]})
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 400:
        assert_problem(response, 400, code="invalid_query")


# --- practitioners ------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["MP0000101", "mp0000101", "mp 101", "MP   0000101", "MP-101"])
def test_practitioner_accepts_any_typed_form(api, typed):
    response = api.get(f"/api/v1/practitioners/{typed}")
    assert response.status_code == 200
    assert response.get_json()["registration_number"] == "MP0000101"


def test_practitioner_document(api):
    body = api.get("/api/v1/practitioners/MP0000101").get_json()
    assert body["name"] == "Dr Thandi Example Fictional-Ndlovu"
    assert body["register_format"] == "MP   0000101"
    assert body["register"]
    assert body["surname"] == "FICTIONAL-NDLOVU"
    assert body["status"] == "active" and body["raw_status"] == "ACTIVE"
    assert body["verified"] is True
    assert body["verified_at"] and body["last_checked_at"] and body["status_as_of"]
    assert body["categories"] == [
        {"category": "INDEPENDENT PRACTICE", "raw_status": "ACTIVE", "status": "active"}
    ]
    assert body["headline"].startswith("Registered with the HPCSA: active")
    assert body["verdict"]["tone"] == "verified" and body["verdict"]["badge"] == "green"
    assert body["register_record_url"].endswith("/reg_number/MP%20%20%200000101")
    assert [c["outcome"] for c in body["history"]] == ["ok"]
    assert body["history"][0]["source"] == "hpcsa-iregister"
    assert [c["slug"] for c in body["clinics"]] == [
        "fictional-rosebank-skin-clinic",
        "fictional-sea-point-wellness",
    ]
    assert body["clinics"][0]["services"] == [
        {"slug": "botulinum-toxin", "name": "Botulinum toxin"},
        {"slug": "mesotherapy", "name": "Mesotherapy"},
    ]
    assert {s["slug"] for s in body["services"]} == {
        "botulinum-toxin",
        "mesotherapy",
        "fat-reduction",
    }
    assert body["url"] == "http://localhost/practitioners/MP0000101"


def test_practitioner_history_is_newest_first(api):
    body = api.get("/api/v1/practitioners/PS0000301").get_json()
    assert [c["outcome"] for c in body["history"]] == ["not_found", "ok"]
    assert body["history"][0]["effect"] == "pending_not_found"
    assert body["status"] == "active" and body["verified"] is False
    assert body["verdict"]["tone"] == "pending"


def test_practitioner_with_several_categories(api):
    body = api.get("/api/v1/practitioners/MP0000104").get_json()
    assert body["status"] == "erased" and body["verified"] is False
    assert body["verdict"]["badge"] == "red"
    assert body["clinics"][0]["slug"] == "fictional-umhlanga-medical"


@pytest.mark.parametrize(
    ("typed", "suggestion"),
    [
        ("MPO000101", "MP0000101"),
        ("0000101", None),
        ("MP", None),
        ("MP12345678", None),
        ("M", None),
        ("MP0000101xyz", None),
    ],
)
def test_malformed_registration_number_is_400_problem(api, typed, suggestion):
    body = assert_problem(
        api.get(f"/api/v1/practitioners/{typed}"), 400, code="invalid_registration_number"
    )
    assert body.get("suggestion") == suggestion


def test_unknown_registration_number_is_404_problem(api):
    body = assert_problem(api.get("/api/v1/practitioners/mp 9999"), 404, code="not_found")
    assert "MP0009999" in body["detail"]


@pytest.mark.parametrize("number", sorted(EXPECTED_TONES))
def test_verified_flag_equals_the_page_badge(shared_app, api, number):
    body = api.get(f"/api/v1/practitioners/{number}").get_json()
    page = api.get(f"/practitioners/{number}").get_data(as_text=True)
    badge = re.search(r'data-verified="(true|false)" data-tone="(\w+)"', page)
    assert badge, "the page shows a badge"
    assert body["verified"] == (badge.group(1) == "true")
    assert body["verdict"]["tone"] == badge.group(2) == EXPECTED_TONES[number]
    assert body["headline"] in page
    with shared_app.app_context():
        practitioner = db.session.scalar(
            db.select(Practitioner).where(Practitioner.registration_number == number)
        )
        assert body["verified"] is verdict(practitioner).verified


def test_search_verified_flag_equals_the_verdict(shared_app, api):
    body = api.get("/api/v1/search?q=mesotherapy&include_unverified=true&per_page=100").get_json()
    assert body["results"]
    with shared_app.app_context():
        for result in body["results"]:
            practitioner = db.session.scalar(
                db.select(Practitioner).where(
                    Practitioner.registration_number == result["registration_number"]
                )
            )
            assert result["verified"] is verdict(practitioner).verified
            assert result["status"] == practitioner.status


def test_confirmation_growing_old_stops_search_calling_it_verified(own_app):
    """The index cannot know that time passed; the API asks ``verdict`` for each hit."""
    own_app.config["VERIFICATION_MAX_AGE"] = "1h"
    api = own_app.test_client()
    with own_app.app_context():
        practitioner = db.session.scalar(
            db.select(Practitioner).where(Practitioner.registration_number == "MP0000101")
        )
        practitioner.verified_at = utcnow() - timedelta(hours=2)
        db.session.commit()
    body = api.get("/api/v1/search?q=botox").get_json()
    assert all(r["registration_number"] != "MP0000101" for r in body["results"])
    everyone = api.get("/api/v1/search?q=botox&include_unverified=true").get_json()
    [hit] = [r for r in everyone["results"] if r["registration_number"] == "MP0000101"]
    assert hit["verified"] is False


def test_a_suspension_leaves_the_default_results_at_once(own_app):
    """Recorded through the rules, committed: the next verified-only answer leaves it out,
    whatever the index still holds, and the practitioner's own document says suspended."""
    api = own_app.test_client()
    assert "MP0000101" in {
        r["registration_number"] for r in api.get("/api/v1/search?q=botox").get_json()["results"]
    }
    with own_app.app_context():
        practitioner = db.session.scalar(
            db.select(Practitioner).where(Practitioner.registration_number == "MP0000101")
        )
        with HpcsaClient.from_config(own_app.config) as register:
            answer = register.lookup("MP0000101")
        row = replace(answer.rows[0], status="SUSPENDED")
        suspended = replace(answer, rows=(row,), observed_at=utcnow())
        record_check(
            db.session, practitioner, suspended, RegistryPolicy.from_config(own_app.config)
        )
        db.session.commit()
    results = api.get("/api/v1/search?q=botox").get_json()["results"]
    assert "MP0000101" not in {r["registration_number"] for r in results}
    everyone = api.get("/api/v1/search?q=botox&include_unverified=true").get_json()["results"]
    for result in everyone:
        if result["registration_number"] == "MP0000101":
            assert result["status"] == "suspended" and result["verified"] is False
    document = api.get("/api/v1/practitioners/MP0000101").get_json()
    assert document["status"] == "suspended" and document["verified"] is False
    assert document["verdict"]["badge"] == "red"


def test_a_suspension_the_index_has_not_seen_is_neither_shown_nor_counted(own_app):
    """Hole 5: the suspension is committed but the search outbox is not applied (the index
    still holds the practitioner as verified). The verified-only answer leaves them out and
    its ``total`` counts what it shows; the service document agrees."""
    api = own_app.test_client()
    before = api.get("/api/v1/search?q=mesotherapy").get_json()
    assert {r["registration_number"] for r in before["results"]} == {"MP0000101", "DP0000201"}
    own_app.config["SEARCH_APPLY_AFTER_COMMIT"] = False
    with own_app.app_context():
        practitioner = db.session.scalar(
            db.select(Practitioner).where(Practitioner.registration_number == "DP0000201")
        )
        with HpcsaClient.from_config(own_app.config) as register:
            answer = register.lookup("DP0000201")
        rows = tuple(replace(row, status="SUSPENDED") for row in answer.rows)
        record_check(
            db.session,
            practitioner,
            replace(answer, rows=rows, observed_at=utcnow()),
            RegistryPolicy.from_config(own_app.config),
        )
        db.session.commit()
        from directory.search import get_search_backend
        from directory.search.backend import SearchQuery

        lagging = get_search_backend().search(SearchQuery(text="mesotherapy"))
        assert "DP0000201" in {h.registration_number for h in lagging.hits if h.verified}
    body = api.get("/api/v1/search?q=mesotherapy").get_json()
    assert [r["registration_number"] for r in body["results"]] == ["MP0000101"]
    assert body["total"] == 1 and body["pages"] == 1
    service = api.get("/api/v1/services/mesotherapy").get_json()
    assert [p["registration_number"] for p in service["practitioners"]] == ["MP0000101"]
    assert service["total_practitioners"] == 1


@pytest.mark.parametrize("q", ["Priya Naidoo", "dr fictional-naidoo", "MP 103", "mp0000103"])
def test_search_names_a_suspended_practitioner_apart(api, q):
    """Hole 7: words that name a practitioner (names, or a number in any typed form) list
    them in ``named``, with the database's verdict, even in the verified-only answer."""
    body = api.get("/api/v1/search", query_string={"q": q}).get_json()
    assert "MP0000103" not in {r["registration_number"] for r in body["results"]}
    [named] = [n for n in body["named"] if n["registration_number"] == "MP0000103"]
    assert named["verified"] is False and named["status"] == "suspended"
    assert named["headline"] == "HPCSA register: suspended"
    assert named["named_by"] == ("registration_number" if "103" in q else "name")
    assert named["name"] == "Dr Priya Demo Fictional-Naidoo"
    assert named["url"] == "http://localhost/practitioners/MP0000103"
    schema = SearchResponseSchema()
    assert schema.dump(schema.load(body)) == body


def test_named_practitioners_are_on_the_first_page_only_and_not_counted(api):
    first = api.get("/api/v1/search?q=Priya+Naidoo&include_unverified=true").get_json()
    # Shown everyone, the practitioner is a result; ``named`` does not repeat them.
    assert "MP0000103" in {r["registration_number"] for r in first["results"]}
    assert "MP0000103" not in {n["registration_number"] for n in first["named"]}
    second = api.get("/api/v1/search?q=Priya+Naidoo&page=2").get_json()
    assert second["named"] == [] and second["results"] == []
    default = api.get("/api/v1/search?q=Priya+Naidoo").get_json()
    assert default["total"] == len(default["results"]) == 0 and len(default["named"]) == 1


# --- clinics and services -----------------------------------------------------------------------


def test_clinic_document(api):
    body = api.get("/api/v1/clinics/fictional-sea-point-wellness").get_json()
    assert body["name"] == "Fictional Sea Point Wellness"
    assert body["city"] == "Cape Town" and body["province"] == "Western Cape"
    assert body["latitude"] == pytest.approx(-33.91)
    assert body["phone"] is None
    by_number = {p["registration_number"]: p for p in body["practitioners"]}
    assert set(by_number) == {"MP0000101", "DP0000201", "PS0000301", "MP0000106"}
    assert by_number["MP0000101"]["verified"] is True
    assert by_number["MP0000106"]["verified"] is False
    assert by_number["MP0000106"]["status"] == "unknown"
    assert by_number["DP0000201"]["services"] == [
        {"slug": "mesotherapy", "name": "Mesotherapy"},
        {"slug": "prp", "name": "PRP (platelet-rich plasma)"},
    ]
    assert by_number["DP0000201"]["url"].endswith("/practitioners/DP0000201")


def test_clinic_slug_is_case_insensitive(api):
    assert api.get("/api/v1/clinics/Fictional-Sea-Point-Wellness").status_code == 200


def test_unknown_clinic_is_404_problem(api):
    assert_problem(api.get("/api/v1/clinics/no-such-clinic"), 404, code="not_found")


def test_services_list(api):
    body = api.get("/api/v1/services").get_json()
    slugs = [s["slug"] for s in body["services"]]
    assert {"mesotherapy", "botulinum-toxin", "fat-reduction", "hair-regrowth"} <= set(slugs)
    names = [s["name"] for s in body["services"]]
    assert names == sorted(names)
    botox = next(s for s in body["services"] if s["slug"] == "botulinum-toxin")
    assert "botox" in [s.lower() for s in botox["synonyms"]]
    assert botox["description"]


def test_service_document_lists_verified_practitioners(api):
    body = api.get("/api/v1/services/mesotherapy").get_json()
    assert body["name"] == "Mesotherapy"
    assert {p["registration_number"] for p in body["practitioners"]} == {
        "MP0000101",
        "DP0000201",
    }
    assert body["total_practitioners"] == 2
    assert body["search_url"] == "http://localhost/api/v1/search?service=mesotherapy"


def test_unknown_service_is_404_problem(api):
    assert_problem(api.get("/api/v1/services/no-such-thing"), 404, code="not_found")


# --- errors outside the views ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here", "/api/nothing", "/api/v1/search/", "/api", "/api/v1"]
)
def test_unknown_api_route_is_404_problem(api, path):
    assert_problem(api.get(path), 404, code="not_found")


def test_html_pages_keep_html_errors(api):
    response = api.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_wrong_method_is_405_problem_with_allow(api):
    response = api.post("/api/v1/search", json={"q": "botox"})
    assert_problem(response, 405, code="method_not_allowed")
    assert "GET" in response.headers["Allow"]
    assert_problem(api.delete("/api/v1/practitioners/MP0000101"), 405)


def test_unexpected_exception_is_500_problem_and_logged(api, monkeypatch, caplog):
    def broken(_service):
        raise RuntimeError("simulated fault in the services view")

    monkeypatch.setattr("directory.api.services.service_fields", broken)
    with caplog.at_level(logging.ERROR):
        response = api.get("/api/v1/services")
    body = assert_problem(response, 500, code="internal_error")
    assert "simulated" not in body["detail"]  # internals stay in the log
    assert any(r.exc_info and "simulated fault" in str(r.exc_info[1]) for r in caplog.records)


def test_unusable_query_from_the_engine_is_400_problem(api, monkeypatch):
    from directory.search.backend import QueryError

    class Refusing:
        def search(self, query):
            raise QueryError("That search could not be understood; try fewer symbols.")

    monkeypatch.setattr("directory.search.get_search_backend", lambda *a, **k: Refusing())
    body = assert_problem(api.get("/api/v1/search?q=x"), 400, code="invalid_query")
    assert body["detail"] == "That search could not be understood; try fewer symbols."


# --- caching ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/search?q=mesotherapy",
        "/api/v1/practitioners/MP0000101",
        "/api/v1/clinics/fictional-sea-point-wellness",
        "/api/v1/services",
        "/api/v1/services/mesotherapy",
        "/api/v1/openapi.json",
    ],
)
def test_public_gets_send_strong_etag_and_answer_304(api, path):
    first = api.get(path)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag), etag  # strong: no W/
    assert first.headers["Cache-Control"] == "public, max-age=60"
    again = api.get(path)
    assert again.headers["ETag"] == etag  # same body, same tag
    cached = api.get(path, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.data == b""
    assert cached.headers["ETag"] == etag
    assert cached.headers["Cache-Control"] == "public, max-age=60"
    many = api.get(path, headers={"If-None-Match": f'"other", {etag}'})
    assert many.status_code == 304
    assert api.get(path, headers={"If-None-Match": "*"}).status_code == 304
    stale = api.get(path, headers={"If-None-Match": '"0000"'})
    assert stale.status_code == 200 and stale.data == first.data


def test_etag_follows_the_data(own_app):
    api = own_app.test_client()
    etag = api.get("/api/v1/clinics/fictional-umhlanga-medical").headers["ETag"]
    with own_app.app_context():
        clinic = db.session.scalar(
            db.select(Clinic).where(Clinic.slug == "fictional-umhlanga-medical")
        )
        clinic.phone = "+27310000009"
        db.session.commit()
    changed = api.get("/api/v1/clinics/fictional-umhlanga-medical", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.get_json()["phone"] == "+27310000009"
    assert changed.headers["ETag"] != etag


def test_cache_max_age_is_a_setting(shared_app, api, monkeypatch):
    monkeypatch.setitem(shared_app.config, "API_CACHE_MAX_AGE", 15)
    assert api.get("/api/v1/services").headers["Cache-Control"] == "public, max-age=15"


def test_head_is_cached_like_get(api):
    get = api.get("/api/v1/services")
    head = api.head("/api/v1/services")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["ETag"] == get.headers["ETag"]


def test_errors_are_not_cached(api):
    response = api.get("/api/v1/practitioners/MP0009999")
    assert "ETag" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


# --- the document -------------------------------------------------------------------------------


def test_openapi_document_is_generated_and_complete(api):
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert {
        "/api/v1/search",
        "/api/v1/practitioners/{registration_number}",
        "/api/v1/clinics/{slug}",
        "/api/v1/services",
        "/api/v1/services/{slug}",
    } <= set(paths)
    for path, item in paths.items():
        operation = item["get"]
        responses = operation["responses"]
        assert {"200", "304", "500", "default"} <= set(responses), path
        if "{" in path:
            assert "404" in responses, path
        assert {"ETag", "Cache-Control"} <= set(responses["200"]["headers"]), path
    assert "400" in paths["/api/v1/search"]["get"]["responses"]
    assert "400" in paths["/api/v1/practitioners/{registration_number}"]["get"]["responses"]
    for name in ("BAD_REQUEST", "NOT_FOUND", "INTERNAL_SERVER_ERROR", "DEFAULT_ERROR"):
        content = doc["components"]["responses"][name]["content"]
        assert list(content) == [PROBLEM], name
    params = {p["name"]: p for p in paths["/api/v1/search"]["get"]["parameters"] if "name" in p}
    assert {
        "q",
        "where",
        "service",
        "city",
        "province",
        "clinic",
        "status",
        "include_unverified",
        "page",
        "per_page",
        "sort",
    } <= set(params)
    assert params["per_page"]["schema"]["maximum"] == 100
    result = doc["components"]["schemas"]["SearchResult"]
    assert {
        "registration_number",
        "name",
        "status",
        "verified",
        "verified_at",
        "services",
        "clinics",
        "url",
    } <= set(result["required"])
    response = doc["components"]["schemas"]["SearchResponse"]
    assert "named" in response["required"]
    named = doc["components"]["schemas"]["NamedResult"]
    assert {"headline", "named_by", "verified", "url"} <= set(named["required"])
    assert named["properties"]["named_by"]["enum"] == ["name", "registration_number"]


def test_docs_page_is_served_without_the_internet(api):
    page = api.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/api/v1/docs/assets/") for a in assets), assets
    assert "http://" not in html and "https://" not in html
    for asset in assets:
        assert api.get(asset).status_code == 200, asset
    assert "/api/v1/openapi.json" in html
