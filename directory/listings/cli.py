"""``flask directory ...``: the service vocabulary and clinic listings."""

from __future__ import annotations

import json
import sys

import click
from flask.cli import AppGroup

from directory.extensions import db
from directory.listings.imports import (
    UnreadableListings,
    import_listing_lines,
    iter_problems,
    read_listing_lines,
)
from directory.listings.vocabulary import service_terms, sync_services

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


@directory_cli.command("services")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per service.")
def list_services(as_json: bool) -> None:
    """List the service vocabulary: slugs, names and the synonyms an import accepts."""
    for service in service_terms():
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "slug": service.slug,
                        "name": service.name,
                        "description": service.description,
                        "synonyms": list(service.synonyms),
                    },
                    ensure_ascii=False,
                )
            )
        else:
            click.echo(f"{service.slug:<26} {service.name}  ({', '.join(service.synonyms)})")


@directory_cli.command("import-listings")
@click.argument("path", type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "--prune",
    is_flag=True,
    help="Also remove each clinic's listings that its line no longer names.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per problem, then a summary."
)
def import_listings(path: str, prune: bool, as_json: bool) -> None:
    """Import clinics and their listings from a JSON Lines file (one clinic per line).

    Bad lines and listings are reported with their line number and skipped; the rest is
    imported. Re-running the same file changes nothing. Exit status: 0 all imported,
    1 some rejected, 2 the file is not JSON Lines at all (nothing changed).
    """
    try:
        lines = read_listing_lines(path)
    except UnreadableListings as exc:
        if as_json:
            click.echo(json.dumps({"type": "error", "reason": str(exc), "exit_code": 2}))
        else:
            click.echo(f"error: {exc}; nothing was imported", err=True)
        sys.exit(2)
    try:
        report = import_listing_lines(db.session, lines, prune=prune)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    for problem in iter_problems(report):
        click.echo(json.dumps(problem.as_dict(), ensure_ascii=False) if as_json else str(problem))
    summary = report.summary()
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"{summary['lines']} lines: clinics {summary['clinics_created']} created, "
            f"{summary['clinics_updated']} updated, {summary['clinics_unchanged']} unchanged, "
            f"{summary['clinics_skipped']} skipped (claimed); "
            f"listings {summary['listings_created']} created, {summary['listings_updated']} "
            f"updated, {summary['listings_unchanged']} unchanged, "
            f"{summary['listings_removed']} removed; rejected: {summary['lines_rejected']} "
            f"lines, {summary['listings_rejected']} listings; {summary['warnings']} warnings"
        )
    sys.exit(report.exit_code)
