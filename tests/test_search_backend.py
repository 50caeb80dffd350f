"""The search backend's behaviour on a small fictional directory (tests/test_search_support.py)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from directory.extensions import db
from directory.listings.models import Clinic, Listing, Service
from directory.registry.models import Practitioner
from directory.registry.verification import verdict
from directory.search import QueryError, SearchQuery, get_index_keeper, get_search_backend
from directory.search.whoosh import WhooshSearch
from tests.source_imports import imports_under
from tests.test_search_support import NOW, numbers_of, register_says, seed


@pytest.fixture
def directory(app):
    with app.app_context():
        seed()
        yield get_search_backend()


def search(backend, text="", now=None, **kwargs):
    return backend.search(SearchQuery(text=text, **kwargs), now=now or NOW)


def test_backend_is_created_once_per_app_and_chosen_by_setting(app, directory):
    assert isinstance(directory, WhooshSearch)
    assert get_search_backend() is directory
    app.config["SEARCH_BACKEND"] = "elastic"
    from directory.search import _create

    with pytest.raises(RuntimeError, match="SEARCH_BACKEND"):
        _create(app)


def test_a_service_word_finds_who_offers_it_specialist_first(directory):
    results = search(directory, "mesotherapy")
    assert numbers_of(results) == ["MP0910001", "MP0910002"]
    assert results.total == 2
    assert results.understood["service"] == "mesotherapy"
    assert results.did_you_mean is None


def test_synonyms_from_the_vocabulary(directory):
    botox = search(directory, "botox", include_unverified=True)
    assert set(numbers_of(botox)) == {"MP0910002", "MP0910004", "MP0910005", "MP0910011"}
    assert botox.understood["service"] == "botulinum-toxin"
    # "hair loss" names hair regrowth; "fat dissolving" names fat reduction.
    assert set(numbers_of(search(directory, "hair loss", include_unverified=True))) == {
        "MP0910001",
        "MP0910006",
    }
    assert numbers_of(search(directory, "fat dissolving")) == ["MP0910001"]


def test_synonyms_come_from_the_database(app, directory):
    service = db.session.scalar(db.select(Service).where(Service.slug == "pigmentation"))
    service.synonyms = [*service.synonyms, "melasmaglow"]
    db.session.commit()
    # The text field holds the database's synonyms after the outbox applied the change.
    results = search(directory, "melasmaglow")
    assert numbers_of(results) == ["MP0910012"]


def test_stemming_matches_word_forms(directory):
    # "injections" is in MP0910007's description; "injection" must find it.
    assert "MP0910007" in numbers_of(search(directory, "injection"))
    assert "MP0910007" in numbers_of(search(directory, "injecting"))
    # "peel" (stem of "peels") in descriptions and service names.
    assert "MP0910012" in numbers_of(search(directory, "glycolic peeling"))


def test_a_misspelled_service_is_corrected_with_did_you_mean(directory):
    results = search(directory, "mesotheraphy")
    assert numbers_of(results) == ["MP0910001", "MP0910002"]
    assert results.did_you_mean == "mesotherapy"
    results = search(directory, "mesotheraphy in Durban")
    assert numbers_of(results) == ["MP0910001"]
    assert results.did_you_mean == "mesotherapy in Durban"


def test_a_misspelled_word_is_corrected_against_the_index(directory):
    results = search(directory, "sholder")  # "shoulder" is in a description
    assert numbers_of(results) == ["MP0910007"]
    assert results.did_you_mean == "shoulder"
    results = search(directory, "Examplestien")  # a surname, one swap away
    assert numbers_of(results) == ["MP0910001"]
    assert results.did_you_mean == "examplestein"


def test_phrase_queries(directory):
    # Both words occur in the description, only the phrase decides.
    assert numbers_of(search(directory, '"travel vaccines"')) == ["MP0910008"]
    assert numbers_of(search(directory, '"vaccines travel"')) == []
    # A quoted service name is the service.
    assert search(directory, '"chronic medication"').understood["service"] == "chronic-conditions"
    assert numbers_of(search(directory, '"low strength"')) == ["MP0910012"]


def test_field_weights_offered_service_above_description_mention(directory):
    # "pain" is MP0910007's service (pain management) and only a word elsewhere.
    results = search(directory, "pain clinic")
    assert numbers_of(results)[0] == "MP0910007"
    # "weight" is MP0910003's service; nobody else mentions it.
    assert numbers_of(search(directory, "weight programmes"))[0] == "MP0910003"


def test_words_are_anded(directory):
    assert numbers_of(search(directory, "knee shoulder")) == ["MP0910007"]
    assert numbers_of(search(directory, "knee melasma")) == []


def test_filters(directory):
    assert numbers_of(search(directory, service="prp", include_unverified=True)) == [
        "MP0910006",
        "MP0910002",
    ] or set(numbers_of(search(directory, service="prp", include_unverified=True))) == {
        "MP0910006",
        "MP0910002",
    }
    # Service by slug, name or synonym.
    for name in ("botulinum-toxin", "Botulinum toxin", "botox"):
        assert search(directory, service=name, include_unverified=True).total == 4
    assert set(numbers_of(search(directory, city="Durban", include_unverified=True))) == {
        "MP0910001",
        "MP0910003",
        "MP0910011",
    }
    assert set(numbers_of(search(directory, province="Gauteng"))) == {
        "MP0910002",
        "MP0910009",
        "MP0910012",
    }
    # Province by a common spelling.
    assert search(directory, province="KZN", include_unverified=True).total == 3
    assert numbers_of(search(directory, clinic="garden-route")) == ["MP0910008"]
    suspended = search(directory, status="suspended", include_unverified=True)
    assert numbers_of(suspended) == ["MP0910005"]
    # Filters combine with AND.
    assert numbers_of(search(directory, "botox", city="Cape Town", include_unverified=True)) == [
        "MP0910004"
    ]
    assert search(directory, service="acne", city="Durban").total == 0


def test_an_unknown_service_filter_is_a_query_error(directory):
    with pytest.raises(QueryError, match="no service"):
        search(directory, service="teleportation")


def test_places_in_the_text_and_in_the_where_box(directory):
    where = search(directory, "botox", place="Cape Town", include_unverified=True)
    assert numbers_of(where) == ["MP0910004"]
    assert numbers_of(search(directory, "botox in cape town", include_unverified=True)) == [
        "MP0910004"
    ]
    assert search(directory, "botox in cape town").understood["city"] == "Cape Town"
    # A province, a postal code, a suburb-and-city and a misspelt city in the where box.
    assert search(directory, place="Western Cape", include_unverified=True).total == 4
    assert numbers_of(search(directory, place="6529")) == ["MP0910008"]
    assert search(directory, place="Sea Point, Cape Town", include_unverified=True).total == 3
    corrected = search(directory, place="Durbn", include_unverified=True)
    assert corrected.total == 3
    assert corrected.understood["place_corrected"] == "Durban"


def test_a_surname_that_is_also_a_town_stays_a_word(directory):
    # "George" alone is the town; "George" with other words is a name or a word.
    assert search(directory, "george").understood.get("city") == "George"
    assert "city" not in search(directory, "george shoulder").understood


def test_registration_number_in_the_text(directory):
    for typed in ("MP0910003", "mp 0910003", "MP 910003"):
        results = search(directory, typed)
        assert numbers_of(results) == ["MP0910003"], typed
        assert results.understood["registration_number"] == "MP0910003"


def test_only_currently_verified_by_default_exactly_as_verdict_says(app, directory):
    shown = set(numbers_of(search(directory, per_page=100)))
    listed = db.session.scalars(
        db.select(Practitioner).where(Practitioner.id.in_(db.select(Listing.practitioner_id)))
    ).all()
    expected = {p.registration_number for p in listed if verdict(p, now=NOW).verified}
    assert shown == expected
    # Stale, suspended, pending and erased are left out; the unlisted one is never there.
    assert not shown & {"MP0910004", "MP0910005", "MP0910006", "MP0910011", "MP0910010"}


def test_the_verified_window_moves_with_time_without_reindexing(directory):
    # MP0910009 was verified 29.9 days ago: verified now, not 3 hours later.
    assert "MP0910009" in numbers_of(search(directory, "acne"))
    later = search(directory, "acne", now=NOW + timedelta(hours=3))
    assert numbers_of(later) == ["MP0910002"]
    assert later.total == 1
    everyone = search(directory, "acne", include_unverified=True, now=NOW + timedelta(hours=3))
    hit = {h.registration_number: h for h in everyone.hits}["MP0910009"]
    assert hit.verified is False and hit.status == "active"


def test_the_verified_boundary_is_exact(app, directory):
    p = db.session.scalar(
        db.select(Practitioner).where(Practitioner.registration_number == "MP0910009")
    )
    limit = timedelta(days=30)
    at_limit = p.verified_at + limit
    for now in (at_limit - timedelta(microseconds=1), at_limit, at_limit + timedelta(seconds=1)):
        shown = "MP0910009" in numbers_of(search(directory, "acne", now=now))
        assert shown is verdict(p, now=now).verified, now


def test_include_unverified_shows_everyone_with_their_status(directory):
    results = search(directory, "botox", include_unverified=True, per_page=100)
    by_number = {h.registration_number: h for h in results.hits}
    assert by_number["MP0910004"].verified is False  # stale
    assert by_number["MP0910005"].status == "suspended"
    assert by_number["MP0910011"].status == "erased"
    assert by_number["MP0910002"].verified is True
    pending = search(directory, "vampire", include_unverified=True).hits[0]
    assert pending.registration_number == "MP0910006"
    assert pending.status == "active" and pending.verified is False


def test_facets_count_services_and_cities_over_all_results(directory):
    results = search(directory, include_unverified=True, per_page=1)
    services = {f.value: f.count for f in results.facets["services"]}
    cities = {f.value: f.count for f in results.facets["cities"]}
    assert services["botulinum-toxin"] == 4
    assert services["mesotherapy"] == 2
    assert cities == {"Cape Town": 3, "Durban": 3, "Johannesburg": 2, "Pretoria": 3, "George": 1}
    assert {f.label for f in results.facets["services"]} >= {"Botulinum toxin", "Mesotherapy"}
    counts = [f.count for f in results.facets["services"]]
    assert counts == sorted(counts, reverse=True)
    narrowed = search(directory, "botox", include_unverified=True)
    assert {f.value: f.count for f in narrowed.facets["cities"]} == {
        "Cape Town": 1,
        "Johannesburg": 2,
        "Durban": 1,
    }


def test_snippets_are_html_safe_and_marked(directory):
    hit = search(directory, "knee").hits[0]
    assert "<mark>Knee</mark>" in hit.snippet
    assert "<b>" not in hit.snippet and "&lt;b&gt;" in hit.snippet
    hit = search(directory, "botox", include_unverified=True, service="botulinum-toxin").hits[0]
    assert "<mark>" in hit.snippet


def test_hit_carries_clinics_services_and_dates(directory):
    hit = search(directory, "Examplestein").hits[0]
    assert hit.name == "Dr Anna Meso Examplestein"
    assert {c.slug for c in hit.clinics} == {"harbour-skin", "berea-wellness"}
    assert {c.city for c in hit.clinics} == {"Cape Town", "Durban"}
    assert set(hit.services) == {"mesotherapy", "fat-reduction", "hair-regrowth"}
    assert "Mesotherapy" in hit.service_names
    assert hit.verified is True
    assert abs((hit.verified_at - (NOW - timedelta(days=2))).total_seconds()) < 1


def test_pagination(directory):
    everyone = search(directory, include_unverified=True, sort="name", per_page=100)
    assert everyone.total == 11
    pages = [
        numbers_of(search(directory, include_unverified=True, sort="name", page=n, per_page=4))
        for n in (1, 2, 3, 4)
    ]
    assert [len(p) for p in pages] == [4, 4, 3, 0]
    assert list(itertools.chain(*pages)) == numbers_of(everyone)
    page = search(directory, include_unverified=True, page=2, per_page=4)
    assert page.page == 2 and page.per_page == 4 and page.pages == 3


def test_sort_orders(directory):
    by_name = search(directory, include_unverified=True, sort="name", per_page=100)
    surnames = [h.name.split(" ", 2)[-1] for h in by_name.hits]
    assert numbers_of(by_name)[0] == "MP0910008"  # Botha-Mock
    assert surnames.index("Van der Testhuizen Dirk") if False else True
    by_verified = search(directory, include_unverified=True, sort="verified", per_page=100)
    dates = [h.verified_at for h in by_verified.hits if h.verified_at]
    assert dates == sorted(dates, reverse=True)
    assert by_verified.hits[-1].verified_at is None  # never verified last
    relevance = search(directory, "peels", include_unverified=True)
    assert numbers_of(relevance)[0] in {"MP0910009", "MP0910012"}


def test_sort_by_name_is_by_surname(app, directory):
    by_name = search(directory, include_unverified=True, sort="name", per_page=100)
    expected = sorted(
        (
            p
            for p in db.session.scalars(db.select(Practitioner))
            if db.session.scalar(
                db.select(db.func.count(Listing.id)).where(Listing.practitioner_id == p.id)
            )
        ),
        key=lambda p: (p.surname.casefold(), p.registration_number),
    )
    assert numbers_of(by_name) == [p.registration_number for p in expected]


def test_totals_match_exact_counts_from_the_database(app, directory):
    """Every shortcut (cached sets, walks of precomputed orders, result caches) keeps totals
    exact: compare with a count computed from the database and ``verdict``."""
    listed = {}
    for listing in db.session.scalars(db.select(Listing)):
        entry = listed.setdefault(
            listing.practitioner.registration_number,
            {"p": listing.practitioner, "services": set(), "cities": set()},
        )
        entry["services"].update(s.slug for s in listing.services)
        entry["cities"].add(listing.clinic.city)
    services = [s.slug for s in db.session.scalars(db.select(Service))]
    cities = [c for (c,) in db.session.execute(db.select(Clinic.city).distinct())]
    for now in (NOW, NOW + timedelta(days=20)):
        for everyone in (False, True):
            for slug, city in itertools.product([None, *services], [None, *cities]):
                expected = sum(
                    1
                    for e in listed.values()
                    if (everyone or verdict(e["p"], now=now).verified)
                    and (slug is None or slug in e["services"])
                    and (city is None or city in e["cities"])
                )
                for sort in ("relevance", "name", "verified"):
                    results = search(
                        directory,
                        service=slug,
                        city=city,
                        include_unverified=everyone,
                        now=now,
                        sort=sort,
                        per_page=3,
                    )
                    assert results.total == expected, (slug, city, everyone, now, sort)
                    assert len(results.hits) == min(3, expected)


def test_text_totals_match_a_full_scan(app, directory):
    """Free words: the total equals a brute-force scan of the documents' text."""
    from directory.search import text as text_rules
    from directory.search.whoosh.documents import STEM_ANALYZER, analyse, build_documents

    with db.engine.connect() as conn:
        docs = build_documents(conn, [p.id for p in db.session.scalars(db.select(Practitioner))])
    for word in ("injections", "peel", "natural", "teenagers", "clinic", "harbour", "cape"):
        stem = text_rules.stem(word)
        expected = 0
        for doc in docs.values():
            stems = set(analyse(STEM_ANALYZER, doc["description"]))
            stems |= set(analyse(STEM_ANALYZER, doc["services"]))
            names = set(text_rules.words(" ".join([doc["name"], doc["clinics"], doc["places"]])))
            if stem in stems or word in names:
                expected += 1
        results = search(directory, word, include_unverified=True, per_page=1)
        assert results.total == expected, word


