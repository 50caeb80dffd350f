"""``flask search ...``: keep the index in line with the database and look at it.

Every command takes ``--json`` (one JSON object per line) and exits non-zero on trouble:
1 for drift (``check``) or a failed run, 2 when another rebuild holds the index.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.exc import OperationalError

from directory.extensions import db
from directory.listings.places import parse_coordinates
from directory.registry.verification import current_standings
from directory.search import QueryError, SearchQuery, get_index_keeper, get_search_backend
from directory.search.backend import SORT_ORDERS
from directory.search.interfaces import BuildInProgress
from directory.search.outbox import prune_outbox
from directory.util.clock import utcnow
from directory.util.durations import duration_option, parse_duration

log = logging.getLogger(__name__)

search_cli = AppGroup("search", help="The search index: sync, reindex, check, query.")


def _emit(as_json: bool, record: dict[str, Any], human: str) -> None:
    click.echo(json.dumps(record, default=str) if as_json else human)


@search_cli.command("sync")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--no-prune", is_flag=True, help="Keep outbox rows older than the retention.")
@click.option(
    "--every",
    default=None,
    help="Keep following: a pass at this interval (e.g. 2s) until SIGTERM/SIGINT, so this "
    "host's search shows other hosts' changes within seconds. Reports only passes that did "
    "something; a failed pass is logged and the next one tries again.",
)
@with_appcontext
def sync_command(as_json: bool, no_prune: bool, every: str | None) -> None:
    """Apply every pending outbox row to the index (waits for the index lock), building the
    index first when this host has none or it is behind the outbox's retention. For cron,
    or with --every as a long-running follower."""
    if every is None:
        _sync_once(as_json, no_prune, quiet=False)
        return
    interval = duration_option(every, "--every").total_seconds()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        try:
            _sync_once(as_json, no_prune, quiet=True)
        except OperationalError as exc:  # the database is down: one line a pass, the cause
            cause = str(exc.orig or exc).strip().splitlines()[0]
            log.error(
                "search sync pass failed: the database did not answer (%s); trying again in %s",
                cause,
                every,
            )
            db.session.remove()
        except Exception:
            log.exception("search sync pass failed; trying again in %s", every)
        stop.wait(interval)


def _sync_once(as_json: bool, no_prune: bool, *, quiet: bool) -> None:
    result = get_index_keeper().apply_pending(blocking=True)
    pruned = 0
    if not no_prune:
        retention = parse_duration(current_app.config["SEARCH_OUTBOX_RETENTION"])
        with db.engine.begin() as conn:
            pruned = prune_outbox(conn, utcnow() - retention)
    report = {**result.as_dict(), "pruned": pruned}
    if quiet and not (report["rows"] or pruned):
        return
    _emit(
        as_json,
        {"event": "sync", **report},
        f"{report['rows']} outbox rows applied ({report['upserted']} documents written, "
        f"{report['deleted']} removed) to {report['generation']}; "
        f"{report['pruned']} old rows pruned",
    )


@search_cli.command("reindex")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@with_appcontext
def reindex_command(as_json: bool) -> None:
    """Rebuild the index from the database into a new directory and switch to it atomically
    (searches keep being served from the old one until the switch)."""
    try:
        report = get_index_keeper().rebuild()
    except BuildInProgress as exc:
        _emit(as_json, {"event": "error", "error": str(exc)}, f"error: {exc}")
        sys.exit(2)
    _emit(
        as_json,
        {"event": "reindex", **report.as_dict()},
        f"rebuilt {report.generation}: {report.documents} documents in {report.seconds:.1f}s",
    )


@search_cli.command("check")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--fix", is_flag=True, help="Rewrite the drifting documents after reporting.")
@click.option("--show", default=20, show_default=True, help="Numbers to list per kind.")
@with_appcontext
def check_command(as_json: bool, fix: bool, show: int) -> None:
    """Report drift between database and index: missing, extra and stale documents.
    Exits 1 when there is any."""
    report = get_index_keeper().check(fix=fix)
    if as_json:
        for kind in ("missing", "extra", "stale"):
            for number in getattr(report, kind)[: max(show, 0)]:
                click.echo(json.dumps({"event": kind, "registration_number": number}))
        click.echo(json.dumps({"event": "summary", **report.as_dict(), "fixed": fix}))
    else:
        summary = report.as_dict()
        click.echo(
            f"index {summary['generation']}: {summary['documents_indexed']} documents, "
            f"database implies {summary['documents_expected']}"
        )
        for kind in ("missing", "extra", "stale"):
            numbers = getattr(report, kind)
            if numbers:
                listed = ", ".join(numbers[: max(show, 0)])
                more = f" and {len(numbers) - show} more" if len(numbers) > show else ""
                click.echo(f"  {kind}: {len(numbers)} ({listed}{more})")
        click.echo(f"  outbox rows not yet applied: {report.outbox_backlog}")
        if report.drift:
            click.echo(
                "drift found"
                + (
                    " (fixed)"
                    if fix
                    else ": run `flask search sync`, "
                    "or `flask search check --fix`, or `flask search reindex`"
                )
            )
        else:
            click.echo("no drift")
    if report.drift:
        sys.exit(1)


@search_cli.command("query")
@click.argument("text", required=False, default="")
@click.option("--place", default="", help="A town, city, suburb, province or postal code.")
@click.option("--service", default=None, help="A service slug or name.")
@click.option("--everyone", is_flag=True, help="Include practitioners not currently verified.")
@click.option("--sort", default="relevance", type=click.Choice(SORT_ORDERS))
@click.option("--near", default=None, help="Measure distances from LAT,LON.")
@click.option("--radius", default=None, type=float, help="Only clinics this many km away.")
@click.option("--page", default=1, type=int)
@click.option("--per-page", default=10, type=int)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@with_appcontext
def query_command(
    text, place, service, everyone, sort, near, radius, page, per_page, as_json
) -> None:
    """Run a search as the directory would (for operators checking relevance). Names and
    badges are the database's, as on the site; the index only chooses and orders."""
    try:
        query = SearchQuery(
            text=text, place=place, service=service, include_unverified=everyone,
            near=parse_coordinates(near) if near else None, radius_km=radius,
            sort=sort, page=page, per_page=per_page,
        )  # fmt: skip
        results = get_search_backend().search(query)
    except (QueryError, ValueError) as exc:
        _emit(as_json, {"event": "error", "error": str(exc)}, f"error: {exc}")
        sys.exit(1)
    standings = current_standings(hit.registration_number for hit in results.hits)
    for hit in results.hits:
        standing = standings.get(hit.registration_number)
        if standing is None:
            continue  # no longer in the database (the index lags a deletion), as on the site
        decided = standing.verdict
        record = {
            "event": "hit",
            "registration_number": hit.registration_number,
            "name": standing.display_name,
            "status": decided.status.value,
            "verified": decided.verified,
            "services": list(hit.services),
            "cities": sorted({c.city for c in hit.clinics}),
            "score": round(hit.score, 3),
            "distance_km": hit.distance_km,
        }
        # What the page's badge says: verified, the adverse status, or stale/pending/unknown.
        badge = decided.tone if decided.tone != "adverse" else record["status"]
        km = f"  {hit.distance_km:g} km" if hit.distance_km is not None else ""
        _emit(as_json, record, f"{hit.registration_number}  {standing.display_name}  [{badge}]  "
              f"{', '.join(record['cities'])}  {hit.score:.2f}{km}")  # fmt: skip
    summary = {
        "event": "summary",
        "total": results.total,
        "page": results.page,
        "did_you_mean": results.did_you_mean,
        "understood": results.understood,
        "origin": results.origin.label if results.origin else None,
    }
    _emit(
        as_json,
        summary,
        f"{results.total} results"
        + (f"; did you mean {results.did_you_mean!r}?" if results.did_you_mean else ""),
    )
