"""The four rules of issue 3, through ``record_check`` (ORM) and ``decide`` (pure).

1. errors never move a status or ``verified_at``;
2. a not-found after a confirmation waits for a second one NOT_FOUND_CONFIRM_AFTER later;
3. verified = active and confirmed within VERIFICATION_MAX_AGE, else "not verified since";
4. several category rows combine into one status (``statuses.combine``).
Plus: stale answers change nothing, the history is append-only, events only for real changes,
and next_check_at follows the policy.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from config.settings import DefaultConfig
from directory import create_app
from directory.extensions import db
from directory.registry.checks import Belief, decide, new_practitioner
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import (
    HistoryIsAppendOnly,
    Practitioner,
    RegistrationCategory,
    StatusEvent,
    VerificationCheck,
)
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import record_check
from directory.registry.statuses import Outcome, Status
from directory.registry.verification import is_verified, verdict

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NUMBER = "MP0000101"
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

DEFAULTS = {k: getattr(DefaultConfig, k) for k in dir(DefaultConfig) if k.isupper()}
POLICY = RegistryPolicy.from_config(DEFAULTS)


# --- building answers ----------------------------------------------------------------------


def ok(
    *statuses: str,
    at: datetime,
    number: str = NUMBER,
    categories: tuple[str, ...] | None = None,
    source: str = "test-register",
    surname: str = "FICTIONAL-NDLOVU",
) -> LookupResult:
    statuses = statuses or ("ACTIVE",)
    categories = categories or tuple(f"CATEGORY {i}" for i in range(len(statuses)))
    rows = tuple(
        RegisterRow(number, "DR", surname, "THANDI EXAMPLE", "JOHANNESBURG", "2001", cat, status)
        for cat, status in zip(categories, statuses, strict=True)
    )
    return LookupResult(number, Outcome.OK, at, source, rows=rows, digest="d" * 64, duration_ms=12)


def not_found(at: datetime, number: str = NUMBER, source: str = "test-register") -> LookupResult:
    return LookupResult(number, Outcome.NOT_FOUND, at, source, digest="e" * 64, duration_ms=9)


ERROR_KINDS = {
    "timeout": "timed out: ReadTimeout",
    "connection": "connection failed: ConnectError",
    "http_500": "HTTP 500 from the register",
    "http_429": "HTTP 429: the register is rate-limiting us",
    "not_json": "the register's answer is not JSON",
    "json_error": "unusable answer: the register reported an error: Report failed",
    "shape": "unusable answer: the answer is a JSON list, not an object",
    "html": "the register answered with an HTML page, not data",
    "wrong_number": "unusable answer: row 0 is for MP9999999, not the number asked for",
    "missing_column": "unusable answer: missing column(s): status",
}


def error(
    at: datetime, kind: str = "timeout", number: str = NUMBER, retry_after: float | None = None
) -> LookupResult:
    return LookupResult(
        number,
        Outcome.ERROR,
        at,
        "test-register",
        error=ERROR_KINDS[kind],
        duration_ms=2000,
        transient=True,
        retry_after=retry_after,
    )


# --- the database side -------------------------------------------------------------------


@pytest.fixture(scope="module")
def rules_app(tmp_path_factory, module_database_url):
    """One app for the module per database, SQLite then PostgreSQL (no register is called
    here): fast."""
    path = tmp_path_factory.mktemp("rules")
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": module_database_url,
            "SEARCH_INDEX_DIR": str(path / "index"),
            "HPCSA_URL": "http://127.0.0.1:9/not-called",
        }
    )
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(rules_app):
    """Overrides conftest's ``app``: the module's app, on empty tables. The history tables'
    guards refuse deleting their rows, even here: SQLite's tables are made afresh, and
    PostgreSQL's emptied with TRUNCATE (which fires no row trigger; the guards stay)."""
    with rules_app.app_context():
        if db.engine.dialect.name == "postgresql":
            tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.session.commit()
        else:
            db.drop_all()
            db.create_all()
    return rules_app


@pytest.fixture
def session(app):
    with app.app_context():
        yield db.session
        db.session.rollback()
        db.session.remove()


def check(session, result: LookupResult, *, now: datetime | None = None, policy=POLICY):
    """Record one answer for its number (creating the practitioner on first sight); commit."""
    p = session.scalar(
        select(Practitioner).where(Practitioner.registration_number == result.registration_number)
    )
    p = p or new_practitioner(result.registration_number)
    effect = record_check(
        session, p, result, policy, now=now or result.observed_at, rng=random.Random(7)
    )
    session.commit()
    return p, effect


