"""Clinic accounts: sign-in, roles, clinics editing their own profile and listings (pages
under ``/account/`` and token-authenticated API endpoints), claims, moderation, audit log.

``init_app(app)`` wires it all: Flask-Login (sessions), Flask-WTF (CSRF on every form, and
on cookie-authenticated JSON writes through ``X-CSRFToken``), sign-in throttling (counted
by the site's one Flask-Limiter, ``directory.ratelimits``), the pages, the API blueprint and
``flask users``. See docs/clinics.md.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from directory.util.durations import parse_duration

csrf = CSRFProtect()


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS (or always, with
    SESSION_COOKIE_SECURE); HttpOnly and SameSite=Lax always."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        return has_request_context() and request.is_secure


def check_settings(config) -> None:
    """A bad account setting stops start-up with its name (RuntimeError)."""
    from directory.web import throttle

    def bad(key: str, why: str) -> RuntimeError:
        return RuntimeError(f"invalid setting: {key}: {why}")

    throttle.check_settings(
        config, ("LOGIN_LIMIT_PER_ACCOUNT", "LOGIN_LIMIT_PER_ADDRESS", "CLINIC_LOOKUP_LIMIT")
    )
    hosts = config.get("TRUSTED_HOSTS")
    if hosts is not None and (
        not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts)
    ):
        raise bad("TRUSTED_HOSTS", 'a list of host names, e.g. ["directory.example"]')
    match = config.get("LISTING_NAME_MATCH")
    if isinstance(match, bool) or not isinstance(match, int | float) or not 0 <= match <= 100:
        raise bad("LISTING_NAME_MATCH", "a number from 0 to 100")


def init_app(app: Flask, api) -> None:
    """Call after ``init_api`` (the clinic API joins the generated OpenAPI document) and
    ``ratelimits.init_app`` (the throttle counts through its Limiter)."""
    check_settings(app.config)
    from directory.accounts import services
    from directory.accounts.api import clinic_accounts_api
    from directory.accounts.cli import users_cli
    from directory.accounts.models import User
    from directory.accounts.text import render_description
    from directory.accounts.views import accounts, public_guard
    from directory.extensions import db

    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(
        seconds=parse_duration(app.config.get("SESSION_LIFETIME", "12h")).total_seconds()
    )
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the session's lifetime bounds it
    app.session_interface = SessionInterface()

    login = LoginManager()
    login.login_view = "accounts.login"
    login.login_message = "Please sign in to see this page."
    login.session_protection = "basic"

    @login.user_loader
    def load_user(user_id: str):
        ident, generation, key = [*(user_id or "").split(":"), "", ""][:3]
        if not ident.isdigit() or not generation.isdigit():
            return None
        user = db.session.get(User, int(ident))
        if user is None or user.session_generation != int(generation):
            return None  # signed out everywhere since this session began
        if not services.session_is_open(db.session, user, key):
            return None  # signed out of this session (a copy of its cookie stays out)
        user.session_key = key
        return user

    login.init_app(app)
    csrf.init_app(app)
    csrf.exempt(clinic_accounts_api)  # checks X-CSRFToken itself for cookie-authenticated writes
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "A clinic's API token"},
    )
    api.register_blueprint(clinic_accounts_api)
    app.register_blueprint(accounts)
    app.add_template_filter(render_description, "clinic_markdown")
    app.before_request(public_guard)
    app.cli.add_command(users_cli)
