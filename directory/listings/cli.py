"""``flask directory ...``: the service vocabulary and clinic listings."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from directory.extensions import db
from directory.listings.services import sync_services

directory_cli = AppGroup("directory", help="The public directory: services, clinics, listings.")


@directory_cli.command("load-services")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def load_services(as_json: bool) -> None:
    """Load (or update) the service vocabulary from directory/listings/data/services.json."""
    report = sync_services()
    db.session.commit()
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    click.echo(
        f"services: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged"
    )
    for slug in report.not_in_vocabulary:
        click.echo(f"note: {slug} is in the table but no longer in the vocabulary file (kept)")
