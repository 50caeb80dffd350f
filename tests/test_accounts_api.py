"""A clinic's own systems use token-authenticated endpoints with the pages' rules:
``PATCH /api/v1/clinics/<slug>`` and ``/api/v1/clinics/<slug>/listings[/<number>]``."""

from __future__ import annotations

import re

import pytest

from directory.accounts.models import ApiToken
from directory.extensions import db
from directory.listings.models import Clinic
from directory.search import SearchQuery, get_search_backend
from tests.accounts_support import csrf_of, populate, sign_in


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


@pytest.fixture
def accounts(app):
    return populate(app)


def new_token(client, accounts, who=None, name="Practice system") -> str:
    token = sign_in(client, who or accounts.admin)
    page = client.post(
        "/account/clinics/sample-skin/tokens"
        if who in (None, accounts.admin, accounts.staff)
        else "/account/clinics/other-aesthetics/tokens",
        data={"csrf_token": token, "name": name},
    )
    assert page.status_code == 200, page.status_code
    return re.search(r'<code id="new-token">([^<]+)</code>', page.get_data(as_text=True)).group(1)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def clinic(app, slug="sample-skin") -> Clinic:
    with app.app_context():
        found = db.session.scalar(db.select(Clinic).where(Clinic.slug == slug))
        db.session.expunge(found)
        return found


def test_a_token_is_shown_once_and_stored_only_as_a_hash(app, client, accounts):
    plain = new_token(client, accounts)
    assert plain.startswith("hpd_") and len(plain) > 40
    page = client.get("/account/clinics/sample-skin/tokens").get_data(as_text=True)
    assert plain not in page and "Practice system" in page and "never" in page
    with app.app_context():
        row = db.session.scalar(db.select(ApiToken))
        assert plain not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
    api = app.test_client()
    assert api.get("/api/v1/clinics/sample-skin/listings", headers=bearer(plain)).status_code == 200
    with app.app_context():
        assert db.session.scalar(db.select(ApiToken)).last_used_at is not None


def test_staff_cannot_manage_tokens(client, accounts):
    token = sign_in(client, accounts.staff)
    response = client.post(
        "/account/clinics/sample-skin/tokens", data={"csrf_token": token, "name": "mine"}
    )
    assert response.status_code == 403


def test_patch_profile_with_a_token_follows_the_rules_and_the_version(app, client, accounts):
    plain = new_token(client, accounts)
    api = app.test_client()
    url = "/api/v1/clinics/sample-skin"
    read = api.get(url + "/profile", headers=bearer(plain))
    assert read.status_code == 200 and read.get_json()["version"] == 1
    assert read.get_json()["phone"] == "+27215550101"
    assert api.get(url + "/profile").status_code == 401
    ok = api.patch(url, json={"version": 1, "phone": "0215550177"}, headers=bearer(plain))
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["phone"] == "+27215550177" and ok.get_json()["version"] == 2
    assert ok.headers["Cache-Control"] == "private, no-store"
    stale = api.patch(url, json={"version": 1, "name": "Overwritten"}, headers=bearer(plain))
    assert stale.status_code == 409 and stale.get_json()["code"] == "stale_version"
    bad = api.patch(
        url,
        json={"version": 2, "website": "ftp://x.example", "email": "nope"},
        headers=bearer(plain),
    )
    assert bad.status_code == 422
    assert {e["parameter"] for e in bad.get_json()["errors"]} == {"website", "email"}
    found = clinic(app)
    assert found.name == "Sample Skin Clinic" and found.website is None and found.version == 2


