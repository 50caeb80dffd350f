"""One signal says what a register answer changed: search and notifications follow it, in
the writer's transaction, whichever path wrote the answer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from directory.extensions import db
from directory.notifications.models import ChangeFeedEntry
from directory.registry.signals import registrations_changed
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
