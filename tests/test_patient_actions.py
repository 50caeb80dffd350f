"""What a patient can do besides reading: report a concern (stored for site admins, the
practitioner's next register check brought forward), check a never-checked number at the
register (against the fake iRegister: an answer, a not-found, a failure), contact links,
and the honest headings and next step on the page of someone the register does not vouch
for. On SQLite here; the database-touching parts again on PostgreSQL at the end."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from directory.extensions import db
from directory.listings.models import Clinic
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.reports.models import ConcernReport
from directory.util.clock import as_utc, utcnow
from tests import web_fixtures as wf
from tests.accounts_support import PASSWORD, csrf_of, sign_in

SUSPENDED = wf.BY_KEY["suspended"].number
ACTIVE = wf.BY_KEY["active"].number
FLAKY = wf.BY_KEY["active_then_error"].number
HARBOUR = "fictional-harbour-skin-clinic"


@pytest.fixture
def app_config(app_config):
    return {
        **app_config,
        "REPORT_LIMIT_PER_CLIENT": "3 per hour",
        "REPORT_LIMIT_SITE": "5 per hour",
        "LIVE_CHECK_LIMIT_PER_CLIENT": "3 per hour",
        "LIVE_CHECK_LIMIT_SITE": "5 per hour",
    }


@pytest.fixture
def site(app):
    """The fictional directory; every next check a week away; the harbour clinic on a map."""
    with app.app_context():
        wf.build_directory(db.session, RegistryPolicy.from_config(app.config))
        db.session.execute(update(Practitioner).values(next_check_at=utcnow() + timedelta(days=7)))
        db.session.execute(
            update(Clinic)
            .where(Clinic.slug == HARBOUR)
            .values(latitude=-33.90421, longitude=18.41939, phone="+27825550101")
        )
        db.session.commit()
    return app


def reports_in(app) -> list[ConcernReport]:
    with app.app_context():
        rows = db.session.scalars(select(ConcernReport).order_by(ConcernReport.id)).all()
        db.session.expunge_all()
        return list(rows)


def next_check(app, number: str):
    with app.app_context():
        return db.session.scalar(
            select(Practitioner.next_check_at).where(Practitioner.registration_number == number)
        )


def report(client, path: str, remote: str = "127.0.0.1", **fields):
    token = csrf_of(client.get(path, environ_base={"REMOTE_ADDR": remote}).get_data(as_text=True))
    return client.post(
        path, data={"csrf_token": token, **fields}, environ_base={"REMOTE_ADDR": remote}
    )


# --- reporting a concern -------------------------------------------------------------------


def test_every_practitioner_and_clinic_page_links_to_its_report_form(site, client):
    page = client.get(f"/practitioners/{ACTIVE}").get_data(as_text=True)
    assert f'href="/practitioners/{ACTIVE}/report"' in page
    page = client.get(f"/clinics/{HARBOUR}").get_data(as_text=True)
    assert f'href="/clinics/{HARBOUR}/report"' in page
    form = client.get(f"/practitioners/{ACTIVE}/report")
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    assert 'name="csrf_token"' in html and 'method="post"' in html
    for words in ("Listed for a treatment they don", "Not the person named", "suspended", "Other"):
        assert words in html


def test_a_report_is_stored_brings_the_next_check_forward_and_thanks_the_patient(site, client):
    before = utcnow()
    response = report(
        client,
        f"/practitioners/{ACTIVE}/report",
        reason="told_suspended",
        message="The receptionist said Dr Mokoena is suspended.",
    )
    assert response.status_code == 303
    thanks = client.get(response.headers["Location"])
    text = thanks.get_data(as_text=True)
    assert thanks.status_code == 200
    assert "What happens next" in text and "asks the HPCSA register" in text
    assert f'href="/practitioners/{ACTIVE}"' in text
    (stored,) = reports_in(site)
    assert stored.reason == "told_suspended" and stored.handled_at is None
    assert stored.message == "The receptionist said Dr Mokoena is suspended."
    due = as_utc(next_check(site, ACTIVE))
    assert before <= due <= utcnow()  # due now: the recheck takes it next
    # ...and nothing a patient says moves the status or the badge.
    page = client.get(f"/practitioners/{ACTIVE}").get_data(as_text=True)
    assert 'data-verified="true"' in page


def test_a_report_keeps_its_lines_and_drops_other_control_characters(site, client):
    typed = "Line one\r\nline two\tindented\x1b[31m red\x07\x85\x7f end"
    response = report(client, f"/practitioners/{ACTIVE}/report", reason="other", message=typed)
    assert response.status_code == 303
    (stored,) = reports_in(site)
    assert stored.message == "Line one\nline two\tindented[31m red end"


def test_a_report_never_cuts_short_the_back_off_of_a_register_that_is_failing(site, client):
    week_away = next_check(site, FLAKY)
    response = report(client, f"/practitioners/{FLAKY}/report", reason="other")
    assert response.status_code == 303
    assert len(reports_in(site)) == 1
    assert next_check(site, FLAKY) == week_away


def test_a_report_never_pushes_back_a_check_that_is_already_due(site, client):
    overdue = utcnow() - timedelta(hours=3)
    with site.app_context():
        db.session.execute(
            update(Practitioner)
            .where(Practitioner.registration_number == SUSPENDED)
            .values(next_check_at=overdue)
        )
        db.session.commit()
    assert report(client, f"/practitioners/{SUSPENDED}/report", reason="other").status_code == 303
    assert as_utc(next_check(site, SUSPENDED)) == overdue


def test_a_clinic_report_is_stored_without_moving_any_check(site, client):
    response = report(client, f"/clinics/{HARBOUR}/report", reason="wrong_details")
    assert response.status_code == 303
    (stored,) = reports_in(site)
    assert stored.clinic_id is not None and stored.practitioner_id is None
    assert next_check(site, ACTIVE) > utcnow() + timedelta(days=6)


@pytest.mark.parametrize(
    "fields, field, words",
    [
        ({}, "reason", "Choose what is wrong"),
        ({"reason": "made_up"}, "reason", "Choose what is wrong"),
        ({"reason": "wrong_details"}, "reason", "Choose what is wrong"),  # a clinic's reason
        ({"reason": "other", "message": "x" * 2001}, "message", "at most 2000"),
    ],
)
def test_a_bad_report_gets_a_clear_message_keeps_what_was_typed_and_stores_nothing(
    site, client, fields, field, words
):
    response = report(client, f"/practitioners/{ACTIVE}/report", **fields)
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert words in text and f'id="{field}-error"' in text
    if "message" in fields:
        assert fields["message"] in text
    assert reports_in(site) == []
    assert next_check(site, ACTIVE) > utcnow() + timedelta(days=6)


def test_a_report_without_its_csrf_token_is_refused_and_stores_nothing(site, client):
    response = client.post(f"/practitioners/{ACTIVE}/report", data={"reason": "other"})
    assert response.status_code == 400
    assert reports_in(site) == []


def test_reports_for_what_the_directory_does_not_hold_are_404s_not_500s(site, client):
    for path in (
        "/practitioners/MP0999999/report",
        "/practitioners/not-a-number/report",
        "/practitioners/" + "9" * 500 + "/report",
        "/clinics/no-such-clinic/report",
    ):
        assert client.get(path).status_code == 404, path


def test_a_suspended_clinic_has_no_report_form_while_it_is_hidden(site, client):
    from directory.accounts import services as svc

    with site.app_context():
        clinic = db.session.scalar(select(Clinic).where(Clinic.slug == HARBOUR))
        admin = svc.create_user(db.session, "ops@directory.example", PASSWORD, "site_admin")
        svc.suspend_clinic(db.session, svc.Actor(user=admin), clinic, "fictional reason")
        db.session.commit()
    assert client.get(f"/clinics/{HARBOUR}").status_code == 404
    assert client.get(f"/clinics/{HARBOUR}/report").status_code == 404


def test_reports_are_throttled_per_client(site, client):
    path = f"/practitioners/{ACTIVE}/report"
    for _ in range(3):
        assert report(client, path, reason="other").status_code == 303
    refused = report(client, path, reason="other", message="a fourth")
    assert refused.status_code == 429
    assert "wait an hour" in refused.get_data(as_text=True)
    assert "a fourth" in refused.get_data(as_text=True)  # what was typed is not lost
    assert len(reports_in(site)) == 3
    # another client is not held back by this one
    assert report(client, path, remote="10.0.0.9", reason="other").status_code == 303


def test_a_flood_of_reports_from_many_addresses_meets_a_site_wide_cap(site, client):
    """Each address within its own allowance, many addresses together: past the site's cap
    (5 an hour here) nothing more is stored and no more checks are pulled forward; the
    sender gets 429 with what they typed, and an address that sent nothing is held too."""
    path = f"/practitioners/{ACTIVE}/report"
    for n in range(5):
        assert report(client, path, remote=f"10.1.0.{n}", reason="other").status_code == 303
    refused = report(client, path, remote="10.1.0.99", reason="other", message="the sixth")
    text = refused.get_data(as_text=True)
    assert refused.status_code == 429
    assert "the sixth" in text and "try again" in text.lower()
    assert len(reports_in(site)) == 5


def test_the_thank_you_page_never_links_off_the_site(site, client):
    for back in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"):
        text = client.get("/report-received", query_string={"back": back}).get_data(as_text=True)
        assert "evil.example" not in text and "javascript:" not in text


# --- the moderation queue ----------------------------------------------------------------


def site_admin(app, client) -> str:
    from directory.accounts import services as svc

    with app.app_context():
        svc.create_user(db.session, "ops@directory.example", PASSWORD, "site_admin")
        db.session.commit()
    return sign_in(client, "ops@directory.example")


def test_site_admins_see_reports_escaped_and_mark_them_handled(site, client):
    payload = "<script>alert('x')</script>"
    report(client, f"/practitioners/{SUSPENDED}/report", reason="not_the_person", message=payload)
    token = site_admin(site, client)
    home = client.get("/account/").get_data(as_text=True)
    assert "1 patient report of concern open" in home
    queue = client.get("/account/moderation").get_data(as_text=True)
    assert "Not the person named" in queue and SUSPENDED in queue
    assert payload not in queue and "&lt;script&gt;alert(" in queue
    assert "HPCSA register: suspended" in queue  # the register's word beside the report
    (stored,) = reports_in(site)
    done = client.post(
        f"/account/moderation/reports/{stored.id}/handled", data={"csrf_token": token}
    )
    assert done.status_code == 302
    (handled,) = reports_in(site)
    assert handled.handled_at is not None and handled.handled_by == "ops@directory.example"
    queue = client.get("/account/moderation").get_data(as_text=True)
    assert "No open reports." in queue
    again = client.post(
        f"/account/moderation/reports/{stored.id}/handled",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "not open" in again.get_data(as_text=True)


def test_a_clinic_user_cannot_mark_a_report_handled(site, client):
    from directory.accounts import services as svc

    report(client, f"/clinics/{HARBOUR}/report", reason="wrong_details")
    (stored,) = reports_in(site)
    with site.app_context():
        clinic = db.session.scalar(select(Clinic).where(Clinic.slug == HARBOUR))
        svc.create_user(db.session, "admin@harbour.example", PASSWORD, "clinic_admin", clinic)
        db.session.commit()
    token = sign_in(client, "admin@harbour.example")
    assert client.get("/account/moderation").status_code == 403
    refused = client.post(
        f"/account/moderation/reports/{stored.id}/handled", data={"csrf_token": token}
    )
    assert refused.status_code == 403
    assert reports_in(site)[0].handled_at is None


def test_only_site_admins_reach_the_reports(site, client):
    report(client, f"/practitioners/{ACTIVE}/report", reason="other")
    (stored,) = reports_in(site)
    assert client.get("/account/moderation").status_code == 302  # to sign in
    token = csrf_of(client.get(f"/practitioners/{ACTIVE}/report").get_data(as_text=True))
    refused = client.post(
        f"/account/moderation/reports/{stored.id}/handled", data={"csrf_token": token}
    )
    assert refused.status_code == 302 and "/account/login" in refused.headers["Location"]
    assert reports_in(site)[0].handled_at is None


# --- checking a number live ----------------------------------------------------------------


def check_live(client, number: str, remote: str = "127.0.0.1"):
    page = client.get(
        "/check", query_string={"number": number}, environ_base={"REMOTE_ADDR": remote}
    )
    assert page.status_code == 404
    html = page.get_data(as_text=True)
    assert f"Check {number} at the register now" in html
    return client.post(
        "/check/live",
        data={"csrf_token": csrf_of(html), "number": number},
        environ_base={"REMOTE_ADDR": remote},
    )


def held(app, number: str) -> Practitioner | None:
    with app.app_context():
        found = db.session.scalar(
            select(Practitioner).where(Practitioner.registration_number == number)
        )
        if found is not None:
            db.session.expunge(found)
        return found


def test_a_never_checked_number_is_asked_recorded_and_the_patient_lands_on_it(
    app, client, fake_iregister
):
    response = check_live(client, "MP0000103")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/practitioners/MP0000103")
    assert len(fake_iregister.register.requests_for("MP0000103")) == 1
    recorded = held(app, "MP0000103")
    assert recorded is not None and recorded.status == "suspended"
    page = client.get("/practitioners/MP0000103").get_data(as_text=True)
    assert "HPCSA register: suspended" in page
    # asked again: the directory has it now, so the register is not asked twice
    token = csrf_of(client.get("/check", query_string={"number": "MP9"}).get_data(as_text=True))
    again = client.post("/check/live", data={"csrf_token": token, "number": "mp 0000103"})
    assert again.status_code == 303 and again.headers["Location"].endswith("/MP0000103")
    assert len(fake_iregister.register.requests_for("MP0000103")) == 1


def test_a_number_the_register_does_not_list_says_so_and_stores_nothing(
    app, client, fake_iregister
):
    response = check_live(client, "MP0000999")
    text = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "The HPCSA register does not list MP0000999" in text
    assert 'data-live="not-found"' in text
    assert len(fake_iregister.register.requests_for("MP0000999")) == 1
    assert held(app, "MP0000999") is None


@pytest.mark.parametrize("fault", ["500", "drop", "invalid_json"])
def test_a_failing_register_says_could_not_check_never_not_found(
    app, client, fake_iregister, fault
):
    fake_iregister.register.fail_next(fault, times=5, number="MP0000101")
    response = check_live(client, "MP0000101")
    text = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Could not check MP0000101 now" in text and 'data-live="unavailable"' in text
    assert "does not list" not in text and 'data-live="not-found"' not in text
    assert "not found" not in text.lower() and "no record" not in text
    assert held(app, "MP0000101") is None  # nothing recorded, nothing moved


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_live_check_never_outwaits_the_web_worker_when_the_register_says_wait(
    request, fake_iregister, database
):
    """A 429 with a long Retry-After pauses every look-up (the shared budget). A patient's
    live check must not sleep through that pause: gunicorn kills a worker after 30 s and the
    patient would get no page at all. It answers "could not check now" at once instead,
    without asking the register, and nothing is recorded as not found."""
    import time

    app = request.getfixturevalue("app" if database == "sqlite" else "pg_app")
    client = app.test_client()
    fake_iregister.register.retry_after = "120"
    fake_iregister.register.fail_next("429", times=1, number="MP0000101")
    first = check_live(client, "MP0000101")
    assert first.status_code == 503
    started = time.monotonic()
    second = check_live(client, "MP0000102")
    took = time.monotonic() - started
    text = second.get_data(as_text=True)
    assert took < 5, f"the live check waited {took:.0f} s"
    assert second.status_code == 503 and 'data-live="unavailable"' in text
    assert "not found" not in text.lower()
    assert fake_iregister.register.requests_for("MP0000102") == []
    assert held(app, "MP0000102") is None


def test_the_profile_address_of_a_never_checked_number_offers_the_live_check(app, client):
    page = client.get("/practitioners/MP0000101")
    assert page.status_code == 404
    html = page.get_data(as_text=True)
    assert 'action="/check/live"' in html and 'value="MP0000101"' in html
    assert "Check MP0000101 at the register now" in html


def test_a_live_check_without_its_csrf_token_asks_nobody(app, client, fake_iregister):
    response = client.post("/check/live", data={"number": "MP0000101"})
    assert response.status_code == 400
    assert fake_iregister.register.requests_for("MP0000101") == []


@pytest.mark.parametrize("typed", ["", "hello", "MP" + "1" * 200])
def test_a_live_check_of_an_unreadable_number_goes_back_to_the_check_page(
    app, client, fake_iregister, typed
):
    token = csrf_of(client.get("/check", query_string={"number": "MP9"}).get_data(as_text=True))
    response = client.post("/check/live", data={"csrf_token": token, "number": typed})
    assert response.status_code == 303 and "/check" in response.headers["Location"]
    assert client.get(response.headers["Location"]).status_code in (200, 400)
    assert fake_iregister.register.requests == []


def test_live_checks_are_throttled_per_client_and_for_the_whole_site(app, client, fake_iregister):
    numbers = ["MP0000101", "MP0000102", "MP0000104", "MP0000105", "MP0000106", "MP0000107"]
    for number in numbers[:3]:
        assert check_live(client, number).status_code == 303
    refused = check_live(client, numbers[3])
    assert refused.status_code == 429
    assert "Too many numbers" in refused.get_data(as_text=True)
    assert fake_iregister.register.requests_for(numbers[3]) == []
    # a second client has its own allowance, within the site's (5 an hour here)...
    assert check_live(client, numbers[3], remote="10.0.0.2").status_code == 303
    assert check_live(client, numbers[4], remote="10.0.0.2").status_code == 303
    # ...and the site's is used up for everyone
    assert check_live(client, numbers[5], remote="10.0.0.3").status_code == 429
    assert fake_iregister.register.requests_for(numbers[5]) == []


# --- contact links ----------------------------------------------------------------------


def test_a_clinic_page_offers_call_whatsapp_email_and_directions(site, client):
    html = client.get(f"/clinics/{HARBOUR}").get_data(as_text=True)
    assert 'href="tel:+27825550101"' in html and "082 555 0101" in html
    assert 'href="https://wa.me/27825550101"' in html  # a mobile number
    assert 'href="mailto:hello@harbour.example"' in html
    assert (
        'href="https://www.openstreetmap.org/?mlat=-33.90421&amp;mlon=18.41939'
        '#map=17/-33.90421/18.41939"' in html
    )


def test_a_landline_gets_no_whatsapp_and_a_clinic_without_coordinates_no_directions(site, client):
    with site.app_context():
        db.session.execute(
            update(Clinic).where(Clinic.slug == HARBOUR).values(phone="+27215550101")
        )
        db.session.commit()
    html = client.get(f"/clinics/{HARBOUR}").get_data(as_text=True)
    # No WhatsApp link to the clinic ("Share on WhatsApp" shares the page, and is not one).
    assert 'href="tel:+27215550101"' in html and 'data-contact="whatsapp"' not in html
    html = client.get("/clinics/fictional-rosebank-aesthetics").get_data(as_text=True)
    assert 'data-contact="directions"' not in html and 'data-contact="call"' not in html


def test_a_phone_number_that_cannot_be_read_is_shown_as_text_never_as_a_link(site, client):
    with site.app_context():
        db.session.execute(update(Clinic).where(Clinic.slug == HARBOUR).values(phone="ask us"))
        db.session.commit()
    html = client.get(f"/clinics/{HARBOUR}").get_data(as_text=True)
    assert "ask us" in html and "tel:" not in html and 'data-contact="whatsapp"' not in html


def test_a_profile_and_a_result_card_carry_the_clinics_contact_links(site, client):
    html = client.get(f"/practitioners/{ACTIVE}").get_data(as_text=True)
    assert 'href="tel:+27825550101"' in html and "openstreetmap.org/?mlat=-33.90421" in html
    results = client.get("/search", query_string={"service": "botulinum-toxin"})
    cards = results.get_data(as_text=True)
    assert 'data-contact="call"' in cards and 'href="tel:+27825550101"' in cards
    assert 'Call<span class="visually-hidden"> Fictional Harbour Skin Clinic on</span>' in cards


# --- the page of someone the register does not vouch for ---------------------------------


@pytest.mark.parametrize("key", ["suspended", "erased", "stale", "pending"])
def test_a_practitioner_not_verified_has_clinics_that_still_list_them_and_a_next_step(
    site, client, key
):
    person = wf.BY_KEY[key]
    html = client.get(f"/practitioners/{person.number}").get_data(as_text=True)
    assert "Clinics that still list them" in html and "Where they practise" not in html
    clinic = wf.CLINICS[[c["slug"] for c in wf.CLINICS].index(person.listings[0][0])]
    service = next(s for s in wf.SERVICES if s["slug"] == person.listings[0][1][0])
    label = f"Verified practitioners for {service['name']} near {clinic['city']}"
    match = re.search(r'<a href="([^"]+)">' + re.escape(label) + "</a>", html)
    assert match, label
    found = client.get(match.group(1).replace("&amp;", "&"))
    assert found.status_code == 200
    numbers = set(re.findall(r"/practitioners/(MP\d+)\"", found.get_data(as_text=True)))
    assert numbers and person.number not in numbers
    for number in numbers:  # the default search: only verified practitioners
        assert 'data-verified="true"' in client.get(f"/practitioners/{number}").get_data(
            as_text=True
        )


def test_a_verified_practitioner_keeps_where_they_practise_and_no_next_step(site, client):
    html = client.get(f"/practitioners/{ACTIVE}").get_data(as_text=True)
    assert "Where they practise" in html and "Clinics that still list them" not in html
    assert "Verified practitioners for" not in html


# --- PostgreSQL ------------------------------------------------------------------------------


def test_reports_and_live_checks_on_postgresql(pg_app, fake_iregister):
    client = pg_app.test_client()
    with pg_app.app_context():
        wf.build_directory(db.session, RegistryPolicy.from_config(pg_app.config))
        db.session.execute(update(Practitioner).values(next_check_at=utcnow() + timedelta(days=7)))
        db.session.commit()
    before = utcnow()
    response = report(client, f"/practitioners/{ACTIVE}/report", reason="other", message="é ✓")
    assert response.status_code == 303
    (stored,) = reports_in(pg_app)
    assert stored.message == "é ✓"
    assert before <= as_utc(next_check(pg_app, ACTIVE)) <= utcnow()
    assert next_check(pg_app, FLAKY) > utcnow() + timedelta(days=6)
    assert check_live(client, "MP0000101").status_code == 303
    assert held(pg_app, "MP0000101").status == "active"
    assert check_live(client, "MP0000999").status_code == 404
    fake_iregister.register.fail_next("500", times=5, number="MP0000102")
    assert check_live(client, "MP0000102").status_code == 503
    with pg_app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Practitioner))
    assert count == len(wf.PEOPLE) + 1


# --- the throttle's storage -------------------------------------------------------------------


def test_the_report_limit_is_shared_by_every_app_using_the_same_redis(app_config):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=2).ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis is not reachable at 127.0.0.1:6379: {exc}")
    from directory import create_app

    config = {
        **app_config,
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
        "REPORT_LIMIT_PER_CLIENT": "2 per minute",  # keys expire within a minute
        # this run's own keys: the site-wide count is shared by every run on this Redis
        "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
    first, second = create_app(config), create_app(config)
    with first.app_context():
        db.create_all()
        wf.build_directory(db.session, RegistryPolicy.from_config(first.config))
    client_address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"  # this test's own
    path = f"/practitioners/{ACTIVE}/report"
    answers = [
        report(app.test_client(), path, remote=client_address, reason="other").status_code
        for app in (first, second, second, first)
    ]
    assert answers == [303, 303, 429, 429]
    assert len(reports_in(first)) == 2


def test_a_report_is_accepted_when_the_throttles_storage_is_down(app_config, caplog):
    from directory import create_app

    app = create_app({**app_config, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0"})
    with app.app_context():
        db.create_all()
        wf.build_directory(db.session, RegistryPolicy.from_config(app.config))
    response = report(app.test_client(), f"/practitioners/{ACTIVE}/report", reason="other")
    assert response.status_code == 303
    assert len(reports_in(app)) == 1
    # counted in this process's memory meanwhile (directory/ratelimits.py), never a 500
    assert "rate-limit storage did not answer" in caplog.text
