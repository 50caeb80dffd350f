"""The clinic-account gaps found in review, each closed with a test that failed before:
sign-out ends the session on the server, an import leaves a claimed clinic's own record
alone, a per-clinic limit on register look-ups, claim emails throttled per visitor, a reset
request that does the same work with or without an account, a removed admin's tokens
revoked, 422 for invalid fields of a JSON object (400 for a body that is not one), and
listings that no longer import accounts (the suspension is a fact of the clinic)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from directory.accounts import links, views
from directory.accounts import services as svc
from directory.accounts.models import ApiToken, AuditEntry, UserSession
from directory.extensions import db
from directory.listings import standing
from directory.listings.imports import import_listing_records
from directory.listings.models import Clinic
from tests.accounts_support import CLINICS, PASSWORD, csrf_of, populate, sign_in
from tests.test_accounts_api import bearer, new_token
from tests.test_accounts_clinic_pages import PROFILE, profile_form
from tests.test_accounts_links import mails, user_id

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def accounts(app):
    return populate(app)


def clinic_row(app, slug: str = "sample-skin") -> Clinic:
    with app.app_context():
        found = db.session.scalar(db.select(Clinic).where(Clinic.slug == slug))
        db.session.expunge(found)
        return found


# --- 1. signing out ends the session on the server -------------------------------------------


def copy_session(source, target) -> None:
    """What someone who copied the session cookie out of a browser holds."""
    cookie = source.get_cookie("session")
    assert cookie is not None
    target.set_cookie("session", cookie.value)


def test_a_copied_session_cookie_stops_working_at_sign_out(any_app):
    app = any_app
    accounts = populate(app)
    browser, thief, laptop = app.test_client(), app.test_client(), app.test_client()
    token = sign_in(browser, accounts.admin)
    sign_in(laptop, accounts.admin)  # the same person on another device
    copy_session(browser, thief)
    assert thief.get("/account/clinics/sample-skin").status_code == 200  # the copy works now

    signed_out = browser.post("/account/logout", data={"csrf_token": token})
    assert signed_out.status_code == 302

    for path in ("/account/clinics/sample-skin", "/account/clinics/sample-skin/tokens"):
        answer = thief.get(path)
        assert answer.status_code == 302 and "/account/login" in answer.headers["Location"]
    csrf = csrf_of(thief.get("/account/login").get_data(as_text=True))
    api = thief.patch(
        "/api/v1/clinics/sample-skin",
        json={"version": 1, "name": "Taken over"},
        headers={"X-CSRFToken": csrf},
    )
    assert api.status_code == 401
    assert clinic_row(app).name == "Sample Skin Clinic"
    # only that session ended: the other device is still signed in
    assert laptop.get("/account/clinics/sample-skin").status_code == 200
    with app.app_context():
        admin = svc.user_by_email(db.session, accounts.admin)
        sessions = db.session.scalars(
            db.select(UserSession).where(UserSession.user_id == admin.id)
        ).all()
        assert len(sessions) == 1  # the laptop's


def test_sign_out_everywhere_ends_every_session_row(any_app):
    app = any_app
    accounts = populate(app)
    one, two = app.test_client(), app.test_client()
    token = sign_in(one, accounts.staff)
    sign_in(two, accounts.staff)
    assert one.post("/account/logout-everywhere", data={"csrf_token": token}).status_code == 302
    assert two.get("/account/clinics/sample-skin").status_code == 302
    with app.app_context():
        assert db.session.scalars(db.select(UserSession)).all() == []


def test_a_new_sign_in_beyond_the_most_sessions_ends_the_oldest(any_app, monkeypatch):
    app = any_app
    accounts = populate(app)
    monkeypatch.setattr(svc, "MAX_SESSIONS_PER_USER", 2)
    devices = [app.test_client() for _ in range(3)]
    for device in devices:
        sign_in(device, accounts.admin)
    answers = [d.get("/account/clinics/sample-skin").status_code for d in devices]
    assert answers == [302, 200, 200]  # the oldest was ended, the newest two remain
    with app.app_context():
        assert len(db.session.scalars(db.select(UserSession)).all()) == 2


def test_a_session_cookie_from_before_server_side_sessions_is_refused(app):
    """A cookie naming the user and generation only (the old form) signs nobody in."""
    accounts = populate(app)
    client = app.test_client()
    with app.app_context():
        user = svc.user_by_email(db.session, accounts.admin)
        old_id = f"{user.id}:{user.session_generation}"
    with client.session_transaction() as session:
        session["_user_id"] = old_id
        session["_fresh"] = True
    assert client.get("/account/clinics/sample-skin").status_code == 302


# --- 2. a bulk import leaves a claimed clinic's own record alone -----------------------------


def import_file(app, tmp_path, records) -> tuple[int, list[dict]]:
    path = tmp_path / "nightly.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(
        args=["directory", "import-listings", "--json", str(path)]
    )
    return result.exit_code, [json.loads(line) for line in result.output.splitlines()]


def test_an_import_never_overwrites_a_claimed_clinics_own_edits(any_app, tmp_path):
    app = any_app
    accounts = populate(app)
    admin = app.test_client()
    sign_in(admin, accounts.admin)
    form = profile_form(admin)
    form.update(phone="021 555 0199", name="Sample Skin & Laser")
    assert admin.post(PROFILE, data=form).status_code == 302
    assert clinic_row(app).version == 2

    # the operator's (older) file names both clinics; other-aesthetics has no admin any more
    site = app.test_client()
    token = sign_in(site, accounts.site_admin)
    other_admin = user_id(app, accounts.other_admin)
    site.post(
        f"/account/clinics/other-aesthetics/users/{other_admin}/remove", data={"csrf_token": token}
    )
    old = [
        {**CLINICS[0], "listings": [{"registration_number": "MP0000101", "services": ["prp"]}]},
        {**CLINICS[1], "clinic": {**CLINICS[1]["clinic"], "phone": "031 555 0123"}},
    ]
    status, lines = import_file(app, tmp_path, old)

    kept = clinic_row(app)
    assert (kept.name, kept.phone, kept.version) == ("Sample Skin & Laser", "+27215550199", 2)
    with app.app_context():
        listing = db.session.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
        assert [s.slug for s in listing.listings[0].services] == ["mesotherapy"]
    assert clinic_row(app, "other-aesthetics").phone == "+27315550123"  # unclaimed: updated
    skipped = [line for line in lines if line.get("clinic") == "sample-skin"]
    assert skipped and skipped[0]["severity"] == "warning"
    assert "sample-skin is claimed" in skipped[0]["reason"]
    summary = lines[-1]
    assert summary["clinics_skipped"] == 1 and summary["clinics_updated"] == 1
    assert status == 0  # skipping a claimed clinic is expected, not an error
    assert standing.is_claimed(kept)
    assert not standing.is_claimed(clinic_row(app, "other-aesthetics"))


def test_an_unclaimed_clinic_is_updated_by_the_import_again(any_app, tmp_path):
    """Claimed means 'has an admin': when the last one is removed, imports update it again."""
    app = any_app
    accounts = populate(app)
    with app.app_context():
        clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
        site = svc.Actor(user=svc.user_by_email(db.session, accounts.site_admin))
        svc.remove_user(db.session, site, clinic, svc.user_by_email(db.session, accounts.admin).id)
        db.session.commit()
    assert not standing.is_claimed(clinic_row(app))
    new = {**CLINICS[0], "clinic": {**CLINICS[0]["clinic"], "phone": "021 555 0144"}}
    import_file(app, tmp_path, [new])
    assert clinic_row(app).phone == "+27215550144"


# --- 5. a reset request does the same work with or without an account ---------------------


def test_a_reset_request_runs_the_same_steps_whether_or_not_the_address_has_an_account(
    app, accounts, monkeypatch
):
    steps: list[tuple] = []
    real_make, real_later = links.make, views._send_after_response
    monkeypatch.setattr(
        links,
        "make",
        lambda purpose, payload: steps.append(("make", purpose)) or real_make(purpose, payload),
    )

    def later(to, subject, body):
        steps.append(("later", subject, len(body.split("/account/reset/")[0])))
        real_later(to, subject, body)

    monkeypatch.setattr(views, "_send_after_response", later)
    monkeypatch.setattr(views.mail, "send", lambda *args: steps.append(("sent during the answer",)))
    runs = {}
    for email in (accounts.staff, "nobody@nowhere.example"):
        client = app.test_client()
        token = csrf_of(client.get("/account/reset").get_data(as_text=True))
        steps.clear()
        # not buffered: the answer is not closed, so nothing may be sent yet
        answer = client.post("/account/reset", data={"csrf_token": token, "email": email})
        assert answer.status_code == 200
        runs[email] = list(steps)
    assert runs[accounts.staff] == runs["nobody@nowhere.example"]
    assert [step[0] for step in runs[accounts.staff]] == ["make", "later"]


def test_the_reset_email_goes_after_the_answer_and_only_to_an_account(app, accounts):
    client = app.test_client()
    token = csrf_of(client.get("/account/reset").get_data(as_text=True))
    answer = client.post("/account/reset", data={"csrf_token": token, "email": accounts.staff})
    assert mails(app) == []  # the answer is not finished yet
    answer.close()  # what the server does once it has sent the answer
    assert [m["To"] for m in mails(app)] == [accounts.staff]
    token = csrf_of(client.get("/account/reset").get_data(as_text=True))
    client.post(
        "/account/reset", data={"csrf_token": token, "email": "no@x.example"}, buffered=True
    )
    assert len(mails(app)) == 1


# --- 6. a removed admin's API tokens are revoked ----------------------------------------------


def test_removing_an_admin_revokes_the_tokens_they_created(any_app):
    app = any_app
    accounts = populate(app)
    leaving = "leaving.admin@sample-skin.example"
    with app.app_context():
        clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
        svc.create_user(db.session, leaving, PASSWORD, "clinic_admin", clinic)
        db.session.commit()
    client = app.test_client()
    token = sign_in(client, leaving)
    page = client.post(
        "/account/clinics/sample-skin/tokens", data={"csrf_token": token, "name": "Their script"}
    ).get_data(as_text=True)
    theirs = re.search(r'<code id="new-token">([^<]+)</code>', page).group(1)
    ours = new_token(app.test_client(), accounts, name="Front desk")
    page = app.test_client()
    sign_in(page, accounts.admin)
    listed = page.get("/account/clinics/sample-skin/tokens").get_data(as_text=True)
    assert leaving in listed  # who created each token is shown

    token = csrf_of(listed)
    removed = page.post(
        f"/account/clinics/sample-skin/users/{user_id(app, leaving)}/remove",
        data={"csrf_token": token},
    )
    assert removed.status_code == 302
    api = app.test_client()
    assert (
        api.get("/api/v1/clinics/sample-skin/listings", headers=bearer(theirs)).status_code == 401
    )
    assert api.get("/api/v1/clinics/sample-skin/listings", headers=bearer(ours)).status_code == 200
    with app.app_context():
        revoked = db.session.scalar(db.select(ApiToken).where(ApiToken.name == "Their script"))
        assert revoked.revoked_at is not None
        entry = db.session.scalar(
            db.select(AuditEntry).where(
                AuditEntry.action == "token.revoke", AuditEntry.target == "Their script"
            )
        )
        assert entry.actor == accounts.admin and leaving in entry.after["reason"]


# --- 7. 422 for invalid fields of a JSON object, 400 for a body that is not one ---------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "", {"version": "x"}),
        ("patch", "", {"version": 1, "name": 5}),
        ("patch", "", {"version": 1, "latitude": "north"}),
        ("patch", "", {"name": "No version"}),
        ("post", "/listings", {"registration_number": 5, "name": "A B", "services": ["prp"]}),
        (
            "post",
            "/listings",
            {"registration_number": "MP0000105", "name": "A B", "services": "prp"},
        ),
        ("patch", "/listings/MP0000101", {"version": 1, "services": [1]}),
    ],
)
def test_invalid_fields_of_a_json_object_are_422(app, accounts, method, path, body):
    plain = new_token(app.test_client(), accounts)
    answer = getattr(app.test_client(), method)(
        "/api/v1/clinics/sample-skin" + path, json=body, headers=bearer(plain)
    )
    assert answer.status_code == 422, answer.get_json()
    problem = answer.get_json()
    assert problem["code"] == "invalid_fields" and problem["errors"]
    assert all(e["location"] == "json" for e in problem["errors"])
    assert clinic_row(app).version == 1


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"version": 1, "name": ', "application/json"),
        ("[1, 2]", "application/json"),
        ('"a string"', "application/json"),
        ("version=1&name=X", "application/x-www-form-urlencoded"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(app, accounts, body, content_type):
    plain = new_token(app.test_client(), accounts)
    answer = app.test_client().patch(
        "/api/v1/clinics/sample-skin",
        data=body,
        headers={**bearer(plain), "Content-Type": content_type},
    )
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["code"] == "malformed_body"


def test_a_bad_query_parameter_stays_400_and_the_document_says_so(app, accounts):
    plain = new_token(app.test_client(), accounts)
    client = app.test_client()
    answer = client.delete(
        "/api/v1/clinics/sample-skin/listings/MP0000101?version=abc", headers=bearer(plain)
    )
    assert answer.status_code == 400 and answer.get_json()["code"] == "invalid_parameters"
    document = client.get("/api/v1/openapi.json").get_json()
    patch = document["paths"]["/api/v1/clinics/{slug}"]["patch"]["responses"]
    assert {"400", "422"} <= set(patch)
    assert "invalid_fields" in patch["422"]["description"]
    assert "malformed_body" in patch["400"]["description"]
    create = document["paths"]["/api/v1/clinics/{slug}/listings"]["post"]
    assert "429 `too_many_lookups`" in create["description"]


# --- 8. listings does not import accounts; the suspension is the clinic's ---------------------


def test_the_listings_domain_never_imports_accounts():
    for path in (ROOT / "directory" / "listings").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("directory.accounts") for n in names), path


def test_a_suspension_is_set_on_the_clinic_and_keeps_it_out_at_once(any_app):
    app = any_app
    accounts = populate(app)
    with app.app_context():
        clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
        site = svc.Actor(user=svc.user_by_email(db.session, accounts.site_admin))
        svc.suspend_clinic(db.session, site, clinic, "checking")
        db.session.commit()
        assert standing.suspended_clinic_ids(db.session) == {clinic.id}
        assert clinic.version == 1  # a standing is not a profile edit
    assert app.test_client().get("/clinics/sample-skin").status_code == 404
    with app.app_context():  # an import is refused for it, from the clinic row alone
        report = import_listing_records(db.session, [CLINICS[0]])
        assert report.lines_rejected == 1 and "is suspended" in report.errors[0].reason
        db.session.rollback()
        clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
        site = svc.Actor(user=svc.user_by_email(db.session, accounts.site_admin))
        svc.restore_clinic(db.session, site, clinic)
        db.session.commit()
        assert clinic.suspended_at is None and standing.suspended_clinic_ids(db.session) == set()
    assert app.test_client().get("/clinics/sample-skin").status_code == 200
