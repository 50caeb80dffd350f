"""The next-check policy (``RegistryPolicy.next_check_at``) against issue 5's schedule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import DefaultConfig
from directory.registry.policy import RegistryPolicy

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def default_policy() -> RegistryPolicy:
    config = {k: getattr(DefaultConfig, k) for k in dir(DefaultConfig) if k.isupper()}
    return RegistryPolicy.from_config(config)


def next_at(policy: RegistryPolicy, **kw) -> datetime:
    args = {
        "now": NOW,
        "status": "active",
        "last_outcome": "ok",
        "consecutive_failures": 0,
        "status_changed_at": None,
        "not_found_pending_since": None,
    }
    args.update(kw)
    return policy.next_check_at(**args)


def test_active_about_weekly_within_twenty_percent(default_policy):
    rng = random.Random(5)
    delays = [next_at(default_policy, rng=rng) - NOW for _ in range(2000)]
    assert min(delays) >= 7 * DAY * 0.8
    assert max(delays) <= 7 * DAY * 1.2
    # Both ends of the band are actually used.
    assert min(delays) < 7 * DAY * 0.82 and max(delays) > 7 * DAY * 1.18


def test_jitter_spreads_evenly(default_policy):
    """10,000 draws in ten equal bins of the +-20 % band: each bin near 1,000 (uniform),
    and the chi-square statistic well under the 0.1 % critical value (27.9, 9 d.o.f.)."""
    rng = random.Random(1234)
    low, high = 7 * 0.8, 7 * 1.2
    bins = [0] * 10
    draws = 10_000
    for _ in range(draws):
        days = (next_at(default_policy, rng=rng) - NOW) / DAY
        bins[min(int((days - low) / (high - low) * 10), 9)] += 1
    expected = draws / 10
    assert all(0.85 * expected < count < 1.15 * expected for count in bins), bins
    chi_square = sum((count - expected) ** 2 / expected for count in bins)
    assert chi_square < 27.9, (chi_square, bins)


def test_recently_changed_daily_for_thirty_days(default_policy):
    for status in ("active", "suspended", "not_found", "erased"):
        changed = NOW - 29 * DAY
        assert next_at(default_policy, status=status, status_changed_at=changed) == NOW + DAY
    # After 30 days the usual rhythm returns.
    later = next_at(default_policy, status="suspended", status_changed_at=NOW - 31 * DAY)
    assert later == NOW + 7 * DAY


@pytest.mark.parametrize("status", ["suspended", "erased", "inactive", "deceased", "unknown"])
def test_adverse_and_unknown_weekly_without_jitter(default_policy, status):
    assert next_at(default_policy, status=status) == NOW + 7 * DAY


def test_not_found_monthly(default_policy):
    assert next_at(default_policy, status="not_found", last_outcome="not_found") == NOW + 30 * DAY


def test_pending_not_found_confirmed_after_the_confirmation_delay(default_policy):
    pending = NOW - timedelta(minutes=10)
    got = next_at(default_policy, last_outcome="not_found", not_found_pending_since=pending)
    assert got == pending + timedelta(hours=1)  # NOT_FOUND_CONFIRM_AFTER


@pytest.mark.parametrize(
    ("failures", "delay"),
    [
        (1, timedelta(minutes=15)),
        (2, timedelta(minutes=30)),
        (3, timedelta(hours=1)),
        (6, timedelta(hours=8)),
        (7, timedelta(hours=16)),
        (8, DAY),
        (50, DAY),
    ],
)
def test_errors_back_off_from_fifteen_minutes_doubling_to_a_day(default_policy, failures, delay):
    got = next_at(default_policy, last_outcome="error", consecutive_failures=failures)
    assert got == NOW + delay


def test_an_error_backs_off_even_while_a_not_found_awaits_confirmation(default_policy):
    """Without this, a pending not-found whose confirmation time had passed would be due
    again at once after every failed look-up: a tight loop against a register that is down."""
    pending = NOW - timedelta(hours=3)  # confirmation was due two hours ago
    got = next_at(
        default_policy,
        last_outcome="error",
        consecutive_failures=1,
        not_found_pending_since=pending,
    )
    assert got == NOW + timedelta(minutes=15)
    # ...and never before the confirmation delay has passed.
    recent = NOW - timedelta(minutes=1)
    got = next_at(
        default_policy, last_outcome="error", consecutive_failures=1, not_found_pending_since=recent
    )
    assert got == recent + timedelta(hours=1)


def test_settings_change_the_schedule():
    config = {k: getattr(DefaultConfig, k) for k in dir(DefaultConfig) if k.isupper()}
    config.update(RECHECK_ACTIVE_EVERY="2d", RECHECK_JITTER=0, RECHECK_ERROR_BACKOFF_FIRST="1m")
    policy = RegistryPolicy.from_config(config)
    assert next_at(policy) == NOW + 2 * DAY
    assert next_at(policy, last_outcome="error", consecutive_failures=1) == NOW + timedelta(
        minutes=1
    )
