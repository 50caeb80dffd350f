"""Registration numbers: one canonical form, plain reasons for every rejection (numbers.py)."""

from __future__ import annotations

import json
import logging
import string
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from directory.registry import numbers
from directory.registry.numbers import (
    RegistrationNumberError,
    is_canonical,
    known_prefixes,
    normalise,
    register_format,
    register_name,
    split,
)

# --- the canonical form ---------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "MP0000123",
        "MP   0000123",  # the register's own spelling: prefix left-justified in five
        "mp0000123",
        "Mp 0000123",
        " mp 000 0123 ",
        "MP-0000123",
        "MP.0000123",
        "MP/0000123",
        "MP\t0000123",
        "MP\u00a00000123",  # a non-breaking space pasted from a web page
        "MP123",  # fewer digits: zero-padded
        "mp 123",
        "MP 0123",
        "\uff2d\uff30\uff11\uff12\uff13",  # full-width, as some phone keyboards type it
    ],
)
def test_spellings_of_one_number_give_the_canonical_form(typed):
    assert normalise(typed) == "MP0000123"


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("DP 1", "DP0000001"),
        ("PS   0001234", "PS0001234"),
        ("prc 401", "PRC0000401"),
        ("OT7654321", "OT7654321"),
        ("ECP  0000042", "ECP0000042"),
    ],
)
def test_prefixes_of_two_to_four_letters(typed, canonical):
    assert normalise(typed) == canonical
    assert is_canonical(canonical)


def test_register_format_pads_the_prefix_to_five_characters():
    assert register_format("MP0000123") == "MP   0000123"
    assert register_format("PRC0000401") == "PRC  0000401"
    assert register_format("ABCD0000001") == "ABCD 0000001"
    assert len(register_format("MP0000123")) == 12


def test_split_and_is_canonical_accept_only_the_canonical_form():
    assert split("MP0000123") == ("MP", "0000123")
    arabic_indic = "MP" + "".join(chr(0x0660 + int(d)) for d in "0000123")
    for not_canonical in ["MP   0000123", "mp0000123", "MP123", "MP00001234", arabic_indic, ""]:
        assert not is_canonical(not_canonical)
        with pytest.raises(RegistrationNumberError):
            split(not_canonical)
    assert not is_canonical(None)  # type: ignore[arg-type]


# --- rejections say what is wrong -------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "required"),
        ("   ", "required"),
        ("-./", "required"),
        (None, "required"),
        ("0000123", "no register prefix"),
        ("123", "no register prefix"),
        (123, "no register prefix"),  # a spreadsheet cell holding a bare number
        ("MP12345678", "has 8 digits"),
        ("MP 0000 0001 23", "has 10 digits"),
        ("MP12A45", "letter among its digits"),
        ("MP0000123X", "letter among its digits"),
        ("M123", "2 to 4 letters"),
        ("ABCDE123", "2 to 4 letters, not 5"),
        ("ABCDEFG0000123", "2 to 4 letters, not 7"),
        ("MP", "prefix but no digits"),
        ("MP#123", "cannot be in a registration number"),
        ("MP_0000123", "cannot be in a registration number"),
        ("m\u00df123", "cannot be in a registration number"),  # sharp s upper-cases to "SS"
        ("MP\u0661\u0662\u0663", "cannot be in a registration number"),  # Arabic-Indic digits
        ("MP\u200b123", "cannot be in a registration number"),  # zero-width space
    ],
)
def test_rejections_say_what_is_wrong(typed, reason):
    with pytest.raises(RegistrationNumberError) as caught:
        normalise(typed)
    assert reason in str(caught.value)
    assert caught.value.suggestion is None


def test_rejection_messages_quote_what_was_typed():
    with pytest.raises(RegistrationNumberError) as caught:
        normalise("  MP12345678 ")
    assert "'MP12345678'" in str(caught.value)


def test_registration_number_error_is_a_value_error():
    assert issubclass(RegistrationNumberError, ValueError)