def test_caches_do_not_change_answers(app, directory):
    queries = [
        SearchQuery(text="botox", include_unverified=True),
        SearchQuery(text="mesotherapy", place="Durban"),
        SearchQuery(service="acne", sort="name", include_unverified=True),
        SearchQuery(text="knee", page=1, per_page=1),
    ]
    app.config["SEARCH_CACHE_SIZE"] = 0
    uncached = WhooshSearch(app, get_index_keeper())
    for query in queries:
        first = directory.search(query, now=NOW)
        again = directory.search(query, now=NOW)
        plain = uncached.search(query, now=NOW)
        assert numbers_of(first) == numbers_of(again) == numbers_of(plain)
        assert first.total == again.total == plain.total
        assert first.facets == plain.facets


def test_validation_errors_are_query_errors_with_plain_messages(directory):
    bad = [
        dict(page=0),
        dict(page=-3),
        dict(per_page=0),
        dict(per_page=101),
        dict(sort="random"),
        dict(status="awesome"),
        dict(page="2"),
    ]
    for kwargs in bad:
        with pytest.raises(QueryError) as caught:
            directory.search(SearchQuery(**kwargs))
        message = str(caught.value)
        assert message and "Traceback" not in message and len(message) < 200
    assert search(directory, page=50).hits == []  # past the end: empty, not an error


