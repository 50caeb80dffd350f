"""Issue 9, hole 3: the order of answers survives clock skew between hosts.

The hosts that record answers (web workers, recheck runs, operators' ``verify``) may have
clocks up to ``CLOCK_SKEW`` (5 minutes) apart. An answer that does not say "active" (adverse,
not found, unreadable) dated up to that much before an "active" belief is not discarded as
stale: it takes effect (a not-found goes pending), and the number is looked up again within
``CLOCK_SKEW``. ``verdict``'s own tolerance is the same constant.

First the pure rule (``checks.decide``) at the margin, then the issue's scenario with two
real ``flask registry verify`` processes whose clocks differ (libfaketime), on SQLite and
PostgreSQL, against the fake iRegister on loopback. All data is fictional.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from config.settings import DefaultConfig
from directory.extensions import db
from directory.registry import checks, policy, verification
from directory.registry.checks import Belief, decide
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import Practitioner, StatusEvent, VerificationCheck
from directory.registry.policy import CLOCK_SKEW, RegistryPolicy
from directory.registry.recording import apply_answer
from directory.registry.statuses import Outcome
from directory.registry.verification import verdict
from tests.test_recheck_support import FLASK, ROOT, subprocess_env

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NUMBER = "MP0000101"
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
DEFAULTS = {k: getattr(DefaultConfig, k) for k in dir(DefaultConfig) if k.isupper()}
POLICY = RegistryPolicy.from_config(DEFAULTS)
MAX_AGE = POLICY.verification_max_age


def ok(*statuses: str, at: datetime) -> LookupResult:
    rows = tuple(
        RegisterRow(NUMBER, "DR", "FICTIONAL", "THANDI", "DURBAN", "4001", f"CATEGORY {i}", s)
        for i, s in enumerate(statuses)
    )
    return LookupResult(NUMBER, Outcome.OK, at, "test-register", rows=rows, digest="d" * 64)


def not_found(at: datetime) -> LookupResult:
    return LookupResult(NUMBER, Outcome.NOT_FOUND, at, "test-register", digest="e" * 64)


def error(at: datetime) -> LookupResult:
    return LookupResult(NUMBER, Outcome.ERROR, at, "test-register", error="HTTP 500")


def active_belief(at: datetime) -> Belief:
    """A registration the register confirmed as active at ``at`` (days after an earlier
    confirmation, so nothing about it is 'recently changed')."""
    first = decide(None, ok("ACTIVE", at=at - 20 * 24 * 60 * MINUTE), POLICY, now=at)
    return decide(first.after, ok("ACTIVE", at=at), POLICY, now=at).after


def verified(belief: Belief, now: datetime) -> bool:
    return verdict(SimpleNamespace(**belief.values()), now=now, max_age_=MAX_AGE).verified


# --- the pure rule ---------------------------------------------------------------------------


def test_the_issue_scenario_a_suspension_recorded_by_a_correct_clock_takes_effect():
    """Host A's clock runs 4 min fast: it records ACTIVE at T0 (stamped T0+4m). 30 s later
    host B, whose clock is right, records SUSPENDED (stamped T0+30s)."""
    belief = active_belief(T0 + 4 * MINUTE)
    now_b = T0 + 30 * SECOND
    assert verified(belief, now_b)  # what patients saw before B's answer

    decision = decide(belief, ok("SUSPENDED", at=now_b), POLICY, now=now_b, rng=random.Random(1))

    assert decision.effect == "changed" and decision.event_due
    assert decision.after.status == "suspended" and decision.copy_register_facts
    assert not verified(decision.after, now_b)
    assert not verified(decision.after, now_b + 10 * MINUTE)
    # soon: within CLOCK_SKEW, not the week an active registration waits
    assert decision.after.next_check_at <= now_b + CLOCK_SKEW
    # the history row keeps the answer's own time; the belief never goes back in time
    assert decision.observed_at == now_b
    assert decision.after.as_of == belief.as_of


@pytest.mark.parametrize(
    "earlier", [30 * SECOND, 4 * MINUTE + 59 * SECOND, 5 * MINUTE], ids=["30s", "4m59s", "5m"]
)
@pytest.mark.parametrize("answer", ["SUSPENDED", "ERASED", "DECEASED", "INACTIVE", "ODD"])
def test_a_not_active_answer_up_to_the_margin_older_takes_effect(earlier, answer):
    """Adverse, inactive or unreadable: any answer that withholds "verified"."""
    belief = active_belief(T0)
    now = T0 + 10 * SECOND
    decision = decide(belief, ok(answer, at=T0 - earlier), POLICY, now=now)
    assert decision.effect == "changed"
    assert decision.after.status == ("unknown" if answer == "ODD" else answer.lower())
    assert not verified(decision.after, now)
    assert decision.after.next_check_at <= now + CLOCK_SKEW


def test_a_not_found_up_to_the_margin_older_moves_to_pending_not_discarded():
    belief = active_belief(T0)
    now = T0 + 10 * SECOND
    decision = decide(belief, not_found(T0 - 4 * MINUTE - 59 * SECOND), POLICY, now=now)
    assert decision.effect == "pending_not_found"
    assert decision.after.status == "active"  # kept, as for any first not-found...
    assert decision.after.not_found_pending_since is not None
    assert not verified(decision.after, now)  # ...but no longer vouched for
    assert decision.after.next_check_at <= now + CLOCK_SKEW
    # the confirmation still needs a second not-found NOT_FOUND_CONFIRM_AFTER later
    early = decide(decision.after, not_found(now + MINUTE), POLICY, now=now + MINUTE)
    assert early.effect == "pending_not_found" and early.after.status == "active"
    pending = decision.after.not_found_pending_since
    later = pending + POLICY.not_found_confirm_after
    confirmed = decide(early.after, not_found(later), POLICY, now=later)
    assert confirmed.effect == "changed" and confirmed.after.status == "not_found"


@pytest.mark.parametrize(
    "result",
    [
        lambda at: ok("SUSPENDED", at=at),
        not_found,
        lambda at: ok("ODD", at=at),
    ],
    ids=["suspended", "not_found", "unreadable"],
)
def test_older_than_the_margin_stays_stale(result):
    belief = active_belief(T0)
    decision = decide(belief, result(T0 - CLOCK_SKEW - SECOND), POLICY, now=T0 + SECOND)
    assert decision.effect == "ignored_stale"
    assert decision.after == belief


def test_an_older_active_answer_within_the_margin_stays_stale():
    """Only an answer that withholds "verified" is let through: an older "active" never
    lifts anything, however close it is."""
    first = decide(None, ok("ACTIVE", at=T0 - 20 * 24 * 60 * MINUTE), POLICY, now=T0)
    suspended = decide(first.after, ok("SUSPENDED", at=T0), POLICY, now=T0).after
    for belief in (suspended, active_belief(T0)):
        decision = decide(belief, ok("ACTIVE", at=T0 - 30 * SECOND), POLICY, now=T0)
        assert decision.effect == "ignored_stale" and decision.after == belief


def test_an_older_adverse_answer_within_the_margin_does_not_overturn_another_adverse_one():
    """Between two answers that both withhold "verified", the order by time still holds."""
    first = decide(None, ok("ACTIVE", at=T0 - 20 * 24 * 60 * MINUTE), POLICY, now=T0)
    suspended = decide(first.after, ok("SUSPENDED", at=T0), POLICY, now=T0).after
    decision = decide(suspended, ok("ERASED", at=T0 - MINUTE), POLICY, now=T0)
    assert decision.effect == "ignored_stale" and decision.after.status == "suspended"


def test_errors_are_still_never_answers():
    belief = active_belief(T0)
    decision = decide(belief, error(T0 - MINUTE), POLICY, now=T0 + SECOND)
    assert decision.effect == "no_effect"
    for name in ("status", "verified_at", "status_as_of", "not_found_pending_since"):
        assert getattr(decision.after, name) == getattr(belief, name)


SKEW_SECONDS = int(CLOCK_SKEW.total_seconds())


@settings(max_examples=300, deadline=None)
@given(
    fast_by=st.integers(0, SKEW_SECONDS),  # how far the first host's clock runs ahead
    gap=st.integers(0, 600),  # real seconds between the two answers
    answer=st.sampled_from(["SUSPENDED", "ERASED", "INACTIVE", "DECEASED", "ODD", None]),
)
def test_a_later_answer_that_withholds_verified_always_wins_within_the_skew(fast_by, gap, answer):
    """Whatever the skew (up to CLOCK_SKEW) and the gap: after an "active" from a fast host
    and a later answer that is not "active" from a correct one, nobody is told "verified"."""
    fast = active_belief(T0 + fast_by * SECOND)  # recorded at real T0
    now = T0 + gap * SECOND
    result = not_found(now) if answer is None else ok(answer, at=now)
    decision = decide(fast, result, POLICY, now=now)
    assert decision.effect != "ignored_stale"
    assert not verified(decision.after, now)


def test_one_skew_constant_for_the_rules_and_the_verdict():
    assert checks.CLOCK_SKEW is policy.CLOCK_SKEW is verification.CLOCK_SKEW
    assert timedelta(minutes=5) <= CLOCK_SKEW
    confirmed = SimpleNamespace(status="active", verified_at=T0, not_found_pending_since=None)
    assert verdict(confirmed, now=T0 - CLOCK_SKEW, max_age_=MAX_AGE).verified
    assert not verdict(confirmed, now=T0 - CLOCK_SKEW - SECOND, max_age_=MAX_AGE).verified


# --- two processes whose clocks differ ---------------------------------------------------------

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def verify_process(app, fake, tmp_path, *, clock_offset: str | None = None) -> dict:
    """``flask registry verify NUMBER --json`` in its own process; with ``clock_offset``
    (libfaketime's syntax, e.g. ``+4m``) its clock runs that far from the real one."""
    env = subprocess_env(app.config["SQLALCHEMY_DATABASE_URI"], fake.url, tmp_path)
    # This test is about the order of answers: each process paces itself. (A register budget
    # kept in a SQLite file reads each process's own clock, as one host's processes share
    # one; on PostgreSQL it reads the server's clock. A faked clock would make the other
    # process wait for a start booked minutes ahead.)
    env["DIRECTORY_REGISTER_BUDGET_URL"] = "memory:"
    if clock_offset is not None:
        env.update(
            LD_PRELOAD=str(LIBFAKETIME),
            FAKETIME=clock_offset,
            FAKETIME_DONT_FAKE_MONOTONIC="1",
            FAKETIME_NO_CACHE="1",
        )
    done = subprocess.run(
        [str(FLASK), "registry", "verify", NUMBER, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    (result,) = [line for line in lines if line["type"] == "result"]
    return result


@pytest.mark.slow
@pytest.mark.skipif(not LIBFAKETIME.exists(), reason="libfaketime is not installed")
def test_a_host_four_minutes_fast_does_not_hide_a_suspension_recorded_30s_later(
    db_app, fake_iregister, tmp_path
):
    app, register = db_app, fake_iregister.register
    with app.app_context():  # confirmed active weeks ago: a settled registration
        first = ok("ACTIVE", at=datetime.now(UTC) - timedelta(days=20))
        first = LookupResult(NUMBER, Outcome.OK, first.observed_at, "test", rows=first.rows)
        apply_answer(db.session, NUMBER, first, POLICY)
        db.session.commit()

    fast = verify_process(app, fake_iregister, tmp_path, clock_offset="+4m")
    assert fast["status"] == "active" and fast["verified"] is True
    stamped = datetime.fromisoformat(fast["checked_at"])
    assert stamped - datetime.now(UTC) > 3 * MINUTE  # the fast clock really was fast
    answered = time.monotonic()

    register.set_status(NUMBER, "SUSPENDED")
    time.sleep(max(0.0, 30 - (time.monotonic() - answered)))
    correct = verify_process(app, fake_iregister, tmp_path)
    checked = datetime.fromisoformat(correct["checked_at"])

    assert correct["status"] == "suspended" and correct["effect"] == "changed"
    assert correct["verified"] is False and correct["raw_status"] == "SUSPENDED"
    with app.app_context():
        p = db.session.scalar(select(Practitioner).filter_by(registration_number=NUMBER))
        assert p.status == "suspended" and not verdict(p).verified
        assert [(c.raw_status, c.status) for c in p.categories] == [("SUSPENDED", "suspended")]
        assert p.next_check_at - checked <= CLOCK_SKEW + MINUTE  # soon, not in a week
        latest = db.session.scalars(
            select(VerificationCheck).order_by(VerificationCheck.id.desc())
        ).first()
        assert (latest.effect, latest.status) == ("changed", "suspended")
        events = db.session.scalars(select(StatusEvent)).all()
        assert [(e.from_status, e.to_status) for e in events] == [("active", "suspended")]
