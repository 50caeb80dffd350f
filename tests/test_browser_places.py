"""A patient on a 390x844 phone in a real browser (Debian's Chromium through Playwright)
searches with the place names people type, sees the first result on the first screen, sorts
nearest first and uses their location; without JavaScript everything but "Use my location"
works the same. The directory is the fictional one in tests/places_support.py, served on an
ephemeral loopback port; nothing leaves the machine.

A screenshot of the results at phone size is written to /tmp/web-results-places-phone.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests import test_browser
from tests.browser_support import served
from tests.places_support import drop_places_app, places_app
from tests.test_browser import CHROMIUM, PHONE, SCREENSHOTS, no_sideways_scrolling

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed"),
]
SCREEN_HEIGHT = PHONE["viewport"]["height"]
browser = test_browser.browser  # the shared Chromium (a module-scoped fixture)


@pytest.fixture(scope="module")
def site(tmp_path_factory, module_database_url) -> Iterator[str]:
    """The places' directory served on loopback, on SQLite, then on PostgreSQL."""
    app = places_app(tmp_path_factory.mktemp("browser-places"), module_database_url)
    with served(app) as address:
        yield address
    drop_places_app(app)


def phone_page(browser, site, **options):
    context = browser.new_context(base_url=site, **PHONE, **options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, page


def test_a_renamed_city_and_the_first_card_on_the_first_screen(browser, site):
    from playwright.sync_api import expect

    context, page = phone_page(browser, site)
    try:
        page.goto("/")
        page.get_by_label("Treatment or name").fill("fillers")
        page.get_by_label("Place").fill("Port Elizabeth")
        page.get_by_role("button", name="Search").click()
        expect(page).to_have_url(re.compile(r"/search\?q=fillers&where=Port\+Elizabeth"))
        cards = page.locator("ol.results article.card")
        expect(cards).to_have_count(2)
        expect(page.locator(".understood")).to_contain_text("city Gqeberha")
        expect(page.locator(".did-you-mean")).to_have_count(0)
        assert no_sideways_scrolling(page)

        # The first card, whole, on the first screen (the page is not scrolled).
        assert page.evaluate("window.scrollY") == 0
        box = cards.first.bounding_box()
        assert box["y"] > 0 and box["y"] + box["height"] <= SCREEN_HEIGHT, box
        page.screenshot(path=str(SCREENSHOTS / "web-results-places-phone.png"))

        # The whole card is one link: a tap on its treatments (under the name's link,
        # stretched over the card) opens the practitioner.
        spot = cards.first.locator(".card__treatments").bounding_box()
        page.mouse.click(spot["x"] + 10, spot["y"] + spot["height"] / 2)
        expect(page).to_have_url(re.compile(r"/practitioners/MP092000[12]$"))
    finally:
        context.close()


def test_nearest_first_and_a_distance_limit_through_the_form(browser, site):
    from playwright.sync_api import expect

    context, page = phone_page(browser, site)
    try:
        page.goto("/search?q=botox+sandton")
        page.get_by_text("Sort and filter").click()
        page.get_by_label("Sort by").select_option("distance")
        page.get_by_label("Distance from Sandton, Johannesburg").select_option("10")
        page.get_by_role("button", name="Show results").click()
        expect(page).to_have_url(re.compile(r"sort=distance.*radius=10"))
        expect(page.locator("ol.results article.card")).to_have_count(2)
        expect(page.locator(".card__distance")).to_have_text(["· under 1 km", "· 6 km"])
    finally:
        context.close()


def test_use_my_location(browser, site):
    from playwright.sync_api import expect

    context, page = phone_page(
        browser,
        site,
        geolocation={"latitude": -33.93, "longitude": 18.42},
        permissions=["geolocation"],
    )
    try:
        page.goto("/")
        page.get_by_label("Treatment or name").fill("botox")
        page.get_by_role("button", name="Use my location").click()
        expect(page).to_have_url(re.compile(r"near=-33\.93"))
        expect(page.locator("ol.results article.card").first).to_contain_text("Capemock")
        expect(page.locator(".summary")).to_contain_text("near your location")
    finally:
        context.close()


def test_without_javascript_no_location_button_and_the_form_still_works(browser, site):
    from playwright.sync_api import expect

    context, page = phone_page(browser, site, java_script_enabled=False)
    try:
        page.goto("/search?q=botox+jozi")
        expect(page.get_by_role("button", name="Use my location")).to_be_hidden()
        expect(page.locator("ol.results article.card")).to_have_count(4)
        page.locator("summary", has_text="Sort and filter").click()
        page.get_by_label("Sort by").select_option("distance")
        page.get_by_role("button", name="Show results").click()
        expect(page).to_have_url(re.compile(r"sort=distance"))
        # Jozi is Johannesburg: measured from its centre, the CBD clinic is nearest.
        expect(page.locator("ol.results article.card").first).to_contain_text("Centreville")
        expect(page.locator(".card__distance").first).to_have_text("· under 1 km")
    finally:
        context.close()