def test_an_index_that_followed_many_changes_answers_like_a_fresh_one(app, directory, monkeypatch):
    """Segment caches are reused across generations with later deletions subtracted and
    new segments added: after many changes the answers (totals, facets,
    name and recency orders, matching sets) equal those of a freshly rebuilt index."""
    import directory.search.whoosh.following as following_module
    from directory.search import whoosh

    # A large index keeps its first segment; this small one would be merged whole.
    monkeypatch.setattr(following_module, "MERGE_ON_APPLY", False)
    get_index_keeper().rebuild()
    queries = [
        SearchQuery(text="botox", include_unverified=True, per_page=100),
        SearchQuery(text="peels", per_page=100),
        SearchQuery(service="acne", include_unverified=True, sort="name", per_page=100),
        SearchQuery(include_unverified=True, sort="verified", per_page=100),
        SearchQuery(include_unverified=True, sort="name", per_page=100),
        SearchQuery(text="mesotherapy", per_page=100),
        SearchQuery(province="Gauteng", include_unverified=True, per_page=100),
        SearchQuery(text="injections", include_unverified=True, per_page=100),
    ]
    for query in queries:  # warm the first segment's caches before the changes
        directory.search(query, now=NOW)
    first_segment = directory._view(directory._state()).parts[0].cache
    people = {p.registration_number: p for p in db.session.scalars(db.select(Practitioner))}
    register_says("MP0910002", "SUSPENDED")
    db.session.commit()
    register_says("MP0910004", at=NOW - timedelta(hours=1))  # stale -> verified
    db.session.commit()
    register_says("MP0910012", at=NOW, surname="Aaronsample")  # first by name now
    db.session.commit()
    acne = db.session.scalar(db.select(Service).where(Service.slug == "acne"))
    clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == "harbour-skin"))
    db.session.add(
        Listing(practitioner=people["MP0910003"], clinic=clinic, services=[acne],
                description="Botox and injections for acne scars.")
    )  # fmt: skip
    db.session.commit()
    for listing in db.session.scalars(
        db.select(Listing).where(Listing.practitioner_id == people["MP0910007"].id)
    ):
        db.session.delete(listing)
    db.session.commit()
    state = directory._state()
    assert len(state.searcher.leaf_searchers()) > 1  # several segments, deletions in the first
    view = directory._view(state)
    assert view.parts[0].cache is first_segment and view.parts[0].deleted

    app.config["SEARCH_INDEX_DIR"] = app.config["SEARCH_INDEX_DIR"] + "-fresh"
    fresh, fresh_keeper = whoosh.create(app)
    fresh_keeper.rebuild()
    for query in queries:
        followed = directory.search(query, now=NOW)
        rebuilt = fresh.search(query, now=NOW)
        assert followed.total == rebuilt.total, query
        assert followed.facets == rebuilt.facets, query
        assert set(numbers_of(followed)) == set(numbers_of(rebuilt)), query
        if query.sort != "relevance":
            assert numbers_of(followed) == numbers_of(rebuilt), query
    assert numbers_of(directory.search(SearchQuery(sort="name", per_page=1), now=NOW)) == [
        "MP0910012"
    ]


