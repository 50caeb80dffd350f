"""The public pages: what each shows, every badge state, where each fact comes from, and that
no query string, path or number a person can type yields a 500.

The results page's own logic (reading the query string, QueryError, "did you mean", facets,
pagination, badges from the database rather than the index) is tested against a stub engine
that records what it was asked; ``test_web_search.py`` runs the same pages on the real one.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

import directory.search as search_package
from directory.extensions import db
from directory.registry import numbers
from directory.registry.checks import new_practitioner
from directory.registry.models import Practitioner
from directory.registry.recording import record_check
from directory.registry.statuses import PATIENT_MEANING, Outcome, Status
from directory.registry.verification import verdict
from directory.search.backend import MAX_PER_PAGE, FacetValue, SearchResults
from directory.util.clock import utcnow
from directory.web.params import MAX_PAGE, MAX_TEXT
from directory.web.presenters import long_date
from tests import web_fixtures as wf

CSS = Path(__file__).parent.parent / "directory" / "web" / "static" / "site.css"


# --- helpers -------------------------------------------------------------------------------


class PageParser(HTMLParser):
    """Collects what the accessibility checks need from one page."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self._in_title = False
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.labels_for: set[str] = set()
        self.h1_count = 0
        self.links: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if tag == "title":
            self._in_title = True
        if tag == "label" and "for" in attributes:
            self.labels_for.add(attributes["for"])
        if tag == "h1":
            self.h1_count += 1
        if tag == "a":
            self.links.append(attributes)

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data

    def controls(self) -> list[dict[str, str]]:
        return [
            a
            for tag, a in self.tags
            if tag in ("input", "select", "textarea") and a.get("type") != "hidden"
        ]


def parse(html: bytes) -> PageParser:
    parser = PageParser()
    parser.feed(html.decode())
    return parser


def text_of(html: bytes) -> str:
    """The visible words, roughly: tags dropped, whitespace collapsed."""
    body = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", html.decode(), flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    from html import unescape

    words = re.sub(r"\s+", " ", unescape(body)).strip()
    return re.sub(r"\s+([.,;:!?)])", r"\1", words)


def about_record(html: bytes) -> tuple[str, str]:
    """A practitioner's page as (the words a patient reads, the folded "About this record")."""
    page = html.decode()
    start = page.index('<details class="about-record"')
    end = page.index("</details>", start)
    return text_of((page[:start] + page[end:]).encode()), text_of(page[start:end].encode())


def badge_of(html: bytes) -> dict[str, str]:
    """The first badge on the page: its colour class, tone, verified flag and words."""
    match = re.search(
        r'<p class="badge badge--(\w+)[^"]*" data-verified="(\w+)" data-tone="(\w+)">(.*?)</p>',
        html.decode(),
        flags=re.S,
    )
    assert match, "no badge on the page"
    return {
        "colour": match.group(1),
        "verified": match.group(2),
        "tone": match.group(3),
        "words": text_of(match.group(4).encode()),
        "has_icon": "<svg" in match.group(4),
    }


@pytest.fixture
def fake_iregister() -> SimpleNamespace:
    """Pages never call the register (only an operator's command does): instead of starting
    the fake iRegister for every test, the app gets a closed loopback port."""
    return SimpleNamespace(url="http://127.0.0.1:9/never-called")


@pytest.fixture
def app(either_app):
    """Every test that reads the directory, on SQLite and on PostgreSQL (the pages'
    queries, counts and orderings are the same on both)."""
    return either_app


@pytest.fixture
def directory_data(app, policy) -> dict[str, Practitioner]:
    with app.app_context():
        made = wf.build_directory(db.session, policy)
        return {key: p.registration_number for key, p in made.items()}


@pytest.fixture
def stub(monkeypatch) -> wf.StubBackend:
    """The pages search through this stub for the duration of a test."""
    backend = wf.StubBackend()
    monkeypatch.setattr(
        search_package, "get_search_backend", lambda *a, **k: backend, raising=False
    )
    return backend


def load(app, number: str) -> Practitioner:
    return db.session.scalar(
        db.select(Practitioner).where(Practitioner.registration_number == number)
    )


# --- home ----------------------------------------------------------------------------------


def test_home_has_search_box_with_labels_and_popular_services(client, directory_data):
    page = client.get("/")
    assert page.status_code == 200
    doc = parse(page.data)
    assert doc.title.startswith("Find a practitioner registered with the HPCSA")
    assert {"q", "where"} <= doc.labels_for
    words = text_of(page.data)
    assert "Treatment or name" in words and "Place" in words
    # Popular treatments, most listed first: mesotherapy is on 7 listings in the fixture.
    popular = re.findall(r'<span class="tile__name">([^<]+)</span>', page.data.decode())
    assert popular[0] == "Mesotherapy"
    assert set(popular) == {"Mesotherapy", "Botulinum toxin", "Fat reduction", "Hair regrowth"}
    assert "7 listings" in words


