"""The words a patient reads: dates and times in South African time (the API keeps ISO UTC),
no register spellings, raw statuses or sources outside "About this record", and "not run by
the HPCSA" near the top of every page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from directory.extensions import db
from directory.registry.models import Practitioner
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome
from directory.registry.verification import verdict
from directory.util.clock import local_date, local_datetime
from directory.web.presenters import iso, long_date, long_datetime
from tests import test_web_pages as pages
from tests import web_fixtures as wf
from tests.test_web_pages import about_record, text_of

# 22:30 UTC on 3 March is 00:30 on 4 March in South Africa (UTC+2, no daylight saving).
LATE_EVENING_UTC = datetime(2026, 3, 3, 22, 30, tzinfo=UTC)

# The web pages' fixtures: the app on SQLite and on PostgreSQL, the fictional directory, and no
# register server (pages never call it).
app = pages.app
directory_data = pages.directory_data
fake_iregister = pages.fake_iregister


# --- South African time -----------------------------------------------------------------------


def test_dates_and_times_are_south_african():
    assert local_datetime(LATE_EVENING_UTC) == "4 March 2026, 00:30 SAST"
    assert local_date(LATE_EVENING_UTC) == "4 March 2026"
    assert long_datetime(LATE_EVENING_UTC) == "4 March 2026, 00:30 SAST"
    assert long_date(LATE_EVENING_UTC) == "4 March 2026"
    naive = LATE_EVENING_UTC.replace(tzinfo=None)  # the database's naive UTC
    assert long_datetime(naive) == "4 March 2026, 00:30 SAST"
    assert long_date(None) == long_datetime(None) == ""
    # The machine-readable form stays UTC.
    assert iso(LATE_EVENING_UTC) == "2026-03-03T22:30:00+00:00"


def test_the_badges_date_is_the_south_african_date():
    state = SimpleNamespace(
        status="active", verified_at=LATE_EVENING_UTC, not_found_pending_since=None
    )
    judged = verdict(state, now=LATE_EVENING_UTC + timedelta(days=400), max_age_=timedelta(30))
    assert judged.headline == "Not verified since 4 March 2026"


def test_profile_times_are_sast_and_the_api_keeps_iso_utc(app, client, directory_data, policy):
    number = directory_data["active_durban"]
    with app.app_context():
        practitioner = db.session.scalar(
            db.select(Practitioner).where(Practitioner.registration_number == number)
        )
        person = wf.BY_KEY["active_durban"]
        failed = wf.lookup(person, Outcome.ERROR, LATE_EVENING_UTC)
        record_check(db.session, practitioner, failed, policy)
        db.session.commit()
    html = client.get(f"/practitioners/{number}").data.decode()
    assert '<time datetime="2026-03-03T22:30:00+00:00">4 March 2026, 00:30 SAST</time>' in html
    assert not re.search(r"\d\d:\d\d UTC", text_of(html.encode()))
    api = client.get(f"/api/v1/practitioners/{number}").get_json()
    checked = [c["checked_at"] for c in api["history"]]
    assert any(c.startswith("2026-03-03T22:30:00") for c in checked), checked
    assert all(c.endswith(("Z", "+00:00")) for c in checked), checked


# --- patient-facing words ---------------------------------------------------------------------


def split_about(html: bytes) -> tuple[str, str]:
    """The raw HTML of a practitioner's page outside and inside "About this record"."""
    page = html.decode()
    start = page.index('<details class="about-record"')
    end = page.index("</details>", start)
    return page[:start] + page[end:], page[start:end]


def test_register_spellings_raw_statuses_and_sources_only_in_about_this_record(
    client, directory_data
):
    number = directory_data["unreadable"]  # the register wrote "PROVISIONALLY ACTIVE PENDING …"
    page = client.get(f"/practitioners/{number}").data
    patient, about = split_about(page)
    for register_only in ("PROVISIONALLY ACTIVE PENDING REVIEW", "MP   0900010", "fictional)"):
        assert register_only not in patient, register_only
        assert register_only in about, register_only
    patient_words, about_words = about_record(page)
    assert "Source:" not in patient_words and "the register wrote" not in patient_words
    assert "unknown" in about_words  # the status as the data (and the API) has it
    for number in directory_data.values():
        patient, about = split_about(client.get(f"/practitioners/{number}").data)
        assert not re.search(r"\b[A-Z]{2,4} {2,}\d{7}\b", patient), number  # padded spelling
        assert re.search(r"\b[A-Z]{2,4} {2,}\d{7}\b", about), number
        assert "web test fixture" not in patient, number


def test_about_this_record_is_folded_away_and_links_to_the_api(client, directory_data):
    html = client.get(f"/practitioners/{directory_data['active']}").data.decode()
    details = html[html.index('<details class="about-record"') :]
    assert details.startswith('<details class="about-record">')  # closed until opened
    assert "About this record" in details[: details.index("</summary>")]
    assert f'href="/api/v1/practitioners/{directory_data["active"]}"' in details


def test_check_page_has_no_register_spelling(client):
    page = client.get("/check?number=MP0999999")
    assert page.status_code == 404
    assert "MP0999999" in page.data.decode() and "MP   0999999" not in page.data.decode()


@pytest.mark.parametrize(
    "path", ["/", "/services", "/check", "/search?q=x", "/no-such-page", "/account/login"]
)
def test_every_page_says_near_the_top_that_the_hpcsa_does_not_run_it(app, client, path):
    html = client.get(path).data.decode()
    top = html[: html.index('<main id="main"')]
    assert "not run by the HPCSA" in text_of(top.encode()).lower().replace("hpcsa", "HPCSA")
    assert f'href="{app.config["HPCSA_REGISTER_SEARCH_URL"]}"' in top
