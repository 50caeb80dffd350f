"""Claiming work with leases, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from directory.extensions import db
from directory.registry.models import Practitioner
from directory.util.clock import utcnow
from importers.recheck.claims import Claimer, count_due, make_owner
from tests.test_recheck_support import seed

LEASE = timedelta(minutes=10)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def numbers(n: int, start: int = 1) -> list[str]:
    return [f"MP{i:07d}" for i in range(start, start + n)]


def schedule(app, when: dict[str, timedelta | None], *, checked_ago: timedelta | None = None):
    """Test set-up: next_check_at = now + delta (None: never checked)."""
    now = utcnow()
    with app.app_context():
        for number, delta in when.items():
            values = {"next_check_at": None if delta is None else now + delta}
            if delta is not None:
                values["last_checked_at"] = now - (checked_ago or timedelta(days=7))
            db.session.execute(
                update(Practitioner)
                .where(Practitioner.registration_number == number)
                .values(**values)
            )
        db.session.commit()


def claimer(**kw) -> Claimer:
    kw.setdefault("run_started", utcnow())
    return Claimer(kw.pop("owner", make_owner()), kw.pop("lease", LEASE), **kw)


def test_never_checked_first_then_longest_waiting(db_app):
    nums = numbers(6)
    seed(db_app, nums)
    schedule(
        db_app,
        {
            nums[0]: -timedelta(hours=1),
            nums[1]: -timedelta(days=3),
            nums[2]: None,
            nums[3]: timedelta(days=1),  # not due
            nums[4]: -timedelta(minutes=5),
            nums[5]: None,
        },
    )
    with db_app.app_context():
        got = [c.registration_number for c in claimer().claim(db.session, 10)]
    assert got == [nums[2], nums[5], nums[1], nums[0], nums[4]]


def test_a_claim_marks_the_rows_and_respects_the_limit(db_app):
    seed(db_app, numbers(10))
    c = claimer()
    with db_app.app_context():
        first = c.claim(db.session, 4)
        assert len(first) == 4
        held = db.session.scalars(
            select(Practitioner).where(Practitioner.lease_owner == c.owner)
        ).all()
        assert {p.registration_number for p in held} == {x.registration_number for x in first}
        assert all(p.lease_expires_at > utcnow() + LEASE - timedelta(minutes=1) for p in held)
        second = c.claim(db.session, 100)
    assert len(second) == 6
    assert not {x.id for x in first} & {x.id for x in second}


def test_two_runs_never_hold_the_same_registration(db_app):
    seed(db_app, numbers(20))
    a, b = claimer(), claimer()
    with db_app.app_context():
        got_a = a.claim(db.session, 12)
        got_b = b.claim(db.session, 12)
    assert len(got_a) == 12 and len(got_b) == 8
    assert not {x.id for x in got_a} & {x.id for x in got_b}


def test_concurrent_claims_from_threads_split_the_work(db_app):
    """Eight claimers at once, each on its own connection: every row claimed exactly once."""
    seed(db_app, numbers(200))
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def run(owner: str) -> None:
        try:
            with db_app.app_context():
                c = claimer(owner=owner)
                barrier.wait()
                mine: list[int] = []
                while batch := c.claim(db.session, 7):
                    mine.extend(x.id for x in batch)
                got[owner] = mine
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"owner-{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    claimed = [i for ids in got.values() for i in ids]
    assert len(claimed) == 200 and len(set(claimed)) == 200


def test_an_expired_lease_can_be_taken_over(db_app):
    seed(db_app, numbers(3))
    crashed = claimer(lease=timedelta(seconds=30))
    with db_app.app_context():
        assert len(crashed.claim(db.session, 3)) == 3
        later = utcnow() + timedelta(seconds=31)
        survivor = claimer(run_started=later)
        assert len(survivor.claim(db.session, 10, now=utcnow())) == 0  # still held
        taken = survivor.claim(db.session, 10, now=later)
    assert len(taken) == 3


def test_settle_only_for_the_lease_holder(db_app):
    seed(db_app, numbers(1))
    first = claimer(lease=timedelta(seconds=1))
    with db_app.app_context():
        (item,) = first.claim(db.session, 1)
        later = utcnow() + timedelta(seconds=5)
        second = claimer(run_started=later)
        assert len(second.claim(db.session, 1, now=later)) == 1
        assert first.settle(db.session, item.id) is False  # lost it: record nothing
        db.session.rollback()
        assert second.settle(db.session, item.id) is True
        db.session.commit()
        p = db.session.get(Practitioner, item.id)
        assert p.lease_owner is None and p.lease_expires_at is None


def test_release_and_renew(db_app):
    seed(db_app, numbers(5))
    c = claimer(lease=timedelta(seconds=60))
    with db_app.app_context():
        c.claim(db.session, 5)
        assert c.renew(db.session, now=utcnow() + timedelta(seconds=30)) == 5
        expiry = db.session.scalar(select(Practitioner.lease_expires_at).limit(1))
        assert expiry > utcnow() + timedelta(seconds=80)
        assert c.release(db.session) == 5
        assert (
            db.session.scalar(select(Practitioner.id).where(Practitioner.lease_owner.is_not(None)))
            is None
        )
        assert count_due(db.session) == 5  # released work stays due


def test_a_run_never_claims_what_was_checked_since_it_started(db_app):
    nums = numbers(2)
    seed(db_app, nums)
    started = utcnow()
    with db_app.app_context():
        # Checked a moment ago by someone else, and (oddly) due again already.
        db.session.execute(
            update(Practitioner)
            .where(Practitioner.registration_number == nums[0])
            .values(last_checked_at=utcnow(), next_check_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
        got = claimer(run_started=started).claim(db.session, 10)
    assert [x.registration_number for x in got] == [nums[1]]


def test_all_ignores_due_dates_but_takes_each_once(db_app):
    nums = numbers(4)
    seed(db_app, nums)
    schedule(db_app, {n: timedelta(days=5) for n in nums})
    with db_app.app_context():
        assert claimer().claim(db.session, 10) == []
        c = claimer(include_not_due=True)
        assert len(c.claim(db.session, 10)) == 4
        assert c.claim(db.session, 10) == []


def test_the_fallback_without_returning_claims_the_same_way(app):
    """SQLite before 3.35 has no RETURNING: UPDATE, then SELECT the rows this claim marked."""
    seed(app, numbers(10))
    a = claimer(use_returning=False)
    b = claimer(use_returning=False)
    with app.app_context():
        got_a = a.claim(db.session, 4)
        got_b = b.claim(db.session, 4)
        again_a = a.claim(db.session, 4)
    assert [len(got_a), len(got_b), len(again_a)] == [4, 4, 2]
    ids = [x.id for x in got_a + got_b + again_a]
    assert len(set(ids)) == 10
    assert [x.id for x in got_a] == sorted(x.id for x in got_a)


def test_dry_run_candidates_stream_in_claim_order_without_claiming(db_app):
    nums = numbers(4)
    seed(db_app, nums)
    schedule(db_app, {nums[0]: -timedelta(days=1), nums[1]: timedelta(days=1)})
    c = claimer()
    with db_app.app_context():
        seen = [row.registration_number for row in c.candidates(db.session)]
        assert seen == [nums[2], nums[3], nums[0]]
        assert c.count_candidates(db.session) == 3
        assert (
            db.session.scalar(select(Practitioner.id).where(Practitioner.lease_owner.is_not(None)))
            is None
        )
