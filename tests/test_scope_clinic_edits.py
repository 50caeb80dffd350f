"""A clinic's own edits (its pages and its API, ``directory.accounts``) accept a treatment
outside the practitioner's scope of practice and tell the clinic so (docs/scope.md). Against
the fake iRegister, as every clinic-account test; all people and clinics are fictional."""

from __future__ import annotations

import re

import pytest

from tests.accounts_support import csrf_of, populate, sign_in
from tests.test_accounts_api import bearer, new_token
from tests.test_scope import words


@pytest.fixture
def accounts(app):
    return populate(app)


def test_a_clinics_api_edit_reports_an_outside_scope_treatment(app, client, accounts):
    api = app.test_client()
    headers = bearer(new_token(client, accounts))
    base = "/api/v1/clinics/sample-skin/listings"
    mine = api.get(base, headers=headers).get_json()["listings"]
    assert [item["scope_notes"] for item in mine] == [[]]  # a doctor's mesotherapy: within
    created = api.post(
        base,
        json={
            "registration_number": "PS0000301",
            "name": "Nomsa Fictional-Khumalo",
            "services": ["Botox"],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.get_json()
    [note] = created.get_json()["listing"]["scope_notes"]
    assert note.startswith("Botulinum toxin is not within what a registered psychologist may do.")
    version = created.get_json()["listing"]["version"]
    patched = api.patch(
        f"{base}/PS0000301",
        json={"version": version, "services": ["mesotherapy", "prp"]},
        headers=headers,
    )
    assert patched.status_code == 200
    notes = patched.get_json()["scope_notes"]
    assert [n.split(" is not within")[0] for n in notes] == [
        "Mesotherapy",
        "PRP (platelet-rich plasma)",
    ]


def test_a_clinics_page_edit_reports_an_outside_scope_treatment(app, client, accounts):
    token = sign_in(client, accounts.admin)
    added = client.post(
        "/account/clinics/sample-skin/listings",
        data={
            "csrf_token": token,
            "registration_number": "PS0000301",
            "name": "Nomsa Fictional-Khumalo",
            "services": "Dermal fillers",
            "description": "",
        },
        follow_redirects=True,
    )
    text = words(added.get_data(as_text=True))
    assert "Nomsa" in text and "is listed" in text
    assert "Dermal fillers is not within what a registered psychologist may do." in text
    page = client.get("/account/clinics/sample-skin").get_data(as_text=True)
    assert 'data-scope="outside" data-service="dermal-fillers"' in page
    edit = client.get("/account/clinics/sample-skin/listings/PS0000301").get_data(as_text=True)
    saved = client.post(
        "/account/clinics/sample-skin/listings/PS0000301",
        data={
            "csrf_token": csrf_of(edit),
            "services": "Chemical peels",
            "description": "",
            "version": re.search(r'name="version"[^>]*value="(\d+)"', edit)[1],
        },
        follow_redirects=True,
    )
    assert "Chemical peels is not within what a registered psychologist may do." in words(
        saved.get_data(as_text=True)
    )


@pytest.mark.postgres
def test_a_clinics_api_edit_reports_scope_on_postgresql(pg_app):
    accounts = populate(pg_app)
    test_a_clinics_api_edit_reports_an_outside_scope_treatment(
        pg_app, pg_app.test_client(), accounts
    )


@pytest.mark.postgres
def test_a_clinics_page_edit_reports_scope_on_postgresql(pg_app):
    accounts = populate(pg_app)
    test_a_clinics_page_edit_reports_an_outside_scope_treatment(
        pg_app, pg_app.test_client(), accounts
    )
