"""Scope of practice (``listings.scope``) and the profession in words (``registry.professions``):
the data, and every surface a (practitioner, treatment) pair meets a patient or a clinic: the
result cards, the practitioner and clinic pages, the API, the default search, the listing
import and a clinic's own edits. All people, numbers and clinics are fictional."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from directory.extensions import db
from directory.listings.imports import import_listing_records
from directory.listings.models import Listing
from directory.listings.scope import SCOPES, scope, scope_of, sources
from directory.listings.vocabulary import service_terms
from directory.registry import numbers
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.professions import profession
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome
from directory.search import get_index_keeper, get_search_backend
from directory.search.backend import SearchQuery
from directory.search.interfaces import NoIndex
from directory.util.clock import utcnow
from tests import web_fixtures as wf

DOCS = Path(__file__).resolve().parent.parent / "docs" / "scope.md"
INJECTABLES = ("botulinum-toxin", "dermal-fillers", "mesotherapy", "fat-reduction", "prp")
ACTIVE = (("INDEPENDENT PRACTICE", "ACTIVE"),)

# Beside the web fixtures' doctors: a physiotherapist and a dentist listing botox at the same
# clinic as a doctor who does (outside / unknown / within), and a physiotherapist listing
# what physiotherapists do.
SCOPE_PEOPLE = [
    wf.Person(
        "physio",
        "PT0900101",
        "MR",
        "FICTIONAL-PHYSIO",
        "LERATO EXAMPLE",
        ACTIVE,
        ((1, Outcome.OK),),
        (("fictional-harbour-skin-clinic", ("botulinum-toxin",), "Fictional botox listing."),),
    ),
    wf.Person(
        "dentist",
        "DP0900102",
        "DR",
        "FICTIONAL-DENTIST",
        "SIPHO SAMPLE",
        ACTIVE,
        ((1, Outcome.OK),),
        (("fictional-harbour-skin-clinic", ("botulinum-toxin",), "Fictional dentist."),),
    ),
]


@pytest.fixture
def fake_iregister() -> SimpleNamespace:
    """Pages never call the register; a closed loopback port stands in for it."""
    return SimpleNamespace(url="http://127.0.0.1:9/never-called")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


@pytest.fixture
def people(db_app) -> dict[str, str]:
    with db_app.app_context():
        made = wf.build_directory(
            db.session,
            RegistryPolicy.from_config(db_app.config),
            people=[*wf.PEOPLE, *SCOPE_PEOPLE],
        )
        return {key: p.registration_number for key, p in made.items()}


def cards_of(html: str) -> dict[str, str]:
    """Each result card's HTML, by registration number."""
    cards = re.findall(
        r'(<article class="card" aria-labelledby="card-(\w+)".*?</article>)', html, re.S
    )
    return {number: card for card, number in cards}


