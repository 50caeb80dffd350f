"""An undated answer (a snapshot imported without ``--as-of``) never lifts an adverse or
pending status: ``checks.decide``, the one rule both the live and the bulk path apply.

All data is fictional.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from directory.registry.checks import decide
from directory.registry.verification import verdict
from tests.test_rules import DAY, POLICY, T0, not_found, ok


def believed(*answers):
    """The belief after these answers, each decided when it was given."""
    belief = None
    for answer in answers:
        belief = decide(belief, answer, POLICY, now=answer.observed_at).after
    return belief


def undated(answer):
    return replace(answer, undated=True)


@pytest.mark.parametrize(
    ("history", "label"),
    [
        ((ok("SUSPENDED", at=T0),), "suspended"),
        ((ok("ERASED", at=T0),), "erased"),
        ((ok("ACTIVE", at=T0 - 40 * DAY), not_found(T0)), "not found, pending"),
        ((not_found(T0),), "not found"),
        ((ok("NOT A STATUS THE MAPPING KNOWS", at=T0),), "unknown"),
    ],
)
def test_an_undated_active_answer_never_lifts_an_adverse_or_pending_belief(history, label):
    before = believed(*history)
    later = T0 + DAY  # the file's modification time: after the live answer
    decision = decide(before, undated(ok("ACTIVE", at=later)), POLICY, now=later)
    assert decision.effect == "ignored_stale", label
    assert decision.after == before and not decision.event_due
    assert decision.answer_status == "active"  # the history row still says what it said


def test_the_same_answer_with_a_known_date_lifts_it():
    before = believed(ok("SUSPENDED", at=T0))
    decision = decide(before, ok("ACTIVE", at=T0 + DAY), POLICY, now=T0 + DAY)
    assert decision.effect == "changed" and decision.after.status == "active"


def test_an_undated_answer_adds_a_new_registration():
    decision = decide(None, undated(ok("ACTIVE", at=T0)), POLICY, now=T0)
    assert decision.effect == "created" and decision.after.status == "active"


def test_an_undated_answer_that_agrees_is_recorded_but_makes_no_confirmation_younger():
    for status in ("ACTIVE", "SUSPENDED"):
        before = believed(ok(status, at=T0))
        decision = decide(before, undated(ok(status, at=T0 + DAY)), POLICY, now=T0 + DAY)
        assert decision.effect == "unchanged", status
        assert decision.after.verified_at == before.verified_at == T0
        assert decision.after.status_as_of == before.status_as_of
        assert decision.after.last_answer_at == before.last_answer_at


def test_an_undated_active_answer_never_turns_a_stale_confirmation_green():
    """Active, but last confirmed 40 days ago (amber): an undated export whose file is
    "modified" today agrees, and the practitioner stays amber, never "confirmed today"."""
    stale = believed(ok("ACTIVE", at=T0 - 40 * DAY))
    decision = decide(stale, undated(ok("ACTIVE", at=T0)), POLICY, now=T0)
    assert decision.effect == "unchanged"
    assert decision.after.verified_at == T0 - 40 * DAY
    judged = verdict(decision.after, now=T0, max_age_=POLICY.verification_max_age)
    assert not judged.verified and judged.tone == "stale"


def test_an_undated_answer_records_adverse_news():
    before = believed(ok("ACTIVE", at=T0))
    decision = decide(before, undated(ok("SUSPENDED", at=T0 + DAY)), POLICY, now=T0 + DAY)
    assert decision.effect == "changed" and decision.event_due
    assert (decision.event_from, decision.after.status) == ("active", "suspended")
    worse = believed(ok("SUSPENDED", at=T0))
    decision = decide(worse, undated(ok("ERASED", at=T0 + DAY)), POLICY, now=T0 + DAY)
    assert decision.effect == "changed" and decision.after.status == "erased"


def test_an_undated_answer_older_than_the_belief_is_stale_as_any_answer():
    before = believed(ok("ACTIVE", at=T0))
    decision = decide(before, undated(ok("SUSPENDED", at=T0 - DAY)), POLICY, now=T0)
    assert decision.effect == "ignored_stale" and decision.after == before
