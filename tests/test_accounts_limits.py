"""Limits a clinic and a visitor meet: one clinic asks the register about at most
CLINIC_LOOKUP_LIMIT numbers (on top of the shared register budget), and one visitor asks for
at most LOGIN_LIMIT_PER_ADDRESS claim emails, whichever clinics they are for."""

from __future__ import annotations

import pytest

from tests.accounts_support import csrf_of, populate, sign_in
from tests.test_accounts_api import bearer, new_token
from tests.test_accounts_clinic_pages import add
from tests.test_accounts_links import mails


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


@pytest.fixture
def app_config(app_config):
    return {
        **app_config,
        "CLINIC_LOOKUP_LIMIT": "2 per hour",
        "LOGIN_LIMIT_PER_ADDRESS": "1 per 15 minutes",
    }


# --- 3. a per-clinic limit on register look-ups ---------------------------------------------


def test_a_clinic_may_ask_the_register_only_so_often(app, fake_iregister):
    accounts = populate(app)
    client = app.test_client()
    token = sign_in(client, accounts.staff)
    for number in ("MP0999991", "MP0999992"):  # unknown numbers: asked, refused
        answer = add(client, token, registration_number=number, name="Nobody", services="prp")
        assert answer.status_code == 422
        assert fake_iregister.register.requests_for(number)
    third = add(client, token, registration_number="MP0999993", name="Nobody", services="prp")
    assert third.status_code == 429
    assert "as many as it may" in third.get_data(as_text=True)
    assert fake_iregister.register.requests_for("MP0999993") == []  # not asked

    # the API says the same, with 429 and Retry-After; nothing is held or listed
    plain = new_token(app.test_client(), accounts)
    api = app.test_client().post(
        "/api/v1/clinics/sample-skin/listings",
        json={"registration_number": "MP0000105", "name": "X Y", "services": ["prp"]},
        headers=bearer(plain),
    )
    assert api.status_code == 429 and api.get_json()["code"] == "too_many_lookups"
    assert 0 < int(api.headers["Retry-After"]) <= 3600
    assert fake_iregister.register.requests_for("MP0000105") == []

    # another clinic has its own allowance
    other = app.test_client()
    sign_in(other, accounts.other_admin)
    csrf = csrf_of(other.get("/account/clinics/other-aesthetics").get_data(as_text=True))
    answer = other.post(
        "/account/clinics/other-aesthetics/listings",
        data={
            "csrf_token": csrf,
            "registration_number": "MP0999994",
            "name": "Nobody",
            "services": "prp",
            "description": "",
        },
    )
    assert answer.status_code == 422  # asked (and refused by the register), not throttled


# --- 4. claim emails: per clinic and per visitor ----------------------------------------------


def ask_to_claim(app, slug: str, address: str):
    visitor = app.test_client()
    environ = {"REMOTE_ADDR": address}
    page = visitor.get(f"/clinics/{slug}/claim", environ_base=environ)
    token = csrf_of(page.get_data(as_text=True))
    return visitor.post(f"/clinics/{slug}/claim", data={"csrf_token": token}, environ_base=environ)


def test_one_visitor_cannot_send_claim_emails_to_clinic_after_clinic(app):
    populate(app, users=False)
    assert ask_to_claim(app, "sample-skin", "198.51.100.7").status_code == 200
    refused = ask_to_claim(app, "other-aesthetics", "198.51.100.7")  # the same visitor
    assert refused.status_code == 429
    assert [m["To"] for m in mails(app)] == ["front-desk@sample-skin.example"]
    # another visitor is not held back by the first one
    assert ask_to_claim(app, "other-aesthetics", "203.0.113.9").status_code == 200
    assert len(mails(app)) == 2
