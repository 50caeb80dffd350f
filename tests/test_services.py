"""The service vocabulary: the data file, the resolver, query understanding, the table sync."""

from __future__ import annotations

import pytest

from directory.extensions import db
from directory.listings import vocabulary as services
from directory.listings.models import Service
from directory.listings.vocabulary import (
    ServiceTerm,
    VocabularyError,
    find_services,
    resolve_service,
    resolve_slug,
    suggest_service,
    sync_services,
    term_key,
    without_matches,
)

REQUIRED = {
    "mesotherapy": ["meso"],
    "fat-reduction": ["fat dissolving", "lipolysis", "fat loss"],
    "cellulite": [],
    "hair-regrowth": ["hair loss", "hair re-growth", "alopecia"],
    "wrinkle-reduction": [],
    "skin-rejuvenation": [],
    "scar-improvement": [],
    "acne": [],
    "stretch-marks": [],
    "pain-management": [],
    "arthritis-joint-problems": [],
    "sports-injuries": [],
    "weight-loss": ["slimming"],
    "botulinum-toxin": ["botox", "anti-wrinkle injections"],
    "dermal-fillers": ["fillers"],
    "prp": ["platelet-rich plasma", "vampire facial"],
    "chemical-peels": [],
    "general-practice": ["GP", "family doctor"],
}


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


def test_vocabulary_has_every_treatment_with_its_synonyms():
    vocab = services.by_slug()
    for slug, synonyms in REQUIRED.items():
        assert slug in vocab, slug
        assert vocab[slug].description.strip(), slug
        for synonym in synonyms:
            assert resolve_slug(synonym) == slug, synonym
    assert len(vocab) >= 25


def test_every_term_names_exactly_one_service():
    """A synonym shared by two services would make "botox" ambiguous: the loader refuses it."""
    index = services.term_index()
    for service in services.service_terms():
        for term in service.terms:
            assert index[term_key(term)] == service.slug


def test_a_clash_in_the_vocabulary_is_refused():
    a = ServiceTerm("a-service", "A", "", ("shared word",))
    b = ServiceTerm("b-service", "B", "", ("Shared-Word",))
    with pytest.raises(VocabularyError, match="names both"):
        services._term_index([a, b])
    with pytest.raises(VocabularyError, match="lower-case"):
        services._term_index([ServiceTerm("Bad Slug", "B", "", ())])


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("botox", "botulinum-toxin"),
        ("BOTOX", "botulinum-toxin"),
        ("  Botox. ", "botulinum-toxin"),
        ("Anti wrinkle injections", "botulinum-toxin"),
        ("botulinum-toxin", "botulinum-toxin"),
        ("Botulinum toxin", "botulinum-toxin"),
        ("hair regrowth", "hair-regrowth"),
        ("Hair Re-Growth", "hair-regrowth"),
        ("hair loss", "hair-regrowth"),
        ("platelet rich plasma", "prp"),
        ("PRP (platelet-rich plasma)", "prp"),
        ("fat-dissolving", "fat-reduction"),
        ("Lipolysis", "fat-reduction"),
        ("meso", "mesotherapy"),
        ("Mésothérapie", "mesotherapy"),
        ("g.p.", "general-practice"),
        ("Family Doctor", "general-practice"),
    ],
)
def test_resolve_slug_accepts_slug_name_or_synonym(text, slug):
    assert resolve_slug(text) == slug


@pytest.mark.parametrize("text", ["", "   ", None, "tattoo removal", "hair", "--", "x" * 10_000])
def test_resolve_slug_returns_none_for_anything_else(text):
    assert resolve_slug(text) is None


def test_suggest_service_for_misspellings():
    assert suggest_service("mesotheraphy").slug == "mesotherapy"
    assert suggest_service("botoks").slug == "botulinum-toxin"
    assert suggest_service("celulite").slug == "cellulite"
    assert suggest_service("GP").slug == "general-practice"  # exact, however short
    assert suggest_service("xyz") is None
    assert suggest_service("completely unrelated words") is None


def test_find_services_in_free_text():
    text = "Botox and lip fillers in Durban, or hair re growth with platelet rich plasma"
    matches = find_services(text)
    assert [m.slug for m in matches] == [
        "botulinum-toxin",
        "dermal-fillers",
        "hair-regrowth",
        "prp",
    ]
    assert [m.text for m in matches] == [
        "Botox",
        "lip fillers",
        "hair re growth",
        "platelet rich plasma",
    ]
    assert without_matches(text, matches) == "and in Durban, or with"


def test_find_services_prefers_the_longest_phrase():
    assert [m.slug for m in find_services("dark spots")] == ["pigmentation"]
    assert [m.slug for m in find_services("spots")] == ["acne"]
    assert [m.slug for m in find_services("joint pain")] == ["arthritis-joint-problems"]
    assert find_services("Dr Example in Cape Town") == []


def test_sync_services_is_an_idempotent_upsert(app):
    with app.app_context():
        first = sync_services()
        db.session.commit()
        assert first.created == len(services.service_terms())
        again = sync_services()
        db.session.commit()
        assert (again.created, again.updated) == (0, 0)
        assert again.unchanged == len(services.service_terms())

        # A row edited by hand is put back to the vocabulary's words; extra rows are kept.
        botox = db.session.scalar(db.select(Service).where(Service.slug == "botulinum-toxin"))
        botox.name = "Something else"
        db.session.add(Service(slug="retired-service", name="Retired", synonyms=[]))
        db.session.commit()
        third = sync_services()
        db.session.commit()
        assert third.updated == 1
        assert third.not_in_vocabulary == ("retired-service",)
        assert botox.name == "Botulinum toxin"


def test_resolve_service_returns_the_row(app):
    with app.app_context():
        assert resolve_service("botox") is None  # table not loaded yet
        sync_services()
        db.session.commit()
        service = resolve_service("Vampire facial")
        assert service is not None and service.slug == "prp"
        assert "vampire facial" in service.synonyms
        assert resolve_service("no such thing") is None
        assert resolve_service("") is None


def test_load_services_command(runner, app):
    result = runner.invoke(args=["directory", "load-services"])
    assert result.exit_code == 0, result.output
    assert "created" in result.output
    result = runner.invoke(args=["directory", "load-services", "--json"])
    assert result.exit_code == 0
    assert '"created": 0' in result.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Service.id))) == len(
            services.service_terms()
        )
