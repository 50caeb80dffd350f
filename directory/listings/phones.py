"""Clinics' phone numbers: the one rule for reading them, and what a number lends itself to.

Numbers are read with ``phonenumbers`` (South African unless written with +country) and
stored in E.164 (``+27215550101``). A number must be one the numbering plan allocates, with
one exception: the range the fictional demo data uses, ``FICTIONAL_RANGE`` (097 555 0000 to
097 555 0999). South Africa reserves no range for fiction, and ``phonenumbers`` knows the
whole 097 prefix as unallocated (not a valid number: it can reach no one), so demo clinics
show every contact link without any chance of ringing a real person (directory/demo/README.md).
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

DEFAULT_REGION = "ZA"
FICTIONAL_RANGE = "+27975550"  # E.164 prefix: +27 97 555 0xxx, written 097 555 0xxx
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_LETTER = re.compile(r"[^\W\d_]")


class NotAPhoneNumber(ValueError):
    pass


def is_fictional(e164: str) -> bool:
    return e164.startswith(FICTIONAL_RANGE) and len(e164) == len(FICTIONAL_RANGE) + 3


def normalise(text: str) -> str:
    """``"021 555 0101"`` -> ``"+27215550101"``; raises ``NotAPhoneNumber`` saying why.

    Only digits the clinic typed are stored: ``phonenumbers`` would read letters as keypad
    digits (a letter O typed for a zero becomes a 6) and take what follows ``#``, ``x`` or
    ``ext`` as an extension, which E.164 drops; either would make the call link ring
    someone else, so both are refused with the reason."""
    if _LETTER.search(text):
        raise NotAPhoneNumber(
            f"phone {text!r} is not a phone number as written: it has letters in it; write "
            "the number in digits only (a letter would be read as another digit; an "
            "extension cannot be dialled)"
        )
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise NotAPhoneNumber(f"phone {text!r} is not a phone number ({exc})") from exc
    if number.extension:
        raise NotAPhoneNumber(
            f"phone {text!r} has an extension ({number.extension}): give the number alone"
        )
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(number) and not is_fictional(e164):
        raise NotAPhoneNumber(
            f"phone {text!r} is not a valid South African number (or +country number)"
        )
    return e164


def read(stored: str | None) -> str | None:
    """A stored number as E.164, or None when it cannot be read as one."""
    if not stored:
        return None
    try:
        return normalise(stored)
    except NotAPhoneNumber:
        return None


def is_mobile(e164: str) -> bool:
    """A mobile number (what WhatsApp runs on). The fictional range stands for one."""
    if is_fictional(e164):
        return True
    return phonenumbers.number_type(phonenumbers.parse(e164)) in _MOBILE_TYPES


def for_display(e164: str) -> str:
    """``+27215550101`` -> ``021 555 0101`` (national form at home, international abroad)."""
    number = phonenumbers.parse(e164)
    if number.country_code == 27:
        national = str(number.national_number)
        if is_fictional(e164) or not phonenumbers.is_valid_number(number):
            return f"0{national[:2]} {national[2:5]} {national[5:]}"
        return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
