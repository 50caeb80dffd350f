"""One signal says what a register answer changed: search and notifications follow it, in
the writer's transaction, whichever path wrote the answer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from directory.extensions import db
from directory.notifications.models import ChangeFeedEntry
from directory.registry.lookups import LookupResult, RegisterRow
from directory.registry.models import Practitioner, StatusEvent
from directory.registry.policy import RegistryPolicy
from directory.registry.recording import apply_answer, apply_answers
from directory.registry.signals import registrations_changed
from directory.registry.statuses import Outcome
from directory.search.models import SearchOutbox
from directory.util.clock import utcnow
from tests.source_imports import imports_under
from tests.test_search_support import register_says, seed


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_live_answer_announces_what_it_changed_and_subscribers_write_in_its_transaction(app):
    heard = []

    def listen(sender, *, session, changes):
        heard.append((sender, changes))

    with app.app_context():
        people = seed()
        outbox_before, feed_before = count(SearchOutbox), count(ChangeFeedEntry)
        with registrations_changed.connected_to(listen):
            register_says("MP0910002", "SUSPENDED")
            # Before any commit: the index's and the feed's rows are already written...
            assert count(SearchOutbox) == outbox_before + 1
            assert count(ChangeFeedEntry) == feed_before + 1
            db.session.rollback()
        # ...and they go with the change.
        assert (count(SearchOutbox), count(ChangeFeedEntry)) == (outbox_before, feed_before)
        [(sender, changes)] = heard
        assert sender is app
        assert changes.practitioner_ids == {people["MP0910002"].id}
        assert len(changes.event_ids) == 1 and changes.source == "test"


def test_an_answer_that_changes_no_status_announces_no_event(app):
    heard = []

    def listen(sender, *, session, changes):
        heard.append(changes)

    with app.app_context():
        seed()
        feed_before = count(ChangeFeedEntry)
        with registrations_changed.connected_to(listen):
            register_says("MP0910002", "ACTIVE", at=utcnow() - timedelta(minutes=1))
            db.session.commit()
        [changes] = heard
        assert changes.event_ids == ()
        assert count(ChangeFeedEntry) == feed_before


def test_an_unlisted_registration_queues_no_index_update(app):
    with app.app_context():
        seed()
        before = count(SearchOutbox)
        register_says("MP0910010", "SUSPENDED")  # in the register, in no listing
        db.session.commit()
        assert count(SearchOutbox) == before
        assert count(ChangeFeedEntry) >= 1  # but the change is in the feed


def test_directory_never_imports_the_importers():
    """Dependencies point one way: ``importers/`` uses ``directory/``, never the reverse
    (the importers join an app through ``importers.init_app``, named in ``INCLUDES``)."""
    offenders = [
        f"{path}: {name}"
        for path, name in imports_under("directory")
        if name == "importers" or name.startswith("importers.")
    ]
    assert offenders == []


def _answer(number: str, raw_status: str, source: str, at) -> LookupResult:
    row = RegisterRow(
        number, "DR", "FICTIONAL", "BATCH PERSON", "CAPE TOWN", "8001",
        "INDEPENDENT PRACTICE", raw_status,
    )  # fmt: skip
    return LookupResult(number, Outcome.OK, at, source, rows=(row,))


def test_a_batch_announces_what_each_source_changed_apart(app):
    """The batch writer takes answers from any source; a batch that mixes two says what
    each changed in its own signal (one per source), in the writer's transaction."""
    heard = []

    def listen(sender, *, session, changes):
        heard.append(changes)

    with app.app_context():
        policy = RegistryPolicy.from_config(app.config)
        first = utcnow() - timedelta(days=2)
        numbers = ("MP0990001", "MP0990002")
        answers = [_answer(n, "ACTIVE", "snapshot:fictional.csv", first) for n in numbers]
        created = apply_answers(db.session, answers, policy)
        assert [a.effect for a in created] == ["created", "created"]
        ids = dict(
            db.session.execute(
                select(Practitioner.registration_number, Practitioner.id).where(
                    Practitioner.registration_number.in_(numbers)
                )
            ).all()
        )
        later = utcnow() - timedelta(days=1)
        with registrations_changed.connected_to(listen):
            applied = apply_answers(
                db.session,
                [
                    _answer("MP0990001", "SUSPENDED", "snapshot:fictional.csv", later),
                    _answer("MP0990002", "SUSPENDED", "hpcsa", later),
                ],
                policy,
            )
        assert [(a.effect, a.event_due) for a in applied] == [("changed", True)] * 2
        assert [c.source for c in heard] == ["hpcsa", "snapshot:fictional.csv"]
        by_source = {c.source: c for c in heard}
        events = dict(
            db.session.execute(select(StatusEvent.event_id, StatusEvent.practitioner_id)).all()
        )
        for source, number in (("hpcsa", "MP0990002"), ("snapshot:fictional.csv", "MP0990001")):
            changes = by_source[source]
            assert changes.practitioner_ids == {ids[number]}
            assert [events[e] for e in changes.event_ids] == [ids[number]]


def test_a_batch_refuses_a_not_found_for_a_number_the_directory_does_not_hold(app):
    """As for one answer, only an answer that lists a number creates it: the batch writer
    refuses, before writing anything, what ``apply_answer`` would skip."""
    with app.app_context():
        policy = RegistryPolicy.from_config(app.config)
        before = count(Practitioner)
        answers = [
            _answer("MP0990003", "ACTIVE", "test", utcnow()),
            LookupResult("MP0990004", Outcome.NOT_FOUND, utcnow(), "test"),
        ]
        with pytest.raises(ValueError, match="MP0990004 is not in the directory"):
            apply_answers(db.session, answers, policy)
        db.session.rollback()
        assert count(Practitioner) == before
        assert apply_answer(db.session, "MP0990004", answers[1], policy) is None
