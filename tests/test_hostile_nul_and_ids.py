"""NUL characters and ids past the database's integers never reach a query: no 500, on
SQLite or PostgreSQL (which refuses both with an error). All data is fictional."""

from __future__ import annotations

import pytest

from directory.extensions import db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_client(request):
    app = request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
    with app.app_context():
        db.create_all()
    return app.test_client()


@pytest.mark.parametrize(
    "path",
    [
        "/clinics/%00",
        "/clinics/a%00b",
        "/clinics/%00/claim",
        "/api/v1/clinics/%00",
        "/api/v1/clinics/%00/listings",
        "/practitioners/MP%0001",
        "/account/clinics/%00",
        "/services/%00",
    ],
)
def test_a_nul_in_the_path_names_no_page(any_client, path):
    assert any_client.get(path).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/account/clinics/sample/users/99999999999999999999/remove",
        "/account/clinics/sample/tokens/99999999999999999999/revoke",
        "/account/moderation/99999999999999999999/approve",
    ],
)
def test_an_id_past_the_databases_integers_names_no_page(any_client, path):
    assert any_client.post(path).status_code in (400, 404)


def test_a_nul_in_a_form_or_a_json_body_is_refused_not_stored(any_client):
    signed_in = any_client.post(
        "/account/login", data={"email": "a\x00b@x.example", "password": "x", "csrf_token": "t"}
    )
    assert signed_in.status_code == 400
    api = any_client.patch("/api/v1/clinics/sample", json={"name": "a\x00b", "version": 1})
    assert api.status_code == 400