def snapshot(p: Practitioner) -> dict:
    """The belief and the register facts: what no error or stale answer may touch."""
    return {
        **Belief.of(p).values(),
        "raw_status": p.raw_status,
        "surname": p.surname,
        "category": p.category,
        "categories": [(c.category, c.raw_status, c.status) for c in p.categories],
    }


def history(session, number: str = NUMBER) -> list[VerificationCheck]:
    return list(
        session.scalars(
            select(VerificationCheck)
            .join(Practitioner)
            .where(Practitioner.registration_number == number)
            .order_by(VerificationCheck.id)
        )
    )


def events(session, number: str = NUMBER) -> list[StatusEvent]:
    return list(
        session.scalars(
            select(StatusEvent)
            .where(StatusEvent.registration_number == number)
            .order_by(StatusEvent.id)
        )
    )


# --- rule 1: errors never move a status ----------------------------------------------------


def _reach(session, state: str) -> Practitioner:
    """A practitioner in one of the states an error may meet."""
    if state == "never_answered":
        p, _ = check(session, error(T0))
    elif state == "active":
        p, _ = check(session, ok("ACTIVE", at=T0))
    elif state == "suspended":
        p, _ = check(session, ok("SUSPENDED", at=T0))
    elif state == "pending_not_found":
        check(session, ok("ACTIVE", at=T0))
        p, _ = check(session, not_found(T0 + HOUR))
        assert p.not_found_pending_since is not None
    elif state == "not_found":
        p, _ = check(session, not_found(T0))
    elif state == "stale_active":
        p, _ = check(session, ok("ACTIVE", at=T0 - 40 * DAY), now=T0)
    else:  # pragma: no cover
        raise AssertionError(state)
    return p


@pytest.mark.parametrize("kind", sorted(ERROR_KINDS))
@pytest.mark.parametrize(
    "state",
    ["never_answered", "active", "suspended", "pending_not_found", "not_found", "stale_active"],
)
def test_an_error_never_changes_status_or_verified_at(session, state, kind):
    p = _reach(session, state)
    before = snapshot(p)
    verdict_before = verdict(p, now=T0 + 2 * HOUR)
    failures = p.consecutive_failures
    checks_before = len(history(session))
    events_before = len(events(session))

    _, effect = check(session, error(T0 + 2 * HOUR, kind), now=T0 + 2 * HOUR)

    after = snapshot(p)
    for key in (
        "status", "status_as_of", "status_changed_at", "verified_at", "not_found_pending_since",
        "raw_status", "surname", "category", "categories",
    ):  # fmt: skip
        assert after[key] == before[key], key
    assert effect.effect == "no_effect" and not effect.changed
    assert p.consecutive_failures == failures + 1
    assert p.last_outcome == "error"
    assert p.last_checked_at == T0 + 2 * HOUR
    assert verdict(p, now=T0 + 2 * HOUR) == verdict_before
    rows = history(session)
    assert len(rows) == checks_before + 1
    assert rows[-1].outcome == "error" and rows[-1].error == ERROR_KINDS[kind]
    assert rows[-1].status is None and rows[-1].effect == "no_effect"
    assert len(events(session)) == events_before


def test_a_long_run_of_errors_keeps_a_verified_practitioner_until_the_window_ends(session):
    check(session, ok("ACTIVE", at=T0))
    for minutes in range(1, 40):
        p, _ = check(session, error(T0 + minutes * HOUR, "http_500"))
    assert p.consecutive_failures == 39
    assert p.status == "active" and p.verified_at == T0
    assert verdict(p, now=T0 + 29 * DAY).verified  # still within 30 days of the confirmation
    assert not verdict(p, now=T0 + 30 * DAY).verified  # errors never extend the window


def test_an_answer_after_errors_resets_the_failure_count(session):
    check(session, ok("ACTIVE", at=T0))
    check(session, error(T0 + HOUR))
    p, _ = check(session, error(T0 + 2 * HOUR))
    assert p.consecutive_failures == 2
    p, _ = check(session, ok("ACTIVE", at=T0 + 3 * HOUR))
    assert p.consecutive_failures == 0 and p.last_outcome == "ok"
    assert p.verified_at == T0 + 3 * HOUR


# --- rule 2: a not-found after a confirmation waits for a second one ------------------------


def test_a_not_found_after_a_confirmation_is_pending(session):
    check(session, ok("ACTIVE", at=T0))
    p, effect = check(session, not_found(T0 + DAY))
    assert effect.effect == "pending_not_found" and not effect.changed
    assert p.status == "active"  # kept...
    assert p.not_found_pending_since == T0 + DAY  # ...marked pending confirmation
    assert p.verified_at == T0
    assert p.categories and p.raw_status == "ACTIVE"
    v = verdict(p, now=T0 + DAY)
    assert not v.verified and v.tone == "pending"
    assert v.headline.startswith("Not verified since 2 March 2026")
    assert events(session) == []
    assert history(session)[-1].effect == "pending_not_found"
    assert history(session)[-1].status == "not_found"


