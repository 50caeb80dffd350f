"""Registration numbers: the one place that reads, writes and pads them.

The register writes a number as a 2-4 letter prefix left-justified in five characters,
then seven zero-padded digits (``MP   0000123``). People type it with or without spaces,
in any case, sometimes with fewer digits. Everywhere inside the system (database, URLs,
API, search index) we keep one canonical form: prefix + seven digits, no spaces
(``MP0000123``).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from functools import cache
from importlib import resources

log = logging.getLogger(__name__)

DIGITS = 7
PREFIX_WIDTH = 5
_SHAPE = re.compile(r"^([A-Z]+)([0-9A-Z]*)$")
_CANONICAL = re.compile(r"^([A-Z]{2,4})([0-9]{7})$")
# What people put between the parts of a number: spaces (any kind), hyphens, dots, slashes.
_SEPARATORS = re.compile(r"[\s\-./]+")


class RegistrationNumberError(ValueError):
    """A string that cannot be a registration number; the message says why."""

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


@cache
def known_prefixes() -> dict[str, str]:
    """Prefix -> the register it stands for (data file ``data/prefixes.json``)."""
    raw = json.loads(resources.files(__package__).joinpath("data/prefixes.json").read_text())
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def register_name(prefix: str) -> str | None:
    return known_prefixes().get(prefix)


def normalise(text: str) -> str:
    """Return the canonical form of a typed or register-formatted number.

    Raises RegistrationNumberError saying what is wrong; when a letter O stands
    among the digits, the error carries the likely number as ``suggestion``.
    """
    if text is None:
        raise RegistrationNumberError("a registration number is required")
    shown = str(text).strip()
    # NFKC folds full-width letters and digits (some phone keyboards) into ASCII; anything
    # still not ASCII afterwards cannot be part of a number (and must not be upper-cased
    # into one: "ß".upper() is "SS").
    compact = _SEPARATORS.sub("", unicodedata.normalize("NFKC", str(text)))
    if not compact:
        raise RegistrationNumberError("a registration number is required")
    if not compact.isascii():
        raise RegistrationNumberError(
            f"{shown!r} contains characters that cannot be in a registration number"
        )
    compact = compact.upper()
    match = _SHAPE.match(compact)
    if not match:
        if compact[0].isdigit():
            raise RegistrationNumberError(
                f"{shown!r} has no register prefix: it should start with letters "
                "such as MP (medical practitioners) or DP (dentists), e.g. MP0012345"
            )
        raise RegistrationNumberError(
            f"{shown!r} contains characters that cannot be in a registration number"
        )
    prefix, rest = match.groups()
    if not rest:
        raise RegistrationNumberError(f"{shown!r} has a prefix but no digits")
    if prefix not in known_prefixes():
        # "MPO012345": letters greedily read as prefix may be a zero typed as the letter O.
        for cut in range(2, min(4, len(prefix) - 1) + 1):
            head, tail = prefix[:cut], prefix[cut:] + rest
            if head in known_prefixes() and set(prefix[cut:]) == {"O"}:
                fixed = tail.replace("O", "0")
                if fixed.isdigit() and len(fixed) <= DIGITS:
                    suggestion = _pad(head, fixed)
                    raise RegistrationNumberError(
                        f"{shown!r} has a letter O among its digits; did you mean {suggestion}?",
                        suggestion=suggestion,
                    )
    if len(prefix) > 4:
        raise RegistrationNumberError(
            f"{shown!r}: the register prefix is 2 to 4 letters, not {len(prefix)}"
        )
    if len(prefix) < 2:
        raise RegistrationNumberError(
            f"{shown!r}: the register prefix is 2 to 4 letters, e.g. MP or DP"
        )
    if not rest.isdigit():
        if set(rest) - set("0123456789") <= {"O"}:
            fixed = rest.replace("O", "0")
            suggestion = _pad(prefix, fixed) if len(fixed) <= DIGITS else None
            hint = f"; did you mean {suggestion}?" if suggestion else ""
            raise RegistrationNumberError(
                f"{shown!r} has a letter O among its digits{hint}",
                suggestion=suggestion,
            )
        raise RegistrationNumberError(f"{shown!r} has a letter among its digits")
    if len(rest) > DIGITS:
        raise RegistrationNumberError(
            f"{shown!r} has {len(rest)} digits; a registration number has at most {DIGITS}"
        )
    canonical = _pad(prefix, rest)
    if prefix not in known_prefixes():
        log.warning("registration number %s has a prefix the system does not know", canonical)
    return canonical


def _pad(prefix: str, digits: str) -> str:
    return prefix + digits.zfill(DIGITS)


def split(canonical: str) -> tuple[str, str]:
    """``MP0000123`` -> (``MP``, ``0000123``)."""
    match = _CANONICAL.match(canonical)
    if not match:
        raise RegistrationNumberError(f"{canonical!r} is not in canonical form")
    return match.group(1), match.group(2)


def register_format(canonical: str) -> str:
    """The register's own spelling: prefix left-justified in five characters, then digits."""
    prefix, digits = split(canonical)
    return prefix.ljust(PREFIX_WIDTH) + digits


def is_canonical(text: str) -> bool:
    return isinstance(text, str) and bool(_CANONICAL.match(text))
