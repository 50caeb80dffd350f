"""The raw-status mapping is data; unknown strings are unknown; rows combine by precedence."""

from __future__ import annotations

import itertools
import json
import logging
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from directory.registry import statuses
from directory.registry.statuses import (
    COMBINE_PRECEDENCE,
    PATIENT_MEANING,
    Outcome,
    Status,
    combine,
    map_raw_status,
    status_map,
)


def _data_file() -> dict[str, str]:
    raw = json.loads(
        resources.files("directory.registry").joinpath("data/statuses.json").read_text()
    )
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def test_the_canonical_statuses_and_outcomes_are_exactly_the_issues():
    assert {s.value for s in Status} == {
        "active", "suspended", "erased", "inactive", "deceased", "not_found", "unknown",
    }  # fmt: skip
    assert {o.value for o in Outcome} == {"ok", "not_found", "error"}


def test_the_mapping_is_the_data_file():
    data = _data_file()
    assert len(status_map()) == len(data)
    for raw, canonical in data.items():
        assert map_raw_status(raw) is Status(canonical)
    # every canonical status a register row can carry is reachable from the data
    assert {Status(v) for v in data.values()} == {
        Status.ACTIVE, Status.SUSPENDED, Status.ERASED, Status.INACTIVE, Status.DECEASED,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ACTIVE", Status.ACTIVE),
        ("active", Status.ACTIVE),
        ("  Active  ", Status.ACTIVE),
        ("SUSPENDED  -  CPD", Status.SUSPENDED),
        ("Suspended - Non Payment", Status.SUSPENDED),
        ("ERASED - NON-PAYMENT", Status.ERASED),
        ("\tinactive\n", Status.INACTIVE),
        ("Active\u00a0-\u00a0Practising", Status.ACTIVE),  # non-breaking spaces from HTML
        ("DECEASED", Status.DECEASED),
    ],
)
def test_matching_ignores_case_and_spacing(raw, expected):
    assert map_raw_status(raw) is expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "PROVISIONALLY ACTIVE PENDING REVIEW",
        "ACTIVE?",
        "ACTIVE-PRACTISING",  # not the spelling in the data
        "ACT\u0131VE",  # dotless i upper-cases to I: must not match
        "\uff21\uff23\uff34\uff29\uff36\uff25",  # full-width
        "\u0410CTIVE",  # Cyrillic A
        "ACTIVE\u200b",  # zero-width space
        "\U0001f600",
        "ACTIVE\x00",
        "ACTIVE\nSUSPENDED",
        42,
        "x" * 10_000,
    ],
)
def test_an_unknown_raw_string_is_unknown_logged_and_never_crashes(raw, caplog):
    with caplog.at_level(logging.WARNING, logger=statuses.__name__):
        assert map_raw_status(raw) is Status.UNKNOWN
    assert any(r.name == statuses.__name__ for r in caplog.records), "not logged"


@given(st.text(max_size=50))
def test_any_string_maps_to_a_canonical_status(raw):
    assert map_raw_status(raw) in set(Status)


def test_only_plain_ascii_strings_can_map_to_active():
    for raw, canonical in _data_file().items():
        assert raw.isascii(), raw
        assert canonical in {s.value for s in Status}


# --- several category rows ---------------------------------------------------------------


def test_precedence_orders_every_status_once():
    assert sorted(COMBINE_PRECEDENCE) == sorted(Status)
    assert len(set(COMBINE_PRECEDENCE)) == len(COMBINE_PRECEDENCE)


def test_no_rows_is_not_found():
    assert combine([]) is Status.NOT_FOUND


@pytest.mark.parametrize("status", list(Status))
def test_one_row_is_its_own_status(status):
    assert combine([status]) is status
    assert combine([status, status]) is status


@pytest.mark.parametrize(
    ("rows", "combined"),
    [
        # one active category is enough while nothing adverse or unreadable is listed
        ([Status.ACTIVE, Status.INACTIVE], Status.ACTIVE),
        ([Status.INACTIVE, Status.ACTIVE, Status.INACTIVE], Status.ACTIVE),
        # anything adverse anywhere wins over active
        ([Status.ACTIVE, Status.SUSPENDED], Status.SUSPENDED),
        ([Status.ACTIVE, Status.INACTIVE, Status.ERASED], Status.ERASED),
        ([Status.ACTIVE, Status.DECEASED], Status.DECEASED),
        # and so does anything we cannot read
        ([Status.ACTIVE, Status.UNKNOWN], Status.UNKNOWN),
        ([Status.INACTIVE, Status.UNKNOWN], Status.UNKNOWN),
        # among adverse statuses: deceased, then suspended, then erased
        ([Status.ERASED, Status.SUSPENDED], Status.SUSPENDED),
        ([Status.SUSPENDED, Status.DECEASED, Status.ERASED], Status.DECEASED),
        ([Status.ERASED, Status.UNKNOWN], Status.ERASED),
        ([Status.INACTIVE, Status.INACTIVE], Status.INACTIVE),
    ],
)
def test_several_rows_combine_by_the_documented_precedence(rows, combined):
    for order in itertools.permutations(rows):
        assert combine(order) is combined


@given(st.lists(st.sampled_from(list(Status)), min_size=1, max_size=6))
def test_combine_is_active_only_when_every_row_is_active_or_inactive(rows):
    result = combine(rows)
    assert result in rows
    if result is Status.ACTIVE:
        assert set(rows) <= {Status.ACTIVE, Status.INACTIVE}
    # the first status of the precedence present wins, whatever the rows' order
    assert result is next(s for s in COMBINE_PRECEDENCE if s in rows)


def test_combine_reads_plain_strings_and_treats_others_as_unknown(caplog):
    assert combine(["active", "inactive"]) is Status.ACTIVE
    with caplog.at_level(logging.WARNING, logger=statuses.__name__):
        assert combine(["active", "ACTIVE"]) is Status.UNKNOWN  # a raw string is not canonical
    assert caplog.records


def test_fixture_register_rows_combine_as_documented():
    """The fictional fixture numbers with several rows, through the same two functions."""
    raw = json.loads((__import__("pathlib").Path(__file__).parent / "fixtures/iregister.json")
                     .read_text())  # fmt: skip
    by_number = {item["number"]: [s for _, s in item["categories"]] for item in raw}
    combined = {n: combine(map_raw_status(s) for s in rows) for n, rows in by_number.items()}
    assert combined["MP0000102"] is Status.ERASED  # ACTIVE, INACTIVE, ERASED - NON PAYMENT
    assert combined["MP0000105"] is Status.SUSPENDED  # ACTIVE, SUSPENDED
    assert combined["PS0000301"] is Status.ACTIVE  # ACTIVE, INACTIVE
    assert combined["MP0000106"] is Status.UNKNOWN  # a string the mapping does not know


def test_every_status_has_a_patient_meaning():
    assert set(PATIENT_MEANING) == set(Status)
    assert all(text.strip() for text in PATIENT_MEANING.values())
    assert "may practise" in PATIENT_MEANING[Status.ACTIVE]
    assert "may not" in PATIENT_MEANING[Status.SUSPENDED]
