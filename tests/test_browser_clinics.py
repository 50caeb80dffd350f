"""A clinic in a real browser (Debian's Chromium through Playwright), against the app served
on 127.0.0.1 with the fake iRegister (a real HTTP server) as the register:

- it claims its listing through the link emailed to its address on record (read from the
  file mail transport), signs in, adds a practitioner by number, edits the treatments, and
  the listing appears in public search within seconds;
- a name that does not match the register's goes to the moderation queue and appears only
  after a site admin approves it.
"""

from __future__ import annotations

import email
import re
import threading
import time
from collections.abc import Iterator
from email.policy import default as default_policy
from pathlib import Path

import pytest

from directory import create_app
from directory.accounts import services as svc
from directory.extensions import db
from directory.listings.models import Clinic
from tests.accounts_support import PASSWORD, populate
from tests.browser_support import site_config
from tests.fake_iregister import FakeIRegister, FakeRegister
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

NEW_PASSWORD = "our clinic's own password"
CLAIM_LINK = re.compile(r"http://127\.0\.0\.1:\d+/account/claim/\S+")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests skipped: Debian's Chromium is not at /usr/bin/chromium",
    ),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory, module_database_url) -> Iterator[tuple[str, Path]]:
    """The clinics' pages served on loopback, on SQLite, then on PostgreSQL."""
    from werkzeug.serving import make_server

    root = tmp_path_factory.mktemp("clinic-site")
    register = FakeRegister()
    register.load_fixture()
    with FakeIRegister(register) as fake:
        app = create_app(
            site_config(
                root,
                HPCSA_URL=fake.url,
                HPCSA_TIMEOUT=2.0,
                SQLALCHEMY_DATABASE_URI=module_database_url,
            )
        )
        with app.app_context():
            db.create_all()
        populate(app, users=False)
        with app.app_context():
            other = db.session.scalar(db.select(Clinic).where(Clinic.slug == "other-aesthetics"))
            svc.create_user(db.session, "admin@other.example", PASSWORD, "clinic_admin", other)
            svc.create_user(db.session, "ops@directory.example", PASSWORD, "site_admin")
            db.session.commit()
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", root / "mail"
        finally:
            server.shutdown()
            thread.join(timeout=10)
            with app.app_context():
                db.engine.dispose()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser, site):
    contexts = []

    def make():
        context = browser.new_context(base_url=site[0])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield make
    for context in contexts:
        context.close()


def sign_in(page, email: str, password: str) -> None:
    page.goto("/account/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def wait_for_card(page, path: str, name: str, present: bool = True, seconds: float = 10) -> None:
    """Public search shows (or does not show) the card within a few seconds."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(path)
        found = page.locator("ol.results article.card", has_text=name).count() > 0
        if found == present or time.monotonic() > deadline:
            assert found == present, f"{name!r} {'not ' if present else ''}in {path}"
            return
        time.sleep(0.5)


def test_a_clinic_claims_signs_in_adds_and_edits_and_patients_find_it(new_page, site):
    from playwright.sync_api import expect

    _, mail_dir = site
    page = new_page()
    page.goto("/clinics/sample-skin")
    page.get_by_role("link", name=re.compile("Is this your clinic?")).click()
    page.get_by_role("button", name="Send the link to the clinic's address").click()
    expect(page.get_by_role("heading", name="Check the clinic's email")).to_be_visible()

    messages = [
        email.message_from_bytes(p.read_bytes(), policy=default_policy)
        for p in mail_dir.glob("account-*.eml")
    ]
    assert [m["To"] for m in messages] == ["front-desk@sample-skin.example"]
    link = CLAIM_LINK.search(messages[0].get_content()).group(0)

    page.goto(link)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_label("The same password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save the password").click()
    expect(page).to_have_url(re.compile(r"/account/clinics/sample-skin$"))
    page.get_by_role("button", name="Sign out", exact=True).click()

    sign_in(page, "front-desk@sample-skin.example", NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Sample Skin Clinic")).to_be_visible()
    page.get_by_label("HPCSA registration number").fill("PRC 401")
    page.get_by_label("Name, as the register spells it").fill("Carl Fictional-Petersen")
    page.get_by_label("Treatments (separated by commas)").fill("Mesotherapy")
    page.get_by_role("button", name="Add the practitioner").click()
    expect(page.locator(".notice").first).to_contain_text("is listed")
    # A registered counsellor listed for mesotherapy: accepted, and the clinic is told.
    expect(page.locator(".notice").nth(1)).to_contain_text(
        "Mesotherapy is not within what a registered counsellor may do."
    )

    page.get_by_role("link", name="Edit PRC0000401").click()
    page.get_by_label("Treatments (separated by commas)").fill("Mesotherapy, PRP")
    page.get_by_role("button", name="Save the listing").click()
    expect(page.locator(".notice").first).to_contain_text("The listing is saved")

    # Patients see the listing when they show everyone: registered (the badge), and PRP is
    # outside what a registered counsellor may do (the scope line). Not in the default list.
    patient = new_page()
    everyone = "/search?service=prp&clinic=sample-skin&all=1"
    wait_for_card(patient, everyone, "Fictional-Petersen")
    card = patient.locator("ol.results article.card", has_text="Fictional-Petersen")
    expect(card.locator(".badge")).to_contain_text("Registered with the HPCSA: active")
    expect(card.locator('[data-scope="outside"]')).to_contain_text(
        "This treatment is not within what a registered counsellor may do"
    )
    wait_for_card(patient, "/search?service=prp&clinic=sample-skin", "Fictional-Petersen", False)


def test_a_mismatched_name_waits_for_a_site_admin_before_it_is_public(new_page, site):
    from playwright.sync_api import expect

    clinic = new_page()
    sign_in(clinic, "admin@other.example", PASSWORD)
    clinic.get_by_label("HPCSA registration number").fill("DP0000201")
    clinic.get_by_label("Name, as the register spells it").fill("Jane Someone-Else")
    clinic.get_by_label("Treatments (separated by commas)").fill("Dermal fillers")
    clinic.get_by_role("button", name="Add the practitioner").click()
    expect(clinic.locator(".notice")).to_contain_text("waits for a site admin")

    patient = new_page()
    # Dermal fillers by a dentist: of unknown scope, so only "show everyone" lists it.
    search = "/search?service=dermal-fillers&clinic=other-aesthetics&all=1"
    wait_for_card(patient, search, "Fictional-Botha", present=False, seconds=2)

    admin = new_page()
    sign_in(admin, "ops@directory.example", PASSWORD)
    admin.get_by_role("link", name="Moderation queue").first.click()
    item = admin.locator("article.held", has_text="DP0000201")
    expect(item).to_contain_text("Jane Someone-Else")
    expect(item).to_contain_text("JOHAN MOCK FICTIONAL-BOTHA")
    item.get_by_role("button", name="Approve DP0000201").click()
    expect(admin.locator(".notice")).to_contain_text("approved")
    wait_for_card(patient, search, "Fictional-Botha")


def test_the_strict_csp_breaks_neither_the_pages_nor_the_api_docs(new_page):
    """No Content-Security-Policy violation on the pages a clinic uses, or on Swagger UI."""
    from playwright.sync_api import expect

    page = new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    for path in ("/", "/search?q=mesotherapy", "/clinics/sample-skin", "/account/login"):
        page.goto(path)
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("HPCSA practitioner directory")
    assert violations == []
