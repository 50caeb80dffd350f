"""`flask directory import-listings`: per-line problems, exit codes, idempotence, --json.

All numbers, names and contact details here are fictional.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from directory.extensions import db
from directory.listings.imports import (
    UnreadableListings,
    import_listing_records,
    read_listing_lines,
    validate_clinic,
)
from directory.listings.models import Clinic, Listing, Service
from directory.registry.checks import new_practitioner
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import Practitioner, VerificationCheck
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow

ACTIVE_A = "MP0900001"
ACTIVE_B = "MP0900002"
SUSPENDED = "MP0900003"


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


def _register(number: str, status: str = "ACTIVE") -> LookupResult:
    row = RegisterRow(
        number, "DR", "EXAMPLE", "TEST PERSON", "CAPE TOWN", "8001", "INDEPENDENT PRACTICE", status
    )
    return LookupResult(number, Outcome.OK, utcnow() - timedelta(days=1), "test", rows=(row,))


@pytest.fixture
def registered(app):
    """Three fictional registrations, put in the register table through the rules."""
    with app.app_context():
        policy = RegistryPolicy.from_config(app.config)
        for number, status in (
            (ACTIVE_A, "ACTIVE"),
            (ACTIVE_B, "ACTIVE"),
            (SUSPENDED, "SUSPENDED"),
        ):
            record_check(db.session, new_practitioner(number), _register(number, status), policy)
        db.session.commit()
    return app


def clinic(slug: str = "sample-skin-clinic", **overrides) -> dict:
    data = {
        "name": "Sample Skin Clinic",
        "slug": slug,
        "city": "Cape Town",
        "province": "Western Cape",
        "street_address": "1 Example Street, Samplevale",
        "postal_code": "8001",
        "phone": "021 123 4567",
        "email": "Reception@Sample-Skin.EXAMPLE",
        "website": "sample-skin.example/about",
        "latitude": -33.92,
        "longitude": 18.42,
        "description": "A fictional clinic.",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def line(clinic_data: dict, *listings: dict) -> str:
    return json.dumps({"clinic": clinic_data, "listings": list(listings)})


def listing(number: str = ACTIVE_A, services=("mesotherapy",), description="Meso sessions."):
    return {"registration_number": number, "services": list(services), "description": description}


def write(tmp_path, *lines: str, name: str = "clinics.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def dump_tables() -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order: 'the same database'."""
    out = {}
    for table in db.metadata.sorted_tables:
        rows = db.session.execute(table.select().order_by(*table.primary_key.columns)).all()
        out[table.name] = [tuple(r) for r in rows]
    return out


def run(runner, path, *extra):
    return runner.invoke(args=["directory", "import-listings", str(path), *extra])


# --- the happy path ---------------------------------------------------------------------


def test_import_stores_clean_canonical_values(registered, runner, tmp_path):
    path = write(
        tmp_path,
        line(
            clinic(province="w cape", city="CAPE TOWN"),
            listing(ACTIVE_A, ["Meso", "fat dissolving", "botulinum-toxin", "BOTOX"]),
            listing("mp 900002", ["hair loss"], "PRP and mesotherapy for thinning hair."),
        ),
    )
    result = run(runner, path)
    assert result.exit_code == 0, result.output
    assert "clinics 1 created" in result.output
    with registered.app_context():
        stored = db.session.scalar(select(Clinic))
        assert stored.province == "Western Cape"
        assert stored.city == "Cape Town"
        assert stored.phone == "+27211234567"
        assert stored.email == "Reception@sample-skin.example"
        assert stored.website == "https://sample-skin.example/about"
        assert (stored.latitude, stored.longitude) == (-33.92, 18.42)
        listings = {x.practitioner.registration_number: x for x in stored.listings}
        assert set(listings) == {ACTIVE_A, ACTIVE_B}
        assert [s.slug for s in listings[ACTIVE_A].services] == [
            "botulinum-toxin",
            "fat-reduction",
            "mesotherapy",
        ]
        assert [s.slug for s in listings[ACTIVE_B].services] == ["hair-regrowth"]
        # The import loaded the vocabulary itself, on an empty services table.
        assert db.session.scalar(select(db.func.count(Service.id))) >= 25


