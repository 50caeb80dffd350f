"""Accounts: creating users, signing in and out (everywhere), cookies, CSRF, throttling."""

from __future__ import annotations

import re
import uuid

import pytest

from directory.accounts.models import User
from directory.extensions import db
from tests.accounts_support import PASSWORD, csrf_of, populate, sign_in


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


@pytest.fixture
def accounts(app):
    return populate(app)


def test_users_create_from_a_script_stores_an_argon2_hash_and_the_role(app, runner, accounts):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "New@Sample-Skin.example",
            "--role",
            "clinic_staff",
            "--clinic",
            "sample-skin",
            "--password-stdin",
        ],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "new@sample-skin.example"))
        assert user.role == "clinic_staff" and user.clinic.slug == "sample-skin"
        assert user.password_hash.startswith("$argon2id$")
        assert "a long enough password" not in user.password_hash


def test_users_create_refuses_bad_input_and_changes_nothing(app, runner, accounts):
    cases = [
        ["users", "create", "x@y.example", "--role", "clinic_admin", "--password-stdin"],
        [
            "users",
            "create",
            "x@y.example",
            "--role",
            "clinic_admin",
            "--clinic",
            "nope",
            "--password-stdin",
        ],
        ["users", "create", "not-an-email", "--role", "site_admin", "--password-stdin"],
        ["users", "create", "x@y.example", "--role", "site_admin", "--password-stdin"],
    ]
    inputs = ["a long enough password\n"] * 3 + ["short\n"]
    for args, given in zip(cases, inputs, strict=True):
        result = runner.invoke(args=args, input=given)
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output
    with app.app_context():
        assert db.session.scalar(db.select(User).where(User.email == "x@y.example")) is None


