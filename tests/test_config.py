"""Settings: defaults in ``config/``, every key overridable as ``DIRECTORY_<KEY>``, bad values
fail at start with the setting's name."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from config.settings import DefaultConfig, check_durations, duration_settings
from directory import create_app
from directory.registry.policy import RegistryPolicy
from directory.util.durations import parse_duration

ALL_KEYS = sorted(k for k in dir(DefaultConfig) if k.isupper())
DURATION_KEYS = duration_settings()


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment: no DIRECTORY_* from outside, storage in a temporary folder."""
    for name in list(os.environ):
        if name.startswith("DIRECTORY_"):
            monkeypatch.delenv(name)

    def set_(name: str, value: str) -> None:
        monkeypatch.setenv(f"DIRECTORY_{name}", value)

    set_("SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    for key in ALL_KEYS:  # every folder setting away from the repository's instance/
        if key.endswith("_DIR") and getattr(DefaultConfig, key) is None:
            set_(key, str(tmp_path / key.lower()))
    set_.tmp_path = tmp_path
    return set_


def override_for(key: str, tmp_path: Path) -> tuple[str, object]:
    """An environment value for ``key`` different from its default, and what it should read as."""
    default = getattr(DefaultConfig, key)
    special = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'other.sqlite3'}",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "HPCSA_URL": "http://127.0.0.1:8765/cc/ReportController/getDataFromRnow",
        "MAIL_TRANSPORT": "none",
        "MAIL_FROM": "Override <override@directory.invalid>",
        "RECHECK_JITTER": 0.1,
        "INCLUDES": [],  # an app without the importers' commands
        "ENV": "production",
        "LOG_FORMAT": "json",
        "REGISTER_BUDGET_URL": "memory:",  # a store it knows (a URL of its own form)
        "TRUSTED_HOSTS": ["directory.example"],
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/1",
        "LOGIN_LIMIT_PER_ACCOUNT": "3 per 10 minutes",
        "CLINIC_LOOKUP_LIMIT": "12 per 2 hours",
        "LOGIN_LIMIT_PER_ADDRESS": "50 per hour",
        "REPORT_LIMIT_PER_CLIENT": "2 per day",
        "REPORT_LIMIT_SITE": "50 per hour",
        "LIVE_CHECK_LIMIT_PER_CLIENT": "3 per 10 minutes",
        "LIVE_CHECK_LIMIT_SITE": "100 per hour",
        "RATE_LIMIT_PAGES": "10 per second; 500 per minute",
        "RATE_LIMIT_API": "1000 per hour",
        "RATE_LIMIT_SEARCH": "60 per minute",
    }
    if key in special:
        value = special[key]
    elif key in DURATION_KEYS:  # halved: keeps "first <= max"-style relations true
        value = int(parse_duration(default).total_seconds() // 2)
    elif isinstance(default, bool):
        value = not default
    elif isinstance(default, int):
        value = default + 1
    elif isinstance(default, float):
        value = round(default / 2, 4) if default else 0.25
    elif key.endswith("_DIR"):
        value = str(tmp_path / f"{key.lower()}-override")
    elif key.endswith("_URL") or key.endswith("_URI"):
        value = "http://127.0.0.1:8001/override"
    elif isinstance(default, dict | list):
        value = default or {"override": True}
    else:
        value = f"override-{key.lower()}"
    text = value if isinstance(value, str) else json.dumps(value)
    return text, value


# Settings with a single valid value today: an override shows by being refused by name.
ONE_VALID_VALUE = {"SEARCH_BACKEND"}


@pytest.mark.parametrize("key", ALL_KEYS)
def test_every_setting_can_be_overridden_from_the_environment(env, key):
    if key in ONE_VALID_VALUE:
        env(key, "no-such-value")
        with pytest.raises(RuntimeError, match=key):
            create_app({"TESTING": True})
        return
    text, expected = override_for(key, env.tmp_path)
    if key == "NOTIFY_WEBHOOK_URL":  # a webhook needs its secret
        env("NOTIFY_WEBHOOK_SECRET", "override-secret")
    if key == "ENV":  # production needs a real key and the public address
        env("SECRET_KEY", "a-long-production-secret-for-tests")
        env("PUBLIC_BASE_URL", "https://directory.example.org")
    env(key, text)
    app = create_app({"TESTING": True})
    assert app.config[key] == expected
    assert app.config[key] != getattr(DefaultConfig, key)


def test_an_include_that_cannot_be_imported_fails_at_start_by_name(env):
    env("INCLUDES", '["importers", "no_such_package"]')
    with pytest.raises(RuntimeError, match=r"INCLUDES.*no_such_package"):
        create_app({"TESTING": True})


def test_the_registry_commands_that_ask_a_register_come_from_the_importers(env):
    names = lambda app: set(app.cli.commands["registry"].list_commands(None))  # noqa: E731
    assert names(create_app({"TESTING": True})) == {"import", "verify", "recheck", "show"}
    env("INCLUDES", "[]")
    assert names(create_app({"TESTING": True})) == {"show"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TRUSTED_HOSTS", '"directory.example"'),
        ("TRUSTED_HOSTS", "[1, 2]"),
        ("RATELIMIT_STORAGE_URI", "http://127.0.0.1:8001/override"),
        ("LOGIN_LIMIT_PER_ACCOUNT", "often"),
        ("LOGIN_LIMIT_PER_ADDRESS", "0 per minute"),
        ("LISTING_NAME_MATCH", "101"),
        ("CLINIC_LOOKUP_LIMIT", "many"),
    ],
)
def test_bad_account_settings_stop_start_up_by_name(env, key, value):
    env(key, value)
    with pytest.raises(RuntimeError, match=key):
        create_app({"TESTING": True})


