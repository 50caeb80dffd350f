"""How the rows a snapshot gives for one number relate: the duplicate and conflict rules.

A snapshot lists the register's category rows, one per line. All the rows of one number
are that number's one register answer, and they go through ``checks.decide`` exactly as the
same rows would in a live answer: their statuses combine (``statuses.combine``: anything
adverse wins), a category listed twice keeps every status it was given, and the first row's
names are the practitioner's names. Comparing two rows of one number, case aside:

* the same names, category and status: a **repeat** of the earlier line, the same register
  row listed twice. It is imported once, with a warning.
* the same category with another status, or other names: a **contradiction**. Both rows
  stay in the answer (so an adverse status wins, as it would live), and the import warns,
  naming both lines.
* otherwise: **another category** row of the same answer.

Only a row that cannot be read at all (``importers.sources.snapshot.RowProblem``) is
rejected. Pass 1 (``digest.py``) applies these rules to 64-bit hashes of the values
(``sign``), so that it holds no text of the file.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

_MASK = (1 << 64) - 1


class Relation(Enum):
    REPEAT = "repeat"
    OTHER_NAMES = "other names"
    OTHER_STATUS = "another status for the same category"
    ANOTHER_CATEGORY = "another category"


class Sign(NamedTuple):
    """A row's names, category and status, each as a 64-bit hash of its upper-case text."""

    names: int
    category: int
    status: int


def _norm(text: str | None) -> str:
    """Values come white-space-cleaned from the reader; compare them case-insensitively."""
    return text.upper() if text else ""


def sign(
    title: str | None, surname: str | None, full_names: str | None, category: str, status: str
) -> Sign:
    """The values the rules compare (hashes are stable within one process: all they need)."""
    return Sign(
        hash((_norm(title), _norm(surname), _norm(full_names))) & _MASK,
        hash(_norm(category)) & _MASK,
        hash(_norm(status)) & _MASK,
    )


def relation(earlier: Sign, later: Sign) -> Relation:
    """How ``later`` relates to an ``earlier`` row of the same number (a status
    contradiction first: it is the one that can change what a patient is told)."""
    if earlier == later:
        return Relation.REPEAT
    if earlier.category == later.category and earlier.status != later.status:
        return Relation.OTHER_STATUS
    if earlier.names != later.names:
        return Relation.OTHER_NAMES
    return Relation.ANOTHER_CATEGORY


def repeat_warning(earlier_line: int) -> str:
    return f"repeats line {earlier_line} exactly: imported once"


def contradiction_warning(
    line: int, category: str, *, status_line: int | None, names_line: int | None
) -> str:
    """The warning for a row that gives its category another status than ``status_line``,
    or other names than the number's first row, ``names_line`` (or both)."""
    parts = []
    if status_line is not None:
        parts.append(f"gives category {category!r} another status than line {status_line}")
    if names_line is not None:
        parts.append(f"gives other names than line {names_line}")
    outcome = (
        "both are imported and combine as in a live answer (an adverse status wins)"
        if status_line is not None
        else "both rows are imported as one register answer"
    )
    if names_line is not None:
        outcome += f", with line {names_line}'s names"
    return f"line {line} {' and '.join(parts)}: {outcome}"
