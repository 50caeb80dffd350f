"""A patient's actions in a real browser at phone size (390x844): Debian's Chromium driven by
Playwright, against the app on a loopback port, with the fake iRegister (a real HTTP server on
loopback) as the register. Nothing is downloaded and nothing leaves the loopback interface.

Screenshots go to /tmp (``web-report-phone.png``, ``web-live-check-phone.png``,
``web-contact-phone.png``) for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from directory import create_app
from directory.extensions import db
from directory.listings.models import Clinic
from directory.registry.policy import RegistryPolicy
from tests import web_fixtures as wf
from tests.browser_support import served, site_config
from tests.fake_iregister import FakeIRegister, FakeRegister
from tests.test_browser import (  # noqa: F401  (browser: the fixture, shared)
    PHONE,
    SCREENSHOTS,
    browser,
    no_sideways_scrolling,
    pytestmark,
)

HARBOUR = "fictional-harbour-skin-clinic"


@pytest.fixture(scope="module")
def register() -> Iterator[FakeIRegister]:
    fake = FakeRegister()
    fake.load_fixture()
    with FakeIRegister(fake) as server:
        yield server


@pytest.fixture(scope="module")
def site(tmp_path_factory, register, module_database_url) -> Iterator[str]:
    """The site served on loopback, on SQLite, then on PostgreSQL."""
    root = tmp_path_factory.mktemp("browser-actions")
    app = create_app(
        site_config(
            root,
            HPCSA_URL=register.url,
            HPCSA_TIMEOUT=2.0,
            HPCSA_MAX_RATE=1000.0,
            SQLALCHEMY_DATABASE_URI=module_database_url,
        )
    )
    with app.app_context():
        db.create_all()
        wf.build_directory(db.session, RegistryPolicy.from_config(app.config))
        db.session.execute(
            update(Clinic)
            .where(Clinic.slug == HARBOUR)
            .values(latitude=-33.90421, longitude=18.41939, phone="+27975550101")
        )
        db.session.commit()
    with served(app) as url:
        yield url


@pytest.fixture(params=[True, False], ids=["with-js", "without-js"])
def phone(request, browser, site):  # noqa: F811  (the fixture imported above)
    context = browser.new_context(base_url=site, java_script_enabled=request.param, **PHONE)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page, request.param
    context.close()


def test_a_patient_reports_a_concern_from_a_practitioners_page(phone):
    from playwright.sync_api import expect

    page, _ = phone
    page.goto("/practitioners/MP0900004")
    expect(page.get_by_role("heading", name="Clinics that still list them")).to_be_visible()
    page.get_by_role("link", name=re.compile("^Report a concern about")).click()
    expect(page).to_have_url(re.compile(r"/practitioners/MP0900004/report$"))
    assert no_sideways_scrolling(page)
    page.get_by_label("I was told they are suspended").check()
    page.get_by_label("Anything else we should know? (optional)").fill(
        "The clinic told me they are back at work."
    )
    page.screenshot(path=str(SCREENSHOTS / "web-report-phone.png"), full_page=True)
    page.get_by_role("button", name="Send the report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your report is received")
    expect(page.get_by_role("status")).to_contain_text("What happens next")
    page.get_by_role("link", name="Back to the page you came from").click()
    expect(page).to_have_url(re.compile(r"/practitioners/MP0900004$"))


def test_a_patient_checks_an_unknown_number_live(phone, register):
    from playwright.sync_api import expect

    page, with_js = phone
    number = "MP0000101" if with_js else "DP0000201"  # one never-checked number per run
    # The register is the module's: the same number was asked once already on the other
    # database's site.
    asked_before = len(register.register.requests_for(number))
    page.goto("/check")
    page.get_by_label("Registration number", exact=True).fill(number.lower())
    page.get_by_role("button", name="Check", exact=True).click()
    button = page.get_by_role("button", name=f"Check {number} at the register now")
    expect(button).to_be_visible()
    assert no_sideways_scrolling(page)
    page.screenshot(path=str(SCREENSHOTS / "web-live-check-phone.png"), full_page=True)
    button.click()
    expect(page).to_have_url(re.compile(rf"/practitioners/{number}$"))
    expect(page.locator(".verdict .badge")).to_have_text(
        re.compile(r"^Registered with the HPCSA: active, last confirmed today")
    )
    assert len(register.register.requests_for(number)) == asked_before + 1


def test_a_number_the_register_does_not_know_is_said_plainly(phone):
    from playwright.sync_api import expect

    page, _ = phone
    page.goto("/check?number=MP0000998")
    page.get_by_role("button", name="Check MP0000998 at the register now").click()
    expect(
        page.get_by_role("heading", name="The HPCSA register does not list MP0000998")
    ).to_be_visible()


def test_call_and_directions_links_on_a_profile(phone):
    from playwright.sync_api import expect

    page, _ = phone
    page.goto("/practitioners/MP0900001")
    contact = page.get_by_role("list", name="Contact Fictional Harbour Skin Clinic")
    call = contact.get_by_role("link", name=re.compile(r"^Call 097 555 0101"))
    expect(call).to_have_attribute("href", "tel:+27975550101")
    directions = contact.get_by_role("link", name=re.compile(r"^Directions"))
    expect(directions).to_have_attribute(
        "href", re.compile(r"^https://www\.openstreetmap\.org/\?mlat=-33\.90421&mlon=18\.41939")
    )
    expect(contact.get_by_role("link", name=re.compile(r"^WhatsApp"))).to_have_attribute(
        "href", "https://wa.me/27975550101"
    )
    box = call.bounding_box()
    assert box and box["height"] >= 44  # big enough to tap
    assert no_sideways_scrolling(page)
    page.screenshot(path=str(SCREENSHOTS / "web-contact-phone.png"), full_page=True)
