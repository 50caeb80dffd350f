"""``flask demo load``: the fictional demo data, so that ``make run`` shows a living directory."""

from __future__ import annotations

import json
import sys

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import OperationalError, ProgrammingError

from directory.demo.generator import demo_clinic_records, demo_practitioners
from directory.demo.loader import load_demo
from directory.extensions import db
from directory.registry.policy import RegistryPolicy

demo_cli = AppGroup("demo", help="Fictional demo data.")


@demo_cli.command("load")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per problem, then a summary."
)
def load(as_json: bool) -> None:
    """Load the fictional demo data: practitioners, clinics, listings, services.

    Registrations go through the registry rules and clinics through the listings import.
    Running it again changes nothing (``make run`` runs it on every start).
    """
    policy = RegistryPolicy.from_config(current_app.config)
    try:
        report = load_demo(db.session, policy)
        db.session.commit()
    except (OperationalError, ProgrammingError) as exc:
        db.session.rollback()
        message = (
            "the database is not ready (run `flask db upgrade` first): "
            f"{str(exc.orig).splitlines()[0]}"
        )
        if as_json:
            click.echo(json.dumps({"type": "error", "reason": message, "exit_code": 2}))
        else:
            click.echo(f"error: {message}", err=True)
        sys.exit(2)
    for problem in report.listings.errors:
        click.echo(json.dumps(problem.as_dict()) if as_json else str(problem))
    summary = report.summary()
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"demo data (fictional): practitioners {summary['practitioners_created']} created, "
            f"{summary['practitioners_refreshed']} refreshed, "
            f"{summary['practitioners_unchanged']} unchanged; "
            f"clinics {summary['clinics_created']} created, {summary['clinics_unchanged']} "
            f"unchanged; listings {summary['listings_created']} created, "
            f"{summary['listings_unchanged']} unchanged"
        )
    sys.exit(1 if report.listings.errors else 0)


@demo_cli.command("export-clinics")
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=str))
def export_clinics(path: str) -> None:
    """Write the demo clinics and listings as a JSON Lines file (the import-listings format).

    A worked example of the format; import it with ``flask directory import-listings PATH``
    once the demo registrations are loaded.
    """
    records = demo_clinic_records(demo_practitioners())
    with open(path, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    click.echo(f"wrote {len(records)} fictional clinics to {path}")