def test_a_second_not_found_too_early_stays_pending(session):
    check(session, ok("ACTIVE", at=T0))
    check(session, not_found(T0 + DAY))
    p, effect = check(session, not_found(T0 + DAY + HOUR - timedelta(seconds=1)))
    assert effect.effect == "pending_not_found"
    assert p.status == "active" and p.not_found_pending_since == T0 + DAY  # the first one
    assert not is_verified(p, now=T0 + DAY + HOUR)
    assert events(session) == []


def test_a_second_not_found_confirm_after_later_takes_effect(session):
    check(session, ok("ACTIVE", "INACTIVE", at=T0))
    check(session, not_found(T0 + DAY))
    p, effect = check(session, not_found(T0 + DAY + HOUR))  # exactly "at least" one hour
    assert effect.effect == "changed" and effect.changed
    assert p.status == "not_found"
    assert p.status_changed_at == T0 + DAY + HOUR
    assert p.not_found_pending_since is None
    assert p.verified_at == T0  # when the register last confirmed it: kept for the record
    assert p.categories == [] and p.raw_status is None  # the register lists no rows now
    assert p.surname == "FICTIONAL-NDLOVU"  # who it was stays known
    (event,) = events(session)
    assert (event.from_status, event.to_status) == ("active", "not_found")
    assert event.occurred_at == T0 + DAY + HOUR
    v = verdict(p, now=T0 + DAY + HOUR)
    assert not v.verified and v.tone == "adverse"


def test_an_answer_between_the_two_not_founds_clears_the_pending_state(session):
    check(session, ok("ACTIVE", at=T0))
    check(session, not_found(T0 + DAY))
    p, effect = check(session, ok("ACTIVE", at=T0 + DAY + 10 * 60 * timedelta(seconds=1)))
    assert effect.effect == "unchanged"
    assert p.not_found_pending_since is None
    assert is_verified(p, now=T0 + DAY + HOUR)
    # a later not-found starts a new wait instead of confirming the old one
    p, effect = check(session, not_found(T0 + DAY + 2 * HOUR))
    assert effect.effect == "pending_not_found" and p.status == "active"
    assert p.not_found_pending_since == T0 + DAY + 2 * HOUR


def test_errors_between_the_two_not_founds_neither_clear_nor_confirm(session):
    check(session, ok("ACTIVE", at=T0))
    check(session, not_found(T0 + DAY))
    p, _ = check(session, error(T0 + DAY + 2 * HOUR))
    assert p.not_found_pending_since == T0 + DAY and p.status == "active"
    p, effect = check(session, not_found(T0 + DAY + 3 * HOUR))
    assert effect.effect == "changed" and p.status == "not_found"


def test_not_found_confirm_after_is_a_setting(session):
    policy = replace(POLICY, not_found_confirm_after=DAY)
    check(session, ok("ACTIVE", at=T0), policy=policy)
    check(session, not_found(T0 + HOUR), policy=policy)
    p, effect = check(session, not_found(T0 + 3 * HOUR), policy=policy)
    assert effect.effect == "pending_not_found"
    p, effect = check(session, not_found(T0 + HOUR + DAY), policy=policy)
    assert effect.effect == "changed" and p.status == "not_found"


def test_a_suspended_registration_also_waits_before_not_found(session):
    check(session, ok("SUSPENDED", at=T0))
    p, effect = check(session, not_found(T0 + HOUR))
    assert effect.effect == "pending_not_found" and p.status == "suspended"


def test_an_ok_without_rows_is_a_not_found_and_waits_like_one(session):
    """A source bug (``ok`` with no rows) must not slip past the confirmation rule."""
    check(session, ok("ACTIVE", at=T0))
    empty = LookupResult(NUMBER, Outcome.OK, T0 + HOUR, "test-register", rows=())
    p, effect = check(session, empty)
    assert effect.effect == "pending_not_found" and p.status == "active"
    assert p.categories  # the register's rows are kept until a not-found takes effect


def test_a_result_for_another_number_is_refused(session):
    p, _ = check(session, ok("ACTIVE", at=T0))
    before = snapshot(p)
    with pytest.raises(ValueError, match="MP0000999"):
        record_check(session, p, ok("SUSPENDED", at=T0 + HOUR, number="MP0000999"), POLICY)
    session.rollback()
    assert snapshot(p) == before and len(history(session)) == 1


def test_a_not_found_for_a_number_never_confirmed_takes_effect_at_once(session):
    p, effect = check(session, not_found(T0))
    assert effect.effect == "created" and p.status == "not_found"
    assert p.not_found_pending_since is None and p.verified_at is None
    assert events(session) == []  # a first sighting is not a change


