"""The clinic-account rules on PostgreSQL: the same scenarios as on SQLite (stale edits,
listings through the register and the listing rules, moderation, suspension, refusals),
and two edits of one row at the same moment in two transactions."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from directory.accounts import services as svc
from directory.extensions import db
from directory.listings.models import Clinic
from tests import test_accounts_api as api_tests
from tests import test_accounts_clinic_pages as pages
from tests import test_accounts_links as links
from tests import test_accounts_security as security
from tests.accounts_support import populate

pytestmark = pytest.mark.postgres


@pytest.fixture
def accounts(pg_app):
    return populate(pg_app)


def test_stale_profile_edit_on_postgresql(pg_app, accounts):
    pages.test_an_edit_based_on_a_stale_version_is_refused_and_overwrites_nothing(pg_app, accounts)


def test_adding_a_practitioner_on_postgresql(pg_app, accounts, fake_iregister):
    pages.test_adding_a_practitioner_asks_the_register_and_reaches_public_search(
        pg_app, pg_app.test_client(), accounts, fake_iregister
    )


def test_held_listing_and_approval_on_postgresql(pg_app, accounts):
    pages.test_a_name_that_does_not_match_the_register_is_held_until_a_site_admin_approves(
        pg_app, accounts
    )


@pytest.mark.parametrize(("number", "name"), pages.HELD_NAMES[:3])
def test_names_sharing_only_some_words_are_held_on_postgresql(pg_app, accounts, number, name):
    pages.test_a_name_that_only_shares_some_words_with_the_register_is_held(
        pg_app, accounts, number, name
    )


@pytest.mark.parametrize(("number", "name"), pages.LISTED_NAMES[:3])
def test_register_names_written_differently_are_listed_on_postgresql(
    pg_app, accounts, number, name
):
    pages.test_the_register_name_written_differently_is_listed_at_once(
        pg_app, accounts, number, name
    )


def test_editing_and_removing_on_postgresql(pg_app, accounts):
    pages.test_editing_and_removing_a_listing_carry_its_version(
        pg_app, pg_app.test_client(), accounts
    )


def test_api_listings_on_postgresql(pg_app, accounts, fake_iregister):
    api_tests.test_listings_through_the_api(pg_app, pg_app.test_client(), accounts, fake_iregister)


def test_suspension_on_postgresql(pg_app, accounts):
    links.test_a_suspended_clinic_leaves_the_directory_at_once_and_comes_back(pg_app, accounts)


def test_refusals_on_postgresql(pg_app):
    world = security.world.__wrapped__(pg_app)
    security.test_web_writes_from_another_clinics_session_are_refused(pg_app, world)
    security.test_api_writes_are_refused_without_a_valid_token_of_the_clinic(pg_app, world)
    security.test_api_writes_on_a_stale_version_are_refused(pg_app, world)


def test_two_edits_of_one_profile_at_the_same_moment_one_is_refused(pg_app, accounts):
    """Both read version 1 before either writes: the second write is refused, not merged."""
    with pg_app.app_context():
        first, second = Session(db.engine), Session(db.engine)
        try:
            mine = first.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
            theirs = second.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
            assert mine.version == theirs.version == 1
            me = svc.Actor(user=svc.user_by_email(first, accounts.admin))
            them = svc.Actor(user=svc.user_by_email(second, accounts.staff))
            svc.update_profile(first, me, mine, {"city": "Paarl"}, 1)
            first.commit()
            with pytest.raises(svc.Stale):
                svc.update_profile(second, them, theirs, {"name": "Lost update"}, 1)
        finally:
            first.close()
            second.close()
        clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == "sample-skin"))
        assert (clinic.city, clinic.name, clinic.version) == ("Paarl", "Sample Skin Clinic", 2)


def test_an_import_leaves_a_suspended_clinic_aside_on_postgresql(pg_app, accounts, tmp_path):
    links.test_a_bulk_import_leaves_a_suspended_clinics_listings_aside(pg_app, accounts, tmp_path)


def test_restore_updates_a_listing_already_back_on_postgresql(pg_app, accounts):
    links.test_restoring_a_clinic_with_a_listing_already_back_updates_it(pg_app, accounts)


def test_no_approval_while_suspended_on_postgresql(pg_app, accounts):
    links.test_a_held_listing_of_a_suspended_clinic_cannot_be_approved_until_it_is_restored(
        pg_app, accounts
    )