# --- per-line problems --------------------------------------------------------------------


@pytest.fixture
def mixed_file(tmp_path):
    return write(
        tmp_path,
        line(clinic("good-clinic"), listing(ACTIVE_A)),  # 1: fine
        '{"clinic": {"name": "Broken", ',  # 2: malformed JSON
        line(clinic("bad-fields", province="Texas", email="not-an-email")),  # 3
        line(
            clinic("partly-good"),  # 4: one good listing, three bad
            listing("MP0999999"),  # not in the register
            listing(ACTIVE_A, ["mesotheraphy"]),  # misspelt service
            listing("MPO900002"),  # letter O among the digits
            listing(ACTIVE_B, ["botox"]),
        ),
        "",  # blank lines are skipped, not counted
        "[1, 2, 3]",  # 6: not an object
        line(clinic("good-clinic")),  # 7: same slug again
    )


def test_problems_are_reported_per_line_and_the_rest_imported(registered, runner, mixed_file):
    result = run(runner, mixed_file)
    assert result.exit_code == 1, result.output
    out = result.output
    assert "line 2: error: not valid JSON" in out
    assert "line 3, clinic bad-fields: error: province 'Texas' is not one of" in out
    assert "line 3, clinic bad-fields: error: email 'not-an-email'" in out
    assert (
        "line 4, clinic partly-good, listing 1 (MP0999999): error: MP0999999 is not in "
        "the register table" in out
    )
    assert "unknown service 'mesotheraphy'; did you mean 'Mesotherapy' (mesotherapy)?" in out
    assert "did you mean MP0900002?" in out
    assert "line 6: error: each line must be a JSON object" in out
    assert "line 7, clinic good-clinic: error: clinic good-clinic already appeared on line 1" in out
    with registered.app_context():
        slugs = set(db.session.scalars(select(Clinic.slug)))
        assert slugs == {"good-clinic", "partly-good"}
        partly = db.session.scalar(select(Clinic).where(Clinic.slug == "partly-good"))
        assert [x.practitioner.registration_number for x in partly.listings] == [ACTIVE_B]
        # A clinic never invents a registration.
        assert (
            db.session.scalar(
                select(Practitioner).where(Practitioner.registration_number == "MP0999999")
            )
            is None
        )
        assert db.session.scalar(select(db.func.count(Practitioner.id))) == 3


def test_json_output_one_object_per_problem_and_summary_last(registered, runner, mixed_file):
    result = run(runner, mixed_file, "--json")
    assert result.exit_code == 1
    objects = [json.loads(x) for x in result.output.splitlines()]
    problems, summary = objects[:-1], objects[-1]
    assert summary["type"] == "summary"
    assert {p["type"] for p in problems} == {"problem"}
    assert [p["line"] for p in problems] == sorted(p["line"] for p in problems)
    errors = [p for p in problems if p["severity"] == "error"]
    assert {p["line"] for p in errors} == {2, 3, 4, 6, 7}
    by_field = {(p["line"], p["field"]) for p in errors}
    assert {(3, "province"), (3, "email"), (4, "services"), (4, "registration_number")} <= by_field
    unknown = next(p for p in errors if p["registration_number"] == "MP0999999")
    assert unknown["listing"] == 1 and unknown["clinic"] == "partly-good"
    assert summary["lines"] == 6
    assert summary["clinics_created"] == 2
    assert summary["listings_created"] == 2
    assert summary["lines_rejected"] == 4  # 2, 3, 6, 7
    assert summary["listings_rejected"] == 3
    assert summary["errors"] == len(errors)
    assert summary["exit_code"] == 1


def test_a_suspended_practitioners_listing_is_imported_with_a_warning(registered, runner, tmp_path):
    path = write(tmp_path, line(clinic(), listing(SUSPENDED)))
    result = run(runner, path, "--json")
    assert result.exit_code == 0, result.output
    problems = [json.loads(x) for x in result.output.splitlines()][:-1]
    assert [p["severity"] for p in problems] == ["warning"]
    assert "suspended" in problems[0]["reason"]


