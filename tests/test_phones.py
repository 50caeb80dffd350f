"""The phone rule (directory/listings/phones.py): valid numbers, and the one fictional range
the demo uses, which rings no one; and what a number lends itself to (call, WhatsApp)."""

from __future__ import annotations

import phonenumbers
import pytest

from directory.listings import phones
from directory.listings.imports import validate_clinic
from directory.web.presenters import contact


@pytest.mark.parametrize(
    "typed, stored",
    [
        ("021 555 0101", "+27215550101"),
        ("+27 82 555 0101", "+27825550101"),
        ("097 555 0000", "+27975550000"),
        ("097 555 0999", "+27975550999"),
        ("+44 20 7946 0000", "+442079460000"),
    ],
)
def test_numbers_are_stored_in_e164(typed, stored):
    assert phones.normalise(typed) == stored


@pytest.mark.parametrize("typed", ["097 555 1000", "097 555 01234", "099 555 0123", "12345", "x"])
def test_other_unallocated_or_unreadable_numbers_are_refused_with_the_reason(typed):
    with pytest.raises(phones.NotAPhoneNumber, match="phone"):
        phones.normalise(typed)


@pytest.mark.parametrize(
    "typed, why",
    [
        ("O82 555 0101", "letters"),  # a letter O for a zero: the keypad reads it as 6
        ("082 555 CALL", "letters"),
        ("+1 800 FLOWERS", "letters"),
        ("021 555 0101 ext 12", "letters"),
        ("082-555-0101#", "extension"),  # was stored as +2782555: a different number
        ("0215550101;ext=12", "extension"),
        ("021 555 0101 x12", "letters"),
    ],
)
def test_a_number_is_never_stored_as_other_digits_than_the_clinic_typed(typed, why):
    """phonenumbers turns letters into keypad digits and takes what follows a "#" or "ext"
    as an extension (dropped by E.164): either would put a call link to someone else on the
    clinic's page. Refused with the reason instead; the clinic writes the digits."""
    with pytest.raises(phones.NotAPhoneNumber, match=why):
        phones.normalise(typed)
    base = {"name": "Fictional Clinic", "slug": "fictional-clinic", "city": "Durban"}
    _, errors = validate_clinic({**base, "province": "KwaZulu-Natal", "phone": typed})
    assert [error.field for error in errors] == ["phone"]


@pytest.mark.parametrize("typed", ["(021) 555-0101", "+27 (0)21 555 0101", "0027215550101"])
def test_the_usual_ways_of_writing_a_number_are_still_read(typed):
    assert phones.normalise(typed) == "+27215550101"


def test_the_fictional_range_is_not_a_valid_number_anywhere_it_could_ring():
    for last in (0, 123, 999):
        number = phonenumbers.parse(f"097 555 0{last:03d}", "ZA")
        assert not phonenumbers.is_valid_number(number)
        assert phones.is_fictional(phonenumbers.format_number(number, 0))


def test_the_listing_rules_accept_the_fictional_range_and_nothing_else_unallocated():
    base = {"name": "Fictional Clinic", "slug": "fictional-clinic", "city": "Durban"}
    values, errors = validate_clinic({**base, "province": "KwaZulu-Natal", "phone": "097 555 0042"})
    assert not errors and values["phone"] == "+27975550042"
    _, errors = validate_clinic({**base, "province": "KwaZulu-Natal", "phone": "097 555 4242"})
    assert [error.field for error in errors] == ["phone"]


class _Clinic:
    def __init__(self, phone=None, email=None, latitude=None, longitude=None):
        self.phone, self.email, self.latitude, self.longitude = phone, email, latitude, longitude


def test_whatsapp_only_for_mobile_numbers_and_directions_only_for_real_coordinates():
    mobile = contact(_Clinic("+27825550101", latitude=-29.85, longitude=31.02))
    assert mobile.call == "tel:+27825550101" and mobile.whatsapp == "https://wa.me/27825550101"
    assert mobile.phone == "082 555 0101"
    assert mobile.directions.startswith(
        "https://www.openstreetmap.org/?mlat=-29.85000&mlon=31.02000"
    )
    landline = contact(_Clinic("+27215550101", latitude=95.0, longitude=18.4))
    assert landline.call and landline.whatsapp is None and landline.directions is None
    assert not contact(_Clinic())
    odd = contact(_Clinic(email="a+b@clinic.example"))
    assert odd.mail == "mailto:a+b@clinic.example" and odd.call is None
