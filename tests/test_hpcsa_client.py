"""The iRegister client over real HTTP against the fake register on loopback.

Both clients (``HpcsaClient`` and ``AsyncHpcsaClient``) run every test. No transport is
mocked: each look-up is a real POST to ``tests/fake_iregister.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import select

from directory.extensions import db
from directory.registry.checks import Belief, new_practitioner
from directory.registry.lookups import LookupResult
from directory.registry.models import Practitioner, VerificationCheck
from directory.registry.numbers import RegistrationNumberError
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome
from directory.registry.verification import verdict
from directory.util.clock import utcnow
from importers.sources.base import RegisterSource, source_for_app
from importers.sources.hpcsa import (
    MAX_RETRY_AFTER,
    AsyncHpcsaClient,
    HpcsaClient,
    HpcsaSettings,
    parse_retry_after,
)

CONTACT = "https://example.org/hpcsa-directory/contact-for-tests"


def client_config(url: str, **overrides) -> dict:
    return {
        "HPCSA_URL": url,
        "HPCSA_TIMEOUT": 2.0,
        "CONTACT_URL": CONTACT,
        **overrides,
    }


@pytest.fixture(params=["sync", "async"])
def lookup(request, fake_iregister):
    """``lookup(number, **settings)``: one look-up through the sync or the async client."""

    def run(number: str, **overrides) -> LookupResult:
        config = client_config(fake_iregister.url, **overrides)
        if request.param == "sync":
            with HpcsaClient.from_config(config) as client:
                return client.lookup(number)

        async def go() -> LookupResult:
            async with AsyncHpcsaClient.from_config(config) as client:
                return await client.lookup(number)

        return asyncio.run(go())

    run.kind = request.param
    return run


@pytest.fixture
def register(fake_iregister):
    return fake_iregister.register


# --- the request ----------------------------------------------------------------------------


def test_posts_the_search_forms_fields_with_the_canonical_number(lookup, register):
    lookup("mp 101")
    (request,) = register.requests
    assert request.body == (
        "regNumber=MP0000101&firstName=&surName=&city=&postalCode=&register=&category="
    )
    assert request.fields == {
        "regNumber": "MP0000101", "firstName": "", "surName": "", "city": "",
        "postalCode": "", "register": "", "category": "",
    }  # fmt: skip
    assert request.content_type.startswith("application/x-www-form-urlencoded")


def test_user_agent_names_the_service_and_the_contact_url(lookup, register):
    lookup("MP0000101")
    (request,) = register.requests
    assert request.user_agent.startswith("hpcsa-directory/")
    assert CONTACT in request.user_agent


@pytest.mark.parametrize("kind", [HpcsaClient, AsyncHpcsaClient])
def test_timeouts_are_set_from_the_settings(kind, fake_iregister):
    client = kind.from_config(client_config(fake_iregister.url, HPCSA_TIMEOUT=3.5))
    timeout = client._http.timeout
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (3.5, 3.5, 3.5, 3.5)
    assert client.settings.deadline == 7.0
    if kind is HpcsaClient:
        client.close()
    else:
        asyncio.run(client.aclose())


def test_one_request_per_look_up_and_no_retries(lookup, register):
    register.fail_next("500")
    assert lookup("MP0000101").outcome is Outcome.ERROR
    assert len(register.requests) == 1


def test_a_number_that_cannot_be_one_raises_before_any_request(lookup, register):
    with pytest.raises(RegistrationNumberError):
        lookup("MP12A45")
    assert register.requests == []


def test_the_configured_source_is_the_iregister_client(app, fake_iregister):
    source = source_for_app(app)
    try:
        assert isinstance(source, RegisterSource) and isinstance(source, HpcsaClient)
        assert source.settings.url == fake_iregister.url
        assert source.lookup("DP0000201").outcome is Outcome.OK
    finally:
        source.close()


# --- the answer -----------------------------------------------------------------------------


def test_an_answer_is_read_by_heading(lookup):
    before = utcnow()
    result = lookup("MP0000101")
    assert result.outcome is Outcome.OK and result.is_answer
    (row,) = result.rows
    assert row.registration_number == "MP0000101"  # canonical, from "MP   0000101"
    assert (row.title, row.surname, row.full_names) == ("DR", "FICTIONAL-NDLOVU", "THANDI EXAMPLE")
    assert (row.city, row.postal_code) == ("JOHANNESBURG", "2001")
    assert (row.category, row.status) == ("INDEPENDENT PRACTICE", "ACTIVE")
    assert result.source == "hpcsa-iregister" and result.http_status == 200
    assert result.error is None and not result.transient
    assert len(result.digest) == 64 and result.duration_ms >= 0
    assert before <= result.observed_at <= utcnow()


def test_the_digest_is_of_the_bytes_the_register_sent(lookup, fake_iregister):
    import httpx

    body = httpx.post(fake_iregister.url, data={"regNumber": "MP0000101"}).content
    assert lookup("MP0000101").digest == hashlib.sha256(body).hexdigest()


def test_every_category_row_is_kept_in_the_registers_order(lookup):
    result = lookup("MP0000102")
    assert [(r.category, r.status) for r in result.rows] == [
        ("INDEPENDENT PRACTICE", "ACTIVE"),
        ("PUBLIC SERVICE", "INACTIVE"),
        ("INTERN", "ERASED - NON PAYMENT"),
    ]


@pytest.mark.parametrize(
    "variant",
    [
        "shuffled_headers",  # header objects listed out of order, `order` true
        "reordered_columns",  # values in another column order, described by `order`
        "plain_headers",  # ["Title", "Surname", ...]
        "plain_headers_reordered",  # plain strings, in another order, rows to match
        "no_headers",  # the documented order
        "json_labelled_html",  # a good report whatever the Content-Type says
    ],
)
def test_answer_shapes_that_mean_the_same_read_the_same(lookup, register, variant):
    plain = lookup("MP0000102")
    register.fail_next(variant)
    varied = lookup("MP0000102")
    assert varied.outcome is Outcome.OK, varied.error
    assert varied.rows == plain.rows


@pytest.mark.parametrize("variant", [None, "missing_data", "null_data"])
def test_missing_or_empty_data_is_not_found(lookup, register, variant):
    number = "MP0000101" if variant else "MP0999999"  # the latter is not in the register
    if variant:
        register.fail_next(variant)
    result = lookup(number)
    assert result.outcome is Outcome.NOT_FOUND and result.is_answer
    assert result.rows == () and result.error is None


# --- every fault is an error, never an answer ---------------------------------------------

FAULTS = {
    # fault: (text in the error, transient)
    "500": ("HTTP 500", True),
    "429": ("HTTP 429", True),
    "invalid_json": ("not JSON", True),
    "empty_body": ("not JSON", True),
    "html_200": ("HTML page", True),
    "drop": ("connection failed", True),
    "404": ("HTTP 404", False),
    "error_field": ("the register reported an error: Report could not be generated", False),
    "not_json_object": ("not an object", False),
    "no_report_keys": ("neither 'data' nor 'headers'", False),
    "data_not_list": ("'data' is not a list", False),
    "missing_column": ("missing column(s): status", False),
    "wrong_number": ("row 0 is for MP9999999, not the number asked for (MP0000101)", False),
    "truncated": ("truncated", False),
    "total_mismatch": ("counts 2 row(s) but sent 1", False),
    "cell_object": ("status is a JSON dict, not text", False),
    "duplicate_order": ("share position 7", False),
    "oversized": ("larger than 1000000 bytes", False),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_is_an_error_outcome(lookup, register, fault):
    register.fail_next(fault)
    result = lookup("MP0000101")
    text, transient = FAULTS[fault]
    assert result.outcome is Outcome.ERROR and not result.is_answer
    assert text in result.error
    assert result.transient is transient
    assert result.rows == ()
    assert result.registration_number == "MP0000101"


def test_latency_beyond_the_timeout_is_an_error(lookup, register):
    register.latency = 1.5
    result = lookup("MP0000101", HPCSA_TIMEOUT=0.3)
    assert result.outcome is Outcome.ERROR and result.transient
    assert result.error.startswith("timed out")
    assert result.duration_ms < 1500  # it gave up, it did not wait for the answer


def test_latency_within_the_timeout_is_fine(lookup, register):
    register.latency = 0.2
    assert lookup("MP0000101", HPCSA_TIMEOUT=2.0).outcome is Outcome.OK


def test_a_body_trickling_in_is_cut_off_at_the_deadline(lookup, register):
    """Each piece arrives within the read timeout, the whole never does: the deadline ends it."""
    register.slow_body_delay = 0.25
    register.fail_next("slow_body")
    result = lookup("MP0000101", HPCSA_TIMEOUT=0.4)
    assert result.outcome is Outcome.ERROR and result.transient
    assert "took longer than 0.8s" in result.error


def test_a_register_that_does_not_answer_at_all_is_an_error(lookup):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = {"HPCSA_URL": f"http://127.0.0.1:{port}/x", "HPCSA_TIMEOUT": 1.0}
    if lookup.kind == "sync":
        with HpcsaClient.from_config({**client_config(""), **config}) as client:
            result = client.lookup("MP0000101")
    else:

        async def go():
            async with AsyncHpcsaClient.from_config({**client_config(""), **config}) as client:
                return await client.lookup("MP0000101")

        result = asyncio.run(go())
    assert result.outcome is Outcome.ERROR and result.transient
    assert result.error.startswith("connection failed")


def test_429_retry_after_in_seconds(lookup, register):
    register.retry_after = "120"
    register.fail_next("429")
    result = lookup("MP0000101")
    assert result.outcome is Outcome.ERROR and result.http_status == 429
    assert result.retry_after == 120.0


def test_429_retry_after_as_an_http_date(lookup, register):
    register.retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    register.fail_next("429")
    result = lookup("MP0000101")
    assert 80 <= result.retry_after <= 90


def test_500_without_retry_after(lookup, register):
    register.fail_next("500")
    assert lookup("MP0000101").retry_after is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0", 0.0),
        ("5", 5.0),
        (" 30 ", 30.0),
        ("99999999", MAX_RETRY_AFTER),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
        ("Wed, 21 Oct 2015 07:28:00 -0000", 0.0),  # a "-0000" date parses naive
        ("", None),
        (None, None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("inf", None),
        ("nan", None),
        ("1e9", None),
    ],
)
def test_retry_after_is_read_safely(header, seconds):
    assert parse_retry_after(header) == seconds


def test_retry_after_date_in_the_future():
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(minutes=10), usegmt=True)
    assert parse_retry_after(header, now=now) == 600.0


# --- through record_check, no fault moves a status -------------------------------------------


def test_no_fault_moves_a_status_through_record_check(app, lookup, register, policy, subtests):
    """Every fault, one after another on one verified practitioner (one app: quick)."""
    with app.app_context():
        p = new_practitioner("MP0000105")
        record_check(db.session, p, lookup("MP0000105"), policy)  # ACTIVE + SUSPENDED rows
        db.session.commit()
        assert p.status == "suspended"
        for fault in [*sorted(FAULTS), "latency", "slow_body"]:
            with subtests.test(fault=fault):
                register.latency = 0.0
                register.set_status("MP0000105", "ACTIVE")
                record_check(db.session, p, lookup("MP0000105"), policy)
                db.session.commit()
                assert p.status == "active" and verdict(p).verified
                before = Belief.of(p)
                categories = [(c.category, c.raw_status) for c in p.categories]

                # were the fault misread as an answer, the status would move to suspended
                register.set_status("MP0000105", "SUSPENDED")
                if fault == "latency":
                    register.latency = 1.0
                    result = lookup("MP0000105", HPCSA_TIMEOUT=0.3)
                elif fault == "slow_body":
                    register.slow_body_delay = 0.2
                    register.fail_next("slow_body")
                    result = lookup("MP0000105", HPCSA_TIMEOUT=0.3)
                else:
                    register.fail_next(fault)
                    result = lookup("MP0000105")
                effect = record_check(db.session, p, result, policy)
                db.session.commit()

                assert result.outcome is Outcome.ERROR and effect.effect == "no_effect"
                after = Belief.of(p)
                for name in ("status", "status_as_of", "verified_at", "not_found_pending_since"):
                    assert getattr(after, name) == getattr(before, name), name
                assert [(c.category, c.raw_status) for c in p.categories] == categories
                assert after.consecutive_failures == 1 and after.last_outcome == "error"
                assert verdict(p).verified
                last = db.session.scalars(
                    select(VerificationCheck).order_by(VerificationCheck.id.desc())
                ).first()
                assert last.outcome == "error" and last.error == result.error


def test_an_answer_after_a_fault_applies_normally(app, lookup, register, policy):
    with app.app_context():
        p = new_practitioner("MP0000101")
        register.fail_next("html_200")
        record_check(db.session, p, lookup("MP0000101"), policy)
        record_check(db.session, p, lookup("MP0000101"), policy)
        db.session.commit()
        stored = db.session.scalar(select(Practitioner))
        assert stored.status == "active" and stored.consecutive_failures == 0
        assert verdict(stored).verified


# --- the async client's pool ---------------------------------------------------------------


def test_the_async_client_runs_look_ups_concurrently_on_one_pool(fake_iregister):
    register = fake_iregister.register
    numbers = register.generate(12, start=500)
    register.latency = 0.2

    async def go():
        async with AsyncHpcsaClient.from_config(
            client_config(fake_iregister.url), max_connections=4
        ) as client:
            return await asyncio.gather(*(client.lookup(n) for n in numbers))

    results = asyncio.run(go())
    assert [r.outcome for r in results] == [Outcome.OK] * 12
    assert [r.registration_number for r in results] == numbers
    arrivals = sorted(r.at for r in register.requests)
    # 4 connections: 12 requests come in 3 waves, never more than 4 at once
    assert arrivals[3] - arrivals[0] < 0.15
    assert arrivals[4] - arrivals[0] >= 0.15


def test_settings_are_checked(fake_iregister):
    with pytest.raises(ValueError, match="HPCSA_TIMEOUT"):
        HpcsaSettings.from_config(client_config(fake_iregister.url, HPCSA_TIMEOUT="soon"))
    with pytest.raises(ValueError, match="HPCSA_TIMEOUT"):
        HpcsaSettings.from_config(client_config(fake_iregister.url, HPCSA_TIMEOUT=0))
    with pytest.raises(ValueError, match="HPCSA_URL"):
        HpcsaSettings.from_config(client_config("ftp://127.0.0.1/x"))
    with pytest.raises(ValueError, match="HPCSA_MAX_RESPONSE_BYTES"):
        HpcsaSettings.from_config(
            client_config(fake_iregister.url, HPCSA_MAX_RESPONSE_BYTES="lots")
        )