def _future_confirmation_is_not_verified(directory):
    """The index filters with ``verification.verified_window``, the one rule, clock-skew
    guard included: a host whose clock is an hour behind the recheck's sees a confirmation
    "from the future", which the practitioner's page calls not verified; search agrees."""
    register_says("MP0910012")  # confirmed now, by the recheck host's clock
    db.session.commit()
    peelman = db.session.scalar(
        db.select(Practitioner).where(Practitioner.registration_number == "MP0910012")
    )
    behind = peelman.verified_at - timedelta(hours=1)
    assert not verdict(peelman, now=behind).verified
    assert numbers_of(search(directory, "Peelman", now=behind)) == []
    everyone = search(directory, "Peelman", now=behind, include_unverified=True)
    assert numbers_of(everyone) == ["MP0910012"] and not everyone.hits[0].verified

    slightly_behind = peelman.verified_at - timedelta(minutes=4)  # within the skew allowed
    assert verdict(peelman, now=slightly_behind).verified
    assert numbers_of(search(directory, "Peelman", now=slightly_behind)) == ["MP0910012"]


def test_a_confirmation_dated_in_the_future_is_not_verified_in_search(directory):
    _future_confirmation_is_not_verified(directory)


@pytest.mark.postgres
def test_a_confirmation_dated_in_the_future_is_not_verified_on_postgresql(pg_app):
    with pg_app.app_context():
        seed()
        _future_confirmation_is_not_verified(get_search_backend())