def test_a_not_found_after_only_errors_takes_effect_at_once(session):
    check(session, error(T0))
    p, effect = check(session, not_found(T0 + HOUR))
    assert p.status == "not_found" and effect.effect == "unchanged"
    assert events(session) == []  # unknown (never answered) -> not_found is a first answer


def test_repeated_not_founds_after_confirmation_raise_no_new_events(session):
    check(session, ok("ACTIVE", at=T0))
    check(session, not_found(T0 + HOUR))
    check(session, not_found(T0 + 2 * HOUR))
    p, effect = check(session, not_found(T0 + 3 * HOUR))
    assert effect.effect == "unchanged" and p.status == "not_found"
    assert len(events(session)) == 1


# --- rule 3: verified only while active and recently confirmed ------------------------------


def test_verified_while_active_and_younger_than_the_max_age(session):
    p, _ = check(session, ok("ACTIVE", at=T0))
    max_age = POLICY.verification_max_age
    assert max_age == timedelta(days=30)
    v = verdict(p, now=T0)
    assert v.verified and v.tone == "verified" and v.badge == "green"
    assert v.headline == "Registered with the HPCSA: active, last confirmed today"
    assert v.not_verified_since is None
    assert verdict(p, now=T0 + DAY).headline.endswith("last confirmed 1 day ago")
    assert verdict(p, now=T0 + max_age - timedelta(microseconds=1)).verified


def test_not_verified_from_the_max_age_on_and_says_since_when(session):
    p, _ = check(session, ok("ACTIVE", at=T0))
    for later in (POLICY.verification_max_age, POLICY.verification_max_age + DAY, 400 * DAY):
        v = verdict(p, now=T0 + later)
        assert not v.verified and v.tone == "stale" and v.badge == "amber"
        assert v.headline == "Not verified since 2 March 2026"
        assert v.not_verified_since == "Not verified since 2 March 2026"
        assert "verified" not in v.headline.lower().replace("not verified", "")


def test_the_max_age_comes_from_the_settings(app, session, monkeypatch):
    p, _ = check(session, ok("ACTIVE", at=T0))
    monkeypatch.setitem(app.config, "VERIFICATION_MAX_AGE", "2d")
    assert verdict(p, now=T0 + DAY).verified
    assert not verdict(p, now=T0 + 2 * DAY).verified


@pytest.mark.parametrize(
    ("raw", "status", "tone"),
    [
        ("SUSPENDED", "suspended", "adverse"),
        ("ERASED", "erased", "adverse"),
        ("INACTIVE", "inactive", "adverse"),
        ("DECEASED", "deceased", "adverse"),
        ("SOMETHING NEW", "unknown", "unknown"),
    ],
)
def test_a_fresh_answer_that_is_not_active_is_never_verified(session, raw, status, tone):
    p, _ = check(session, ok(raw, at=T0))
    v = verdict(p, now=T0)
    assert p.status == status and not v.verified and v.tone == tone
    assert v.not_verified_since == "Not verified since 2 March 2026"
    assert p.verified_at == T0  # the register did answer; it just did not say "active"


def test_never_answered_is_never_verified(session):
    p, _ = check(session, error(T0))
    v = verdict(p, now=T0)
    assert not v.verified and v.headline == "Not verified"
    assert v.not_verified_since == "Never verified"


def test_a_status_no_rule_writes_reads_as_unknown():
    p = SimpleNamespace(status="ACTIVE ", verified_at=T0, not_found_pending_since=None)
    v = verdict(p, now=T0, max_age_=DAY)
    assert not v.verified and v.status is Status.UNKNOWN


def test_a_confirmation_dated_in_the_future_does_not_verify():
    p = SimpleNamespace(status="active", verified_at=T0 + DAY, not_found_pending_since=None)
    assert not verdict(p, now=T0, max_age_=30 * DAY).verified
    p.verified_at = T0 + timedelta(minutes=1)  # clock skew is tolerated
    assert verdict(p, now=T0, max_age_=30 * DAY).verified


def test_an_answer_dated_in_the_future_counts_as_given_now(session):
    p, _ = check(session, ok("ACTIVE", at=T0 + 300 * DAY), now=T0)
    assert p.verified_at == T0 and p.status_as_of == T0
    assert history(session)[-1].checked_at == T0
    assert not verdict(p, now=T0 + 31 * DAY).verified


