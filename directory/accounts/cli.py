"""``flask users create EMAIL --role ROLE [--clinic SLUG] [--password-stdin]``."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from directory.accounts import services as svc
from directory.accounts.models import Role
from directory.extensions import db


@click.group("users", help="Accounts of clinic users and site admins (docs/clinics.md).")
def users_cli() -> None:
    pass


@users_cli.command("create")
@click.argument("email")
@click.option(
    "--role",
    required=True,
    type=click.Choice([role.value for role in Role]),
    help="clinic_admin or clinic_staff (with --clinic), or site_admin",
)
@click.option("--clinic", "clinic_slug", help="the clinic's slug (clinic roles only)")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="read the password from the first line of standard input (for scripts)",
)
@with_appcontext
def create_command(email: str, role: str, clinic_slug: str | None, password_stdin: bool) -> None:
    """Create an account. Without --password-stdin the password is asked for twice."""
    clinic = None
    if clinic_slug:
        try:
            clinic = svc.find_clinic(db.session, clinic_slug)
        except svc.NotFound:
            click.echo(f"error: no clinic has the slug {clinic_slug!r}", err=True)
            raise SystemExit(2) from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = svc.create_user(db.session, email, password, role, clinic)
        db.session.commit()
    except svc.Invalid as exc:
        db.session.rollback()
        for field, message in exc.errors.items():
            click.echo(f"error: {field}: {message}", err=True)
        raise SystemExit(2) from None
    where = f" at {clinic.slug}" if clinic else ""
    click.echo(f"created {user.email} ({user.role}{where})")
