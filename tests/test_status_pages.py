"""The status pages (directory/status): the public /status and the site admins'
/account/status, on SQLite and PostgreSQL, with their SVG charts (well-formed, escaped, the
numbers the history holds) and a browser showing that the strict CSP blocks nothing."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from directory import create_app
from directory.accounts import services as svc
from directory.extensions import db
from directory.observability.state import registrations_by_age
from directory.registry.models import Practitioner, VerificationCheck
from directory.status import charts, queries
from directory.util.clock import as_utc, utcnow
from tests.accounts_support import PASSWORD, populate, sign_in

SVG = re.compile(r"<svg\b.*?</svg>", re.S)
NS = "{http://www.w3.org/2000/svg}"
LOOKUP, SNAPSHOT = "hpcsa (fictional test look-ups)", "snapshot:fictional.csv"


# --- the charts ----------------------------------------------------------------------------


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything but well-formed XML


def marks(svg: ET.Element) -> dict[tuple[str, str], str]:
    return {
        (el.get("data-label"), el.get("data-series")): el.get("data-value")
        for el in svg.iter()
        if el.get("data-value") is not None
    }


def test_a_bar_chart_is_well_formed_svg_with_the_numbers_and_escaped_labels():
    labels = ["<b>Mon</b>", 'Tue "&"']
    svg_text = charts.bar_chart(
        "Look-ups <per> day & more",
        labels,
        [charts.Series("answered", "ok", [3, 0]), charts.Series("failed", "error", [1, 5])],
    )
    svg = parse(str(svg_text))
    assert svg.tag == f"{NS}svg" and svg.get("role") == "img"
    assert svg.find(f"{NS}title").text == "Look-ups <per> day & more"
    assert marks(svg) == {
        ("<b>Mon</b>", "ok"): "3",
        ("<b>Mon</b>", "error"): "1",
        ('Tue "&"', "ok"): "0",
        ('Tue "&"', "error"): "5",
    }
    assert "<b>" not in svg_text and "style=" not in svg_text and "<script" not in svg_text
    # stacked: each bar's height is its value's share of the axis, one on top of the other
    rects = {(r.get("data-label"), r.get("data-series")): r for r in svg.iter(f"{NS}rect")}
    unit = float(rects[('Tue "&"', "error")].get("height")) / 5
    assert float(rects[("<b>Mon</b>", "ok")].get("height")) == pytest.approx(3 * unit, abs=0.2)
    mon_error, mon_ok = rects[("<b>Mon</b>", "error")], rects[("<b>Mon</b>", "ok")]
    assert float(mon_error.get("y")) + float(mon_error.get("height")) == pytest.approx(
        float(mon_ok.get("y")), abs=0.2
    )


def test_a_line_chart_breaks_at_missing_values():
    svg = parse(
        str(
            charts.line_chart(
                "Error share",
                ["a", "b", "c", "d", "e"],
                [charts.Series("failed", "error", [10.5, 20, None, 0, 100])],
                unit="%",
                top=100,
            )
        )
    )
    assert len(svg.findall(f"{NS}polyline")) == 2  # a-b, then d-e
    assert marks(svg) == {
        ("a", "error"): "10.5",
        ("b", "error"): "20",
        ("d", "error"): "0",
        ("e", "error"): "100",
    }
    axis = [t.text for t in svg.iter(f"{NS}text") if t.get("class") == "chart__axis"]
    assert axis == ["0%", "50%", "100%"]


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (7, 10), (12, 20), (240, 250), (0.3, 0.5)]
)
def test_nice_ceiling(value, ceiling):
    assert charts.nice_ceiling(value) == pytest.approx(ceiling)


# --- the pages, on SQLite and PostgreSQL ---------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def add_history(app) -> None:
    """Look-ups over the last 40 days (some outside every window) and snapshot rows, which
    are not look-ups; registrations with verified_at of every age."""
    now = utcnow()
    with app.app_context():
        people = []
        for n, age in enumerate([None, 0.2, 3, 10, 45]):
            p = Practitioner(
                registration_number=f"MP09{n:05d}",
                prefix="MP",
                status="active",
                verified_at=None if age is None else now - timedelta(days=age),
            )
            db.session.add(p)
            people.append(p)
        db.session.flush()
        plan = [  # (hours ago, outcome, duration ms, source)
            (1, "ok", 200, LOOKUP),
            (2, "ok", 400, LOOKUP),
            (3, "not_found", 300, LOOKUP),
            (4, "error", 15000, LOOKUP),
            (5, "error", None, LOOKUP),
            (30, "ok", 250, LOOKUP),
            (30, "error", 5000, LOOKUP),
            (24 * 5, "ok", 100, LOOKUP),
            (24 * 20, "error", 9000, LOOKUP),
            (24 * 40, "ok", 100, LOOKUP),  # outside both windows
            (1, "ok", None, SNAPSHOT),  # a file, not a look-up
            (1, "ok", None, SNAPSHOT),
        ]
        for n, (hours, outcome, duration, source) in enumerate(plan):
            when = now - timedelta(hours=hours)
            db.session.add(
                VerificationCheck(
                    practitioner=people[n % len(people)],
                    checked_at=when,
                    recorded_at=when,
                    source=source,
                    outcome=outcome,
                    duration_ms=duration,
                    effect="no_effect" if outcome == "error" else "unchanged",
                )
            )
        db.session.commit()


def expected_by_day(app, days: int):
    """The same numbers, counted in Python from every row (not the pages' SQL)."""
    today = utcnow().date()
    first = today - timedelta(days=days - 1)
    counts: dict[str, Counter] = defaultdict(Counter)
    durations: dict[str, list[int]] = defaultdict(list)
    with app.app_context():
        for check in db.session.scalars(db.select(VerificationCheck)):
            day = as_utc(check.recorded_at).date()
            if check.source.startswith("snapshot:") or day < first:
                continue
            counts[day.isoformat()][check.outcome] += 1
            if check.duration_ms is not None:
                durations[day.isoformat()].append(check.duration_ms)
    labels = [(first + timedelta(days=n)).isoformat() for n in range(days)]
    return labels, counts, durations


def svgs_of(html: str) -> list[ET.Element]:
    found = [parse(s) for s in SVG.findall(html)]
    assert found, "the page has no chart"
    return found


def test_the_public_page_shows_the_registers_recent_health_with_the_historys_numbers(any_app):
    add_history(any_app)
    response = any_app.test_client().get("/status")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=60"
    html = response.get_data(as_text=True)
    outcomes, error_rate = svgs_of(html)
    labels, counts, _ = expected_by_day(any_app, queries.PUBLIC_DAYS)
    expected = {
        (label, key): str(counts[label][key])
        for label in labels
        for key in ("ok", "not_found", "error")
    }
    assert marks(outcomes) == expected
    for label in labels:
        total = sum(counts[label].values())
        if total:
            share = round(100 * counts[label]["error"] / total, 1)
            assert float(marks(error_rate)[(label, "error")]) == pytest.approx(share)
        else:
            assert (label, "error") not in marks(error_rate)
    # the last 24 hours: 5 look-ups, 2 failed (40 %): "some failures", not "trouble"
    assert 'data-state="some_failures"' in html
    assert "5 look-ups, 3 answered by the register, 2 failed (40.0 %)" in html
    assert "The register last answered a look-up:" in html and "<time datetime=" in html
    # less detail than the operators' page
    assert "ms" not in " ".join(t.text or "" for svg in (outcomes, error_rate) for t in svg.iter())
    assert "Registrations by" not in html


def test_the_public_page_when_the_register_fails_and_when_nothing_was_asked(app):
    with app.app_context():
        assert queries.register_health().state == "quiet"
        p = Practitioner(registration_number="MP0900001", prefix="MP", status="active")
        db.session.add(p)
        for _ in range(3):
            db.session.add(
                VerificationCheck(
                    practitioner=p,
                    checked_at=utcnow(),
                    source=LOOKUP,
                    outcome="error",
                    error="timeout (fictional)",
                )
            )
        db.session.commit()
    html = app.test_client().get("/status").get_data(as_text=True)
    assert 'data-state="trouble"' in html
    assert "having trouble reaching the HPCSA register" in html
    assert "not in the last 7 days" in html  # no answer to show a time for


def test_rows_stamped_in_the_future_by_a_fast_clock_are_not_recent_nor_shown(any_app):
    """A host whose clock runs days ahead wrote look-ups "from the future": the public page
    never tells a patient the register last answered on a day that has not come, nor counts
    those rows as the last 24 hours' (they would stay "recent" until the clocks met)."""
    ahead = utcnow() + timedelta(days=3)
    with any_app.app_context():
        p = Practitioner(registration_number="MP0900002", prefix="MP", status="active")
        db.session.add(p)
        for outcome in ("ok", "error", "error"):
            db.session.add(
                VerificationCheck(
                    practitioner=p,
                    checked_at=ahead,
                    recorded_at=ahead,
                    source=LOOKUP,
                    outcome=outcome,
                    duration_ms=300,
                    effect="no_effect" if outcome == "error" else "unchanged",
                )
            )
        db.session.commit()
        health = queries.register_health()
    assert health.state == "quiet" and health.recent.total == 0
    assert health.last_answer is None
    html = any_app.test_client().get("/status").get_data(as_text=True)
    assert 'data-state="quiet"' in html
    assert ahead.date().isoformat() not in html
    assert "not in the last 7 days" in html


def test_the_footer_and_a_failed_look_up_link_to_the_status_page(app):
    with app.app_context():
        p = Practitioner(
            registration_number="MP0900002",
            prefix="MP",
            status="active",
            last_outcome="error",
            last_checked_at=utcnow(),
        )
        db.session.add(p)
        db.session.commit()
    client = app.test_client()
    assert 'href="/status"' in client.get("/").get_data(as_text=True)
    profile = client.get("/practitioners/MP0900002").get_data(as_text=True)
    notice = profile[profile.index("got no usable answer") :]
    assert 'href="/status"' in notice[:400]


def test_the_operators_page_is_for_site_admins_only(app):
    accounts = populate(app)
    anonymous = app.test_client()
    response = anonymous.get("/account/status")
    assert response.status_code == 302 and "/account/login" in response.headers["Location"]
    clinic_admin = app.test_client()
    sign_in(clinic_admin, accounts.admin)
    assert clinic_admin.get("/account/status").status_code == 403
    site_admin = app.test_client()
    sign_in(site_admin, accounts.site_admin)
    assert site_admin.get("/account/status").status_code == 200
    assert 'href="/account/status"' in site_admin.get("/account/").get_data(as_text=True)


def test_the_operators_page_charts_the_last_30_days_and_the_registrations(any_app):
    add_history(any_app)
    with any_app.app_context():
        svc.create_user(db.session, "ops@directory.example", PASSWORD, "site_admin")
        db.session.commit()
        ages = registrations_by_age()
    client = any_app.test_client()
    sign_in(client, "ops@directory.example")
    response = client.get("/account/status")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    outcomes, error_rate, latency, by_age = svgs_of(html)
    labels, counts, durations = expected_by_day(any_app, queries.OPERATORS_DAYS)
    assert len(labels) == 30
    assert marks(outcomes) == {
        (label, key): str(counts[label][key])
        for label in labels
        for key in ("ok", "not_found", "error")
    }
    assert sum(int(v) for v in marks(outcomes).values()) == 9  # not the 40-day-old one
    latency_marks = marks(latency)
    for label in labels:
        if durations[label]:
            mean = sum(durations[label]) / len(durations[label])
            assert float(latency_marks[(label, "mean")]) == pytest.approx(mean, abs=0.05)
            assert latency_marks[(label, "longest")] == str(max(durations[label]))
        else:
            assert (label, "mean") not in latency_marks
    assert list(marks(by_age).values()) == [str(v) for v in ages.values()]
    assert [int(v) for v in marks(by_age).values()] == [1, 1, 1, 1, 1]
    assert marks(error_rate)  # drawn from the same counts as the public page's
    assert 'data-latest-total="10"' in html  # every look-up there is (at most 20), any age
    assert 'data-latest-failed="4"' in html
    assert "Index changes this host has not applied" in html


# --- the browser: the strict CSP blocks nothing on either page -----------------------------


@pytest.fixture
def status_site(app_config):
    from tests.browser_support import served

    app = create_app({**app_config, "TESTING": False})
    with app.app_context():
        db.create_all()
    add_history(app)
    with app.app_context():
        svc.create_user(db.session, "ops@directory.example", PASSWORD, "site_admin")
        db.session.commit()
    with served(app) as url:
        yield url


@pytest.mark.browser
def test_no_csp_violation_on_the_status_pages_in_a_browser(status_site):
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip("browser tests skipped: Debian's Chromium is not at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(base_url=status_site).new_page()
            page.set_default_timeout(10_000)
            violations: list[str] = []
            page.on(
                "console",
                lambda m: (
                    violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            page.goto("/status")
            chart = page.locator("svg.chart").first
            assert chart.bounding_box()["height"] > 50  # drawn, at its size
            fill = chart.locator("rect[data-series='ok']").first.evaluate(
                "el => getComputedStyle(el).fill"
            )
            assert fill == "rgb(26, 127, 55)"  # site.css reached the SVG
            page.goto("/account/login")
            page.get_by_label("Email").fill("ops@directory.example")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.goto("/account/status")
            assert page.locator("svg.chart").count() == 4
            assert violations == []
        finally:
            browser.close()


def test_the_public_pages_numbers_are_reused_for_a_minute_per_process(app, monkeypatch):
    """A crowd reading /status while the register is down costs one query a minute."""
    client = app.test_client()
    calls = []
    original = queries.register_health
    monkeypatch.setattr(queries, "register_health", lambda: calls.append(1) or original())
    for _ in range(3):
        assert client.get("/status").status_code == 200
    assert len(calls) == 1
    app.extensions["status_health"]["until"] = 0.0  # a minute later
    client.get("/status")
    assert len(calls) == 2


@pytest.mark.parametrize(("state", "word"), [(None, "unknown"), (True, "open"), (False, "closed")])
def test_the_operators_page_shows_the_recheck_breaker_when_this_host_can_see_it(
    app, monkeypatch, state, word
):
    from directory.observability import metrics

    monkeypatch.setattr(metrics, "breaker_open", lambda: state)
    accounts = populate(app)
    client = app.test_client()
    sign_in(client, accounts.site_admin)
    assert f'data-breaker="{word}"' in client.get("/account/status").get_data(as_text=True)


BREAKER = """
from directory.observability import metrics
seen = [metrics.breaker_open()]
metrics.set_breaker_open(True)
seen.append(metrics.breaker_open())
metrics.set_breaker_open(False)
seen.append(metrics.breaker_open())
print(seen)
"""


@pytest.mark.parametrize(
    ("folder", "expected"), [(True, "[False, True, False]"), (False, "[None, None, None]")]
)
def test_the_breaker_is_read_from_the_hosts_metrics_folder(tmp_path, folder, expected):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS")}
    if folder:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    done = subprocess.run(
        [sys.executable, "-c", BREAKER],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_the_axis_labels_the_newest_day_and_shortens_large_values():
    labels = [f"day {n}" for n in range(30)]
    svg = parse(
        str(charts.line_chart("Answer time", labels, [charts.Series("mean", "mean", [15000] * 30)]))
    )
    texts = [t.text for t in svg.iter(f"{NS}text")]
    shown = [t for t in texts if t.startswith("day ")]
    assert shown[-1] == "day 29" and len(shown) <= charts.MAX_LABELS
    assert [t.text for t in svg.iter(f"{NS}text") if t.get("class") == "chart__axis"] == [
        "0",
        "10k",
        "20k",
    ]
    assert marks(svg)[("day 29", "mean")] == "15000"  # the marks keep the exact value
