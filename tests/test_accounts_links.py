"""Claiming a listed clinic, password resets and staff invitations (signed, single-use,
time-limited links through the mail transport), moderation, suspension, status emails."""

from __future__ import annotations

import email
import json
import re
from email.policy import default as default_policy
from pathlib import Path

import pytest

from directory.accounts.models import AuditEntry, ClinicSuspension, HeldListing, User
from directory.extensions import db
from directory.listings.imports import ListingRules
from directory.listings.models import Clinic, Listing
from directory.notifications.models import NotificationOutbox
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import record_check
from directory.search import SearchQuery, get_search_backend
from importers.sources.hpcsa import HpcsaClient
from tests.accounts_support import CLINICS, PASSWORD, csrf_of, populate, sign_in
from tests.test_accounts_clinic_pages import add

NEW_PASSWORD = "a brand new password"


@pytest.fixture
def accounts(app):
    return populate(app)


@pytest.fixture
def unclaimed(app):
    return populate(app, users=False)


def mails(app) -> list[email.message.EmailMessage]:
    folder = Path(app.config["MAIL_FILE_DIR"])
    files = sorted(folder.glob("account-*.eml")) if folder.exists() else []
    return [email.message_from_bytes(f.read_bytes(), policy=default_policy) for f in files]


def link_in(message, path: str) -> str:
    body = message.get_content()
    found = re.search(r"http://localhost(" + re.escape(path) + r"[^\s]+)", body)
    assert found, body
    return found.group(1)


def choose_password(client, path: str, password: str = NEW_PASSWORD):
    token = csrf_of(client.get(path).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, "password": password, "confirm": password})


def test_a_claim_link_goes_only_to_the_clinics_address_on_record(app, client, unclaimed):
    page = client.get("/clinics/sample-skin").get_data(as_text=True)
    assert "Is this your clinic?" in page
    token = csrf_of(client.get("/clinics/sample-skin/claim").get_data(as_text=True))
    # a claimant who adds their own address changes nothing: there is no such field
    response = client.post(
        "/clinics/sample-skin/claim", data={"csrf_token": token, "email": "thief@evil.example"}
    )
    assert response.status_code == 200
    sent = mails(app)
    assert [m["To"] for m in sent] == ["front-desk@sample-skin.example"]
    link = link_in(sent[0], "/account/claim/")

    follow = app.test_client()
    assert choose_password(follow, link).status_code == 302
    assert follow.get("/account/clinics/sample-skin").status_code == 200
    with app.app_context():
        admin = db.session.scalar(db.select(User))
        assert (admin.email, admin.role) == ("front-desk@sample-skin.example", "clinic_admin")
        actions = db.session.scalars(db.select(AuditEntry.action)).all()
        assert "clinic.claim_requested" in actions and "clinic.claim" in actions
    # the link works once
    again = app.test_client().get(link)
    assert again.status_code == 400 and "already been used" in again.get_data(as_text=True)
    tampered = app.test_client().get(link[:-3] + "abc")
    assert tampered.status_code == 400


def test_a_clinic_without_an_address_is_claimed_through_a_site_admin(app, client, unclaimed):
    with app.app_context():
        from directory.listings.models import Clinic

        clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == "other-aesthetics"))
        clinic.email = None
        db.session.commit()
    page = client.get("/clinics/other-aesthetics/claim").get_data(as_text=True)
    assert "claimed through the site's admins" in " ".join(page.split())
    token = csrf_of(client.get("/account/login").get_data(as_text=True))
    client.post("/clinics/other-aesthetics/claim", data={"csrf_token": token})
    assert mails(app) == []


def test_password_reset_is_single_use_and_signs_out_other_sessions(app, accounts):
    other_device = app.test_client()
    sign_in(other_device, accounts.staff)
    client = app.test_client()
    token = csrf_of(client.get("/account/reset").get_data(as_text=True))
    known = client.post(
        "/account/reset", data={"csrf_token": token, "email": accounts.staff}, buffered=True
    )
    unknown = client.post(
        "/account/reset", data={"csrf_token": token, "email": "no@x.example"}, buffered=True
    )
    assert known.get_data(as_text=True) == unknown.get_data(as_text=True)
    sent = mails(app)
    assert [m["To"] for m in sent] == [accounts.staff]
    link = link_in(sent[0], "/account/reset/")
    assert choose_password(client, link).status_code == 302
    assert other_device.get("/account/clinics/sample-skin").status_code == 302
    assert app.test_client().get(link).status_code == 400  # used
    fresh = app.test_client()
    login = csrf_of(fresh.get("/account/login").get_data(as_text=True))
    old = fresh.post(
        "/account/login", data={"email": accounts.staff, "password": PASSWORD, "csrf_token": login}
    )
    assert old.status_code == 401
    sign_in(fresh, accounts.staff, NEW_PASSWORD)