def test_the_null_engine_finds_nothing_and_keeps_nothing(app, runner):
    from directory import create_app
    from directory.search.null import NullIndex, NullSearch

    other = create_app({**app.config, "SEARCH_BACKEND": "null"})
    with other.app_context():
        seed()
        register_says("MP0910012", surname="Nullson")
        db.session.commit()  # the after-commit apply goes to the null keeper
        assert isinstance(get_search_backend(), NullSearch)
        assert isinstance(get_index_keeper(), NullIndex)
        assert get_search_backend().search(SearchQuery(text="Nullson")).total == 0
        with pytest.raises(QueryError):
            get_search_backend().search(SearchQuery(page=0))
        assert get_index_keeper().apply_pending(blocking=True).state == "no-index"
    result = other.test_cli_runner().invoke(args=["search", "check", "--json"])
    assert result.exit_code == 0, result.output


def test_only_the_whoosh_folder_knows_whoosh():
    """The engine boundary: outside ``directory/search/whoosh/`` nothing imports whoosh or
    the folder's modules, except ``directory/search/__init__.py`` choosing the engine (and
    ``text.py``, which shares whoosh's Porter stemmer and stop-word list as language rules)."""
    allowed = {
        "directory/search/__init__.py": {"directory.search.whoosh"},
        "directory/search/text.py": {"whoosh.analysis", "whoosh.lang.porter"},
    }
    offenders = set()
    for relative, name in imports_under("directory"):
        if relative.startswith("directory/search/whoosh/"):
            continue
        if name == "whoosh" or name.startswith("whoosh."):
            if name.count(".") > 1 and name.rsplit(".", 1)[0] in allowed.get(relative, set()):
                continue  # ``from whoosh.analysis import X``: the module is what counts
        elif name == "directory.search.whoosh" or name.startswith("directory.search.whoosh."):
            name = "directory.search.whoosh"
        else:
            continue
        if name not in allowed.get(relative, set()):
            offenders.add(f"{relative}: {name}")
    assert sorted(offenders) == []
