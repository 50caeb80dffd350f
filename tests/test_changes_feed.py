"""The public change feed: ``GET /api/v1/changes`` paged by cursor, and ``/changes.atom``."""

from __future__ import annotations

import base64
import time
import xml.etree.ElementTree as ET
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from directory.extensions import db
from directory.registry.checks import new_practitioner
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import Practitioner
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome
from directory.util.clock import utcnow

ATOM = "{http://www.w3.org/2005/Atom}"


def answer(number: str, raw_status: str, observed_at) -> LookupResult:
    row = RegisterRow(
        number, "DR", "TESTPERSON", "FICTIONAL", "PRETORIA", "0002",
        "Medical Practitioner", raw_status,
    )  # fmt: skip
    return LookupResult(number, Outcome.OK, observed_at, "test", rows=(row,))


def register(session: Session, number: str) -> None:
    """A registration the register confirmed as active two days ago (not a change)."""
    policy = RegistryPolicy.from_config(current_app.config)
    record_check(session, new_practitioner(number), answer(number, "ACTIVE",
                 utcnow() - timedelta(days=2)), policy)  # fmt: skip
    session.commit()


def change(session: Session, number: str, raw_status: str, *, commit: bool = True) -> str:
    """The register now says ``raw_status``: a change through the rules. Returns its id."""
    policy = RegistryPolicy.from_config(current_app.config)
    p = session.scalar(select(Practitioner).where(Practitioner.registration_number == number))
    effect = record_check(session, p, answer(number, raw_status, utcnow()), policy)
    assert effect.changed
    session.flush()
    event_id = effect.event.event_id
    if commit:
        session.commit()
    return event_id


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL (cursors are ids and times read back
    from the database)."""
    return either_app


def five_changes(app) -> list[str]:
    with app.app_context():
        for n in range(4):
            register(db.session, f"MP000060{n}")
        ids = [change(db.session, f"MP000060{n}", "SUSPENDED") for n in range(4)]
        ids.append(change(db.session, "MP0000600", "ACTIVE"))  # lifted again
        return ids


def test_pages_follow_the_cursor_to_the_end_and_on(app, client):
    ids = five_changes(app)
    seen, pages, since = [], [], None
    while True:
        query = {"limit": 2} | ({"since": since} if since else {})
        response = client.get("/api/v1/changes", query_string=query)
        assert response.status_code == 200
        page = response.get_json()
        pages.append([c["event_id"] for c in page["changes"]])
        seen += page["changes"]
        since = page["next"]
        if not page["has_more"]:
            break
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]
    assert [c["event_id"] for c in seen] == ids
    first = seen[0]
    assert first["registration_number"] == "MP0000600"
    assert (first["from"], first["to"]) == ("active", "suspended")
    assert first["practitioner_url"].endswith("/practitioners/MP0000600")
    assert first["occurred_at"].endswith("Z") and first["recorded_at"].endswith("Z")
    assert (seen[-1]["from"], seen[-1]["to"]) == ("suspended", "active")

    # At the end: an empty page that hands back the same cursor...
    tail = client.get("/api/v1/changes", query_string={"since": since}).get_json()
    assert tail == {"changes": [], "next": since, "has_more": False}
    # ...which later yields exactly the new changes.
    with app.app_context():
        new_id = change(db.session, "MP0000601", "ERASED")
    later = client.get("/api/v1/changes", query_string={"since": since}).get_json()
    assert [c["event_id"] for c in later["changes"]] == [new_id]
    # Any change's own cursor continues after it.
    after_third = client.get("/api/v1/changes", query_string={"since": seen[2]["cursor"]})
    assert [c["event_id"] for c in after_third.get_json()["changes"]] == [*ids[3:], new_id]


def test_an_empty_feed_has_a_starting_cursor(client):
    page = client.get("/api/v1/changes").get_json()
    assert page["changes"] == [] and page["has_more"] is False
    assert client.get("/api/v1/changes", query_string={"since": page["next"]}).status_code == 200


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        {"since": "not-a-cursor"},
        {"since": ""},
        {"since": "x" * 500},
        {"since": "🙂"},
        {"since": _b64("c1:-1:5")},
        {"since": _b64("c2:0:5")},
        {"since": _b64("c1:0:99999999999999999999")},
        {"since": _b64("c1:0:5") + "=="},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
    ],
)
def test_a_bad_cursor_or_limit_is_a_400_problem(client, query):
    response = client.get("/api/v1/changes", query_string=query)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 400
    [parameter] = list(query)
    assert problem["errors"][0]["parameter"] == parameter


def test_the_endpoint_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/changes"]["get"]
    assert {p.get("name") for p in operation["parameters"]} >= {"since", "limit"}
    assert "400" in operation["responses"]
    page_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    page_schema = spec["components"]["schemas"][page_ref.rsplit("/", 1)[1]]
    assert set(page_schema["properties"]) == {"changes", "next", "has_more"}
    change_ref = page_schema["properties"]["changes"]["items"]["$ref"]
    change_schema = spec["components"]["schemas"][change_ref.rsplit("/", 1)[1]]
    assert {"event_id", "registration_number", "from", "to", "occurred_at"} <= set(
        change_schema["properties"]
    )


def test_atom_feed_parses_and_has_the_entries(app, client):
    ids = five_changes(app)
    response = client.get("/changes.atom")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    root = ET.fromstring(response.data)
    assert root.tag == f"{ATOM}feed"
    assert root.findtext(f"{ATOM}id").startswith("urn:uuid:")
    assert root.findtext(f"{ATOM}title")
    assert root.find(f"{ATOM}author/{ATOM}name").text
    self_link = root.find(f"{ATOM}link[@rel='self']").get("href")
    assert self_link.endswith("/changes.atom")
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == [f"urn:uuid:{i}" for i in reversed(ids)]
    assert root.findtext(f"{ATOM}updated") == entries[0].findtext(f"{ATOM}updated")
    newest = entries[0]
    assert newest.findtext(f"{ATOM}title") == "MP0000600: suspended → active"
    assert newest.findtext(f"{ATOM}updated").endswith("Z")
    href = newest.find(f"{ATOM}link[@rel='alternate']").get("href")
    assert client.get(urlsplit(href).path).status_code == 200  # the practitioner's page
    assert "active" in newest.findtext(f"{ATOM}summary")

    again = client.get("/changes.atom", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    two = ET.fromstring(client.get("/changes.atom?limit=2").data)
    assert len(two.findall(f"{ATOM}entry")) == 2


def test_an_empty_atom_feed_is_still_valid(client):
    root = ET.fromstring(client.get("/changes.atom").data)
    for required in ("id", "title", "updated"):
        assert root.findtext(f"{ATOM}{required}")
    assert root.findall(f"{ATOM}entry") == []


@pytest.mark.parametrize("limit", ["0", "abc", "201", "-3"])
def test_atom_bad_limit_is_a_400(client, limit):
    response = client.get("/changes.atom", query_string={"limit": limit})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert "limit" in response.get_json()["detail"]


# SQLite only: it is about SQLite's single writer; PostgreSQL's concurrent writers are the
# next test's.
def test_a_change_committed_late_is_not_skipped_on_sqlite(sqlite_app):
    """SQLite serialises writers: a change still being written cannot be passed by a cursor."""
    client = sqlite_app.test_client()
    with sqlite_app.app_context():
        register(db.session, "MP0000700")
        register(db.session, "MP0000701")
        first = change(db.session, "MP0000700", "SUSPENDED")
        cursor = client.get("/api/v1/changes").get_json()["next"]
        with Session(db.engine) as writer:
            late = change(writer, "MP0000701", "SUSPENDED", commit=False)  # written, uncommitted
            page = client.get("/api/v1/changes", query_string={"since": cursor}).get_json()
            assert page["changes"] == [] and page["next"] == cursor
            writer.commit()
    page = client.get("/api/v1/changes", query_string={"since": cursor}).get_json()
    assert [c["event_id"] for c in page["changes"]] == [late]
    assert first != late


@pytest.mark.postgres
def test_changes_that_commit_out_of_order_are_never_skipped_on_postgresql(pg_app):
    """Transaction A writes first (smaller id) and commits last; B is withheld until A ends,
    then both come in the order their transactions began writing, and no cursor skips A."""
    client = pg_app.test_client()
    with pg_app.app_context():
        for number in ("MP0000800", "MP0000801"):
            register(db.session, number)
        with Session(db.engine) as a, Session(db.engine) as b:
            id_a = change(a, "MP0000800", "SUSPENDED", commit=False)  # a's id: the lower
            id_b = change(b, "MP0000801", "SUSPENDED")  # committed first
            page = client.get("/api/v1/changes").get_json()
            assert page["changes"] == []  # B waits for A: handing it out now could skip A
            cursor = page["next"]
            a.commit()
    deadline = time.monotonic() + 15  # another test's transaction may briefly hold it back
    while True:
        page = client.get("/api/v1/changes", query_string={"since": cursor}).get_json()
        if len(page["changes"]) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [c["event_id"] for c in page["changes"]] == [id_a, id_b]


@pytest.mark.postgres
def test_an_open_transaction_in_another_database_does_not_hold_the_feed_back(pg_app):
    """Transaction ids and the snapshot's oldest running one are the server's, not the
    database's: a transaction open elsewhere on the same server (another application's
    database, another test session's) writes nothing here and must not hold the feed back.
    One open in this database still does (the test above)."""
    psycopg = pytest.importorskip("psycopg")
    from tests.conftest import PG_ADMIN_URL

    client = pg_app.test_client()
    with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as elsewhere:
        with pg_app.app_context():
            here = db.session.scalar(text("SELECT current_database()"))
        assert elsewhere.execute("SELECT current_database()").fetchone()[0] != here
        # A writing transaction (it has an id) opened before this database's changes.
        elsewhere.execute("SELECT pg_current_xact_id()")
        ids = five_changes(pg_app)
        page = client.get("/api/v1/changes").get_json()
        atom = client.get("/changes.atom")
        elsewhere.rollback()
    assert [c["event_id"] for c in page["changes"]] == ids
    assert all(f"urn:uuid:{event_id}" in atom.get_data(as_text=True) for event_id in ids)