def test_an_expired_reset_link_is_refused(app, client, accounts, monkeypatch):
    token = csrf_of(client.get("/account/reset").get_data(as_text=True))
    # buffered: the answer is read whole and closed, as a server does; the email goes then
    client.post(
        "/account/reset", data={"csrf_token": token, "email": accounts.staff}, buffered=True
    )
    link = link_in(mails(app)[0], "/account/reset/")
    import itsdangerous.timed

    real = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(
        itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: real(self) + 3601
    )
    response = app.test_client().get(link)
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)


def test_an_admin_invites_staff_once_and_staff_cannot_invite(app, accounts):
    admin = app.test_client()
    token = sign_in(admin, accounts.admin)
    response = admin.post(
        "/account/clinics/sample-skin/users",
        data={
            "csrf_token": token,
            "email": "New.Nurse@Sample-Skin.example",
            "role": "clinic_staff",
        },
    )
    assert response.status_code == 302
    link = link_in(mails(app)[0], "/account/invitation/")
    invited = app.test_client()
    assert choose_password(invited, link).status_code == 302
    with app.app_context():
        user = db.session.scalar(
            db.select(User).where(User.email == "new.nurse@sample-skin.example")
        )
        assert user.role == "clinic_staff" and user.clinic.slug == "sample-skin"
    assert app.test_client().get(link).status_code == 400

    staff = app.test_client()
    staff_token = sign_in(staff, accounts.staff)
    refused = staff.post(
        "/account/clinics/sample-skin/users",
        data={"csrf_token": staff_token, "email": "x@y.example", "role": "clinic_admin"},
    )
    assert refused.status_code == 403


def test_a_suspended_clinic_leaves_the_directory_at_once_and_comes_back(app, accounts):
    admin = app.test_client()
    token = sign_in(admin, accounts.site_admin)

    def in_search() -> set[str]:
        with app.app_context():
            hits = (
                get_search_backend()
                .search(SearchQuery(clinic="sample-skin", include_unverified=True))
                .hits
            )
            return {h.registration_number for h in hits}

    assert in_search() == {"MP0000101"}
    admin.post("/account/clinics/sample-skin/suspend", data={"csrf_token": token, "reason": "x"})
    assert in_search() == set()
    public = app.test_client()
    assert public.get("/clinics/sample-skin").status_code == 404
    assert public.get("/api/v1/clinics/sample-skin").status_code == 404
    clinic_user = app.test_client()
    user_token = sign_in(clinic_user, accounts.admin)
    edit = clinic_user.post(
        "/account/clinics/sample-skin/listings",
        data={
            "csrf_token": user_token,
            "registration_number": "MP0000105",
            "name": "Anna Smith",
            "services": "PRP",
        },
    )
    assert edit.status_code == 403
    admin.post("/account/clinics/sample-skin/restore", data={"csrf_token": token})
    assert in_search() == {"MP0000101"}
    assert public.get("/clinics/sample-skin").status_code == 200
    with app.app_context():
        actions = db.session.scalars(db.select(AuditEntry.action)).all()
        assert "clinic.suspend" in actions and "clinic.restore" in actions


def test_a_clinic_user_cannot_reach_moderation_or_suspension(app, accounts):
    client = app.test_client()
    token = sign_in(client, accounts.admin)
    assert client.get("/account/moderation").status_code == 403
    assert (
        client.post(
            "/account/clinics/other-aesthetics/suspend", data={"csrf_token": token}
        ).status_code
        == 403
    )
    assert app.test_client().get("/clinics/other-aesthetics").status_code == 200


