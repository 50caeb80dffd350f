"""Shared set-up for the clinic-account tests: an app whose register look-up is the live
client pointed at the fake iRegister (a real HTTP server), two clinics with listings, and a
user of each role; helpers to sign in and read CSRF tokens from pages."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Flask
from flask.testing import FlaskClient

from directory.accounts import services as svc
from directory.extensions import db
from directory.listings.imports import import_listing_records
from directory.listings.models import Clinic
from directory.registry.checks import new_practitioner
from directory.registry.live import install_live_lookup
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import record_check
from importers.sources.hpcsa import HpcsaClient

PASSWORD = "correct horse battery staple"
CLINICS = [
    {
        "clinic": {
            "name": "Sample Skin Clinic",
            "slug": "sample-skin",
            "city": "Cape Town",
            "province": "Western Cape",
            "email": "front-desk@sample-skin.example",
            "phone": "021 555 0101",
        },
        "listings": [{"registration_number": "MP0000101", "services": ["mesotherapy"]}],
    },
    {
        "clinic": {
            "name": "Other Aesthetics",
            "slug": "other-aesthetics",
            "city": "Durban",
            "province": "KwaZulu-Natal",
            "email": "hello@other.example",
        },
        "listings": [{"registration_number": "MP0000102", "services": ["botulinum-toxin"]}],
    },
]


@dataclass
class Accounts:
    admin: str = "admin@sample-skin.example"
    staff: str = "staff@sample-skin.example"
    other_admin: str = "admin@other.example"
    site_admin: str = "ops@directory.example"


def install_fake_register(app: Flask) -> None:
    def lookup(number: str):
        client = HpcsaClient.from_config(app.config)
        try:
            return client.lookup(number)
        finally:
            client.close()

    install_live_lookup(app, lookup)


def register_numbers(app: Flask, numbers: list[str]) -> None:
    """Record the fake register's answers for ``numbers`` (as `flask registry verify` would)."""
    policy = RegistryPolicy.from_config(app.config)
    client = HpcsaClient.from_config(app.config)
    try:
        for number in numbers:
            practitioner = new_practitioner(number)
            record_check(db.session, practitioner, client.lookup(number), policy)
        db.session.commit()
    finally:
        client.close()


def populate(app: Flask, *, users: bool = True) -> Accounts:
    install_fake_register(app)
    accounts = Accounts()
    with app.app_context():
        register_numbers(app, ["MP0000101", "MP0000102"])
        report = import_listing_records(db.session, CLINICS)
        assert not report.errors, report.errors
        db.session.commit()
        if users:
            sample = db.session.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
            other = db.session.scalar(db.select(Clinic).where(Clinic.slug == "other-aesthetics"))
            svc.create_user(db.session, accounts.admin, PASSWORD, "clinic_admin", sample)
            svc.create_user(db.session, accounts.staff, PASSWORD, "clinic_staff", sample)
            svc.create_user(db.session, accounts.other_admin, PASSWORD, "clinic_admin", other)
            svc.create_user(db.session, accounts.site_admin, PASSWORD, "site_admin")
            db.session.commit()
    return accounts


_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns a CSRF token of the new session."""
    token = csrf_of(client.get("/account/login").get_data(as_text=True))
    response = client.post(
        "/account/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return csrf_of(client.get("/account/login").get_data(as_text=True))


def page_token(client: FlaskClient, path: str) -> str:
    return csrf_of(client.get(path).get_data(as_text=True))
