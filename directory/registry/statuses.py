"""Canonical statuses, the mapping from the register's raw strings, and how rows combine.

The mapping itself is data (``data/statuses.json``); this module is the only code that
reads it. A raw string the mapping does not know maps to ``unknown``, is logged, and
is never treated as "may practise".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from enum import StrEnum
from functools import cache
from importlib import resources

log = logging.getLogger(__name__)


class Status(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ERASED = "erased"
    INACTIVE = "inactive"
    DECEASED = "deceased"
    NOT_FOUND = "not_found"
    UNKNOWN = "unknown"


class Outcome(StrEnum):
    """What one look-up at the register came to."""

    OK = "ok"  # the register answered with rows for this number
    NOT_FOUND = "not_found"  # the register answered: no such number
    ERROR = "error"  # no usable answer: never moves a status


def _key(raw: str) -> str | None:
    """Trimmed, spaces collapsed, upper case; None when not plain ASCII.

    Non-ASCII text is never matched: upper-casing it could turn a look-alike
    ("ACT\u0131VE", with a dotless i) into a known string.
    """
    collapsed = " ".join(raw.split())  # the same white space as ``\s``: str.isspace
    return collapsed.upper() if collapsed.isascii() else None


@cache
def status_map() -> dict[str, Status]:
    """Raw register string (as matched) -> canonical status, from ``data/statuses.json``."""
    raw = json.loads(resources.files(__package__).joinpath("data/statuses.json").read_text())
    mapping: dict[str, Status] = {}
    for text, value in raw.items():
        if text.startswith("_"):
            continue
        key = _key(text)
        if key is None:
            raise ValueError(f"statuses.json: {text!r} is not plain ASCII")
        mapping[key] = Status(value)
    return mapping


def map_raw_status(raw: str | None) -> Status:
    """The canonical status for one raw register string; unknown strings give UNKNOWN."""
    if raw is None or not str(raw).strip():
        log.warning("register gave an empty status string")
        return Status.UNKNOWN
    key = _key(str(raw))
    status = status_map().get(key) if key is not None else None
    if status is None:
        log.warning("register status %r is not in the status mapping; treated as unknown", raw)
        return Status.UNKNOWN
    return status


# How several category rows for one number combine into the registration's one status.
# Anything adverse, or anything we cannot read, anywhere wins over "active": a patient is
# never told a practitioner may practise while any row of the register says otherwise or
# says something we do not understand. Otherwise one active category is enough (other
# categories such as an old student or intern row are routinely inactive). Every status is
# listed, so the order is total (``not_found`` cannot come from a row today; if the mapping
# ever produced it, it would still rank as adverse).
COMBINE_PRECEDENCE: tuple[Status, ...] = (
    Status.DECEASED,
    Status.SUSPENDED,
    Status.ERASED,
    Status.NOT_FOUND,
    Status.UNKNOWN,
    Status.ACTIVE,
    Status.INACTIVE,
)


def _as_status(value: Status | str) -> Status:
    try:
        return Status(value)
    except ValueError:
        log.warning("%r is not a canonical status; combined as unknown", value)
        return Status.UNKNOWN


def combine(statuses: Iterable[Status]) -> Status:
    """The one canonical status of a registration from its category rows' statuses."""
    statuses = tuple(statuses)
    if len(statuses) == 1 and statuses[0].__class__ is Status:  # the usual case: one row
        return statuses[0]
    present = {_as_status(s) for s in statuses}
    if not present:
        return Status.NOT_FOUND
    for status in COMBINE_PRECEDENCE:
        if status in present:
            return status
    return Status.UNKNOWN  # unreachable while COMBINE_PRECEDENCE lists every status


# What each status means for a patient, used by pages, API and CLI alike.
PATIENT_MEANING: dict[Status, str] = {
    Status.ACTIVE: "The register lists this practitioner as active: they may practise.",
    Status.SUSPENDED: (
        "The register lists this registration as suspended: the practitioner may not "
        "practise while the suspension lasts."
    ),
    Status.ERASED: (
        "The register lists this registration as erased: the practitioner is no longer "
        "registered and may not practise."
    ),
    Status.INACTIVE: (
        "The register lists this registration as inactive: the practitioner is not "
        "currently registered to practise."
    ),
    Status.DECEASED: "The register lists this practitioner as deceased.",
    Status.NOT_FOUND: (
        "The register has no practitioner with this number. Do not be treated by "
        "someone whose registration cannot be found."
    ),
    Status.UNKNOWN: (
        "The register's answer could not be read with certainty, so this directory "
        "does not vouch for this registration. Check it at the source."
    ),
}