# --- the letter O among the digits --------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "likely"),
    [
        ("MP O123", "MP0000123"),
        ("MPO012345", "MP0012345"),  # the O read greedily as part of the prefix
        ("MP00O1234", "MP0001234"),
        ("mp0o1o1o1", "MP0010101"),
        ("MPOO12345", "MP0012345"),
        ("PRCO401", "PRC0000401"),
        ("POO12345", "PO0012345"),  # PO (a known prefix ending in O) then a letter O
    ],
)
def test_letter_o_among_the_digits_is_rejected_with_the_likely_number(typed, likely):
    with pytest.raises(RegistrationNumberError) as caught:
        normalise(typed)
    assert caught.value.suggestion == likely
    assert "letter O" in str(caught.value)
    assert f"did you mean {likely}?" in str(caught.value)
    assert normalise(caught.value.suggestion) == likely  # the suggestion is itself valid


def test_letter_o_making_too_many_digits_gets_no_suggestion():
    with pytest.raises(RegistrationNumberError) as caught:
        normalise("MP0O1234567")
    assert "letter O" in str(caught.value)
    assert caught.value.suggestion is None


def test_other_letters_among_the_digits_get_no_suggestion():
    with pytest.raises(RegistrationNumberError) as caught:
        normalise("MP0I01234")
    assert caught.value.suggestion is None


# --- prefixes are data -------------------------------------------------------------------


def test_known_prefixes_are_data_with_the_register_each_stands_for():
    data = json.loads(
        resources.files("directory.registry").joinpath("data/prefixes.json").read_text()
    )
    prefixes = known_prefixes()
    assert prefixes == {k: v for k, v in data.items() if not k.startswith("_")}
    for prefix, register in {
        "MP": "Medical practitioners",
        "DP": "Dentists",
        "PS": "Psychologists",
        "PRC": "Registered counsellors",
        "OT": "Occupational therapists",
    }.items():
        assert register_name(prefix) == register
    assert len(prefixes) > 5
    for prefix, register in prefixes.items():
        assert 2 <= len(prefix) <= 4 and prefix.isalpha() and prefix.isupper() and prefix.isascii()
        assert register.strip()
    assert register_name("ZZ") is None


def test_a_known_prefix_is_accepted_silently(caplog):
    with caplog.at_level(logging.WARNING, logger=numbers.__name__):
        assert normalise("DP 201") == "DP0000201"
    assert caplog.records == []


def test_an_unknown_prefix_is_accepted_and_logged(caplog):
    with caplog.at_level(logging.WARNING, logger=numbers.__name__):
        assert normalise("zz 42") == "ZZ0000042"
        assert normalise("QXYZ0000001") == "QXYZ0000001"
    messages = [r.getMessage() for r in caplog.records if r.name == numbers.__name__]
    assert any("ZZ0000042" in m and "prefix" in m for m in messages)
    assert any("QXYZ0000001" in m for m in messages)


# --- round trips ----------------------------------------------------------------------------

prefixes = st.one_of(
    st.sampled_from(sorted(known_prefixes())),
    st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=4).filter(
        # an unknown prefix ending in O could be a known one plus a zero typed as O
        lambda p: not any(p[:cut] in known_prefixes() for cut in range(2, len(p)))
    ),
)
canonical_numbers = st.builds(
    lambda prefix, n: f"{prefix}{n:07d}", prefixes, st.integers(0, 9_999_999)
)


@given(canonical_numbers)
def test_register_format_round_trips(number):
    assert normalise(register_format(number)) == number
    assert normalise(number) == number
    assert is_canonical(number)


@given(canonical_numbers, st.sampled_from(["", " ", "  ", "-", "\t"]), st.booleans())
def test_typed_variants_round_trip(number, separator, lower):
    prefix, digits = split(number)
    typed = prefix + separator + digits.lstrip("0")
    if not digits.lstrip("0"):
        typed = prefix + separator + "0"
    typed = typed.lower() if lower else typed
    assert normalise(typed) == number


@given(st.text(max_size=20))
def test_any_text_is_either_canonical_or_a_plain_rejection(text):
    try:
        result = normalise(text)
    except RegistrationNumberError as exc:
        assert str(exc)
        if exc.suggestion is not None:
            assert is_canonical(exc.suggestion)
    else:
        assert is_canonical(result)