def test_listings_through_the_api(app, client, accounts, fake_iregister):
    plain = new_token(client, accounts)
    api = app.test_client()
    base = "/api/v1/clinics/sample-skin/listings"
    listed = api.get(base, headers=bearer(plain)).get_json()
    assert [item["registration_number"] for item in listed["listings"]] == ["MP0000101"]

    created = api.post(
        base,
        json={
            "registration_number": "PS0000301",
            "name": "Nomsa Fictional-Khumalo",
            "services": ["Chemical peels"],
        },
        headers=bearer(plain),
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["listing"]["services"] == ["chemical-peels"]
    held = api.post(
        base,
        json={"registration_number": "PRC0000401", "name": "Someone Else", "services": ["PRP"]},
        headers=bearer(plain),
    )
    assert held.status_code == 202 and held.get_json()["state"] == "held"
    unknown = api.post(
        base,
        json={"registration_number": "MP0999999", "name": "X", "services": ["PRP"]},
        headers=bearer(plain),
    )
    assert unknown.status_code == 422

    item = api.get(f"{base}/PS0000301", headers=bearer(plain)).get_json()
    patched = api.patch(
        f"{base}/PS0000301",
        json={"version": item["version"], "services": ["prp", "chemical-peels"]},
        headers=bearer(plain),
    )
    assert patched.status_code == 200 and patched.get_json()["services"] == [
        "chemical-peels",
        "prp",
    ]
    with app.app_context():
        hits = (
            get_search_backend()
            .search(SearchQuery(clinic="sample-skin", service="prp", include_unverified=True))
            .hits
        )
        assert [h.registration_number for h in hits] == ["PS0000301"]
    stale = api.delete(f"{base}/PS0000301?version={item['version']}", headers=bearer(plain))
    assert stale.status_code == 409
    gone = api.delete(
        f"{base}/PS0000301?version={patched.get_json()['version']}", headers=bearer(plain)
    )
    assert gone.status_code == 204
    assert api.get(f"{base}/PS0000301", headers=bearer(plain)).status_code == 404


def test_the_api_refuses_no_token_a_revoked_token_and_another_clinics_token(app, client, accounts):
    plain = new_token(client, accounts)
    other = new_token(app.test_client(), accounts, who=accounts.other_admin)
    api = app.test_client()
    attempts = [
        ("patch", "/api/v1/clinics/sample-skin", {"version": 1, "name": "Hijacked"}),
        (
            "post",
            "/api/v1/clinics/sample-skin/listings",
            {"registration_number": "MP0000105", "name": "Anna Smith", "services": ["prp"]},
        ),
        (
            "patch",
            "/api/v1/clinics/sample-skin/listings/MP0000101",
            {"version": 1, "services": ["prp"]},
        ),
        ("delete", "/api/v1/clinics/sample-skin/listings/MP0000101?version=1", None),
    ]
    for method, url, body in attempts:
        assert getattr(api, method)(url, json=body).status_code == 401
        assert getattr(api, method)(url, json=body, headers=bearer(other)).status_code == 404
        assert getattr(api, method)(url, json=body, headers=bearer("hpd_forged")).status_code == 401
    # revoke through the page, then the token no longer works
    token = csrf_of(client.get("/account/clinics/sample-skin/tokens").get_data(as_text=True))
    with app.app_context():
        token_id = db.session.scalar(
            db.select(ApiToken.id).where(ApiToken.clinic.has(slug="sample-skin"))
        )
    client.post(
        f"/account/clinics/sample-skin/tokens/{token_id}/revoke", data={"csrf_token": token}
    )
    for method, url, body in attempts:
        assert getattr(api, method)(url, json=body, headers=bearer(plain)).status_code == 401
    found = clinic(app)
    assert found.name == "Sample Skin Clinic" and found.version == 1
    with app.app_context():
        numbers = [
            li.practitioner.registration_number
            for li in db.session.scalar(
                db.select(Clinic).where(Clinic.slug == "sample-skin")
            ).listings
        ]
        assert numbers == ["MP0000101"]


def test_cookie_authenticated_json_writes_need_the_csrf_header(app, client, accounts):
    token = sign_in(client, accounts.admin)
    url = "/api/v1/clinics/sample-skin"
    refused = client.patch(url, json={"version": 1, "name": "No CSRF"})
    assert refused.status_code == 403 and refused.get_json()["code"] == "csrf_failed"
    assert clinic(app).name == "Sample Skin Clinic"
    ok = client.patch(url, json={"version": 1, "name": "With CSRF"}, headers={"X-CSRFToken": token})
    assert ok.status_code == 200
    assert clinic(app).name == "With CSRF"


def test_the_clinic_endpoints_are_in_the_openapi_document(sqlite_app):  # no database: once
    document = sqlite_app.test_client().get("/api/v1/openapi.json").get_json()
    assert "patch" in document["paths"]["/api/v1/clinics/{slug}"]
    assert {"get", "post"} <= set(document["paths"]["/api/v1/clinics/{slug}/listings"])
    assert {"get", "patch", "delete"} <= set(
        document["paths"]["/api/v1/clinics/{slug}/listings/{number}"]
    )
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