def test_unknown_fields_are_warnings_not_rejections(registered, runner, tmp_path):
    data = {"clinic": clinic(provnce="x"), "listings": [listing()], "extra": 1}
    data["listings"][0]["servces"] = ["meso"]
    result = run(runner, write(tmp_path, json.dumps(data)))
    assert result.exit_code == 0, result.output
    assert "unknown clinic field 'provnce' ignored" in result.output
    assert "unknown listing field 'servces' ignored" in result.output
    assert "unknown key 'extra' ignored" in result.output


def test_a_line_that_is_not_utf8_is_reported_by_number(registered, runner, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(line(clinic("first")).encode() + b"\n" + b'{"clinic": {"name": "Caf\xe9"}}\n')
    result = run(runner, path)
    assert result.exit_code == 1
    assert "line 2: error: the line is not UTF-8 text" in result.output


# --- exit code 2: not JSON Lines at all -------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n  \n", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"name,slug,city\nA,a,Durban\n", "not JSON Lines"),
        (b'[{"clinic": {}}, {"clinic": {}}]', "one JSON array"),
        (b'{\n  "clinic": {"name": "x"}\n}\n', "spread over several lines"),
    ],
)
def test_unreadable_files_exit_2_and_change_nothing(registered, runner, tmp_path, content, message):
    good = write(tmp_path, line(clinic(), listing()), name="good.jsonl")
    assert run(runner, good).exit_code == 0
    with registered.app_context():
        before = dump_tables()
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    for extra in ((), ("--json",)):
        result = run(runner, bad, *extra)
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert "Traceback" not in result.output
    assert json.loads(result.output.splitlines()[-1])["exit_code"] == 2
    with registered.app_context():
        assert dump_tables() == before


def test_missing_path_and_directory_exit_2(registered, runner, tmp_path):
    assert run(runner, tmp_path / "nope.jsonl").exit_code == 2
    result = run(runner, tmp_path)
    assert result.exit_code == 2
    assert "is a directory" in result.output


def test_read_listing_lines_accepts_a_bom_and_crlf(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line(clinic()).encode() + b"\r\n")
    assert json.loads(read_listing_lines(path)[0])["clinic"]["slug"] == "sample-skin-clinic"
    with pytest.raises(UnreadableListings):
        read_listing_lines(tmp_path / "absent.jsonl")


# --- idempotence ------------------------------------------------------------------------------


def test_re_running_the_same_file_changes_nothing(registered, runner, mixed_file):
    assert run(runner, mixed_file).exit_code == 1
    with registered.app_context():
        before = dump_tables()
    result = run(runner, mixed_file, "--json")
    assert result.exit_code == 1
    summary = json.loads(result.output.splitlines()[-1])
    assert (summary["clinics_created"], summary["clinics_updated"]) == (0, 0)
    assert summary["clinics_unchanged"] == 2
    assert (summary["listings_created"], summary["listings_updated"]) == (0, 0)
    assert summary["listings_unchanged"] == 2
    with registered.app_context():
        assert dump_tables() == before


def test_re_import_updates_fields_and_replaces_services(registered, runner, tmp_path):
    first = write(tmp_path, line(clinic(), listing(ACTIVE_A, ["meso", "botox"])), name="1.jsonl")
    assert run(runner, first).exit_code == 0
    second = write(
        tmp_path,
        line(
            clinic(phone=None, website=None, name="Sample Skin Clinic (renamed)"),
            listing(ACTIVE_A, ["fillers"], "Now fillers only."),
        ),
        name="2.jsonl",
    )
    result = run(runner, second, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])
    assert (summary["clinics_updated"], summary["listings_updated"]) == (1, 1)
    with registered.app_context():
        stored = db.session.scalar(select(Clinic))
        assert stored.name == "Sample Skin Clinic (renamed)"
        assert stored.phone is None and stored.website is None  # the line is the whole record
        (only,) = stored.listings
        assert [s.slug for s in only.services] == ["dermal-fillers"]
        assert only.description == "Now fillers only."
        assert db.session.scalar(select(db.func.count(Listing.id))) == 1