def test_status_change_emails_go_to_the_clinics_admins(app, accounts, fake_iregister):
    """sample-skin has an admin: the admin is emailed, not the public address; nobody has
    claimed other-aesthetics (its admin is removed here): its address on record is."""
    with app.app_context():
        db.session.delete(
            db.session.scalar(db.select(User).where(User.email == accounts.other_admin))
        )
        db.session.commit()
    fake_iregister.register.set_status("MP0000101", "SUSPENDED")
    fake_iregister.register.set_status("MP0000102", "SUSPENDED")
    policy = RegistryPolicy.from_config(app.config)
    client = HpcsaClient.from_config(app.config)
    try:
        with app.app_context():
            for number in ("MP0000101", "MP0000102"):
                practitioner = db.session.scalar(
                    db.select(Practitioner).where(Practitioner.registration_number == number)
                )
                record_check(db.session, practitioner, client.lookup(number), policy)
            db.session.commit()
            rows = db.session.scalars(
                db.select(NotificationOutbox).where(NotificationOutbox.channel == "email")
            ).all()
            targets = {(row.payload["registration_number"], row.target) for row in rows}
    finally:
        client.close()
    assert targets == {
        ("MP0000101", accounts.admin),
        ("MP0000102", "hello@other.example"),
    }


def test_a_site_admin_rejects_a_held_listing_and_reads_any_clinics_audit_log(app, accounts):
    clinic_user = app.test_client()
    token = sign_in(clinic_user, accounts.other_admin)
    clinic_user.post(
        "/account/clinics/other-aesthetics/listings",
        data={
            "csrf_token": token,
            "registration_number": "PS0000301",
            "name": "Not Her",
            "services": "PRP",
            "description": "",
        },
    )
    admin = app.test_client()
    admin_token = sign_in(admin, accounts.site_admin)
    with app.app_context():
        held_id = db.session.scalar(db.select(HeldListing.id))
    admin.post(f"/account/moderation/{held_id}/reject", data={"csrf_token": admin_token})
    assert "Nothing is waiting" in admin.get("/account/moderation").get_data(as_text=True)
    assert "PS0000301" not in app.test_client().get("/clinics/other-aesthetics").get_data(
        as_text=True
    )
    log = " ".join(
        admin.get("/account/clinics/other-aesthetics/audit").get_data(as_text=True).split()
    )
    assert "listing.held PS0000301" in log and "listing.reject PS0000301" in log
    assert accounts.site_admin in log and accounts.other_admin in log
    # and a clinic user cannot read another clinic's log
    assert clinic_user.get("/account/clinics/sample-skin/audit").status_code == 404


# --- invitation and claim links are single-use and revocable (issued_links) ----------------


