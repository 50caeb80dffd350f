"""How responses travel (directory/web/delivery.py): brotli or gzip for the types worth it and
never for tiny, binary or private answers; fingerprinted assets cached for a year; pages
without a badge cached briefly, pages with one asked for again each time (a 304 when
unchanged), and none shared by caches when a session is involved."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import brotli
import pytest

from directory.extensions import db
from directory.registry.models import Practitioner
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow
from tests import test_web_pages as pages
from tests import web_fixtures as wf

STATIC = Path(__file__).parent.parent / "directory" / "web" / "static"
IMMUTABLE = "public, max-age=31536000, immutable"

# The web pages' fixtures: the app on SQLite and on PostgreSQL, the fictional directory, and no
# register server (pages never call it).
app = pages.app
directory_data = pages.directory_data
fake_iregister = pages.fake_iregister


# --- compression ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "encoding", "decode"),
    [
        ("br, gzip, deflate", "br", brotli.decompress),
        ("gzip, deflate", "gzip", gzip.decompress),
        ("gzip;q=0.5, br;q=1", "br", brotli.decompress),
    ],
)
def test_pages_are_compressed_with_what_the_client_accepts(
    client, directory_data, accept, encoding, decode
):
    plain = client.get(f"/practitioners/{directory_data['active']}").data
    response = client.get(
        f"/practitioners/{directory_data['active']}", headers={"Accept-Encoding": accept}
    )
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in response.headers["Vary"]
    assert decode(response.data) == plain
    assert len(response.data) < len(plain) / 2
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_no_compression_without_accept_encoding_or_for_small_or_binary_answers(
    client, directory_data
):
    assert "Content-Encoding" not in client.get("/").headers
    small = client.get("/robots.txt", headers={"Accept-Encoding": "gzip, br"})
    assert len(small.data) < 1024 and "Content-Encoding" not in small.headers
    png = re.search(r'href="(/assets/icon\.[0-9a-f]{12}\.png)"', client.get("/").data.decode())
    image = client.get(png.group(1), headers={"Accept-Encoding": "gzip, br"})
    assert image.status_code == 200 and "Content-Encoding" not in image.headers


def test_private_account_pages_are_never_compressed(client):
    """A CSRF token beside reflected input is what BREACH-style attacks need."""
    response = client.get("/account/login", headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "Content-Encoding" not in response.headers
    assert b"csrf_token" in response.data


def test_css_xml_and_api_json_are_compressed_and_the_api_stays_conditional(client, directory_data):
    css = re.search(r'href="(/assets/site\.[0-9a-f]{12}\.css)"', client.get("/").data.decode())
    response = client.get(css.group(1), headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.data) == (STATIC / "site.css").read_bytes()

    path = f"/api/v1/practitioners/{directory_data['active']}"
    plain = client.get(path)
    assert len(plain.data) > 1024
    api = client.get(path, headers={"Accept-Encoding": "br"})
    assert api.status_code == 200 and api.headers["Content-Encoding"] == "br"
    assert brotli.decompress(api.data) == plain.data
    etag = api.headers["ETag"]
    assert etag == plain.headers["ETag"][:-1] + ':br"'  # the same tag, per encoding
    again = client.get(path, headers={"Accept-Encoding": "br", "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


# --- fingerprinted assets -------------------------------------------------------------------


def test_assets_have_content_hashed_names_and_are_cached_for_a_year(client):
    html = client.get("/").data.decode()
    href = re.search(r'<link rel="stylesheet" href="([^"]+)">', html).group(1)
    css = (STATIC / "site.css").read_bytes()
    digest = hashlib.sha256(css).hexdigest()[:12]
    assert href == f"/assets/site.{digest}.css"
    response = client.get(href)
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert response.data == css
    assert response.headers["Cache-Control"] == IMMUTABLE
    again = client.get(href, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_an_old_fingerprint_redirects_to_the_current_file_and_unknown_files_are_404(client):
    old = client.get("/assets/site.000000000000.css")
    assert old.status_code == 302
    assert re.fullmatch(r"/assets/site\.[0-9a-f]{12}\.css", old.headers["Location"])
    assert "immutable" not in old.headers.get("Cache-Control", "")
    assert client.get("/assets/nothing.0123456789ab.css").status_code == 404
    assert client.get("/assets/..%2Fviews.0123456789ab.py").status_code == 404
    # The plain names still work (nginx serves them from disk too), compressed or in parts.
    css = (STATIC / "site.css").read_bytes()
    assert client.get("/assets/site.css").data == css
    whole = client.get("/assets/site.css", headers={"Accept-Encoding": "gzip"})
    assert gzip.decompress(whole.data) == css
    again = client.get(
        "/assets/site.css",
        headers={"Accept-Encoding": "gzip", "If-None-Match": whole.headers["ETag"]},
    )
    assert again.status_code == 304
    ranged = {"Accept-Encoding": "gzip", "Range": "bytes=0-99"}
    part = client.get("/assets/site.css", headers=ranged)
    assert part.status_code == 206 and "Content-Encoding" not in part.headers
    assert part.data == css[:100]


def test_a_changed_file_gets_a_new_name(sqlite_app, tmp_path, monkeypatch):
    """Files on disk only: no database is read, so once is enough."""
    from directory.web import delivery

    (tmp_path / "site.css").write_text("body { color: black }")
    monkeypatch.setattr(delivery, "STATIC", tmp_path)
    with sqlite_app.test_request_context():
        first = delivery.asset_url("site.css")
        (tmp_path / "site.css").write_text("body { color: navy }  ")
        second = delivery.asset_url("site.css")
    assert first != second


# --- cache lifetimes of pages ---------------------------------------------------------------


def test_pages_without_a_badge_are_cached_briefly(app, client, directory_data):
    max_age = app.config["PAGE_CACHE_MAX_AGE"]
    for path in ("/", "/services", "/check"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == f"public, max-age={max_age}", path
    assert "public" not in client.get("/no-such-page").headers.get("Cache-Control", "")


def test_pages_with_a_badge_are_asked_for_again_each_time_and_cost_a_304_unchanged(
    app, client, directory_data, policy
):
    number = directory_data["active"]
    badge_pages = (
        f"/practitioners/{number}",
        "/clinics/fictional-harbour-skin-clinic",
        "/search?q=meso",
        "/services/mesotherapy",
    )
    for path in badge_pages:
        response = client.get(path)
        assert response.headers["Cache-Control"] == "public, no-cache", path
        again = client.get(path, headers={"If-None-Match": response.headers["ETag"]})
        assert again.status_code == 304 and again.data == b"", path
    # A suspension: the next request gets the new page, whatever a cache holds.
    profile = client.get(badge_pages[0])
    with app.app_context():
        practitioner = db.session.scalar(
            db.select(Practitioner).where(Practitioner.registration_number == number)
        )
        suspended = wf.Person(
            "x", number, "DR", "FICTIONAL-MOKOENA", "AYANDA EXAMPLE",
            (("INDEPENDENT PRACTICE", "SUSPENDED"),), (),
        )  # fmt: skip
        record_check(db.session, practitioner, wf.lookup(suspended, Outcome.OK, utcnow()), policy)
        db.session.commit()
    after = client.get(badge_pages[0], headers={"If-None-Match": profile.headers["ETag"]})
    assert after.status_code == 200 and b'data-tone="adverse"' in after.data


def test_a_page_asked_with_a_session_is_never_shared_by_caches(app, client, directory_data):
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], "someone-signed-in")
    response = client.get("/services")
    assert response.headers["Cache-Control"] == "private, no-cache"
