"""The rules for reports of concern, in one place: the reasons a patient may give, how long a
message may be, and what filing one does.

Filing a report about a practitioner brings their next register check forward to now
(``registry.queue.check_soon``): a patient's report is a reason to ask the register again,
never a reason to change what the page says. The register's answer alone does that.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from directory.listings.models import Clinic
from directory.registry.models import Practitioner
from directory.registry.queue import check_soon
from directory.reports.models import ConcernReport
from directory.util.clock import utcnow
from directory.util.controls import lines

MESSAGE_MAX = 2000  # characters

# key -> (the words a patient picks, offered for a practitioner, offered for a clinic)
REASONS: dict[str, tuple[str, bool, bool]] = {
    "wrong_treatment": ("Listed for a treatment they don't offer", True, True),
    "not_the_person": ("Not the person named", True, False),
    "told_suspended": ("I was told they are suspended", True, False),
    "wrong_details": ("The clinic's details (phone, address, hours) are wrong", False, True),
    "not_registered": ("Someone working here is not registered", False, True),
    "other": ("Other", True, True),
}


def reasons_for(subject: str) -> list[tuple[str, str]]:
    """(key, words) for a ``"practitioner"`` or a ``"clinic"``, in the order shown."""
    column = 1 if subject == "practitioner" else 2
    return [(key, entry[0]) for key, entry in REASONS.items() if entry[column]]


def reason_words(key: str) -> str:
    return REASONS.get(key, (key,))[0]


class Invalid(ValueError):
    """The report cannot be stored as sent; ``errors`` maps each field to what is wrong."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class Filed:
    report: ConcernReport
    rechecked: bool  # its next register check was brought forward to now


def file_report(
    session: Session,
    *,
    reason: str | None,
    message: str | None,
    practitioner: Practitioner | None = None,
    clinic: Clinic | None = None,
) -> Filed:
    """Store a report about ``practitioner`` or ``clinic`` (the caller commits). Raises
    ``Invalid`` with a sentence per field; nothing is stored then."""
    if (practitioner is None) == (clinic is None):
        raise ValueError("a report is about one practitioner or one clinic")
    subject = "practitioner" if practitioner is not None else "clinic"
    errors: dict[str, str] = {}
    allowed = dict(reasons_for(subject))
    if reason not in allowed:
        errors["reason"] = "Choose what is wrong from the list."
    text = lines(message or "").strip()
    if len(text) > MESSAGE_MAX:
        errors["message"] = (
            f"Your message is {len(text)} characters long: at most {MESSAGE_MAX} fit. "
            "Shorten it and send it again."
        )
    if errors:
        raise Invalid(errors)
    report = ConcernReport(
        practitioner=practitioner, clinic=clinic, reason=reason, message=text, created_at=utcnow()
    )
    session.add(report)
    moved = 0
    if practitioner is not None:
        session.flush()
        moved = check_soon(session, [practitioner.id])
    return Filed(report, moved > 0)


def open_reports(session: Session) -> list[ConcernReport]:
    """Reports no site admin has marked handled, oldest first."""
    return list(
        session.scalars(
            select(ConcernReport)
            .where(ConcernReport.handled_at.is_(None))
            .options(selectinload(ConcernReport.practitioner), selectinload(ConcernReport.clinic))
            .order_by(ConcernReport.id)
        ).all()
    )


def count_open(session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(ConcernReport)
            .where(ConcernReport.handled_at.is_(None))
        )
        or 0
    )


class NotOpen(LookupError):
    pass


def mark_handled(session: Session, report_id: int, by: str) -> ConcernReport:
    """Mark one open report handled by ``by`` (the caller commits); ``NotOpen`` when there is
    no such report or it was handled already."""
    report = session.get(ConcernReport, report_id)
    if report is None or report.handled_at is not None:
        raise NotOpen("That report is not open (already handled, or never filed).")
    report.handled_at = utcnow()
    report.handled_by = by[:254]
    return report