def invite(app, accounts, address: str) -> tuple[str, str]:
    """The clinic admin invites ``address``; returns (the emailed link, the admin's CSRF)."""
    admin = app.test_client()
    token = sign_in(admin, accounts.admin)
    response = admin.post(
        "/account/clinics/sample-skin/users",
        data={"csrf_token": token, "email": address, "role": "clinic_staff"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    sent = [m for m in mails(app) if m["To"] == address]
    return link_in(sent[-1], "/account/invitation/"), admin


def post_password(client, path: str):
    """Posts a password to a link page, with a valid CSRF token of this client's session."""
    token = csrf_of(client.get("/account/login").get_data(as_text=True))
    return client.post(
        path, data={"csrf_token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )


def user_id(app, address: str) -> int | None:
    with app.app_context():
        return db.session.scalar(db.select(User.id).where(User.email == address))


def test_an_invitation_works_once_and_not_again_after_the_account_is_removed(any_app):
    app = any_app
    accounts = populate(app)
    link, admin = invite(app, accounts, "temp.nurse@sample-skin.example")
    assert choose_password(app.test_client(), link).status_code == 302  # works once
    removed_id = user_id(app, "temp.nurse@sample-skin.example")
    token = csrf_of(admin.get("/account/clinics/sample-skin/users").get_data(as_text=True))
    removed = admin.post(
        f"/account/clinics/sample-skin/users/{removed_id}/remove", data={"csrf_token": token}
    )
    assert removed.status_code == 302
    assert user_id(app, "temp.nurse@sample-skin.example") is None

    # the removed person still has the email: the link must not let them back in
    again = app.test_client()
    page = again.get(link)
    assert page.status_code == 400 and "already been used" in page.get_data(as_text=True)
    assert post_password(again, link).status_code == 400
    assert user_id(app, "temp.nurse@sample-skin.example") is None


def test_removing_a_user_cancels_their_unused_invitation_and_an_admin_can_cancel_one(any_app):
    app = any_app
    accounts = populate(app)
    # two invitations to one locum (the first email looked lost); they join with the first
    first, _ = invite(app, accounts, "locum@sample-skin.example")
    second, admin = invite(app, accounts, "locum@sample-skin.example")
    assert first != second
    assert choose_password(app.test_client(), first).status_code == 302
    page = admin.get("/account/clinics/sample-skin/users").get_data(as_text=True)
    locum = user_id(app, "locum@sample-skin.example")
    assert (
        admin.post(
            f"/account/clinics/sample-skin/users/{locum}/remove", data={"csrf_token": csrf_of(page)}
        ).status_code
        == 302
    )
    # removing the locum cancels the second invitation too: it does not let them back in
    assert app.test_client().get(second).status_code == 400
    assert post_password(app.test_client(), second).status_code == 400
    assert user_id(app, "locum@sample-skin.example") is None
    # an invitation cancelled from the users page no longer works
    pending, admin = invite(app, accounts, "typo@sample-skin.exmaple")
    page = admin.get("/account/clinics/sample-skin/users").get_data(as_text=True)
    assert "Cancel the invitation to typo@sample-skin.exmaple" in page
    cancel = re.search(r'action="(/account/clinics/sample-skin/invitations/[^"]+/cancel)"', page)
    assert cancel, page
    assert admin.post(cancel.group(1), data={"csrf_token": csrf_of(page)}).status_code == 302
    refused = app.test_client().get(pending)
    assert refused.status_code == 400 and "cancelled" in refused.get_data(as_text=True)
    assert post_password(app.test_client(), pending).status_code == 400
    assert user_id(app, "typo@sample-skin.exmaple") is None
    with app.app_context():
        actions = db.session.scalars(db.select(AuditEntry.action)).all()
        assert "user.invite_cancel" in actions


def test_an_invitation_to_a_suspended_clinic_is_refused(any_app):
    app = any_app
    accounts = populate(app)
    link, _ = invite(app, accounts, "new.nurse@sample-skin.example")
    site = app.test_client()
    token = sign_in(site, accounts.site_admin)
    site.post("/account/clinics/sample-skin/suspend", data={"csrf_token": token, "reason": "x"})
    refused = app.test_client().get(link)
    assert refused.status_code == 400 and "suspended" in refused.get_data(as_text=True)
    assert user_id(app, "new.nurse@sample-skin.example") is None


def test_a_claim_link_works_once_and_not_again_after_the_admin_is_deleted(any_app):
    app = any_app
    populate(app, users=False)
    client = app.test_client()
    token = csrf_of(client.get("/clinics/sample-skin/claim").get_data(as_text=True))
    assert client.post("/clinics/sample-skin/claim", data={"csrf_token": token}).status_code == 200
    link = link_in(mails(app)[0], "/account/claim/")
    assert choose_password(app.test_client(), link).status_code == 302  # works once
    first_admin = "front-desk@sample-skin.example"
    assert user_id(app, first_admin) is not None

    # a site admin creates an account and removes the clinic's first admin
    with app.app_context():
        from directory.accounts import services as svc

        svc.create_user(db.session, "site@directory.example", PASSWORD, "site_admin")
        db.session.commit()
    site = app.test_client()
    token = sign_in(site, "site@directory.example")
    removed = site.post(
        f"/account/clinics/sample-skin/users/{user_id(app, first_admin)}/remove",
        data={"csrf_token": token},
    )
    assert removed.status_code == 302 and user_id(app, first_admin) is None

    # the old claim link must not make a new admin
    again = app.test_client()
    page = again.get(link)
    assert page.status_code == 400 and "already been used" in page.get_data(as_text=True)
    assert post_password(again, link).status_code == 400
    assert user_id(app, first_admin) is None


def test_a_bulk_import_leaves_a_suspended_clinics_listings_aside(app, accounts, tmp_path):
    admin = app.test_client()
    token = sign_in(admin, accounts.site_admin)
    admin.post("/account/clinics/sample-skin/suspend", data={"csrf_token": token, "reason": "x"})
    # the other clinic has no admin of its own (a claimed clinic's line is skipped)
    other_admin = user_id(app, accounts.other_admin)
    admin.post(
        f"/account/clinics/other-aesthetics/users/{other_admin}/remove", data={"csrf_token": token}
    )
    # the nightly file names the suspended clinic (with a new listing) and another clinic
    lines = [dict(record) for record in CLINICS]
    lines[0] = {
        **CLINICS[0],
        "listings": [
            *CLINICS[0]["listings"],
            {"registration_number": "MP0000102", "services": ["mesotherapy"]},
        ],
    }
    lines[1] = {
        **CLINICS[1],
        "listings": [{"registration_number": "MP0000102", "services": ["mesotherapy"]}],
    }
    path = tmp_path / "listings.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["directory", "import-listings", str(path)])
    assert "clinic sample-skin is suspended: its line is not imported" in result.output
    assert result.exit_code == 1  # the suspended clinic's line was not imported
    assert search_numbers(app, "sample-skin") == set()
    assert app.test_client().get("/clinics/sample-skin").status_code == 404
    with app.app_context():  # the other clinic's line was imported all the same
        other = db.session.scalar(
            db.select(Listing).join(Clinic).where(Clinic.slug == "other-aesthetics")
        )
        assert [s.slug for s in other.services] == ["mesotherapy"]
    restored = admin.post("/account/clinics/sample-skin/restore", data={"csrf_token": token})
    assert restored.status_code == 302
    assert search_numbers(app, "sample-skin") == {"MP0000101"}


def test_restoring_a_clinic_with_a_listing_already_back_updates_it(app, accounts):
    """A listing written while the clinic was suspended (by an import before the import
    knew of suspensions) does not make the restore fail: the set-aside listing updates it."""
    admin = app.test_client()
    token = sign_in(admin, accounts.site_admin)
    admin.post("/account/clinics/sample-skin/suspend", data={"csrf_token": token, "reason": "x"})
    with app.app_context():
        clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
        practitioner = db.session.scalar(
            db.select(Practitioner).where(Practitioner.registration_number == "MP0000101")
        )
        rules = ListingRules(db.session)
        item = rules.validate_listing(1, {"registration_number": "MP0000101", "services": ["prp"]})
        rules.write_listing(clinic, practitioner, item, None)
        db.session.commit()
    restored = admin.post("/account/clinics/sample-skin/restore", data={"csrf_token": token})
    assert restored.status_code == 302
    assert search_numbers(app, "sample-skin") == {"MP0000101"}
    with app.app_context():
        listings = db.session.scalars(
            db.select(Listing).join(Clinic).where(Clinic.slug == "sample-skin")
        ).all()
        assert [[s.slug for s in listing.services] for listing in listings] == [["mesotherapy"]]
        assert db.session.scalar(db.select(ClinicSuspension)) is None


def test_a_held_listing_of_a_suspended_clinic_cannot_be_approved_until_it_is_restored(
    app, accounts
):
    clinic_user, admin = app.test_client(), app.test_client()
    user_token = sign_in(clinic_user, accounts.admin)
    add(
        clinic_user,
        user_token,
        registration_number="DP0000201",
        name="Jane Someone-Else",
        services="Dermal fillers",
    )
    with app.app_context():
        held_id = db.session.scalar(db.select(HeldListing.id))
    token = sign_in(admin, accounts.site_admin)
    admin.post("/account/clinics/sample-skin/suspend", data={"csrf_token": token, "reason": "x"})
    refused = admin.post(
        f"/account/moderation/{held_id}/approve",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "this listing cannot be approved now" in refused.get_data(as_text=True)
    assert search_numbers(app, "sample-skin") == set()
    with app.app_context():
        assert db.session.get(HeldListing, held_id).state == "held"
        assert (
            db.session.scalar(
                db.select(db.func.count())
                .select_from(Listing)
                .join(Clinic)
                .where(Clinic.slug == "sample-skin")
            )
            == 0
        )
    admin.post("/account/clinics/sample-skin/restore", data={"csrf_token": token})
    admin.post(f"/account/moderation/{held_id}/approve", data={"csrf_token": token})
    assert search_numbers(app, "sample-skin") == {"MP0000101", "DP0000201"}


def search_numbers(app, clinic: str) -> set[str]:
    with app.app_context():
        query = SearchQuery(clinic=clinic, include_unverified=True)
        return {h.registration_number for h in get_search_backend().search(query).hits}