# --- rule 4: several category rows -----------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "status", "verified"),
    [
        (("ACTIVE", "INACTIVE"), "active", True),
        (("INACTIVE", "ACTIVE"), "active", True),
        (("ACTIVE", "SUSPENDED"), "suspended", False),
        (("ACTIVE", "INACTIVE", "ERASED - NON PAYMENT"), "erased", False),
        (("ACTIVE", "SOMETHING NEW"), "unknown", False),
        (("INACTIVE", "INACTIVE"), "inactive", False),
        (("DECEASED", "SUSPENDED"), "deceased", False),
    ],
)
def test_several_category_rows_combine_and_every_row_is_kept(session, rows, status, verified):
    cats = tuple(f"CATEGORY {i}" for i in range(len(rows)))
    p, _ = check(session, ok(*rows, at=T0, categories=cats))
    assert p.status == status
    assert verdict(p, now=T0).verified is verified
    assert [(c.category, c.raw_status, c.position) for c in p.categories] == [
        (cat, raw, i) for i, (cat, raw) in enumerate(zip(cats, rows, strict=True))
    ]
    assert p.raw_status == " / ".join(rows)
    assert p.category == cats[0]
    assert history(session)[-1].raw_status == " / ".join(rows)
    assert history(session)[-1].status == status


def test_category_rows_follow_the_latest_answer(session):
    check(session, ok("ACTIVE", "INACTIVE", "SUSPENDED", at=T0, categories=("A", "B", "C")))
    p, effect = check(session, ok("ACTIVE", "INACTIVE", at=T0 + DAY, categories=("B", "D")))
    assert [(c.category, c.status) for c in p.categories] == [("B", "active"), ("D", "inactive")]
    assert p.status == "active" and effect.effect == "changed"
    assert session.scalar(select(func.count()).select_from(RegistrationCategory)) == 2


def test_a_category_the_register_repeats_keeps_every_rows_status(session):
    p, _ = check(
        session, ok("ACTIVE", "SUSPENDED", at=T0, categories=("INDEPENDENT", "INDEPENDENT"))
    )
    (cat,) = p.categories
    assert cat.raw_status == "ACTIVE / SUSPENDED" and cat.status == "suspended"
    assert p.status == "suspended"


def test_register_values_longer_than_the_columns_are_clipped_not_fatal(session):
    long = "X" * 500
    result = LookupResult(
        NUMBER,
        Outcome.OK,
        T0,
        "s" * 300,
        rows=(RegisterRow(NUMBER, long, long, long, long, long, long, "ACTIVE " + long),),
    )
    p, _ = check(session, result)
    assert p.status == "unknown"  # "ACTIVE XXX..." is not a string the mapping knows
    assert len(p.postal_code) == 10 and len(p.categories[0].category) == 120
    assert len(history(session)[-1].source) == 200


# --- stale answers change nothing ------------------------------------------------------------


def test_an_answer_older_than_the_current_belief_changes_nothing(session):
    p, _ = check(session, ok("ACTIVE", at=T0 + 5 * DAY))
    before = snapshot(p)
    checks_before = len(history(session))
    p, effect = check(
        session,
        ok("SUSPENDED", at=T0, surname="FICTIONAL-OLD NAME", source="snapshot:old.csv"),
        now=T0 + 6 * DAY,
    )
    assert effect.effect == "ignored_stale" and not effect.changed
    assert snapshot(p) == before  # not even last_checked_at or next_check_at
    assert events(session) == []
    rows = history(session)
    assert len(rows) == checks_before + 1
    assert rows[-1].effect == "ignored_stale" and rows[-1].checked_at == T0
    assert rows[-1].status == "suspended"  # what that old answer said, for the record


def test_a_stale_not_found_changes_nothing(session):
    p, _ = check(session, ok("ACTIVE", at=T0 + DAY))
    before = snapshot(p)
    p, effect = check(session, not_found(T0), now=T0 + 2 * DAY)
    assert effect.effect == "ignored_stale" and snapshot(p) == before


def test_an_answer_older_than_a_second_early_not_found_does_not_clear_it(session):
    """Not-found at T+1d, again at T+1d+40m (too early to confirm); then an "active" dated
    T+1d+20m arrives (an old snapshot): the register's newest word is still "not found"."""
    check(session, ok("ACTIVE", at=T0))
    check(session, not_found(T0 + DAY))
    p, _ = check(session, not_found(T0 + DAY + 40 * MINUTE))
    before = snapshot(p)
    p, effect = check(session, ok("ACTIVE", at=T0 + DAY + 20 * MINUTE), now=T0 + DAY + HOUR)
    assert effect.effect == "ignored_stale"
    assert snapshot(p) == before and p.not_found_pending_since == T0 + DAY
    assert not verdict(p, now=T0 + DAY + HOUR).verified


