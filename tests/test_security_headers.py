"""Every response carries the security headers; absolute URLs never come from a client's
Host header; the site's templates need no inline script or style (a strict CSP holds)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from directory import create_app
from tests.accounts_support import csrf_of, populate

ROOT = Path(__file__).resolve().parent.parent
PATHS = [
    "/",
    "/search?q=mesotherapy",
    "/clinics/sample-skin",
    "/no-such-page",
    "/account/login",
    "/assets/site.css",
    "/api/v1/search?q=mesotherapy",
    "/api/v1/clinics/sample-skin/listings",  # 401
    "/api/v1/openapi.json",
]


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


@pytest.fixture
def accounts(app):
    return populate(app)


def test_every_response_carries_the_security_headers(client, accounts):
    for path in PATHS:
        response = client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
        assert "camera=()" in response.headers["Permissions-Policy"], path
        assert "Strict-Transport-Security" not in response.headers, path  # plain HTTP


def test_hsts_over_https(client, accounts):
    response = client.get("/", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_the_api_docs_page_allows_only_its_own_inline_script_by_hash(sqlite_app):  # no database
    response = sqlite_app.test_client().get("/api/v1/docs")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/=]+'", csp)
    assert "unsafe-inline" not in csp


def test_templates_have_no_inline_script_style_or_event_handler():
    templates = list((ROOT / "directory").rglob("templates/**/*.html"))
    assert len(templates) > 10
    for template in templates:
        text = template.read_text()
        # <script type="application/ld+json"> is data (schema.org), never run: CSP allows it.
        assert not re.search(r'<script(?![^>]*\b(src=|type="application/ld\+json"))', text), (
            template
        )
        assert not re.search(r"<style\b|\sstyle=", text), template
        assert not re.search(r"\son[a-z]+=", text), template


def test_a_foreign_host_header_is_refused_by_default(client, accounts):
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert (
        client.get("/api/v1/practitioners/MP0000101", headers={"Host": "evil.example"}).status_code
        == 400
    )
    assert client.get("/", headers={"Host": "127.0.0.1:8000"}).status_code == 200


def test_public_base_url_fixes_every_absolute_url_whatever_the_host(same_db_config):
    app = create_app({**same_db_config, "PUBLIC_BASE_URL": "https://directory.example"})
    populate(app)
    client = app.test_client()
    evil = {"Host": "evil.example"}
    body = client.get("/api/v1/practitioners/MP0000101", headers=evil).get_json()
    assert body["url"] == "https://directory.example/practitioners/MP0000101"
    token = csrf_of(client.get("/account/reset", headers=evil).get_data(as_text=True))
    client.post(
        "/account/reset",
        data={"csrf_token": token, "email": "staff@sample-skin.example"},
        headers={**evil, "Referer": "https://directory.example/account/reset"},
        buffered=True,  # closed as a server closes it: the email goes after the answer
    )
    mail = next(Path(app.config["MAIL_FILE_DIR"]).glob("account-*.eml")).read_text()
    assert "https://directory.example/account/reset/" in mail and "evil.example" not in mail


def test_trusted_hosts_refuse_other_hosts(same_db_config):
    app = create_app({**same_db_config, "TRUSTED_HOSTS": ["directory.example"]})
    client = app.test_client()
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"Host": "directory.example"}).status_code == 200


def test_account_pages_are_never_cached(sqlite_app):  # no one signed in, no database: once
    """A clinic's own pages (and the one page that shows a new token) stay out of caches."""
    client = sqlite_app.test_client()
    for path in ("/account/login", "/account/reset", "/account/"):
        response = client.get(path)
        assert response.status_code in (200, 302, 404)
        assert response.headers["Cache-Control"] == "private, no-store", path
    public = client.get("/")
    assert "no-store" not in public.headers.get("Cache-Control", "")