def test_the_issues_examples_and_a_duration(env, tmp_path):
    env("SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / 'a.sqlite3'}")
    env("SECRET_KEY", "from-the-environment")
    env("SEARCH_INDEX_DIR", str(tmp_path / "idx"))
    env("HPCSA_URL", "http://127.0.0.1:9999/report")
    env("VERIFICATION_MAX_AGE", "14d")
    env("NOT_FOUND_CONFIRM_AFTER", "7200")  # a bare number: seconds (read as JSON int)
    app = create_app({"TESTING": True})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'a.sqlite3'}"
    assert app.config["SECRET_KEY"] == "from-the-environment"
    assert app.config["SEARCH_INDEX_DIR"] == str(tmp_path / "idx")
    assert app.config["HPCSA_URL"] == "http://127.0.0.1:9999/report"
    policy = RegistryPolicy.from_config(app.config)
    assert policy.verification_max_age == timedelta(days=14)
    assert policy.not_found_confirm_after == timedelta(hours=2)


def test_an_explicit_config_wins_over_the_environment(env):
    env("SECRET_KEY", "from-the-environment")
    app = create_app({"SECRET_KEY": "explicit", "TESTING": True})
    assert app.config["SECRET_KEY"] == "explicit"


def test_defaults_keep_the_database_and_index_under_instance(monkeypatch):
    for name in list(os.environ):
        if name.startswith("DIRECTORY_"):
            monkeypatch.delenv(name)
    app = create_app()
    instance = Path(app.instance_path)
    assert instance.name == "instance" and instance.is_dir()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'directory.sqlite3'}"
    assert Path(app.config["SEARCH_INDEX_DIR"]) == instance / "search-index"
    assert app.config["HPCSA_URL"].startswith("https://hpcsaonline.custhelp.com/")
    assert app.config["NOT_FOUND_CONFIRM_AFTER"] == "1h"
    assert app.config["VERIFICATION_MAX_AGE"] == "30d"


def test_the_default_policy_is_the_issues():
    policy = RegistryPolicy.from_config({k: getattr(DefaultConfig, k) for k in ALL_KEYS})
    assert policy.not_found_confirm_after == timedelta(hours=1)
    assert policy.verification_max_age == timedelta(days=30)


def test_the_duration_settings_include_the_rules():
    assert {"NOT_FOUND_CONFIRM_AFTER", "VERIFICATION_MAX_AGE"} <= set(DURATION_KEYS)


@pytest.mark.parametrize("key", DURATION_KEYS)
@pytest.mark.parametrize("bad", ["soon", "-1h", "1 fortnight", "true", "[1]"])
def test_a_bad_duration_fails_at_start_with_the_settings_name(env, key, bad):
    env(key, bad)
    with pytest.raises(RuntimeError) as caught:
        create_app({"TESTING": True})
    assert key in str(caught.value)
    assert "duration" in str(caught.value)


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("HPCSA_TIMEOUT", "slow"),
        ("HPCSA_TIMEOUT", "0"),
        ("HPCSA_URL", "not a url"),
        ("HPCSA_MAX_RESPONSE_BYTES", "-1"),
        ("RECHECK_JITTER", "1.5"),
        ("RECHECK_JITTER", "lots"),
    ],
)
def test_other_bad_register_settings_fail_at_start_with_their_name(env, key, bad):
    env(key, bad)
    with pytest.raises(RuntimeError, match=key):
        create_app({"TESTING": True})


def test_check_durations_accepts_numbers_and_timedeltas():
    config = {k: getattr(DefaultConfig, k) for k in ALL_KEYS}
    config["VERIFICATION_MAX_AGE"] = timedelta(days=3)
    config["NOT_FOUND_CONFIRM_AFTER"] = 3600
    check_durations(config)
