"""Every write route, web and API, tried as an attacker would: with no session, with
another clinic's session or token, with a revoked token, without a CSRF token and with a
stale version. Each is refused and changes nothing. An XSS payload in every text field
comes back escaped on every page that shows it."""

from __future__ import annotations

import pytest

from directory.accounts.models import ApiToken, AuditEntry, ClinicSuspension, HeldListing, User
from directory.extensions import db
from directory.listings.models import Clinic, Listing
from tests.accounts_support import csrf_of, populate, sign_in

XSS = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


@pytest.fixture
def world(app):
    """Accounts, a token of each clinic (one revoked), a held listing; the tokens' values."""
    accounts = populate(app)
    from directory.accounts import services as svc

    with app.app_context():
        sample = db.session.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
        other = db.session.scalar(db.select(Clinic).where(Clinic.slug == "other-aesthetics"))
        admin = svc.Actor(user=svc.user_by_email(db.session, accounts.admin))
        other_admin = svc.Actor(user=svc.user_by_email(db.session, accounts.other_admin))
        own, _ = svc.create_token(db.session, admin, sample, "own")
        revoked, revoked_row = svc.create_token(db.session, admin, sample, "old")
        foreign, _ = svc.create_token(db.session, other_admin, other, "theirs")
        svc.revoke_token(db.session, admin, sample, revoked_row.id)
        db.session.add(
            HeldListing(
                clinic_id=sample.id,
                registration_number="MP0000105",
                name_given="Someone",
                services=["prp"],
                description="",
                register_name="ANNA PLACEHOLDER FICTIONAL-SMITH",
                register_record={},
                score=20.0,
                requested_by="x",
            )
        )
        db.session.commit()
        ids = {
            "token": revoked_row.id,
            "staff": svc.user_by_email(db.session, accounts.staff).id,
            "held": db.session.scalar(db.select(HeldListing.id)),
        }
    return accounts, {"own": own, "revoked": revoked, "foreign": foreign}, ids


def snapshot(app) -> dict:
    """Everything a write could change."""
    with app.app_context():
        clinics = [
            (c.slug, c.version, c.name, c.phone, c.description)
            for c in db.session.scalars(db.select(Clinic).order_by(Clinic.id))
        ]
        listings = [
            (
                li.clinic_id,
                li.practitioner_id,
                li.version,
                li.description,
                tuple(sorted(s.slug for s in li.services)),
            )
            for li in db.session.scalars(db.select(Listing).order_by(Listing.id))
        ]
        return {
            "clinics": clinics,
            "listings": listings,
            "users": db.session.scalars(db.select(User.email).order_by(User.id)).all(),
            "tokens": [
                (t.id, t.revoked_at is None)
                for t in db.session.scalars(db.select(ApiToken).order_by(ApiToken.id))
            ],
            "held": [(h.id, h.state) for h in db.session.scalars(db.select(HeldListing))],
            "suspended": db.session.scalars(db.select(ClinicSuspension.clinic_id)).all(),
            "audit": db.session.scalar(db.select(db.func.count(AuditEntry.id))),
        }


def web_writes(ids) -> list[tuple[str, dict, bool]]:
    """(path, form, carries a version) for every web write route on sample-skin."""
    base = "/account/clinics/sample-skin"
    return [
        (
            f"{base}/profile",
            {"version": "1", "name": "Changed", "city": "Cape Town", "province": "Western Cape"},
            True,
        ),
        (
            f"{base}/listings",
            {"registration_number": "MP0000105", "name": "Anna Smith", "services": "PRP"},
            False,
        ),
        (f"{base}/listings/MP0000101", {"version": "1", "services": "PRP"}, True),
        (f"{base}/listings/MP0000101/remove", {"version": "1"}, True),
        (f"{base}/tokens", {"name": "sneaky"}, False),
        (f"{base}/tokens/{ids['token']}/revoke", {}, False),
        (f"{base}/users", {"email": "spy@evil.example", "role": "clinic_admin"}, False),
        (f"{base}/users/{ids['staff']}/remove", {}, False),
        (f"/account/moderation/{ids['held']}/approve", {}, False),
        (f"{base}/suspend", {"reason": "x"}, False),
    ]


API = "/api/v1/clinics/sample-skin"
API_WRITES = [
    ("patch", API, {"version": 1, "name": "Changed"}),
    (
        "post",
        f"{API}/listings",
        {"registration_number": "MP0000105", "name": "Anna Smith", "services": ["prp"]},
    ),
    ("patch", f"{API}/listings/MP0000101", {"version": 1, "services": ["prp"]}),
    ("delete", f"{API}/listings/MP0000101?version=1", None),
]