def test_home_works_on_an_empty_directory(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "No treatments are listed yet." in text_of(page.data)


# --- badges: every state, from verdict -----------------------------------------------------

RED_STATES = {
    "suspended": Status.SUSPENDED,
    "erased": Status.ERASED,
    "deceased": Status.DECEASED,
    "not_found": Status.NOT_FOUND,
}


def test_active_practitioner_shows_green_badge_with_days(app, client, directory_data):
    page = client.get(f"/practitioners/{directory_data['active']}")
    assert page.status_code == 200
    badge = badge_of(page.data)
    assert badge == {
        "colour": "green",
        "verified": "true",
        "tone": "verified",
        "words": "Registered with the HPCSA: active, last confirmed 2 days ago",
        "has_icon": True,
    }
    with app.app_context():
        assert verdict(load(app, directory_data["active"])).headline == badge["words"]


@pytest.mark.parametrize("key", sorted(RED_STATES))
def test_adverse_status_shows_red_badge_and_what_it_means(app, client, directory_data, key):
    page = client.get(f"/practitioners/{directory_data[key]}")
    assert page.status_code == 200
    badge = badge_of(page.data)
    assert badge["colour"] == "red" and badge["verified"] == "false" and badge["has_icon"]
    label = RED_STATES[key].value.replace("_", " ")
    assert badge["words"] == f"HPCSA register: {label}"
    words = text_of(page.data)
    assert f"What this means for you: {PATIENT_MEANING[RED_STATES[key]]}" in words
    assert "Registered with the HPCSA: active" not in words
    with app.app_context():
        assert verdict(load(app, directory_data[key])).headline == badge["words"]


def test_stale_confirmation_shows_amber_not_confirmed_since(app, client, directory_data):
    page = client.get(f"/practitioners/{directory_data['stale']}")
    badge = badge_of(page.data)
    with app.app_context():
        p = load(app, directory_data["stale"])
        expected = verdict(p).headline
        since = long_date(p.verified_at)
    assert badge["colour"] == "amber" and badge["verified"] == "false"
    assert badge["tone"] == "stale"
    assert badge["words"] == expected
    assert f"since {since}" in badge["words"]
    assert "Check it at the source before treatment." in text_of(page.data)


def test_pending_not_found_shows_amber_and_is_not_verified(app, client, directory_data):
    page = client.get(f"/practitioners/{directory_data['pending']}")
    badge = badge_of(page.data)
    assert badge["colour"] == "amber" and badge["tone"] == "pending"
    assert badge["verified"] == "false"
    with app.app_context():
        p = load(app, directory_data["pending"])
        assert badge["words"] == verdict(p).headline
        assert f"since {long_date(p.verified_at)}" in badge["words"]
    words = text_of(page.data)
    # The timeline says what happened, newest first.
    assert words.index("The register did not list this number") < words.index(
        "The register said: active"
    )


def test_unreadable_register_answer_is_amber_not_verified(client, directory_data):
    page = client.get(f"/practitioners/{directory_data['unreadable']}")
    badge = badge_of(page.data)
    assert badge["colour"] == "amber" and badge["tone"] == "unknown"
    assert badge["words"].startswith("Not verified")
    assert "PROVISIONALLY ACTIVE PENDING REVIEW" in text_of(page.data)


def test_failed_lookup_after_active_keeps_green_and_says_the_lookup_failed(client, directory_data):
    page = client.get(f"/practitioners/{directory_data['active_then_error']}")
    badge = badge_of(page.data)
    assert badge["colour"] == "green"
    words = text_of(page.data)
    assert "got no usable answer from the register" in words
    assert "No usable answer from the register" in words  # the timeline entry
    assert "the register answered HTTP 503" in words
    assert "A failed look-up never changes the status." in words


def test_badge_follows_a_new_register_answer(app, client, directory_data, policy):
    """The page reads the belief at request time: a suspension shows at once."""
    number = directory_data["active"]
    assert badge_of(client.get(f"/practitioners/{number}").data)["colour"] == "green"
    with app.app_context():
        p = load(app, number)
        person = wf.Person(
            "x", number, "DR", p.surname, p.full_names, (("INDEPENDENT PRACTICE", "SUSPENDED"),), ()
        )
        record_check(db.session, p, wf.lookup(person, Outcome.OK, utcnow()), policy)
        db.session.commit()
    badge = badge_of(client.get(f"/practitioners/{number}").data)
    assert badge["colour"] == "red" and badge["words"] == "HPCSA register: suspended"


# --- the profile's facts and their sources ---------------------------------------------------


def test_profile_shows_register_facts_with_their_source_and_date(app, client, directory_data):
    number = directory_data["active"]
    page = client.get(f"/practitioners/{number}")
    words = text_of(page.data)
    with app.app_context():
        p = load(app, number)
        as_of = long_date(p.status_as_of)
    assert f"From the HPCSA register, as of {as_of}." in words
    assert "Dr Ayanda Example Fictional-Mokoena" in words
    assert f"Registration number {number}" in words
    assert "Medical practitioners" in words  # what the MP prefix stands for
    # Every category row, with its status.
    assert "Independent Practice Active" in words
    assert "Intern Inactive" in words


def test_profile_marks_clinic_facts_as_the_clinics_own_words(client, directory_data):
    page = client.get(f"/practitioners/{directory_data['active']}")
    words = text_of(page.data)
    assert "in the clinics' own words" in words
    assert words.count("In the clinic's own words") == 2  # one per listing description
    assert "Fictional Harbour Skin Clinic" in words and "Fictional Rosebank Aesthetics" in words
    assert "Mesotherapy for skin rejuvenation and fictional botox consultations." in words
    html = page.data.decode()
    assert 'href="/clinics/fictional-harbour-skin-clinic"' in html
    assert 'href="/services/botulinum-toxin"' in html


def test_iregister_link_uses_the_register_padded_number(app, client, directory_data):
    number = directory_data["active"]
    doc = parse(client.get(f"/practitioners/{number}").data)
    hrefs = [a["href"] for a in doc.links if "iregister_details" in a.get("href", "")]
    assert len(hrefs) == 1
    template = app.config["HPCSA_PUBLIC_RECORD_URL"]
    assert hrefs[0] == template.format(number="MP%20%20%200900001")
    assert unquote(hrefs[0]).endswith(numbers.register_format(number))
    assert unquote(hrefs[0]).endswith("MP   0900001")


def test_iregister_link_pads_a_three_letter_prefix(app, client, policy):
    with app.app_context():
        person = wf.Person(
            "prc", "PRC0000401", "MR", "FICTIONAL-PETERSEN", "CARL SAMPLE",
            (("REGISTERED COUNSELLOR", "ACTIVE"),), (),
        )  # fmt: skip
        record_check(
            db.session, new_practitioner(person.number), wf.lookup(person, Outcome.OK, utcnow()),
            policy,
        )  # fmt: skip
        db.session.commit()
    html = client.get("/practitioners/PRC0000401").data.decode()
    assert "/reg_number/PRC%20%200000401" in html


def test_timeline_lists_checks_newest_first_with_plain_words(client, directory_data):
    html = client.get(f"/practitioners/{directory_data['active_then_error']}").data
    words = text_of(html)
    first = words.index("No usable answer from the register")
    second = words.index("The register said: active")
    assert first < second
    # Where each answer came from is kept for "About this record", not the patient's words.
    patient, about = about_record(html)
    assert "web test fixture (fictional)" not in patient and "Source:" not in patient
    assert "web test fixture (fictional)" in about


def test_profile_history_is_capped_and_says_so(app, client, directory_data, policy):
    number = directory_data["active_durban"]
    with app.app_context():
        p = load(app, number)
        person = wf.BY_KEY["active_durban"]
        for _ in range(25):
            record_check(db.session, p, wf.lookup(person, Outcome.ERROR, utcnow()), policy)
        db.session.commit()
    words = text_of(client.get(f"/practitioners/{number}").data)
    assert "The latest 20 of 26 are shown." in words


def test_profile_url_is_canonicalised(client, directory_data):
    page = client.get("/practitioners/mp%20900001")
    assert page.status_code == 301
    assert page.headers["Location"].endswith("/practitioners/MP0900001")


def test_unknown_number_profile_says_never_checked_and_links_to_the_register(client):
    page = client.get("/practitioners/MP0999999")
    assert page.status_code == 404
    words = text_of(page.data)
    assert "This directory has never checked MP0999999" in words
    assert "/reg_number/MP%20%20%200999999" in page.data.decode()


def test_unreadable_number_in_profile_url_is_a_plain_404(client):
    page = client.get("/practitioners/12345")
    assert page.status_code == 404
    assert "has no register prefix" in text_of(page.data)


# --- clinic and service pages -----------------------------------------------------------------


def test_clinic_page_shows_contact_and_every_practitioner_with_badge(client, directory_data):
    page = client.get("/clinics/fictional-harbour-skin-clinic")
    assert page.status_code == 200
    doc = parse(page.data)
    assert doc.title.startswith("Fictional Harbour Skin Clinic, Cape Town")
    words = text_of(page.data)
    assert "in the clinic's own words" in words
    assert "A fictional skin clinic on the waterfront." in words
    html = page.data.decode()
    assert 'href="tel:+27215550101"' in html
    assert 'href="mailto:hello@harbour.example"' in html
    assert 'href="https://harbour.example"' in html
    # Verified first, then the others, each with the register's word on them.
    badges = re.findall(r'data-tone="(\w+)"', html)
    assert badges == ["verified", "adverse", "stale"]
    assert PATIENT_MEANING[Status.SUSPENDED] in words


def test_clinic_website_that_is_not_http_is_never_a_link(client, directory_data):
    html = client.get("/clinics/fictional-table-view-wellness").data.decode()
    assert "javascript:alert(1)" in html  # shown as text
    assert 'href="javascript:' not in html


def test_unknown_clinic_is_a_404_page(client):
    page = client.get("/clinics/no-such-clinic")
    assert page.status_code == 404
    assert "There is no clinic at this address in the directory." in text_of(page.data)


def test_service_page_says_what_it_is_and_who_offers_it(client, directory_data, stub, app):
    with app.app_context():
        hits = [wf.hit_for(load(app, directory_data[k])) for k in ("active", "active_second")]
    stub.results = wf.results_with(hits)
    page = client.get("/services/mesotherapy")
    assert page.status_code == 200
    assert parse(page.data).title.startswith("Mesotherapy: what it is and who offers it")
    words = text_of(page.data)
    assert "Many tiny injections into the middle layer of the skin" in words
    assert "Also called: meso." in words
    assert "Dr Ayanda Example Fictional-Mokoena" in words
    assert stub.queries[0].service == "mesotherapy"
    assert stub.queries[0].include_unverified is False


def test_services_index_lists_every_service(client, directory_data):
    words = text_of(client.get("/services").data)
    for service in wf.SERVICES:
        assert service["name"] in words


def test_unknown_service_is_a_404_page(client):
    assert client.get("/services/no-such-thing").status_code == 404


# --- check a registration number ---------------------------------------------------------


def test_check_page_without_a_number_shows_the_form(client):
    page = client.get("/check")
    assert page.status_code == 200
    assert "number" in parse(page.data).labels_for


def test_check_known_number_redirects_to_the_profile(client, directory_data):
    page = client.get("/check?number=mp+900+001")
    assert page.status_code == 303
    assert page.headers["Location"].endswith("/practitioners/MP0900001")


def test_check_mistyped_number_shows_the_error_and_the_suggestion(client):
    page = client.get("/check?number=MPO012345")
    assert page.status_code == 400
    words = text_of(page.data)
    assert "has a letter O among its digits" in words
    assert "Check MP0012345 instead" in words
    assert 'href="/check?number=MP0012345"' in page.data.decode()
    assert 'aria-invalid="true"' in page.data.decode()


def test_check_refuses_a_number_too_long_to_be_one(client):
    page = client.get("/check", query_string={"number": "MP0900001" + " " * 200 + "x"})
    assert page.status_code == 400
    assert "too long to be a registration number" in text_of(page.data)


def test_check_never_checked_number_says_so_and_links_to_the_register(client, directory_data):
    page = client.get("/check?number=dp 77")
    assert page.status_code == 404
    words = text_of(page.data)
    assert "This directory has never checked DP0000077" in words
    assert "/reg_number/DP%20%20%200000077" in page.data.decode()


# --- the results page's own logic, against a stub engine ----------------------------------------


def test_search_reads_the_query_string_into_a_search_query(client, stub):
    client.get(
        "/search?q=meso&where=Cape+Town&service=mesotherapy&city=Cape+Town&province=Western+Cape"
        "&clinic=fictional-harbour-skin-clinic&all=1&sort=name&page=2&per_page=5"
    )
    (query,) = stub.queries
    assert query.text == "meso" and query.place == "Cape Town"
    assert query.service == "mesotherapy" and query.city == "Cape Town"
    assert query.province == "Western Cape" and query.clinic == "fictional-harbour-skin-clinic"
    assert query.include_unverified is True
    assert (query.sort, query.page, query.per_page) == ("name", 2, 5)


def test_search_defaults_to_verified_only(client, stub):
    client.get("/search?q=botox")
    assert stub.queries[0].include_unverified is False
    assert "Show everyone, with their status" in text_of(client.get("/search?q=botox").data)


@pytest.mark.parametrize(
    ("query_string", "field", "expected", "notice"),
    [
        ("page=abc", "page", 1, "“abc” is not a page number; showing page 1."),
        ("page=0", "page", 1, "0 is too small for a page number; showing page 1."),
        ("page=-5", "page", 1, "showing page 1."),
        (f"page={10**30}", "page", MAX_PAGE, f"showing page {MAX_PAGE}."),
        ("per_page=10000", "per_page", MAX_PER_PAGE, "A page shows at most 100 results"),
        ("per_page=x", "per_page", 20, "is not a number of results per page"),
        ("sort=cheapest", "sort", "relevance", "“cheapest” is not a way to sort"),
    ],
)
def test_bad_numbers_and_sorts_are_clamped_with_a_notice(
    client, stub, query_string, field, expected, notice
):
    page = client.get(f"/search?q=meso&{query_string}")
    assert page.status_code == 200
    assert getattr(stub.queries[0], field) == expected
    assert notice in text_of(page.data)


def test_very_long_query_is_shortened_with_a_notice(client, stub):
    page = client.get("/search", query_string={"q": "meso " * 2000})
    assert page.status_code == 200
    assert len(stub.queries[0].text) <= MAX_TEXT
    assert "shortened to its first 1000 characters" in text_of(page.data)


def test_unknown_status_is_a_400_with_the_choices_and_runs_no_search(client, stub):
    page = client.get("/search?q=meso&status=struck-off")
    assert page.status_code == 400
    words = text_of(page.data)
    assert "There is no status “struck-off”" in words
    assert "active, suspended, erased" in words
    assert stub.queries == []


def test_status_filter_other_than_active_shows_everyone(client, stub):
    client.get("/search?status=Suspended")
    assert stub.queries[0].status == "suspended"
    assert stub.queries[0].include_unverified is True


def test_query_error_is_the_plain_message_with_400(client, stub):
    stub.error = "A search cannot start with a wildcard (*)."
    page = client.get("/search?q=*")
    assert page.status_code == 400
    words = text_of(page.data)
    assert "This search could not be run" in words
    assert "A search cannot start with a wildcard (*)." in words
    assert parse(page.data).title.startswith("Search: “*”")


def test_did_you_mean_and_understood_are_shown_as_links(client, stub, app, directory_data):
    with app.app_context():
        hits = [wf.hit_for(load(app, directory_data["active"]))]
    stub.results = wf.results_with(
        hits,
        did_you_mean="mesotherapy",
        understood={"service": "mesotherapy", "place": "Cape Town"},
    )
    page = client.get("/search?q=mesotheraphy&where=cape+town")
    html = page.data.decode()
    assert (
        'Did you mean <a href="/search?q=mesotherapy&amp;where=cape+town">mesotherapy</a>?' in html
    )
    assert "We read your search as: treatment Mesotherapy, place Cape Town." in text_of(page.data)


def test_understood_names_every_service_and_passes_remarks_on(client, stub, directory_data):
    stub.results = wf.results_with(
        [],
        understood={
            "service": "fat-reduction,mesotherapy",
            "city": "Cape Town",
            "truncated": "only the first 500 characters were used",
        },
    )
    words = text_of(client.get("/search?q=meso+fat+dissolving+cape+town").data)
    assert (
        "We read your search as: treatment Fat reduction and Mesotherapy, city Cape Town." in words
    )
    assert "Your search was long: only the first 500 characters were used." in words


def test_cards_take_their_badge_from_the_database_not_the_index(client, stub, app, directory_data):
    """The index may lag: a hit it still calls verified shows the register's current word."""
    with app.app_context():
        hits = [
            wf.hit_for(load(app, directory_data[k]), verified_in_index=True)
            for k in ("active", "suspended", "stale", "pending")
        ]
    stub.results = wf.results_with(hits)
    html = client.get("/search?q=meso&all=1").data.decode()
    tones = re.findall(r'data-tone="(\w+)"', html)
    assert tones == ["verified", "adverse", "stale", "pending"]
    assert html.count('data-verified="true"') == 1


def test_verified_only_views_drop_hits_the_database_no_longer_vouches_for(
    client, stub, app, directory_data
):
    """The index still calls them verified (it lags a suspension, an expiry, a pending
    not-found): the default results and the service page show no card for them, and count
    only what they show."""
    with app.app_context():
        hits = [
            wf.hit_for(load(app, directory_data[k]), verified_in_index=True)
            for k in ("active", "suspended", "stale", "pending", "active_second")
        ]
    stub.results = wf.results_with(hits)
    page = client.get("/search?q=meso")
    html = page.data.decode()
    assert re.findall(r'aria-labelledby="card-(\w+)"', html) == [
        directory_data["active"],
        directory_data["active_second"],
    ]
    assert 'data-verified="false"' not in html
    assert "2 practitioners for “meso” that the register currently confirms as active" in (
        text_of(page.data)
    )
    service = client.get("/services/mesotherapy")
    assert 'data-verified="false"' not in service.data.decode()
    assert "2 practitioners offering mesotherapy are currently confirmed as active" in (
        text_of(service.data)
    )


def test_a_name_the_index_calls_verified_is_named_with_the_databases_badge(
    client, stub, app, directory_data
):
    with app.app_context():
        stub.results = wf.results_with(
            [wf.hit_for(load(app, directory_data["suspended"]), verified_in_index=True)]
        )
    page = client.get("/search?q=Johan+Fictional-Suspended")
    html = page.data.decode()
    assert 'aria-labelledby="card-' not in html  # no verified result
    named = re.findall(r'<article class="card card--named" aria-labelledby="named-(\w+)"', html)
    assert named == [directory_data["suspended"]]
    words = text_of(page.data)
    assert "Named in your search: not verified" in words
    assert "HPCSA register: suspended" in words
    assert PATIENT_MEANING[Status.SUSPENDED] in words
    assert "Check the spelling" not in words
    assert "0 practitioners for" in words


def test_a_name_shared_by_many_names_five_and_says_there_are_more(
    client, stub, app, directory_data
):
    """Every fixture surname starts with FICTIONAL: six practitioners who are not verified
    carry the word. Five are shown apart, and the page says more share the name."""
    keys = ("active", "suspended", "erased", "deceased", "stale", "pending", "unreadable")
    with app.app_context():
        stub.results = wf.results_with([wf.hit_for(load(app, directory_data[k])) for k in keys])
    html = client.get("/search?q=Fictional").data.decode()
    assert re.findall(r'aria-labelledby="card-(\w+)"', html) == [directory_data["active"]]
    named = re.findall(r'<article class="card card--named" aria-labelledby="named-(\w+)"', html)
    assert len(named) == 5 and directory_data["active"] not in named
    assert set(named) <= {directory_data[k] for k in keys[1:]}
    assert "More practitioners have this name" in text_of(html.encode())


def test_hits_for_deleted_practitioners_and_twins_are_dropped(client, stub, app, directory_data):
    with app.app_context():
        ghost = new_practitioner("MP0912345")
        hits = [wf.hit_for(ghost), wf.hit_for(load(app, directory_data["active"]))]
        hits.append(wf.hit_for(load(app, directory_data["active"])))  # a stale twin
    stub.results = wf.results_with(hits)
    html = client.get("/search?q=meso").data.decode()
    assert "MP0912345" not in html
    assert html.count('aria-labelledby="card-MP0900001"') == 1


def test_snippets_keep_only_their_highlight_markup(client, stub, app, directory_data):
    with app.app_context():
        stub.results = wf.results_with([wf.hit_for(load(app, directory_data["active"]))])
    html = client.get("/search?q=meso").data.decode()
    assert "<mark>Mesotherapy</mark> for skin &amp; &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html


def test_facets_are_options_of_one_form_and_chips_remove_them(client, stub, app, directory_data):
    with app.app_context():
        stub.results = wf.results_with([wf.hit_for(load(app, directory_data["active"]))])
    html = client.get("/search?q=meso&page=3").data.decode()
    form = re.search(r'<form class="refine__form".*?</form>', html, re.S).group(0)
    # Every control applies the same way: one form, sort first; no page in it (a changed
    # filter starts at page 1).
    assert form.index('name="sort"') < form.index('name="service"') < form.index('name="city"')
    assert 'name="page"' not in form
    assert 'value="Cape Town"' in form and 'value="mesotherapy"' in form
    filtered = client.get("/search?q=meso&city=Cape+Town&service=mesotherapy").data.decode()
    assert "Treatment: <strong>Mesotherapy</strong>" in filtered
    removes = re.findall(r'<a href="([^"]+)" class="chip__remove">Remove', filtered)
    assert removes == [
        "/search?q=meso&amp;city=Cape+Town",  # removes the treatment
        "/search?q=meso&amp;service=mesotherapy",  # removes the city
    ]
    # The chosen values are the checked options.
    assert re.search(r'name="city" id="[^"]+" value="Cape Town" checked', filtered)
    assert re.search(r'name="service" id="[^"]+" value="mesotherapy" checked', filtered)


def test_facets_show_the_five_largest_and_the_rest_under_more(client, stub, app, directory_data):
    with app.app_context():
        hit = wf.hit_for(load(app, directory_data["active"]))
    cities = [FacetValue(f"Town {i}", f"Town {i}", 10 - i) for i in range(8)]
    stub.results = wf.results_with([hit], facets={"services": [], "cities": cities})
    html = client.get("/search?q=meso").data.decode()
    fieldset = re.search(r'<fieldset class="facet" id="facet-cities">.*?</fieldset>', html, re.S)
    shown, _, more = fieldset.group(0).partition('<details class="facet__more">')
    assert re.findall(r'value="(Town \d)"', shown) == [f"Town {i}" for i in range(5)]
    assert "<summary>More cities (3)</summary>" in more
    assert re.findall(r'value="(Town \d)"', more) == ["Town 5", "Town 6", "Town 7"]
    # A value chosen from "more" opens it; a chosen value the facets no longer hold stays.
    chosen = client.get("/search?q=meso&city=Town+6").data.decode()
    assert '<details class="facet__more" open>' in chosen
    gone = client.get("/search?q=meso&city=Atlantis").data.decode()
    assert re.search(r'name="city" id="[^"]+" value="Atlantis" checked', gone)


def test_pagination_links_keep_the_search_and_mark_the_current_page(
    client, stub, app, directory_data
):
    with app.app_context():
        hit = wf.hit_for(load(app, directory_data["active"]))
    stub.results = wf.results_with([hit], total=205, page=6, per_page=20)
    page = client.get("/search?q=meso&city=Cape+Town&page=6")
    html = page.data.decode()
    pages = re.findall(r'<a href="(/search\?[^"]*)"(?: aria-current="page")?><span', html)
    numbers_shown = [
        parse_qs(urlsplit(u.replace("&amp;", "&")).query).get("page", ["1"])[0] for u in pages
    ]
    assert numbers_shown == ["1", "4", "5", "6", "7", "8", "11"]
    assert 'aria-current="page"><span class="visually-hidden">Page </span>6</a>' in html
    assert 'rel="prev"' in html and 'rel="next"' in html
    assert "page 6 of 11" in parse(page.data).title


def test_a_page_past_the_end_says_so(client, stub, app, directory_data):
    stub.results = wf.results_with([], total=3, page=1, per_page=20)
    words = text_of(client.get("/search?q=meso&page=40").data)
    assert "There is no page 40: these results end at page 1." in words


def test_no_results_suggests_showing_everyone(client, stub):
    page = client.get("/search?q=zzz")
    words = text_of(page.data)
    assert "No practitioners match this search." in words
    assert "Show everyone, with their status" in words
    # A name finds listed practitioners only: the way to check anyone else is offered.
    offer = "To check anyone else on the HPCSA register, check their registration number"
    assert offer in words
    assert 'href="/check"' in page.data.decode()


# --- nothing a person types yields a 500 ------------------------------------------------------

NASTY = [
    "",
    '"unclosed phrase',
    "AND OR NOT",
    "*",
    "meso*",
    "field:value",
    "service:mesotherapy city:",
    "(((",
    "\x00\x01\x02\x1b[31m",
    "ñandú 日本語 🙂 مرحبا",
    "<script>alert(1)</script>",
    "%00%ff",
    "a" * 10_000,
    "meso " * 2000,
]


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_any_search_text_is_answered_without_a_500(client, stub, text):
    for params in ({"q": text}, {"where": text}, {"q": text, "city": text, "clinic": text}):
        page = client.get("/search", query_string=params)
        assert page.status_code in (200, 400), params
        assert b"<title>" in page.data


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_any_number_or_path_is_answered_without_a_500(client, text):
    assert client.get("/check", query_string={"number": text}).status_code in (200, 400, 404)
    for prefix in ("/practitioners/", "/clinics/", "/services/"):
        page = client.get(prefix + (text[:200] or "x").replace("/", "%2F"))
        assert page.status_code in (301, 404), prefix


def test_unknown_page_is_an_html_404_with_a_title_and_search(client):
    page = client.get("/no/such/page")
    assert page.status_code == 404
    doc = parse(page.data)
    assert doc.title.startswith("Page not found")
    assert "q" in doc.labels_for


def test_a_crash_is_an_html_500_without_a_trace(client, app, monkeypatch):
    class Broken:
        def search(self, query):
            raise RuntimeError("secret internals")

    monkeypatch.setattr(
        search_package, "get_search_backend", lambda *a, **k: Broken(), raising=False
    )
    app.config["PROPAGATE_EXCEPTIONS"] = False
    page = client.get("/search?q=meso")
    assert page.status_code == 500
    assert parse(page.data).title.startswith("Something went wrong on our side")
    assert b"secret internals" not in page.data and b"Traceback" not in page.data


def test_api_paths_do_not_get_the_html_error_page(client):
    page = client.get("/api/v1/no-such-endpoint")
    assert page.status_code == 404
    assert b"skip-link" not in page.data


def test_post_is_refused_politely(client):
    page = client.post("/search")
    assert page.status_code == 405
    assert b"<title>" in page.data


# --- accessibility structure on every page ---------------------------------------------------

PAGES = [
    "/",
    "/search?q=meso",
    "/search?q=meso&status=nonsense",
    "/practitioners/MP0900001",
    "/practitioners/MP0900004",
    "/practitioners/MP0999999",
    "/clinics/fictional-harbour-skin-clinic",
    "/services",
    "/services/mesotherapy",
    "/check",
    "/check?number=MPO012345",
    "/check?number=MP0999999",
    "/no/such/page",
]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_has_title_landmarks_skip_link_and_labelled_inputs(
    client, stub, directory_data, url
):
    page = client.get(url)
    assert page.status_code < 500
    html = page.data.decode()
    doc = parse(page.data)
    assert doc.title.endswith("· HPCSA practitioner directory")
    assert len(doc.title) > len("· HPCSA practitioner directory") + 5
    assert doc.h1_count == 1
    tags = [t for t, _ in doc.tags]
    for landmark in ("header", "nav", "main", "footer"):
        assert landmark in tags, landmark
    # The skip link is the first link on the page and points at <main id="main">.
    assert doc.links[0]["href"] == "#main"
    assert '<main id="main"' in html
    for control in doc.controls():
        assert control.get("id") in doc.labels_for, control
    assert 'lang="en-ZA"' in html
    assert '<meta name="viewport"' in html


def test_titles_say_which_page_it_is(client, stub, directory_data):
    titles = {url: parse(client.get(url).data).title for url in PAGES}
    assert titles["/practitioners/MP0900004"].startswith(
        "Dr Johan Placeholder Fictional-Suspended (MP0900004): HPCSA register: suspended"
    )
    assert titles["/check?number=MP0999999"].startswith("MP0999999: not in this directory")
    assert titles["/search?q=meso"].startswith("“meso”: 0 results")
    # No two different pages share a title.
    distinct = {t for url, t in titles.items() if url not in ("/practitioners/MP0999999",)}
    assert len(distinct) == len(titles) - 1


def test_stylesheet_is_local_and_pages_load_nothing_from_elsewhere(client, directory_data, stub):
    for url in PAGES:
        html = client.get(url).data.decode()
        for tag in re.findall(r"<(?:link|script|img)\b[^>]*>", html):
            # The canonical address is this site's own (absolute by definition); nothing else
            # names a host, and nothing at all names another site.
            assert "http" not in tag or 'rel="canonical"' in tag, tag
            assert not re.search(r"https?://(?!localhost/)", tag), tag
    css = client.get("/assets/site.css")
    assert css.status_code == 200
    assert "@import" not in css.data.decode() and "url(http" not in css.data.decode()


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_badge_colours_meet_aa_contrast():
    colours = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6});", CSS.read_text()))
    pairs = [
        ("green-fg", "green-bg"),
        ("red-fg", "red-bg"),
        ("amber-fg", "amber-bg"),
        # badges on the profile's tinted panels sit on white; warnings on the tints
        ("green-fg", "background"),
        ("red-fg", "background"),
        ("amber-fg", "background"),
        ("text", "red-bg"),
        ("text", "amber-bg"),
        ("link", "red-bg"),
        ("link", "amber-bg"),
        ("muted", "amber-bg"),
        ("muted", "red-bg"),
        ("text", "background"),
        ("muted", "background"),
        ("muted", "surface"),
        ("link", "background"),
        ("link", "surface"),
        ("link-visited", "background"),
        ("accent-text", "accent"),
    ]
    for fg, bg in pairs:
        ratio = contrast(colours[fg], colours[bg])
        assert ratio >= 4.5, f"{fg} on {bg}: {ratio:.2f}"


def test_empty_results_type_is_the_interface_type():
    """The stub speaks the interface's own types (a guard for the tests above)."""
    assert isinstance(wf.StubBackend().search(wf.SearchQuery()), SearchResults)