def test_an_answer_older_than_a_pending_not_found_does_not_clear_it(session):
    check(session, ok("ACTIVE", at=T0))
    p, _ = check(session, not_found(T0 + 2 * DAY))
    before = snapshot(p)
    p, effect = check(session, ok("ACTIVE", at=T0 + DAY), now=T0 + 3 * DAY)
    assert effect.effect == "ignored_stale"
    assert snapshot(p) == before and p.not_found_pending_since == T0 + 2 * DAY


def test_an_answer_as_old_as_the_belief_is_applied_again_harmlessly(session):
    check(session, ok("ACTIVE", at=T0))
    p, effect = check(session, ok("ACTIVE", at=T0), now=T0 + HOUR)
    assert effect.effect == "unchanged" and p.verified_at == T0


# --- the history is append-only --------------------------------------------------------------


def test_every_check_appends_one_history_row(session):
    results = [
        error(T0 - HOUR, "http_429", retry_after=60),
        ok("ACTIVE", "INACTIVE", at=T0),
        not_found(T0 + HOUR),
        ok("ACTIVE", at=T0 - DAY),  # stale
        not_found(T0 + 3 * HOUR),
    ]
    for result in results:
        check(session, result, now=max(result.observed_at, T0 + 3 * HOUR))
    rows = history(session)
    assert [r.outcome for r in rows] == ["error", "ok", "not_found", "ok", "not_found"]
    assert [r.effect for r in rows] == [
        "no_effect", "unchanged", "pending_not_found", "ignored_stale", "changed",
    ]  # fmt: skip
    assert [r.checked_at for r in rows] == [r.observed_at for r in results]
    assert all(r.recorded_at == T0 + 3 * HOUR for r in rows)
    assert rows[0].error and rows[0].duration_ms == 2000 and rows[0].response_digest is None
    assert rows[1].raw_status == "ACTIVE / INACTIVE" and rows[1].status == "active"
    assert rows[1].response_digest == "d" * 64 and rows[1].duration_ms == 12
    assert rows[1].source == "test-register" and rows[1].error is None
    assert rows[2].status == "not_found" and rows[2].raw_status is None


@pytest.fixture
def recorded(session):
    check(session, ok("ACTIVE", at=T0))
    check(session, ok("SUSPENDED", at=T0 + DAY))
    assert len(history(session)) == 2 and len(events(session)) == 1
    return session


@pytest.mark.parametrize("model", [VerificationCheck, StatusEvent])
def test_history_rows_cannot_be_updated(recorded, model):
    row = recorded.scalars(select(model)).first()
    row.source = "rewritten"
    with pytest.raises(HistoryIsAppendOnly):
        recorded.flush()
    recorded.rollback()
    assert recorded.scalars(select(model)).first().source == "test-register"


@pytest.mark.parametrize("model", [VerificationCheck, StatusEvent])
def test_history_rows_cannot_be_deleted(recorded, model):
    row = recorded.scalars(select(model)).first()
    recorded.delete(row)
    with pytest.raises(HistoryIsAppendOnly):
        recorded.flush()
    recorded.rollback()
    assert recorded.scalar(select(func.count()).select_from(model)) >= 1


@pytest.mark.parametrize("model", [VerificationCheck, StatusEvent])
def test_history_rows_cannot_be_bulk_rewritten(recorded, model):
    count = recorded.scalar(select(func.count()).select_from(model))
    with pytest.raises(HistoryIsAppendOnly):
        recorded.execute(update(model).values(source="rewritten"))
    with pytest.raises(HistoryIsAppendOnly):
        recorded.execute(delete(model))
    with pytest.raises(HistoryIsAppendOnly):
        recorded.query(model).delete()
    recorded.rollback()
    assert recorded.scalar(select(func.count()).select_from(model)) == count
    assert set(recorded.scalars(select(model.source))) == {"test-register"}


HISTORY_MODELS = (VerificationCheck, StatusEvent)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE verification_checks SET source = 'rewritten'",
        "DELETE FROM verification_checks",
        "UPDATE status_events SET to_status = 'active'",
        "DELETE FROM status_events",
        "DELETE FROM practitioners",  # the foreign key would cascade to the history
    ],
)
def test_raw_sql_cannot_rewrite_or_delete_history(recorded, statement):
    """Out of the ORM's reach, the database's own triggers refuse it."""
    before = [recorded.scalar(select(func.count()).select_from(m)) for m in HISTORY_MODELS]
    with pytest.raises(DBAPIError, match="never"):
        recorded.execute(text(statement))
    recorded.rollback()
    assert [recorded.scalar(select(func.count()).select_from(m)) for m in HISTORY_MODELS] == before
    assert set(recorded.scalars(select(VerificationCheck.source))) == {"test-register"}


def test_other_tables_can_still_be_bulk_updated(recorded):
    recorded.execute(update(Practitioner).values(lease_owner=None))
    recorded.rollback()


