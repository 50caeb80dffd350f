"""axe-core, the accessibility checker, on every patient page in Debian's Chromium: phone
(390x844) and desktop (1280x800), every `<details>` opened so that folded content is checked
too. The same pages must report no Content-Security-Policy violation (the schema.org JSON-LD
block is data, which the CSP does not block).

axe-core comes from the npm registry through `make test` (`make axe`: `npm ci` into
./node_modules, version pinned in package-lock.json); without it these tests are skipped with a
message saying how to install it. It is injected as a Playwright init script, so the pages'
own strict CSP (no inline script) stays as it is in production.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_browser import CHROMIUM, PHONE, browser, serve_directory  # noqa: F401  (fixtures)

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
SIZES = {"phone": PHONE, "desktop": DESKTOP}

# Every kind of page a patient meets, over the fictional directory in tests/web_fixtures.py.
PATIENT_PAGES = {
    "home": "/",
    "results": "/search?q=mesotherapy&where=Cape+Town",
    "results-everyone": "/search?q=mesotherapy&all=1&service=mesotherapy",
    "results-none": "/search?q=zzzzqqq",
    "practitioner-verified": "/practitioners/MP0900001",
    "practitioner-suspended": "/practitioners/MP0900004",
    "practitioner-stale": "/practitioners/MP0900008",
    "practitioner-not-found": "/practitioners/MP0900007",
    "practitioner-unreadable-answer": "/practitioners/MP0900010",
    "clinic": "/clinics/fictional-harbour-skin-clinic",
    "treatments": "/services",
    "treatment": "/services/mesotherapy",
    "check": "/check",
    "check-never-checked": "/check?number=MP0999999",
    "check-unreadable": "/check?number=MPO012345",
    "report-practitioner": "/practitioners/MP0900001/report",
    "report-clinic": "/clinics/fictional-harbour-skin-clinic/report",
    "report-received": "/report-received",
    "register-status": "/status",
    "error-404": "/no-such-page",
}

# Runs before any page script (and outside the page's CSP): collects CSP violations.
CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(event.violatedDirective + ' ' + event.blockedURI);
});
"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests skipped: Debian's Chromium is not at /usr/bin/chromium",
    ),
    pytest.mark.skipif(
        not AXE.exists(),
        reason="axe-core is not installed: `make axe` (npm ci) installs it into node_modules/; "
        "accessibility tests skipped",
    ),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The directory served once, on SQLite: what axe reads is the HTML, the same whichever
    database is behind it (test_browser.py drives the same pages on both)."""
    yield from serve_directory(tmp_path_factory)


@pytest.fixture(scope="module", params=list(SIZES))
def checked_context(request, browser):  # noqa: F811  (the fixture imported above)
    context = browser.new_context(**SIZES[request.param])
    context.add_init_script(CSP_WATCH)
    context.add_init_script(path=str(AXE))
    yield context
    context.close()


def describe(violations: list[dict]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(" ".join(node["target"]) for node in v["nodes"][:5])
        for v in violations
    )


@pytest.mark.parametrize("name", list(PATIENT_PAGES))
def test_no_accessibility_violation_and_no_csp_violation(checked_context, site, name):
    page = checked_context.new_page()
    page.set_default_timeout(15_000)
    try:
        response = page.goto(site + PATIENT_PAGES[name])
        assert response is not None
        assert response.status in (200, 400, 404), name
        page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
        results = page.evaluate("async () => await axe.run(document)")
        assert results["violations"] == [], f"{name}:\n{describe(results['violations'])}"
        assert results["passes"], "axe ran no rule"
        assert page.evaluate("window.__cspViolations") == [], name
    finally:
        page.close()


def test_json_ld_is_read_by_the_browser_without_a_csp_violation(checked_context, site):
    """The structured data is where a search engine would find it, and the CSP lets it be."""
    page = checked_context.new_page()
    try:
        page.goto(site + "/practitioners/MP0900001")
        data = page.evaluate(
            "JSON.parse(document.querySelector('script[type=\"application/ld+json\"]').textContent)"
        )
        assert data["@type"] == "Physician"
        assert data["identifier"]["value"] == "MP0900001"
        assert page.evaluate("window.__cspViolations") == []
        assert page.evaluate("typeof axe") == "object"  # the init script ran despite the CSP
    finally:
        page.close()
