"""A patient's journey in a real browser: Debian's Chromium driven by Playwright, against the
app served by a real HTTP server on 127.0.0.1, over the fictional directory in
``web_fixtures``. Nothing is downloaded and nothing leaves the loopback interface.

Screenshots of the home, results and profile pages at phone size are written to /tmp
(``web-home-phone.png``, ``web-results-phone.png``, ``web-profile-phone.png``) for a person
to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from directory import create_app
from directory.extensions import db
from directory.registry.policy import RegistryPolicy
from directory.search import SearchQuery, get_search_backend
from tests import web_fixtures as wf
from tests.browser_support import served, site_config

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}
SCREENSHOTS = Path("/tmp")
GREEN = "rgb(10, 90, 31)"  # --green-fg
RED = "rgb(139, 26, 26)"  # --red-fg

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests skipped: Debian's Chromium is not at /usr/bin/chromium "
        "(`make system-deps` installs it with apt where it can)",
    ),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory, module_database_url) -> Iterator[str]:
    """The app, with the fictional directory, served on an ephemeral loopback port: on
    SQLite, then on PostgreSQL."""
    yield from serve_directory(tmp_path_factory, module_database_url)


def serve_directory(tmp_path_factory, database_url: str | None = None) -> Iterator[str]:
    root = tmp_path_factory.mktemp("browser-site")
    config = site_config(root)
    if database_url:
        config["SQLALCHEMY_DATABASE_URI"] = database_url
    app = create_app(config)
    with app.app_context():
        db.create_all()
        wf.build_directory(db.session, RegistryPolicy.from_config(app.config))
        assert get_search_backend().search(SearchQuery(service="mesotherapy")).total == 3
    with served(app) as url:
        yield url


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
def phone(browser, site):
    context = browser.new_context(base_url=site, **PHONE)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def no_sideways_scrolling(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_patient_finds_mesotherapy_in_cape_town_filters_and_sees_the_badge(phone):
    from playwright.sync_api import expect

    page = phone
    page.goto("/")
    expect(page).to_have_title(re.compile(r"^Find a practitioner registered with the HPCSA"))
    assert no_sideways_scrolling(page)
    page.screenshot(path=str(SCREENSHOTS / "web-home-phone.png"), full_page=True)

    page.get_by_label("Treatment or name").fill("mesotherapy")
    page.get_by_label("Place").fill("Cape Town")
    page.get_by_role("button", name="Search").click()

    expect(page).to_have_url(re.compile(r"/search\?q=mesotherapy&where=Cape\+Town"))
    cards = page.locator("ol.results article.card")
    expect(cards).to_have_count(2)
    expect(page.locator(".summary")).to_contain_text("2 practitioners")
    assert no_sideways_scrolling(page)
    # Compact results: the first card's name and badge on the first screen (was 769 px down).
    badge = cards.first.locator(".badge").bounding_box()
    assert cards.first.bounding_box()["y"] < 600 and badge["y"] + badge["height"] < 844

    # Filter: open "Sort and filter", pick a treatment, show the results.
    page.get_by_text("Sort and filter").click()
    page.locator("#facet-services").get_by_label(re.compile(r"^Fat reduction")).check()
    page.get_by_role("button", name="Show results").click()
    expect(page).to_have_url(re.compile(r"service=fat-reduction"))
    expect(cards).to_have_count(1)
    expect(page.locator(".chips")).to_contain_text("Treatment: Fat reduction")
    page.screenshot(path=str(SCREENSHOTS / "web-results-phone.png"), full_page=True)

    cards.first.get_by_role("link", name="Dr Lize Sample Fictional-Beukes").click()
    expect(page).to_have_url(re.compile(r"/practitioners/MP0900002$"))
    badge = page.locator(".verdict .badge")
    expect(badge).to_have_text("Registered with the HPCSA: active, last confirmed 5 days ago")
    expect(badge).to_have_css("color", GREEN)
    expect(page.locator(".source--register")).to_contain_text("From the HPCSA register, as of")
    expect(
        page.get_by_role("link", name=re.compile("See this registration on the HPCSA iRegister"))
    )
    assert no_sideways_scrolling(page)
    page.screenshot(path=str(SCREENSHOTS / "web-profile-phone.png"), full_page=True)


def test_suspended_practitioner_shows_the_red_warning(phone):
    from playwright.sync_api import expect

    page = phone
    page.goto("/search?q=mesotherapy&where=Cape+Town")
    # Not in the default list: only practitioners the register currently confirms.
    expect(page.get_by_text("Fictional-Suspended")).to_have_count(0)
    page.get_by_role("link", name="Show everyone, with their status").first.click()
    card = page.locator("article.card", has_text="Fictional-Suspended")
    expect(card.locator(".badge")).to_have_text("HPCSA register: suspended")
    expect(card.locator(".badge")).to_have_css("color", RED)
    card.get_by_role("link", name=re.compile("Fictional-Suspended")).click()

    expect(page).to_have_title(re.compile(r"HPCSA register: suspended"))
    warning = page.locator(".verdict--red")
    expect(warning).to_be_visible()
    expect(warning.locator(".badge")).to_have_text("HPCSA register: suspended")
    expect(warning).to_contain_text("What this means for you:")
    expect(warning).to_contain_text("may not practise while the suspension lasts")
    # The warning is words and an icon, not colour alone.
    expect(warning.locator(".badge svg")).to_have_count(1)
    page.screenshot(path=str(SCREENSHOTS / "web-suspended-phone.png"), full_page=True)


def test_search_works_with_javascript_disabled(browser, site):
    from playwright.sync_api import expect

    context = browser.new_context(base_url=site, java_script_enabled=False, **PHONE)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto("/")
        page.get_by_label("Treatment or name").fill("botox")
        page.get_by_label("Treatment or name").press("Enter")
        expect(page).to_have_url(re.compile(r"/search\?q=botox"))
        expect(page.locator("ol.results article.card")).to_have_count(1)

        # A misspelling and its "did you mean" link; a facet through the form.
        page.goto("/search?q=mesotheraphy")
        page.get_by_role("link", name="mesotherapy", exact=True).click()
        expect(page).to_have_url(re.compile(r"q=mesotherapy"))
        page.locator("summary", has_text="Sort and filter").click()  # opens natively
        page.locator("#facet-cities").get_by_label(re.compile(r"^Durban")).check()
        page.get_by_role("button", name="Show results").click()
        expect(page.locator("ol.results article.card")).to_have_count(1)
        expect(page.locator("article.card .badge")).to_have_text(
            re.compile(r"^Registered with the HPCSA: active")
        )

        # The sort/status form submits without script too.
        page.goto("/search?q=mesotherapy")
        page.locator("summary", has_text="Sort and filter").click()
        page.get_by_label("Status on the register").select_option("erased")
        page.get_by_role("button", name="Show results").click()
        expect(page).to_have_url(re.compile(r"status=erased"))
        expect(page.locator("article.card .badge")).to_have_text("HPCSA register: erased")

        # Checking a number: a mistyped one, then the suggestion.
        page.goto("/check")
        page.get_by_label("Registration number", exact=True).fill("MPO900001")
        page.get_by_role("button", name="Check").click()
        expect(page.get_by_role("alert")).to_contain_text("letter O among its digits")
        page.get_by_role("link", name="Check MP0900001 instead").click()
        expect(page).to_have_url(re.compile(r"/practitioners/MP0900001$"))
    finally:
        context.close()


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/search?q=mesotherapy&all=1",
        "/practitioners/MP0900001",
        "/practitioners/MP0900004",
        "/clinics/fictional-harbour-skin-clinic",
        "/services/mesotherapy",
        "/check?number=MP0999999",
        "/no/such/page",
    ],
)
def test_phone_sized_pages_fit_and_the_skip_link_comes_first(phone, path):
    from playwright.sync_api import expect

    page = phone
    page.goto(path)
    assert no_sideways_scrolling(page), f"{path} scrolls sideways at 390px"
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "({text: document.activeElement.textContent.trim(),"
        " top: document.activeElement.getBoundingClientRect().top,"
        " outline: getComputedStyle(document.activeElement).outlineStyle})"
    )
    assert focused["text"] == "Skip to the main content"
    assert focused["top"] >= 0  # visible once focused
    assert focused["outline"] == "solid"  # a visible focus ring
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