def words(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --- the data -------------------------------------------------------------------------------


def test_every_treatment_and_every_register_has_an_answer_with_a_reason_and_a_source():
    for term in service_terms():
        for prefix in numbers.known_prefixes():
            answer = scope(term.slug, prefix)
            assert answer.scope in SCOPES, (term.slug, prefix)
            assert answer.reason.strip() and answer.sources, (term.slug, prefix)
            assert all(source in sources().values() for source in answer.sources)
            assert answer.profession != "Health professional", prefix  # every prefix has words


@pytest.mark.parametrize("slug", INJECTABLES)
def test_injectables_are_for_doctors_dentists_unknown_others_outside(slug):
    assert scope(slug, "MP").scope == "within"
    assert scope(slug, "DP").scope == "unknown"  # within dentistry only: not settled
    for prefix in ("PS", "PRC", "DI", "PT", "OT", "BT", "DT", "OH", "ECP"):
        assert scope(slug, prefix).scope == "outside", prefix


def test_the_words_of_each_scope():
    outside = scope("botulinum-toxin", "PT")
    assert outside.summary == (
        "This treatment is not within what a registered physiotherapist may do"
    )
    assert outside.as_dict()["scope"] == "outside"
    assert scope("botulinum-toxin", "DP").summary == (
        "We cannot say whether this treatment is within what a registered dentist may do"
    )
    assert scope("physiotherapy", "PT").summary == (
        "This treatment is within what a registered physiotherapist may do"
    )
    assert scope("nutrition", "DI").within and scope("weight-loss", "DI").within
    assert scope("botulinum-toxin", "PRC").summary == (
        "This treatment is not within what a registered counsellor may do"
    )


def test_an_intern_or_an_unknown_register_is_never_within():
    assert scope("botulinum-toxin", "MP", "INTERN").scope == "unknown"
    assert "intern" in scope("botulinum-toxin", "MP", "intern").reason.lower()
    assert scope("botulinum-toxin", "MP", "INDEPENDENT PRACTICE").scope == "within"
    assert scope("botulinum-toxin", "ZZ").scope == "unknown"
    assert scope("no-such-treatment", "MP").scope == "unknown"
    # An intern is never moved to outside by the category: it only says less.
    assert scope("botulinum-toxin", "PT", "INTERN").scope == "outside"


def test_the_profession_in_words():
    assert profession("MP") == "Medical doctor"
    assert profession("MP", "INDEPENDENT PRACTICE") == "Medical doctor"
    assert profession("MP", "Intern") == "Medical intern"
    assert profession("DP") == "Dentist"
    assert profession("PT") == "Physiotherapist"
    assert profession("PS", "INTERN PSYCHOLOGIST") == "Intern psychologist"
    assert profession("PS", "CLINICAL PSYCHOLOGY") == "Clinical psychologist"
    assert profession("PRC", "REGISTERED COUNSELLOR") == "Registered counsellor"
    assert profession("DI") == "Dietitian"
    assert profession("ZZ") == "Health professional"


def test_the_docs_name_every_source_the_data_rests_on():
    raw = json.loads(
        (Path(__file__).resolve().parent.parent / "directory/listings/data/scope.json").read_text()
    )
    assert "reading" in raw["_about"].lower() and "not legal advice" in raw["_about"]
    text = DOCS.read_text()
    for title in sources().values():
        assert title.split(",")[0] in text, title


# --- pages ----------------------------------------------------------------------------------


def test_a_treatment_search_shows_by_default_only_the_verified_within_scope(db_app, people):
    client = db_app.test_client()
    page = client.get("/search?q=botox&where=Cape+Town").get_data(as_text=True)
    cards = cards_of(page)
    assert list(cards) == [people["active"]]
    assert 'data-scope="within"' in cards[people["active"]]
    assert "Within what a medical doctor may do." in words(cards[people["active"]])
    assert "Medical doctor" in words(cards[people["active"]])
    assert "confirms as active, within their profession's scope." in words(page)
    assert "Show everyone, with their status and scope" in words(page)


def test_show_everyone_shows_each_with_status_and_scope(db_app, people):
    client = db_app.test_client()
    page = client.get("/search?q=botox&where=Cape+Town&all=1").get_data(as_text=True)
    cards = cards_of(page)
    assert {people["physio"], people["dentist"], people["active"]} <= set(cards)
    physio = cards[people["physio"]]
    assert 'data-scope="outside"' in physio and 'data-verified="true"' in physio
    assert "Physiotherapist" in words(physio)
    assert "This treatment is not within what a registered physiotherapist may do." in words(physio)
    dentist = cards[people["dentist"]]
    assert 'data-scope="unknown"' in dentist
    assert "We cannot say whether this treatment is within what a registered dentist may do" in (
        words(dentist)
    )


def test_the_treatment_page_lists_the_verified_within_scope(db_app, people):
    page = db_app.test_client().get("/services/botulinum-toxin").get_data(as_text=True)
    cards = cards_of(page)
    assert people["physio"] not in cards and people["dentist"] not in cards
    assert people["active"] in cards and 'data-scope="within"' in cards[people["active"]]
    assert "and their profession covers this treatment" in words(page)


def test_a_search_without_a_treatment_applies_no_scope(db_app, people):
    page = db_app.test_client().get("/search?where=Cape+Town").get_data(as_text=True)
    cards = cards_of(page)
    assert {people["physio"], people["dentist"], people["active"]} <= set(cards)
    assert "data-scope=" not in page


def test_practitioner_and_clinic_pages_carry_each_pairs_scope(db_app, people):
    client = db_app.test_client()
    physio = client.get(f"/practitioners/{people['physio']}").get_data(as_text=True)
    assert '<p class="profile__profession">Physiotherapist</p>' in physio
    assert re.search(r'data-scope="outside" data-service="botulinum-toxin"', physio)
    assert "This treatment is not within what a registered physiotherapist may do." in words(physio)
    assert "Health Professions Act 56 of 1974" in physio  # the source, under "Why?"

    doctor = client.get(f"/practitioners/{people['active']}").get_data(as_text=True)
    assert '<p class="profile__profession">Medical doctor</p>' in doctor
    assert 'data-scope="within" data-service="botulinum-toxin"' in doctor
    assert "not within" not in doctor

    clinic = client.get("/clinics/fictional-harbour-skin-clinic").get_data(as_text=True)
    people_here = re.findall(
        r'<li class="card">.*?</li>\s*(?=<li class="card">|</ul>)', clinic, re.S
    )
    by_number = {re.search(r"/practitioners/(\w+)", card).group(1): card for card in people_here}
    assert 'data-scope="outside" data-service="botulinum-toxin"' in by_number[people["physio"]]
    assert 'data-scope="unknown" data-service="botulinum-toxin"' in by_number[people["dentist"]]
    assert 'data-scope="within" data-service="botulinum-toxin"' in by_number[people["active"]]
    assert "Dentist" in words(by_number[people["dentist"]])


# --- the API --------------------------------------------------------------------------------


def test_api_search_default_and_everyone_with_scope(db_app, people):
    api = db_app.test_client()
    default = api.get("/api/v1/search?q=botox&where=Cape Town").get_json()
    assert [r["registration_number"] for r in default["results"]] == [people["active"]]
    assert default["total"] == 1
    assert default["results"][0]["scope"]["scope"] == "within"
    assert default["results"][0]["profession"] == "Medical doctor"

    everyone = api.get("/api/v1/search?q=botox&where=Cape Town&include_unverified=true")
    by_number = {r["registration_number"]: r for r in everyone.get_json()["results"]}
    physio = by_number[people["physio"]]
    assert physio["verified"] is True and physio["profession"] == "Physiotherapist"
    assert physio["scope"]["scope"] == "outside" and physio["scope"]["service"] == (
        "botulinum-toxin"
    )
    assert physio["scope"]["summary"] == (
        "This treatment is not within what a registered physiotherapist may do"
    )
    assert physio["scope"]["sources"] and physio["scope"]["reason"]
    assert by_number[people["dentist"]]["scope"]["scope"] == "unknown"

    no_treatment = api.get("/api/v1/search?where=Cape Town").get_json()
    assert {people["physio"], people["dentist"]} <= {
        r["registration_number"] for r in no_treatment["results"]
    }
    assert all(r["scope"] is None for r in no_treatment["results"])


def test_a_treatment_facet_counts_what_its_link_finds(db_app, people):
    """In the default view a treatment's facet counts only the practitioners within scope
    for it (a click on it finds exactly that many); showing everyone counts everyone."""
    api = db_app.test_client()

    def botox_facet(query: str) -> int:
        body = api.get(f"/api/v1/search?where=Cape Town{query}").get_json()
        return {f["value"]: f["count"] for f in body["facets"]["services"]}["botulinum-toxin"]

    assert botox_facet("") == 1
    found = api.get("/api/v1/search?where=Cape Town&service=botulinum-toxin").get_json()
    assert found["total"] == 1
    assert botox_facet("&include_unverified=true") == 3


def test_api_listing_treatments_carry_their_scope(db_app, people):
    api = db_app.test_client()
    physio = api.get(f"/api/v1/practitioners/{people['physio']}").get_json()
    assert physio["profession"] == "Physiotherapist"
    [listing] = physio["clinics"]
    assert [(s["slug"], s["scope"]["scope"]) for s in listing["services"]] == [
        ("botulinum-toxin", "outside")
    ]
    assert [s["scope"]["scope"] for s in physio["services"]] == ["outside"]

    clinic = api.get("/api/v1/clinics/fictional-harbour-skin-clinic").get_json()
    scopes = {
        p["registration_number"]: {s["slug"]: s["scope"]["scope"] for s in p["services"]}
        for p in clinic["practitioners"]
    }
    assert scopes[people["physio"]] == {"botulinum-toxin": "outside"}
    assert scopes[people["dentist"]] == {"botulinum-toxin": "unknown"}
    assert scopes[people["active"]]["botulinum-toxin"] == "within"


def test_the_openapi_document_describes_scope(db_app):
    document = db_app.test_client().get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    scope_schema = next(
        s
        for name, s in schemas.items()
        if name.startswith("Scope") and "summary" in s.get("properties", {})
    )
    assert scope_schema["properties"]["scope"]["enum"] == ["within", "outside", "unknown"]
    search = document["paths"]["/api/v1/search"]["get"]
    described = " ".join(p.get("description", "") for p in search["parameters"])
    assert "within scope" in described


# --- the database's word, not the index's --------------------------------------------------


def test_a_doctor_the_register_now_lists_as_an_intern_leaves_the_default_search(db_app, people):
    """The index still says "within" (its outbox not applied): the page, judging by the
    database's category, leaves the doctor out; once the index catches up it agrees."""
    client = db_app.test_client()
    number = people["active"]
    assert number in cards_of(client.get("/search?q=botox").get_data(as_text=True))
    db_app.config["SEARCH_APPLY_AFTER_COMMIT"] = False
    with db_app.app_context():
        person = wf.BY_KEY["active"]
        practitioner = db.session.scalar(
            db.select(Practitioner).where(Practitioner.registration_number == number)
        )
        answer = wf.lookup(replace(person, rows=(("INTERN", "ACTIVE"),)), Outcome.OK, utcnow())
        record_check(db.session, practitioner, answer, RegistryPolicy.from_config(db_app.config))
        db.session.commit()
        lagging = get_search_backend().search(SearchQuery(text="botox"))
        assert number in {h.registration_number for h in lagging.hits}
    page = client.get("/search?q=botox").get_data(as_text=True)
    assert number not in cards_of(page)
    everyone = cards_of(client.get("/search?q=botox&all=1").get_data(as_text=True))
    assert 'data-scope="unknown"' in everyone[number]
    assert "Medical intern" in words(everyone[number])
    with db_app.app_context():
        get_index_keeper().apply_pending(blocking=True)
        caught_up = get_search_backend().search(SearchQuery(text="botox"))
        assert number not in {h.registration_number for h in caught_up.hits}


def test_an_index_built_before_scope_is_rebuilt_not_trusted(db_app, people, monkeypatch):
    """A generation whose schema lacks the ``within`` field (built by an older version)
    counts as no index: the next search builds a current one, and filters by scope."""
    from directory.search.whoosh import store
    from directory.search.whoosh.documents import make_schema

    root = Path(db_app.config["SEARCH_INDEX_DIR"])
    with db_app.app_context():
        get_search_backend().search(SearchQuery(text="botox"))  # the current generation
        old_schema = make_schema()
        old_schema.remove("within")
        monkeypatch.setattr(store, "make_schema", lambda: old_schema)
        path, ix = store.new_generation(root)
        ix.writer().commit()
        monkeypatch.undo()
        store.switch_to(root, path)
        assert store.current_generation(root) is None  # an old schema is no index
        with contextlib.suppress(NoIndex):  # never from the old one: 503 while one is built
            get_search_backend().search(SearchQuery(text="botox"))
        get_index_keeper().ensure_index()  # what the background build does
        found = get_search_backend().search(SearchQuery(text="botox"))
        assert [h.registration_number for h in found.hits] == [people["active"]]
        assert store.current_generation(root) not in (None, path)


# --- imports and clinic edits ---------------------------------------------------------------


def test_an_import_accepts_an_outside_scope_treatment_and_reports_it(db_app, people):
    record = {
        "clinic": {
            "name": "Fictional Scope Rooms",
            "slug": "fictional-scope-rooms",
            "city": "Cape Town",
            "province": "Western Cape",
        },
        "listings": [
            {"registration_number": people["physio"], "services": ["Botox", "meso"]},
            {"registration_number": people["active"], "services": ["Botox"]},
        ],
    }
    with db_app.app_context():
        report = import_listing_records(db.session, [record])
        db.session.commit()
        assert report.listings_created == 2 and report.exit_code == 0
        botox, meso = report.warnings  # the doctor's botox: within, nothing to report
        for warning in (botox, meso):
            assert warning.line == 1 and warning.listing == 1 and warning.field == "services"
            assert warning.registration_number == people["physio"]
            assert "show everyone" in warning.reason
        assert botox.reason.startswith(
            "Botulinum toxin is not within what a registered physiotherapist may do."
        )
        assert meso.reason.startswith(
            "Mesotherapy is not within what a registered physiotherapist may do."
        )
        assert report.summary()["warnings"] == 2
        assert (
            db.session.scalar(
                db.select(db.func.count(Listing.id)).where(
                    Listing.practitioner.has(registration_number=people["physio"])
                )
            )
            == 2
        )  # imported all the same


def test_the_import_command_prints_the_scope_warning(db_app, people, tmp_path):
    path = tmp_path / "clinics.jsonl"
    path.write_text(
        json.dumps(
            {
                "clinic": {
                    "name": "Fictional Scope Rooms",
                    "slug": "fictional-scope-rooms",
                    "city": "Cape Town",
                    "province": "Western Cape",
                },
                "listings": [{"registration_number": people["dentist"], "services": ["lipolysis"]}],
            }
        )
        + "\n"
    )
    runner = db_app.test_cli_runner()
    result = runner.invoke(args=["directory", "import-listings", str(path), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    [problem] = [line for line in lines if line["type"] == "problem"]
    assert problem["severity"] == "warning" and problem["line"] == 1
    assert problem["reason"].startswith(
        "We cannot say whether Fat reduction is within what a registered dentist may do."
    )


def test_a_treatment_the_data_does_not_know_is_never_within():
    """Belt and braces: a treatment the data does not know is never "within" for anyone."""
    for prefix in numbers.known_prefixes():
        assert scope_of("not-a-treatment", f"{prefix}0900001").scope == "unknown"


def test_the_demo_data_shows_an_outside_scope_listing():
    from directory.demo import generator

    practitioners = generator.demo_practitioners()
    pairs = [
        (listing["registration_number"], slug)
        for record in generator.demo_clinic_records(practitioners)
        for listing in record["listings"]
        for slug in listing["services"]
        if listing["registration_number"].startswith("PT")
    ]
    outside = [pair for pair in pairs if scope_of(pair[1], pair[0]).scope == "outside"]
    assert {slug for _, slug in outside} == {"botulinum-toxin", "dermal-fillers"}