# --- status events ---------------------------------------------------------------------------


def test_status_events_only_for_real_changes(session):
    check(session, ok("ACTIVE", at=T0))  # first sighting
    check(session, ok("ACTIVE", at=T0 + DAY))  # unchanged
    check(session, error(T0 + 2 * DAY))  # error
    check(session, ok("SUSPENDED", at=T0 + 3 * DAY))  # change
    check(session, ok("SUSPENDED", "INACTIVE", at=T0 + 4 * DAY))  # same combined status
    check(session, ok("NEW WORDING", at=T0 + 5 * DAY))  # suspended -> unknown
    check(session, ok("ACTIVE", at=T0 + 6 * DAY))  # unknown -> active
    evs = events(session)
    assert [(e.from_status, e.to_status) for e in evs] == [
        ("active", "suspended"),
        ("suspended", "unknown"),
        ("unknown", "active"),
    ]
    assert [e.occurred_at for e in evs] == [T0 + 3 * DAY, T0 + 5 * DAY, T0 + 6 * DAY]
    assert all(uuid.UUID(e.event_id) for e in evs)
    assert len({e.event_id for e in evs}) == 3
    assert all(e.practitioner.registration_number == NUMBER for e in evs)


def test_first_sighting_raises_no_event_whatever_the_status(session):
    for i, raw in enumerate(["ACTIVE", "SUSPENDED", "ERASED", "DECEASED", "ODD"]):
        number = f"MP{i + 1:07d}"
        _, effect = check(session, ok(raw, at=T0, number=number))
        assert effect.effect == "created" and effect.event is None
    assert session.scalar(select(func.count()).select_from(StatusEvent)) == 0


def test_the_check_effect_reports_what_happened(session):
    _, effect = check(session, ok("ACTIVE", at=T0))
    assert (effect.from_status, effect.to_status, effect.outcome) == (None, "active", Outcome.OK)
    _, effect = check(session, ok("ACTIVE", "MYSTERY", at=T0 + DAY))
    assert effect.from_status == "active" and effect.to_status == "unknown"
    assert effect.unknown_raw_statuses == ("MYSTERY",) and effect.changed


# --- next_check_at ---------------------------------------------------------------------------


def test_next_check_for_an_active_registration_is_about_a_week(session):
    p, _ = check(session, ok("ACTIVE", at=T0))  # a first sighting: not "recently changed"
    assert T0 + 7 * DAY * 0.8 <= p.next_check_at <= T0 + 7 * DAY * 1.2


def test_next_check_is_daily_for_thirty_days_after_a_change(session):
    check(session, ok("ACTIVE", at=T0))
    p, _ = check(session, ok("SUSPENDED", at=T0 + DAY))
    assert p.next_check_at == T0 + 2 * DAY
    p, _ = check(session, ok("SUSPENDED", at=T0 + 20 * DAY))
    assert p.next_check_at == T0 + 21 * DAY
    p, _ = check(session, ok("SUSPENDED", at=T0 + 32 * DAY))
    assert p.next_check_at == T0 + 39 * DAY  # weekly once the change is a month old


def test_next_check_for_not_found_is_monthly(session):
    p, _ = check(session, not_found(T0))
    assert p.next_check_at == T0 + 30 * DAY


def test_next_check_for_a_pending_not_found_is_when_it_can_be_confirmed(session):
    check(session, ok("ACTIVE", at=T0))
    p, _ = check(session, not_found(T0 + DAY))
    assert p.next_check_at == T0 + DAY + HOUR
    p, _ = check(session, not_found(T0 + DAY + 20 * 60 * timedelta(seconds=1)))
    assert p.next_check_at == T0 + DAY + HOUR  # too early: same moment still


def test_errors_back_off_doubling_up_to_a_day(session):
    check(session, ok("ACTIVE", at=T0))
    waits = []
    now = T0
    for _ in range(9):
        now = now + HOUR
        p, _ = check(session, error(now))
        waits.append(p.next_check_at - now)
    minutes = [w.total_seconds() / 60 for w in waits]
    assert minutes == [15, 30, 60, 120, 240, 480, 960, 1440, 1440]


def test_errors_back_off_even_while_a_not_found_is_pending(session):
    check(session, ok("ACTIVE", at=T0))
    check(session, not_found(T0 + DAY))
    now = T0 + DAY + 5 * HOUR  # past the confirmation moment
    p, _ = check(session, error(now))
    assert p.next_check_at == now + timedelta(minutes=15)  # not "now", again and again


