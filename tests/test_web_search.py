"""The results and service pages on the real search engine (whatever ``get_search_backend``
returns), over the fictional directory in ``web_fixtures``: what a patient sees end to end."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from directory.extensions import db
from directory.registry.models import Practitioner
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow
from tests import web_fixtures as wf
from tests.test_web_pages import NASTY, badge_of, parse, text_of


@pytest.fixture
def fake_iregister() -> SimpleNamespace:
    """Pages never call the register; a closed loopback port stands in for it."""
    return SimpleNamespace(url="http://127.0.0.1:9/never-called")


@pytest.fixture
def directory_data(app, policy) -> dict[str, str]:
    with app.app_context():
        made = wf.build_directory(db.session, policy)
        return {key: p.registration_number for key, p in made.items()}


def numbers_on(html: bytes) -> list[str]:
    """Registration numbers of the result cards, in order."""
    return re.findall(r'<article class="card" aria-labelledby="card-(\w+)"', html.decode())


def test_mesotherapy_in_cape_town_lists_only_verified_practitioners(client, directory_data):
    page = client.get("/search?q=mesotherapy&where=Cape+Town")
    assert page.status_code == 200
    found = numbers_on(page.data)
    assert sorted(found) == [directory_data["active"], directory_data["active_second"]]
    assert page.data.decode().count('data-verified="true"') == 2
    # The suspended and the stale practitioner at the same clinic are not in the default list.
    assert directory_data["suspended"] not in found and directory_data["stale"] not in found
    words = text_of(page.data)
    assert (
        "2 practitioners for “mesotherapy” in Cape Town that the register currently confirms "
        "as active." in words
    )
    assert "Show everyone, with their status" in words


def test_show_everyone_lists_each_with_their_status(client, directory_data):
    page = client.get("/search?q=mesotherapy&where=Cape+Town&all=1")
    found = numbers_on(page.data)
    for key in ("active", "active_second", "suspended", "stale"):
        assert directory_data[key] in found, key
    tones = dict(zip(found, re.findall(r'data-tone="(\w+)"', page.data.decode()), strict=True))
    assert tones[directory_data["suspended"]] == "adverse"
    assert tones[directory_data["stale"]] == "stale"
    assert tones[directory_data["active"]] == "verified"


def test_misspelling_offers_did_you_mean(client, directory_data):
    page = client.get("/search?q=mesotheraphy")
    assert page.status_code == 200
    assert re.search(
        r"Did you mean <a href=\"[^\"]*q=mesotherapy[^\"]*\">mesotherapy</a>", page.data.decode()
    )


def test_facet_link_narrows_the_results(client, directory_data):
    page = client.get("/search?q=mesotherapy")
    html = page.data.decode()
    link = re.search(r'<a href="([^"]*city=Durban[^"]*)">Durban', html)
    assert link, "no Durban facet"
    narrowed = client.get(link.group(1).replace("&amp;", "&"))
    assert numbers_on(narrowed.data) == [directory_data["active_durban"]]
    assert "City: Durban" in text_of(narrowed.data)


def test_clinic_filter_and_sort_by_name(client, directory_data):
    page = client.get("/search?clinic=fictional-harbour-skin-clinic&all=1&sort=name")
    found = numbers_on(page.data)
    assert set(found) == {directory_data[k] for k in ("active", "suspended", "stale")}
    names = re.findall(r'<h3 class="card__name"[^>]*><a [^>]+>([^<]+)</a>', page.data.decode())
    # By surname (the fixture's surnames are each name's last word).
    surnames = [name.split()[-1] for name in names]
    assert surnames == sorted(surnames, key=str.casefold)


def test_pages_through_results(client, directory_data):
    first = client.get("/search?q=mesotherapy&per_page=1")
    second = client.get("/search?q=mesotherapy&per_page=1&page=2")
    assert len(numbers_on(first.data)) == 1 and len(numbers_on(second.data)) == 1
    assert numbers_on(first.data) != numbers_on(second.data)
    assert 'rel="next"' in first.data.decode()
    assert "page 2 of 3" in parse(second.data).title


def test_status_filter_shows_the_suspended(client, directory_data):
    page = client.get("/search?status=suspended")
    assert numbers_on(page.data) == [directory_data["suspended"]]
    assert badge_of(page.data)["colour"] == "red"


def test_a_suspension_leaves_the_default_results_at_once(app, client, directory_data, policy):
    number = directory_data["active_durban"]
    assert number in numbers_on(client.get("/search?q=mesotherapy").data)
    with app.app_context():
        p = db.session.scalar(
            db.select(Practitioner).where(Practitioner.registration_number == number)
        )
        person = wf.BY_KEY["active_durban"]
        suspended = wf.Person(
            person.key, number, "DR", person.surname, person.full_names,
            (("INDEPENDENT PRACTICE", "SUSPENDED"),), (),
        )  # fmt: skip
        from directory.registry.checks import record_check

        record_check(db.session, p, wf.lookup(suspended, Outcome.OK, utcnow()), policy)
        db.session.commit()
    found = numbers_on(client.get("/search?q=mesotherapy").data)
    assert number not in found
    everyone = client.get("/search?q=mesotherapy&all=1")
    cards = dict(
        zip(
            numbers_on(everyone.data),
            re.findall(r'data-tone="(\w+)"', everyone.data.decode()),
            strict=True,
        )
    )
    assert cards[number] == "adverse"


def test_service_page_lists_who_offers_it(client, directory_data):
    page = client.get("/services/mesotherapy")
    assert page.status_code == 200
    found = numbers_on(page.data)
    assert sorted(found) == sorted(
        directory_data[k] for k in ("active", "active_second", "active_durban")
    )
    words = text_of(page.data)
    assert "3 practitioners offering mesotherapy are currently confirmed as active" in words
    assert 'href="/search?service=mesotherapy&amp;city=Cape+Town"' in page.data.decode()


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_any_search_text_on_the_real_engine_is_answered_without_a_500(client, directory_data, text):
    for params in (
        {"q": text},
        {"where": text},
        {"q": text, "where": text, "all": "1", "sort": "verified"},
        {"q": text, "service": text, "city": text, "province": text, "clinic": text},
    ):
        page = client.get("/search", query_string=params)
        assert page.status_code in (200, 400), params
        doc = parse(page.data)
        assert doc.title and doc.h1_count == 1
        if page.status_code == 400:
            assert "This search could not be run" in text_of(page.data)