def test_prune_removes_listings_the_line_no_longer_names(registered, runner, tmp_path):
    both = write(tmp_path, line(clinic(), listing(ACTIVE_A), listing(ACTIVE_B)), name="both.jsonl")
    assert run(runner, both).exit_code == 0
    # B's line now has a typo in a service: B's existing listing must survive the prune.
    only_a = write(
        tmp_path,
        line(clinic(), listing(ACTIVE_A), listing(ACTIVE_B, ["no such service"])),
        name="a.jsonl",
    )
    assert run(runner, only_a, "--prune").exit_code == 1
    with registered.app_context():
        assert db.session.scalar(select(db.func.count(Listing.id))) == 2
    only_a = write(tmp_path, line(clinic(), listing(ACTIVE_A)), name="a2.jsonl")
    result = run(runner, only_a, "--prune", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output.splitlines()[-1])["listings_removed"] == 1
    with registered.app_context():
        numbers_left = db.session.scalars(
            select(Practitioner.registration_number).join(Listing)
        ).all()
        assert numbers_left == [ACTIVE_A]
        # The practitioner stays in the register table; only the listing went.
        assert db.session.scalar(select(db.func.count(Practitioner.id))) == 3
    # Without --prune the listing is never removed.
    assert run(runner, only_a).exit_code == 0


def test_import_never_touches_the_register_facts(registered, runner, mixed_file):
    with registered.app_context():
        before = [
            dump_tables()[t] for t in ("practitioners", "verification_checks", "status_events")
        ]
    run(runner, mixed_file)
    with registered.app_context():
        after = [
            dump_tables()[t] for t in ("practitioners", "verification_checks", "status_events")
        ]
        assert after == before
        assert db.session.scalar(select(db.func.count(VerificationCheck.id))) == 3


def test_records_api_matches_the_file_path(registered):
    with registered.app_context():
        report = import_listing_records(
            db.session,
            [{"clinic": clinic(), "listings": [listing(ACTIVE_A), listing("MP0999999")]}],
        )
        db.session.commit()
        assert report.exit_code == 1
        assert report.listings_created == 1
        assert report.errors[0].line == 1 and report.errors[0].listing == 2


# --- field validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"slug": "Sample Skin"}, "slug", "e.g. 'sample-skin-clinic'"),
        ({"slug": "a--b"}, "slug", "single dashes"),
        ({"slug": None}, "slug", "required"),
        ({"name": ""}, "name", "required"),
        ({"name": 42}, "name", "must be text"),
        ({"name": "x" * 10_000}, "name", "longer than 200"),
        ({"name": "Bell\x07Clinic"}, "name", "control characters"),
        ({"city": None}, "city", "required"),
        ({"province": "Cape"}, "province", "nine provinces"),
        ({"phone": "12345"}, "phone", "not a valid South African number"),
        ({"phone": "call us"}, "phone", "not a phone number"),
        ({"email": "a@b"}, "email", "not an e-mail address"),
        ({"email": "two@@example.org"}, "email", "not an e-mail address"),
        ({"website": "javascript:alert(1)"}, "website", "http or https"),
        ({"website": "ftp://files.example"}, "website", "http or https"),
        ({"website": "https://user:pw@example.org"}, "website", "user name or password"),
        ({"website": "https://exa mple.org"}, "website", "not a web address"),
        ({"postal_code": "80012"}, "postal_code", "four digits"),
        ({"latitude": 91}, "latitude", "between -90 and 90"),
        ({"longitude": -181.5}, "longitude", "between -180 and 180"),
        ({"latitude": "north"}, "latitude", "must be a number"),
        ({"latitude": True}, "latitude", "must be a number"),
        ({"longitude": None}, "longitude", "go together"),
        ({"description": "x" * 5001}, "description", "longer than 5000"),
    ],
)
def test_each_clinic_field_is_validated(overrides, field, fragment):
    _values, errors = validate_clinic(clinic(**overrides))
    assert [(e.field, fragment in e.reason) for e in errors] == [(field, True)], errors


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"phone": "+27 82 123 4567"}, "phone", "+27821234567"),
        ({"phone": "082-123-4567"}, "phone", "+27821234567"),
        ({"phone": "0027 21 123 4567"}, "phone", "+27211234567"),
        ({"province": "KZN"}, "province", "KwaZulu-Natal"),
        ({"province": "kwazulu natal"}, "province", "KwaZulu-Natal"),
        ({"province": "North-West"}, "province", "North West"),
        ({"province": "Orange Free State"}, "province", "Free State"),
        ({"province": "GP"}, "province", "Gauteng"),
        ({"postal_code": 2}, "postal_code", "0002"),
        ({"latitude": "-29.85", "longitude": "31.02"}, "latitude", -29.85),
        ({"website": "HTTP://Example.ORG/Path?q=1"}, "website", "http://example.org/Path?q=1"),
        ({"description": "Line one\r\nLine two  \n"}, "description", "Line one\nLine two"),
        ({"name": "  Sample   Clinic \t"}, "name", "Sample Clinic"),
    ],
)
def test_common_spellings_are_stored_canonically(overrides, field, expected):
    values, errors = validate_clinic(clinic(**overrides))
    assert errors == []
    assert values[field] == expected


