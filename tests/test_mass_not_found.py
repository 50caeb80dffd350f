"""Hole 4: a register that answers well-formed but empty reports must not move statuses.

The fake iRegister (a real HTTP server) answers every number with an empty report, as a
register whose session expired or whose backend is down behind the form does. A recheck
(run twice, the confirmation delay passed in between) and a ``verify --from`` of a long
list must leave nothing but history rows and the breaker's reason; with
``--accept-mass-not-found`` the not-founds take effect; a few numbers really removed among
many actives still take effect without the flag. SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import func, select

from directory.extensions import db
from directory.notifications.models import NotificationOutbox
from directory.registry.models import (
    Practitioner,
    RegistrationCategory,
    StatusEvent,
    VerificationCheck,
)
from directory.registry.verification import verdict
from importers.mass_not_found import MassNotFoundGuard
from tests.test_recheck_support import (
    FAST,
    events,
    invoke,
    json_lines,
    make_due,
    practitioners,
    seed,
    summary_of,
)


@pytest.fixture
def app_config(app_config):
    return {**app_config, **FAST, "HPCSA_TIMEOUT": 0.5, "NOT_FOUND_CONFIRM_AFTER": "1s"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


@pytest.fixture
def register(fake_iregister):
    return fake_iregister.register


def confirmed(app, register, count: int) -> list[str]:
    """``count`` registrations the register has confirmed active (a first clean run)."""
    numbers = register.generate(count)
    seed(app, numbers)
    result = invoke(app, "--json")
    assert result.exit_code == 0, result.output
    assert summary_of(result.output)["changed"] == {}
    assert all(p.status == "active" for p in practitioners(app).values())
    register.requests.clear()
    return numbers


def tally(app) -> dict[str, int]:
    with app.app_context():

        def count(model) -> int:
            return db.session.scalar(select(func.count()).select_from(model))

        return {
            "categories": count(RegistrationCategory),
            "events": count(StatusEvent),
            "outbox": count(NotificationOutbox),
            "checks": count(VerificationCheck),
            "pending": db.session.scalar(
                select(func.count()).where(Practitioner.not_found_pending_since.is_not(None))
            ),
        }


# --- the guard on its own -------------------------------------------------------------------


def test_the_guard_trips_on_the_eleventh_not_found_in_twenty_and_holds_them_all():
    guard: MassNotFoundGuard[int] = MassNotFoundGuard()
    released = []
    for i in range(10):
        released += guard.not_found(i)
    assert not guard.tripped and released == [] and guard.holding == 10
    released += guard.not_found(10)
    assert guard.tripped and released == []
    assert "11 of the last 11" in guard.reason
    assert guard.withhold() == list(range(11)) and guard.release_all() == []


def test_a_not_found_is_released_once_twenty_later_answers_passed_without_a_trip():
    guard: MassNotFoundGuard[str] = MassNotFoundGuard()
    assert guard.not_found("gone") == []
    for _ in range(18):
        assert guard.found() == []
    assert guard.found() == ["gone"]  # the last window that held it was judged healthy
    assert not guard.tripped


def test_an_outage_after_a_healthy_stretch_releases_none_of_its_not_founds():
    guard: MassNotFoundGuard[str] = MassNotFoundGuard()
    released = guard.not_found("really gone")
    for _ in range(30):  # healthy: the early, real not-found is judged and released
        released += guard.found()
    assert released == ["really gone"]
    outage = []
    for i in range(11):  # then the register starts answering empty for everyone
        outage += guard.not_found(f"outage {i}")
    assert guard.tripped and outage == []
    assert guard.found() == [] and guard.release_all() == []
    assert guard.withhold() == [f"outage {i}" for i in range(11)]


def test_ten_in_twenty_is_not_a_fault_and_accepting_releases_at_once():
    guard: MassNotFoundGuard[int] = MassNotFoundGuard()
    for i in range(40):  # every other answer a not-found: 10 of every 20
        if i % 2:
            guard.not_found(i)
        else:
            guard.found()
    assert not guard.tripped
    assert len(guard.release_all()) <= 10
    accepting: MassNotFoundGuard[int] = MassNotFoundGuard(accept=True)
    assert [accepting.not_found(i) for i in range(30)] == [[i] for i in range(30)]
    assert not accepting.tripped


# --- recheck ----------------------------------------------------------------------------------


def test_an_empty_register_opens_the_breaker_and_moves_nothing(any_app, register):
    app = any_app
    numbers = confirmed(app, register, 30)
    before = tally(app)
    assert before["categories"] == 30 and before["events"] == 0
    register.answer_empty = True

    make_due(app)
    first = invoke(app, "--json")
    assert first.exit_code == 3, first.output
    summary = summary_of(first.output)
    assert summary["stop_reason"] == "breaker" and summary["mass_not_found"] is True
    # The window starts with the confirming run's twenty answers with rows.
    assert "not-found for 11 of the last 20" in summary["breaker"]
    assert summary["changed"] == {} and summary["pending_not_found"] == 0
    assert summary["withheld"] >= 11
    withheld = [x for x in json_lines(first.output) if x.get("effect") == "withheld"]
    assert len(withheld) == summary["withheld"]
    assert "--accept-mass-not-found" in first.output  # the plain message says what to do

    time.sleep(1.1)  # NOT_FOUND_CONFIRM_AFTER passes
    make_due(app)
    second = invoke(app)  # the human output this time
    assert second.exit_code == 3, second.output
    assert "register looks broken" in second.output
    # It starts from the first run's withheld not-founds: its first not-found trips it.
    assert re.search(r"not-found for 1[2-9] of the last 20", second.output)

    stored = practitioners(app)
    assert {p.status for p in stored.values()} == {"active"}
    assert all(p.not_found_pending_since is None for p in stored.values())
    assert all(p.raw_status == "ACTIVE" for p in stored.values())
    after = tally(app)
    assert after["categories"] == 30  # not one category row deleted
    assert after["events"] == 0 and after["outbox"] == 0  # no status event, no notification
    assert after["pending"] == 0
    assert after["checks"] > before["checks"]  # the answers are in the history, as failures
    with app.app_context():
        failures = db.session.scalars(
            select(VerificationCheck)
            .where(VerificationCheck.recorded_at > stored[numbers[0]].created_at)
            .where(VerificationCheck.outcome == "error")
        ).all()
        assert failures and all("not-found" in c.error for c in failures)
        assert all(c.effect == "no_effect" for c in failures)


def test_accepting_mass_not_found_lets_the_not_founds_take_effect(any_app, register):
    app = any_app
    numbers = confirmed(app, register, 30)
    register.answer_empty = True
    make_due(app)
    first = invoke(app, "--json", "--accept-mass-not-found")
    assert first.exit_code == 0, first.output
    assert summary_of(first.output)["pending_not_found"] == 30
    time.sleep(1.1)
    second = invoke(app, "--json", "--accept-mass-not-found")
    assert second.exit_code == 0, second.output
    assert summary_of(second.output)["changed"] == {"active->not_found": 30}
    assert {p.status for p in practitioners(app).values()} == {"not_found"}
    after = tally(app)
    assert after["categories"] == 0 and after["events"] == 30
    assert sorted(n for n, _, _ in events(app)) == sorted(numbers)


def test_a_few_numbers_really_removed_among_many_actives_take_effect(any_app, register):
    app = any_app
    numbers = confirmed(app, register, 40)
    gone = [numbers[4], numbers[16], numbers[33]]
    for number in gone:
        register.remove(number)
    make_due(app)
    first = invoke(app, "--json")
    assert first.exit_code == 0, first.output
    summary = summary_of(first.output)
    assert summary["pending_not_found"] == 3 and summary["stop_reason"] == "done"
    time.sleep(1.1)
    second = invoke(app, "--json")  # only the three pending ones are due now
    assert second.exit_code == 0, second.output
    assert summary_of(second.output)["changed"] == {"active->not_found": 3}
    assert sorted(events(app)) == sorted((n, "active", "not_found") for n in gone)
    stored = practitioners(app)
    assert {n for n, p in stored.items() if p.status == "not_found"} == set(gone)


def test_an_outage_mid_run_applies_the_real_removals_before_it_and_nothing_after(any_app, register):
    app = any_app
    numbers = confirmed(app, register, 60)
    gone = [numbers[3], numbers[8]]  # really removed, early in the run
    for number in gone:
        register.remove(number)
    register.answer_empty_after = 35  # then the register answers empty for everyone
    make_due(app)
    result = invoke(app, "--json", "--concurrency", "1")
    assert result.exit_code == 3, result.output
    summary = summary_of(result.output)
    assert summary["mass_not_found"] is True
    assert 11 <= summary["withheld"] <= 12  # the trip, and the one look-up in flight
    assert summary["pending_not_found"] == 2 and summary["changed"] == {}
    stored = practitioners(app)
    pending = {n for n, p in stored.items() if p.not_found_pending_since is not None}
    assert pending == set(gone)  # judged on a healthy window, before the outage began
    assert {p.status for p in stored.values()} == {"active"}
    after = tally(app)
    assert after["categories"] == 60 and after["events"] == 0 and after["outbox"] == 0


# --- verify --------------------------------------------------------------------------------


def test_verify_from_a_long_list_against_an_empty_register_stops_and_moves_nothing(
    any_app, register, tmp_path
):
    app = any_app
    numbers = confirmed(app, register, 30)
    before = tally(app)
    register.answer_empty = True
    staff = tmp_path / "staff.txt"
    staff.write_text("\n".join(numbers) + "\n")
    out = tmp_path / "results.csv"
    result = app.test_cli_runner().invoke(
        args=["registry", "verify", "--from", str(staff), "--out", str(out), "--json"]
    )
    assert result.exit_code == 3, result.output
    lines = json_lines(result.stdout)
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["withheld"] == 11
    assert "not-found for 11 of the last 20" in summary["stopped"]
    (stopped,) = [x for x in lines if x["type"] == "stopped"]
    assert stopped["mass_not_found"] is True and stopped["reason"] == summary["stopped"]
    assert len(register.requests) == 11  # it stopped asking at once
    assert all(p.status == "active" for p in practitioners(app).values())
    after = tally(app)
    assert after["categories"] == before["categories"] == 30
    assert after["events"] == 0 and after["outbox"] == 0 and after["pending"] == 0
    # The withheld numbers are failures in --out, so a later run asks again.
    text = out.read_text()
    assert text.count(",error,") == 11 and "not_found" not in text


def test_verify_with_many_arguments_and_the_flag_applies_the_not_founds(any_app, register):
    app = any_app
    numbers = confirmed(app, register, 12)
    register.answer_empty = True
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["registry", "verify", *numbers])
    assert refused.exit_code == 3, refused.output
    assert "register looks broken" in refused.stderr
    assert "--accept-mass-not-found" in refused.stderr
    assert tally(app)["pending"] == 0
    accepted = runner.invoke(
        args=["registry", "verify", *numbers, "--json", "--accept-mass-not-found"]
    )
    assert accepted.exit_code == 0, accepted.output
    assert tally(app)["pending"] == 12


# --- the window outlives a run ----------------------------------------------------------------


def test_a_seeded_window_trips_on_the_next_not_found_but_never_on_an_answer_with_rows():
    outage = [False] * 5 + [True] * 15  # the history: the register answered empty for most
    healthy: MassNotFoundGuard[str] = MassNotFoundGuard().seed(outage)
    for _ in range(20):  # the register is back: answers with rows never trip it
        assert healthy.found() == []
    assert not healthy.tripped
    assert healthy.not_found("really gone") == [] and not healthy.tripped
    broken: MassNotFoundGuard[str] = MassNotFoundGuard().seed(outage)
    assert broken.not_found("one more") == [] and broken.tripped
    assert "16 of the last 20" in broken.reason
    assert broken.withhold() == ["one more"]


def empty_register_twice(app, register, count: int):
    """``count`` confirmed registrations, then two rechecks against an empty register,
    NOT_FOUND_CONFIRM_AFTER apart. Returns the numbers and both runs."""
    numbers = confirmed(app, register, count)
    register.answer_empty = True
    make_due(app)
    first = invoke(app, "--json")
    time.sleep(1.1)  # NOT_FOUND_CONFIRM_AFTER passes
    make_due(app)
    second = invoke(app, "--json")
    return numbers, first, second


def test_two_short_runs_against_an_empty_register_move_nothing(any_app, register):
    """Eight confirmed registrations: no run alone sees eleven not-founds, the history does."""
    app = any_app
    numbers, first, second = empty_register_twice(app, register, 8)
    assert first.exit_code == 0, first.output  # eight of sixteen: not yet a fault
    assert summary_of(first.output)["pending_not_found"] == 8
    assert second.exit_code == 3, second.output
    summary = summary_of(second.output)
    assert summary["mass_not_found"] is True and summary["changed"] == {}
    assert "not-found for 11 of the last" in summary["breaker"]
    assert "--accept-mass-not-found" in second.output
    stored = practitioners(app)
    assert {p.status for p in stored.values()} == {"active"}
    assert set(stored) == set(numbers)
    after = tally(app)
    assert after["categories"] == 8 and after["events"] == 0 and after["outbox"] == 0
    # The first run's pending marks are kept, not withdrawn (docs/registration-rules.md):
    # amber, never green, never a moved status; the tripped run's history says why.
    assert after["pending"] == 8
    with app.app_context():
        assert not any(verdict(p).verified for p in stored.values())
        reasons = db.session.scalars(
            select(VerificationCheck.error).where(VerificationCheck.outcome == "error")
        ).all()
    assert reasons and all("register fault" in reason for reason in reasons)


def test_a_clinics_live_look_up_after_such_history_moves_nothing(any_app, register):
    """Ten confirmed registrations answered empty in one run (ten of twenty: not a fault by
    itself); a clinic then adds one of them, past NOT_FOUND_CONFIRM_AFTER, and the register
    still answers empty: the eleventh not-found trips the guard."""
    from directory.registry.live import RegisterUnavailable, ask_and_record

    app = any_app
    numbers = confirmed(app, register, 10)
    register.answer_empty = True
    make_due(app)
    first = invoke(app, "--json")
    assert first.exit_code == 0, first.output
    assert summary_of(first.output)["pending_not_found"] == 10
    time.sleep(1.1)
    with app.app_context():
        with pytest.raises(RegisterUnavailable, match="not-found for 11 of the last 20"):
            ask_and_record(db.session, numbers[0])
        db.session.commit()
        last = db.session.scalars(
            select(VerificationCheck).order_by(VerificationCheck.id.desc()).limit(1)
        ).one()
        assert last.outcome == "error" and last.effect == "no_effect"
    stored = practitioners(app)
    assert stored[numbers[0]].status == "active"
    assert stored[numbers[0]].raw_status == "ACTIVE"
    after = tally(app)
    assert after["categories"] == 10 and after["events"] == 0 and after["outbox"] == 0


def test_a_healthy_register_after_an_outage_recovers(any_app, register):
    app = any_app
    numbers, _, second = empty_register_twice(app, register, 8)
    assert second.exit_code == 3, second.output  # the outage was seen
    register.answer_empty = False
    for _ in range(2):  # the register is back: its answers clear the window, never trip it
        make_due(app)
        healthy = invoke(app, "--json")
        assert healthy.exit_code == 0, healthy.output
        assert summary_of(healthy.output)["stop_reason"] == "done"
        assert summary_of(healthy.output)["mass_not_found"] is False
    stored = practitioners(app)
    assert {p.status for p in stored.values()} == {"active"}
    assert all(p.not_found_pending_since is None for p in stored.values())
    register.remove(numbers[5])  # a real removal is applied again, through the usual rules
    make_due(app, [numbers[5]])
    removed = invoke(app, "--json")
    assert removed.exit_code == 0, removed.output
    assert summary_of(removed.output)["pending_not_found"] == 1


def test_verify_one_number_after_such_history_stops_and_moves_nothing(any_app, register):
    app = any_app
    numbers = confirmed(app, register, 10)
    register.answer_empty = True
    make_due(app)
    assert invoke(app, "--json").exit_code == 0  # ten pending: ten of twenty
    time.sleep(1.1)
    result = app.test_cli_runner().invoke(args=["registry", "verify", numbers[0]])
    assert result.exit_code == 3, result.output
    assert "register looks broken" in result.stderr
    assert practitioners(app)[numbers[0]].status == "active"
    assert tally(app)["events"] == 0 and tally(app)["categories"] == 10