def test_web_writes_without_a_session_are_refused_and_change_nothing(app, world):
    _, _, ids = world
    before = snapshot(app)
    anonymous = app.test_client()
    token = csrf_of(anonymous.get("/account/login").get_data(as_text=True))
    for path, form, _ in web_writes(ids):
        response = anonymous.post(path, data={**form, "csrf_token": token})
        assert response.status_code == 302, path
        assert "/account/login" in response.headers["Location"], path
    assert snapshot(app) == before


def test_web_writes_from_another_clinics_session_are_refused(app, world):
    accounts, _, ids = world
    before = snapshot(app)
    intruder = app.test_client()
    token = sign_in(intruder, accounts.other_admin)
    for path, form, _ in web_writes(ids):
        response = intruder.post(path, data={**form, "csrf_token": token})
        assert response.status_code in (403, 404), (path, response.status_code)
    assert snapshot(app) == before


def test_web_writes_without_a_csrf_token_are_refused(app, world):
    accounts, _, ids = world
    before = snapshot(app)
    for who in (accounts.admin, accounts.site_admin):
        client = app.test_client()
        sign_in(client, who)
        for path, form, _ in web_writes(ids):
            response = client.post(path, data=form)
            assert response.status_code == 400, (who, path, response.status_code)
            wrong = client.post(path, data={**form, "csrf_token": "forged"})
            assert wrong.status_code == 400, (who, path)
    assert snapshot(app) == before


def test_web_writes_on_a_stale_version_are_refused(app, world):
    accounts, _, ids = world
    client = app.test_client()
    token = sign_in(client, accounts.admin)
    with app.app_context():  # someone else saves first: both versions move to 2
        clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
        clinic.phone = "+27215550123"
        clinic.listings[0].description = "changed elsewhere"
        db.session.commit()
    before = snapshot(app)
    for path, form, versioned in web_writes(ids):
        if versioned:
            response = client.post(path, data={**form, "csrf_token": token})
            assert response.status_code == 409, path
            assert "changed by someone else" in response.get_data(as_text=True), path
    assert snapshot(app) == before


def test_api_writes_are_refused_without_a_valid_token_of_the_clinic(app, world):
    _, tokens, _ = world
    before = snapshot(app)
    api = app.test_client()
    for method, url, body in API_WRITES:
        for headers, expected in [
            ({}, 401),
            ({"Authorization": f"Bearer {tokens['revoked']}"}, 401),
            ({"Authorization": f"Bearer {tokens['foreign']}"}, 404),
            ({"Authorization": "Bearer hpd_" + "A" * 43}, 401),
            ({"Authorization": f"Basic {tokens['own']}"}, 401),
        ]:
            response = getattr(api, method)(url, json=body, headers=headers)
            assert response.status_code == expected, (method, url, headers, response.status_code)
            assert response.mimetype == "application/problem+json"
    assert snapshot(app) == before


def test_api_writes_on_a_stale_version_are_refused(app, world):
    _, tokens, _ = world
    with app.app_context():
        clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
        clinic.phone = "+27215550123"
        clinic.listings[0].description = "changed elsewhere"
        db.session.commit()
    before = snapshot(app)
    api = app.test_client()
    headers = {"Authorization": f"Bearer {tokens['own']}"}
    for method, url, body in API_WRITES:
        if method == "post":
            continue
        response = getattr(api, method)(url, json=body, headers=headers)
        assert response.status_code == 409, (method, url)
        assert response.get_json()["code"] == "stale_version"
    assert snapshot(app) == before


def test_cookie_authenticated_api_writes_need_the_csrf_header(app, world):
    accounts, _, _ = world
    before = snapshot(app)
    client = app.test_client()
    sign_in(client, accounts.admin)
    for method, url, body in API_WRITES:
        response = getattr(client, method)(url, json=body)
        assert response.status_code == 403, (method, url)
        wrong = getattr(client, method)(url, json=body, headers={"X-CSRFToken": "forged"})
        assert wrong.status_code == 403, (method, url)
    assert snapshot(app) == before


def test_staff_cannot_manage_users_or_tokens(app, world):
    accounts, _, ids = world
    before = snapshot(app)
    staff = app.test_client()
    token = sign_in(staff, accounts.staff)
    for path, form, _ in web_writes(ids)[4:8]:
        assert staff.post(path, data={**form, "csrf_token": token}).status_code == 403, path
    assert staff.get("/account/clinics/sample-skin/tokens").status_code == 403
    assert snapshot(app) == before


