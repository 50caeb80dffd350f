"""Production refuses unsafe settings at start-up; X-Forwarded-* are trusted only when set."""

from __future__ import annotations

import pytest

from directory import create_app


@pytest.fixture
def production(app_config):
    """A configuration production accepts; each test spoils one thing."""
    return {
        **app_config,
        "TESTING": False,
        "INCLUDES": [],
        "ENV": "production",
        "SECRET_KEY": "k9V2-a-long-random-production-key",
        "PUBLIC_BASE_URL": "https://directory.example.org",
    }


def test_production_starts_with_safe_settings(production):
    assert create_app(production).config["ENV"] == "production"
    del production["PUBLIC_BASE_URL"]
    assert create_app({**production, "TRUSTED_HOSTS": ["directory.example.org"]})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": ""}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": "dev-only-not-secret"}, "SECRET_KEY is the development default"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is shorter than 16"),
        ({"DEBUG": True}, "debug is on"),
        ({"PUBLIC_BASE_URL": None}, "neither PUBLIC_BASE_URL nor TRUSTED_HOSTS"),
    ],
)
def test_production_refuses_to_start_and_says_why(production, change, reason):
    with pytest.raises(RuntimeError, match="refusing to start with ENV=production") as caught:
        create_app({**production, **change})
    assert reason in str(caught.value)


def test_every_reason_is_given_at_once(production, monkeypatch):
    monkeypatch.setenv("DIRECTORY_ENV", "production")
    with pytest.raises(RuntimeError) as caught:
        create_app({"SQLALCHEMY_DATABASE_URI": production["SQLALCHEMY_DATABASE_URI"],
                    "SEARCH_INDEX_DIR": production["SEARCH_INDEX_DIR"], "DEBUG": True})  # fmt: skip
    message = str(caught.value)
    assert "development default" in message and "debug is on" in message
    assert "PUBLIC_BASE_URL" in message


def test_development_is_the_default_and_an_unknown_env_is_refused(app_config):
    assert create_app(app_config).config["ENV"] == "development"
    with pytest.raises(RuntimeError, match="ENV must be one of"):
        create_app({**app_config, "ENV": "prod"})


SPOOF = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}


def test_forwarded_headers_are_ignored_unless_a_proxy_is_configured(app):
    """As shipped (PROXY_HOPS = 0) a client talking to gunicorn cannot move any link."""
    body = app.test_client().get("/changes.atom", headers=SPOOF).get_data(as_text=True)
    assert "http://localhost/changes.atom" in body and "evil" not in body


def test_with_one_proxy_hop_its_forwarded_headers_are_used(app_config):
    """Behind the proxy, the host it passes on counts, as long as it is a trusted one."""
    app = create_app({**app_config, "PROXY_HOPS": 1, "TRUSTED_HOSTS": ["directory.example"]})
    from directory.extensions import db

    with app.app_context():
        db.create_all()
    forwarded = {"X-Forwarded-Host": "directory.example", "X-Forwarded-Proto": "https"}
    body = app.test_client().get("/changes.atom", headers=forwarded).get_data(as_text=True)
    assert "https://directory.example/changes.atom" in body
    refused = app.test_client().get("/changes.atom", headers=SPOOF)
    assert refused.status_code == 400 and "evil.example/changes" not in refused.get_data(
        as_text=True
    )


@pytest.mark.parametrize("hops", [-1, 9, "two", True])
def test_a_bad_proxy_hop_count_fails_at_start(app_config, hops):
    with pytest.raises(RuntimeError, match="PROXY_HOPS"):
        create_app({**app_config, "PROXY_HOPS": hops})


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("LOG_FORMAT", "xml"),
        ("READY_TIMEOUT", 0),
        ("READY_TIMEOUT", "soon"),
        ("METRICS_ENABLED", "yes"),
    ],
)
def test_bad_watching_settings_fail_at_start_by_name(app_config, key, bad):
    with pytest.raises(RuntimeError, match=key):
        create_app({**app_config, key: bad})