def test_listing_fields_are_validated(registered, runner, tmp_path):
    bad_listings = [
        {"services": ["meso"]},
        {"registration_number": "12345", "services": ["meso"]},
        {"registration_number": ACTIVE_A, "services": []},
        {"registration_number": ACTIVE_A, "services": "meso"},
        {"registration_number": ACTIVE_A, "services": [7]},
        {"registration_number": ACTIVE_A, "services": ["meso"], "description": ["x"]},
        "not an object",
    ]
    path = write(tmp_path, json.dumps({"clinic": clinic(), "listings": bad_listings}))
    result = run(runner, path, "--json")
    assert result.exit_code == 1
    objects = [json.loads(x) for x in result.output.splitlines()]
    reasons = [p["reason"] for p in objects[:-1]]
    assert len(reasons) == len(bad_listings)
    assert "registration_number is required" in reasons[0]
    assert "no register prefix" in reasons[1]
    assert "non-empty list" in reasons[2] and "non-empty list" in reasons[3]
    assert "a service must be a name" in reasons[4]
    assert "description must be text" in reasons[5]
    assert "must be a JSON object" in reasons[6]
    assert objects[-1]["clinics_created"] == 1  # the clinic itself was fine
    assert objects[-1]["listings_rejected"] == len(bad_listings)


def test_nan_and_huge_input_do_not_crash(registered, runner, tmp_path):
    path = write(
        tmp_path,
        '{"clinic": {"name": "N", "slug": "n", "city": "Durban", "province": "KZN", '
        '"latitude": NaN, "longitude": 1}}',
        json.dumps({"clinic": clinic("huge", description="\u00e9" * 100_000)}),
        json.dumps({"clinic": "just a string", "listings": [1, 2]}),
        json.dumps({"clinic": clinic("lst"), "listings": {"a": 1}}),
    )
    result = run(runner, path, "--json")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    summary = json.loads(result.output.splitlines()[-1])
    assert summary["lines_rejected"] == 4
    assert summary["listings_rejected"] == 2


@pytest.mark.postgres
def test_import_and_re_import_on_postgresql(pg_app, tmp_path):
    with pg_app.app_context():
        policy = RegistryPolicy.from_config(pg_app.config)
        record_check(db.session, new_practitioner(ACTIVE_A), _register(ACTIVE_A), policy)
        db.session.commit()
    runner = pg_app.test_cli_runner()
    path = write(
        tmp_path,
        line(clinic(), listing(ACTIVE_A, ["botox", "PRP"])),
        line(clinic("other", province="Texas")),
    )
    first = runner.invoke(args=["directory", "import-listings", str(path), "--json"])
    assert first.exit_code == 1, first.output
    with pg_app.app_context():
        before = dump_tables()
    again = runner.invoke(args=["directory", "import-listings", str(path), "--json"])
    assert again.exit_code == 1
    assert json.loads(again.output.splitlines()[-1])["listings_unchanged"] == 1
    with pg_app.app_context():
        assert dump_tables() == before
        assert [s.slug for s in db.session.scalar(select(Listing)).services] == [
            "botulinum-toxin",
            "prp",
        ]