def test_an_xss_payload_in_every_text_field_comes_back_escaped(app, world):
    accounts, _, _ = world
    admin = app.test_client()
    token = sign_in(admin, accounts.admin)
    profile = {
        "version": "1",
        "name": XSS,
        "description": XSS,
        "street_address": XSS,
        "city": "Cape Town " + XSS[:60],
        "province": "Western Cape",
        "phone": "",
        "email": "",
        "website": "",
        "postal_code": "",
        "latitude": "",
        "longitude": "",
        "csrf_token": token,
    }
    response = admin.post("/account/clinics/sample-skin/profile", data=profile)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    edit = admin.post(
        "/account/clinics/sample-skin/listings/MP0000101",
        data={"version": "1", "services": "Mesotherapy", "description": XSS, "csrf_token": token},
    )
    assert edit.status_code == 302
    admin.post("/account/clinics/sample-skin/tokens", data={"name": XSS, "csrf_token": token})
    held = admin.post(
        "/account/clinics/sample-skin/listings",
        data={
            "registration_number": "DP0000201",
            "name": XSS[:200],
            "services": "PRP",
            "csrf_token": token,
        },
    )
    assert held.status_code == 302
    site_admin = app.test_client()
    sign_in(site_admin, accounts.site_admin)
    pages = [
        (admin, "/account/clinics/sample-skin"),
        (admin, "/account/clinics/sample-skin/profile"),
        (admin, "/account/clinics/sample-skin/listings/MP0000101"),
        (admin, "/account/clinics/sample-skin/audit"),
        (admin, "/account/clinics/sample-skin/tokens"),
        (site_admin, "/account/"),
        (site_admin, "/account/moderation"),
        (app.test_client(), "/clinics/sample-skin"),
        (app.test_client(), "/search?q=mesotherapy&all=1"),
        (app.test_client(), "/practitioners/MP0000101"),
    ]
    for client, path in pages:
        page = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page or "alert(1)" not in page, path
    shown = [
        path
        for client, path in pages
        if "&lt;script&gt;alert(1)" in client.get(path).get_data(as_text=True)
    ]
    assert len(shown) >= 8, shown  # the payload is really on those pages, escaped
    body = app.test_client().get("/api/v1/clinics/sample-skin").get_json()
    assert body["name"] == XSS  # JSON carries the text as written; escaping is the page's job


NASTY = [
    "\x00",
    "\u202e\u0000evil",
    "x" * 100_000,
    "😀" * 500,
    "' OR 1=1 --",
    "%s%n{0}{{7*7}}",
    "-1",
    "1e309",
    "NaN",
    "\r\n\r\nInjected: header",
    "MP" + "9" * 50,
]


def test_no_input_yields_a_500_on_any_account_form(app, world):
    accounts, _, _ = world
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash must show as a 500, as deployed
    admin = app.test_client()
    token = sign_in(admin, accounts.admin)
    site_admin = app.test_client()
    site_token = sign_in(site_admin, accounts.site_admin)
    anonymous = app.test_client()
    anonymous_token = csrf_of(anonymous.get("/account/login").get_data(as_text=True))
    forms = [
        (
            admin,
            token,
            "/account/clinics/sample-skin/profile",
            [
                "version",
                "name",
                "description",
                "phone",
                "email",
                "website",
                "street_address",
                "city",
                "province",
                "postal_code",
                "latitude",
                "longitude",
                "opening_hours",
            ],
        ),
        (
            admin,
            token,
            "/account/clinics/sample-skin/listings",
            ["registration_number", "name", "services", "description"],
        ),
        (
            admin,
            token,
            "/account/clinics/sample-skin/listings/MP0000101",
            ["version", "services", "description"],
        ),
        (admin, token, "/account/clinics/sample-skin/tokens", ["name"]),
        (admin, token, "/account/clinics/sample-skin/users", ["email", "role"]),
        (site_admin, site_token, "/account/clinics/other-aesthetics/suspend", ["reason"]),
        (anonymous, anonymous_token, "/account/login", ["email", "password"]),
        (anonymous, anonymous_token, "/account/reset", ["email"]),
    ]
    for client, csrf, path, fields in forms:
        for value in NASTY:
            data = {field: value for field in fields}
            response = client.post(path, data={**data, "csrf_token": csrf})
            assert response.status_code < 500, (path, value[:20], response.status_code)
    for path in (
        "/account/clinics/sample-skin/listings/%00",
        "/account/claim/%ff%fe",
        "/account/reset/" + "a" * 5000,
        "/account/invitation/x.y.z",
        "/clinics/%00/claim",
    ):
        assert admin.get(path).status_code < 500, path
