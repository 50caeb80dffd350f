"""``flask registry show``: what the system believes about a number, and why.
All data is fictional."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from directory.extensions import db
from directory.registry.models import Practitioner

HEADER = "Title,Surname,Fullname,Registration,City,Postal Code,Category,Status"


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


def show(app, *args: str):
    return app.test_cli_runner().invoke(args=["registry", "show", *args])


def test_show_json_has_the_belief_the_verdict_and_the_history(app, fake_iregister):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["registry", "verify", "MP0000102"]).exit_code == 0
    fake_iregister.register.fail_next("500", times=3, number="MP0000102")
    app.config["HPCSA_RETRY_ATTEMPTS"] = 1  # the history has a row per look-up: three of them
    for _ in range(3):
        assert runner.invoke(args=["registry", "verify", "MP0000102"]).exit_code == 1

    result = show(app, "mp 102", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["registration_number"] == "MP0000102"
    assert data["register_format"] == "MP   0000102"
    assert data["register"] == "Medical practitioners"
    assert (data["surname"], data["city"]) == ("FICTIONAL-VAN DER MERWE", "PRETORIA")
    assert data["status"] == "erased"  # the errors moved nothing
    assert data["raw_status"] == "ACTIVE / INACTIVE / ERASED - NON PAYMENT"
    assert [(c["category"], c["status"]) for c in data["categories"]] == [
        ("INDEPENDENT PRACTICE", "active"),
        ("PUBLIC SERVICE", "inactive"),
        ("INTERN", "erased"),
    ]
    assert data["verified"] is False
    assert data["verdict"]["tone"] == "adverse"
    assert data["verdict"]["headline"] and data["verdict"]["explanation"]
    assert data["verified_at"] and data["last_checked_at"] and data["next_check_at"]
    assert data["outcome"] == "error" and data["consecutive_failures"] == 3
    assert data["not_found_pending_since"] is None
    assert [h["outcome"] for h in data["history"]] == ["error", "error", "error", "ok"]
    assert data["history"][-1]["effect"] == "created"
    assert data["history"][0]["error"] == "HTTP 500 from the register"
    assert data["history"][-1]["source"] == "hpcsa-iregister"


def test_show_limits_the_history(app):
    runner = app.test_cli_runner()
    for _ in range(3):
        assert runner.invoke(args=["registry", "verify", "MP0000101"]).exit_code == 0
    data = json.loads(show(app, "MP0000101", "--json", "--history", "2").stdout)
    assert len(data["history"]) == 2 and data["verified"] is True


def test_show_text_says_verified_and_why(app):
    app.test_cli_runner().invoke(args=["registry", "verify", "MP0000101"])
    result = show(app, "MP0000101")
    assert result.exit_code == 0
    assert "VERIFIED: " in result.stdout
    assert "category INDEPENDENT PRACTICE: ACTIVE -> active" in result.stdout
    assert "recent checks (newest first):" in result.stdout


def test_show_an_old_snapshot_as_not_verified(app, tmp_path):
    path = tmp_path / "old.csv"
    path.write_text(HEADER + "\nDR,FICTIONAL-OLD,ANNA,MP0000001,DURBAN,4001,INTERN,ACTIVE\n")
    runner = app.test_cli_runner()
    imported = runner.invoke(args=["registry", "import", str(path), "--as-of", "2023-06-01"])
    assert imported.exit_code == 0, imported.output
    data = json.loads(show(app, "MP0000001", "--json").stdout)
    assert data["status"] == "active" and data["verified"] is False
    assert data["verdict"]["tone"] == "stale"
    assert data["verified_at"] == datetime(2023, 6, 1, tzinfo=UTC).isoformat()
    assert data["history"][0]["source"] == "snapshot:old.csv"
    text = show(app, "MP0000001").stdout
    assert "NOT VERIFIED" in text and "2023" in text


def test_show_a_pending_not_found(app, fake_iregister):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["registry", "verify", "MP0000101"]).exit_code == 0
    fake_iregister.register.remove("MP0000101")
    assert runner.invoke(args=["registry", "verify", "MP0000101"]).exit_code == 0
    data = json.loads(show(app, "MP0000101", "--json").stdout)
    assert data["status"] == "active" and data["not_found_pending_since"]
    assert data["verified"] is False and data["verdict"]["tone"] == "pending"
    assert data["history"][0]["effect"] == "pending_not_found"
    assert "PENDING" in show(app, "MP0000101").stdout


def test_an_unknown_number_exits_1_with_a_clear_message(app):
    result = show(app, "MP0000999")
    assert result.exit_code == 1
    assert "holds no registration" in result.stderr and "Traceback" not in result.output
    with app.app_context():
        assert db.session.query(Practitioner).count() == 0
    as_json = show(app, "MP0000999", "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["registration_number"] == "MP0000999"


def test_something_that_is_not_a_number_exits_2(app):
    result = show(app, "MPO000101")
    assert result.exit_code == 2
    assert "did you mean MP0000101?" in result.stderr and "Traceback" not in result.output


def test_the_page_the_api_and_show_describe_a_registration_alike(app, fake_iregister):
    """One read of the profile: the same verdict, categories, checks and iRegister link."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["registry", "verify", "MP0000102", "MP0000101"]).exit_code == 0
    client = app.test_client()
    for number in ("MP0000102", "MP0000101"):
        shown = json.loads(show(app, number, "--json").stdout)
        api = client.get(f"/api/v1/practitioners/{number}").get_json()
        page = client.get(f"/practitioners/{number}").get_data(as_text=True)
        assert shown["register_record_url"] == api["register_record_url"]
        assert f'href="{shown["register_record_url"]}"' in page
        assert shown["verdict"]["headline"] == api["headline"]
        assert shown["verdict"]["headline"] in page
        assert shown["categories"] == api["categories"]
        assert [h["outcome"] for h in shown["history"]] == [h["outcome"] for h in api["history"]]
        assert shown["register_record_url"].endswith(
            "MP%20%20%20" + number[2:]
        )  # the register's own spelling, percent-encoded