def test_users_create_interactive_asks_for_the_password_twice(app, runner, accounts):
    result = runner.invoke(
        args=["users", "create", "ops2@directory.example", "--role", "site_admin"],
        input="another long password\nanother long password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Repeat for confirmation" in result.output


def test_sign_in_renews_the_session_and_sets_the_cookie_flags(client, accounts):
    client.get("/account/login")
    before = client.get_cookie("session").value
    sign_in(client, accounts.admin)
    cookie = client.get_cookie("session")
    assert cookie.value != before
    assert cookie.http_only and cookie.same_site == "Lax"
    assert not cookie.secure  # plain HTTP in this test
    assert client.get("/account/clinics/sample-skin").status_code == 200


def test_the_session_cookie_is_secure_over_https(app, accounts):
    client = app.test_client()
    page = client.get("/account/login", base_url="https://localhost")
    token = csrf_of(page.get_data(as_text=True))
    response = client.post(
        "/account/login",
        data={"email": accounts.admin, "password": PASSWORD, "csrf_token": token},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/account/login"},
    )
    assert response.status_code == 302
    set_cookie = response.headers.get("Set-Cookie")
    assert "Secure" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(client, accounts):
    answers = []
    for email, password in [(accounts.admin, "wrong password!!"), ("nobody@x.example", PASSWORD)]:
        token = csrf_of(client.get("/account/login").get_data(as_text=True))
        response = client.post(
            "/account/login", data={"email": email, "password": password, "csrf_token": token}
        )
        page = response.get_data(as_text=True).replace(email, "EMAIL")
        answers.append((response.status_code, re.sub(r'value="[^"]*"', "", page)))
    assert answers[0][0] == answers[1][0] == 401
    assert "do not match an account" in answers[0][1]
    assert answers[0][1] == answers[1][1]


def test_an_unknown_email_is_checked_against_a_hash_as_costly_as_a_real_one():  # no database
    """A sign-in for an address with no account verifies against the stand-in hash: it must
    carry the parameters new passwords are hashed with, or the two cases would differ in time
    (a library upgrade that changes them fails here: hash a new stand-in)."""
    from argon2 import extract_parameters
    from argon2.exceptions import VerifyMismatchError

    from directory.accounts import services

    real = services.hash_password("a password of a real clinic")
    assert extract_parameters(services.DUMMY_HASH) == extract_parameters(real)
    assert not services._hasher.check_needs_rehash(services.DUMMY_HASH)
    with pytest.raises(VerifyMismatchError):  # a well-formed hash that no password matches
        services._hasher.verify(services.DUMMY_HASH, "not-a-password-anyone-has")


def test_sign_in_without_a_csrf_token_is_refused(client, accounts):
    response = client.post("/account/login", data={"email": accounts.admin, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/account/clinics/sample-skin").status_code == 302  # still signed out


def test_sign_in_is_throttled_per_account_whatever_the_password(client, accounts):
    for _ in range(5):
        token = csrf_of(client.get("/account/login").get_data(as_text=True))
        response = client.post(
            "/account/login",
            data={"email": accounts.admin, "password": "wrong password!!", "csrf_token": token},
        )
        assert response.status_code == 401
    token = csrf_of(client.get("/account/login").get_data(as_text=True))
    response = client.post(
        "/account/login", data={"email": accounts.admin, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.get_data(as_text=True)
    # an unknown address is throttled exactly the same way
    for _ in range(5):
        token = csrf_of(client.get("/account/login").get_data(as_text=True))
        client.post(
            "/account/login",
            data={"email": "ghost@x.example", "password": "x" * 12, "csrf_token": token},
        )
    token = csrf_of(client.get("/account/login").get_data(as_text=True))
    response = client.post(
        "/account/login",
        data={"email": "ghost@x.example", "password": "x" * 12, "csrf_token": token},
    )
    assert response.status_code == 429


def test_sign_in_is_throttled_per_client_address(client, accounts):
    for i in range(20):
        token = csrf_of(client.get("/account/login").get_data(as_text=True))
        client.post(
            "/account/login",
            data={"email": f"guess{i}@x.example", "password": "x" * 12, "csrf_token": token},
        )
    token = csrf_of(client.get("/account/login").get_data(as_text=True))
    response = client.post(
        "/account/login", data={"email": accounts.staff, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 429


def test_sign_out_ends_the_session(client, accounts):
    token = sign_in(client, accounts.admin)
    assert client.post("/account/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/account/clinics/sample-skin").status_code == 302


def test_sign_out_everywhere_ends_every_session_of_the_user(app, accounts):
    laptop, phone = app.test_client(), app.test_client()
    token = sign_in(laptop, accounts.admin)
    sign_in(phone, accounts.admin)
    assert phone.get("/account/clinics/sample-skin").status_code == 200
    # a copy of the phone's cookie, as a thief would keep it
    stolen = phone.get_cookie("session").value
    assert laptop.post("/account/logout-everywhere", data={"csrf_token": token}).status_code == 302
    assert phone.get("/account/clinics/sample-skin").status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/account/clinics/sample-skin").status_code == 302


def test_with_redis_the_throttle_is_shared_by_every_worker(same_db_config):
    """Two app instances (two gunicorn workers, or two hosts) count failures together."""
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    from directory import create_app

    config = {**same_db_config, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"}
    workers = [create_app(config), create_app(config)]
    # fresh keys (account and client address): runs never share counts in Redis
    email = f"guess-{uuid.uuid4().hex}@x.example"
    address = "10.{}.{}.{}".format(*uuid.uuid4().bytes[:3])
    answers = []
    for attempt in range(6):
        client = workers[attempt % 2].test_client()
        client.environ_base["REMOTE_ADDR"] = address
        token = csrf_of(client.get("/account/login").get_data(as_text=True))
        response = client.post(
            "/account/login", data={"email": email, "password": "x" * 12, "csrf_token": token}
        )
        answers.append(response.status_code)
    assert answers == [401] * 5 + [429]


def test_a_stranger_asking_for_resets_never_locks_the_owner_out(client, accounts):
    """Reset requests are throttled apart from sign-ins: five resets asked for someone's
    address leave their own sign-in working."""
    for _ in range(6):
        token = csrf_of(client.get("/account/reset").get_data(as_text=True))
        client.post("/account/reset", data={"email": accounts.admin, "csrf_token": token})
    token = csrf_of(client.get("/account/login").get_data(as_text=True))
    response = client.post(
        "/account/login", data={"email": accounts.admin, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