def test_retry_after_from_the_register_is_honoured_up_to_the_backoff_cap(session):
    check(session, ok("ACTIVE", at=T0))
    p, _ = check(session, error(T0 + HOUR, "http_429", retry_after=3 * 3600))
    assert p.next_check_at == T0 + 4 * HOUR
    p, _ = check(session, error(T0 + 2 * HOUR, "http_429", retry_after=10 * 86400))
    assert p.next_check_at == T0 + 2 * HOUR + DAY
    p, _ = check(session, error(T0 + 3 * HOUR, "http_429", retry_after=1))
    assert p.next_check_at == T0 + 3 * HOUR + timedelta(minutes=60)  # backoff is longer


# --- decide(): the same rules as a pure function ----------------------------------------------


def test_decide_is_pure_and_record_check_applies_exactly_its_decision(session):
    belief = Belief(
        status="active", status_as_of=T0, verified_at=T0, consecutive_failures=0,
        last_outcome="ok", last_checked_at=T0,
    )  # fmt: skip
    result = not_found(T0 + DAY)
    first = decide(belief, result, POLICY, now=T0 + DAY, rng=random.Random(1))
    again = decide(belief, result, POLICY, now=T0 + DAY, rng=random.Random(1))
    assert first == again and belief.not_found_pending_since is None  # nothing mutated
    assert first.effect == "pending_not_found"
    assert first.after.not_found_pending_since == T0 + DAY

    p = new_practitioner(NUMBER)
    session.add(p)
    for name, value in belief.values().items():
        setattr(p, name, value)
    session.commit()
    record_check(session, p, result, POLICY, now=T0 + DAY, rng=random.Random(1))
    assert Belief.of(p) == first.after


def test_decide_on_a_first_answer():
    decision = decide(None, ok("ACTIVE", at=T0), POLICY, now=T0, rng=random.Random(3))
    assert decision.effect == "created" and decision.before is None
    assert decision.after.status == "active" and decision.after.verified_at == T0
    assert not decision.event_due and decision.copy_register_facts


ANSWERS = st.sampled_from(
    [("ok", ("ACTIVE",)), ("ok", ("ACTIVE",)), ("ok", ("SUSPENDED",)),
     ("ok", ("ACTIVE", "INACTIVE")), ("ok", ("ACTIVE", "ERASED")), ("ok", ("ODD",)),
     ("not_found", ()), ("not_found", ()), ("not_found", ()), ("error", ())]
)  # fmt: skip


# Minutes after T0: dense (within the not-found confirmation hour) or spread over months,
# always more than CLOCK_SKEW (5 min) apart: answers closer than that are not ordered by
# time (tests/test_ordering.py).
MINUTES = st.one_of(st.integers(0, 100), st.integers(0, 15 * 24 * 60)).map(lambda m: m * 6)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(ANSWERS, MINUTES),
        min_size=1,
        max_size=12,
        unique_by=lambda item: item[1],
    ),
    st.integers(min_value=0, max_value=40 * 24 * 60),
)
@example(  # an old "active" dated between two not-founds arrives last: found by hand
    [(("ok", ("ACTIVE",)), 0), (("not_found", ()), 10), (("not_found", ()), 40),
     (("ok", ("ACTIVE",)), 20)],
    0,
)  # fmt: skip
def test_whatever_the_sequence_verified_means_the_newest_answer_said_active(events_, wait):
    """Answers arrive in any order (stale ones included); errors anywhere.

    At any moment: verified <=> the newest answer applied (by the register's time) was an
    "ok" combining to active, younger than the max age, with no not-found after it; and no
    error ever moved status or verified_at.
    """
    belief: Belief | None = None
    answered: list[tuple[datetime, str, tuple[str, ...]]] = []
    now = T0
    for (kind, rows), minute in events_:
        at = T0 + timedelta(minutes=minute)
        now = max(now, at)
        if kind == "ok":
            result = ok(*rows, at=at)
        elif kind == "not_found":
            result = not_found(at)
        else:
            result = error(at)
        decision = decide(belief, result, POLICY, now=now, rng=random.Random(0))
        if kind == "error" and belief is not None:
            for name in ("status", "verified_at", "status_as_of", "not_found_pending_since"):
                assert getattr(decision.after, name) == getattr(belief, name)
        if decision.effect != "ignored_stale" and kind != "error":
            answered.append((at, kind, rows))
        belief = decision.after

    at_moment = now + timedelta(minutes=wait)
    practitioner = SimpleNamespace(**belief.values())
    verified = verdict(practitioner, now=at_moment, max_age_=POLICY.verification_max_age).verified
    if not answered:
        assert not verified
        return
    newest_at, newest_kind, newest_rows = max(answered, key=lambda a: a[0])
    expected = (
        newest_kind == "ok"
        and newest_rows in {("ACTIVE",), ("ACTIVE", "INACTIVE")}
        and at_moment - newest_at < POLICY.verification_max_age
    )
    assert verified == expected
