"""Turning stored facts into the words a patient reads. No rules live here: statuses come
from ``statuses``, the badge from ``verification.verdict``, numbers from ``numbers``, phone
numbers from ``listings.phones``."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from markupsafe import Markup, escape

from directory.listings import phones
from directory.registry.models import VerificationCheck
from directory.registry.statuses import Status
from directory.util.clock import as_utc, local_date, local_datetime

STATUS_WORDS: dict[str, str] = {
    Status.ACTIVE: "active",
    Status.SUSPENDED: "suspended",
    Status.ERASED: "erased",
    Status.INACTIVE: "inactive",
    Status.DECEASED: "deceased",
    Status.NOT_FOUND: "not on the register",
    Status.UNKNOWN: "an answer this directory cannot read",
}


def long_date(value: datetime | None) -> str:
    """``3 March 2025`` in South Africa; the empty string for no date."""
    return local_date(value) if value is not None else ""


def long_datetime(value: datetime | None) -> str:
    """``3 March 2025, 16:05 SAST``; the empty string for no date."""
    return local_datetime(value) if value is not None else ""


def km(distance: float | None) -> str:
    """``"4 km"``; ``"under 1 km"``; the empty string for no distance. Whole kilometres: the
    distance is as the crow flies, from a place's centre or a device's rough location."""
    if distance is None:
        return ""
    if distance < 1:
        return "under 1 km"
    return f"{round(distance):,} km".replace(",", " ")


def iso(value: datetime | None) -> str:
    """For ``<time datetime=...>``: the same moment, machine-readable, in UTC."""
    return as_utc(value).isoformat(timespec="seconds") if value else ""


_MARK = re.compile(r"&lt;(/?)mark&gt;")


def marked(snippet: str | None) -> Markup:
    """A search snippet with only its ``<mark>`` tags kept as HTML.

    The backend promises HTML-safe snippets; this holds even if it slips: the text is
    unescaped, escaped again, and only ``<mark>``/``</mark>`` restored.
    """
    if not snippet:
        return Markup("")
    safe = str(escape(html.unescape(snippet)))
    return Markup(_MARK.sub(r"<\1mark>", safe))


def safe_website(url: str | None) -> str | None:
    """A clinic's website as a link target, only when it is plain http(s).

    Listings are imported from files: a ``javascript:`` or ``data:`` "website" is shown
    as text, never as a link.
    """
    if not url:
        return None
    candidate = url.strip()
    if "://" not in candidate and re.match(r"^[\w.-]+\.[a-z]{2,}(/|$)", candidate, re.I):
        candidate = "https://" + candidate
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return candidate


@dataclass(frozen=True)
class Contact:
    """The ways to reach a clinic, as link targets; each None when the clinic gave nothing
    usable for it. WhatsApp is offered for a mobile number (what WhatsApp runs on)."""

    phone: str | None = None  # as a patient reads it: "021 555 0101"
    call: str | None = None  # tel:+27215550101
    whatsapp: str | None = None  # https://wa.me/27215550101
    email: str | None = None
    mail: str | None = None  # mailto:...
    directions: str | None = None  # a map at the clinic's coordinates (an outbound link)

    def __bool__(self) -> bool:
        return any((self.call, self.whatsapp, self.mail, self.directions))


MAP_URL = "https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"


def directions_href(latitude: float | None, longitude: float | None) -> str | None:
    if latitude is None or longitude is None:
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return MAP_URL.format(lat=f"{latitude:.5f}", lon=f"{longitude:.5f}")


def contact(clinic: Any) -> Contact:
    """How to reach ``clinic`` (anything with ``phone``, ``email``, ``latitude`` and
    ``longitude``): call, WhatsApp, email and directions."""
    number = phones.read(clinic.phone)
    email = (clinic.email or "").strip() or None
    return Contact(
        phone=phones.for_display(number) if number else None,
        call=f"tel:{number}" if number else None,
        whatsapp=f"https://wa.me/{number[1:]}" if number and phones.is_mobile(number) else None,
        email=email,
        mail=f"mailto:{quote(email, safe='@.+-_')}" if email else None,
        directions=directions_href(clinic.latitude, clinic.longitude),
    )


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    headline: str
    detail: str
    tone: str  # "answer", "adverse", "pending", "error", "ignored"
    source: str  # shown only under "About this record", with the register's own words
    raw_status: str | None = None


def timeline_entry(check: VerificationCheck) -> TimelineEntry:
    """One check from the history, in plain words (what the register said, what it did)."""
    status_words = STATUS_WORDS.get(check.status or "", check.status or "")
    if check.outcome == "error":
        reason = f": {check.error}" if check.error else ""
        return TimelineEntry(
            check.checked_at,
            "No usable answer from the register",
            f"The look-up failed{reason}. A failed look-up never changes the status.",
            "error",
            check.source,
        )
    if check.effect == "ignored_stale":
        return TimelineEntry(
            check.checked_at,
            f"An older answer: {status_words}",
            "This answer is older than the one the status already rests on, so it changed nothing.",
            "ignored",
            check.source,
        )
    if check.outcome == "not_found":
        if check.effect == "pending_not_found":
            return TimelineEntry(
                check.checked_at,
                "The register did not list this number",
                "A second look-up must confirm this before the status changes; until then "
                "this directory does not vouch for the registration.",
                "pending",
                check.source,
            )
        return TimelineEntry(
            check.checked_at,
            "The register has no record of this number",
            "Confirmed not found on the register.",
            "adverse",
            check.source,
        )
    tone = "answer" if check.status == Status.ACTIVE else "adverse"
    effect = {
        "changed": "The status changed.",
        "created": "The first answer this directory recorded.",
        "unchanged": "No change.",
    }.get(check.effect or "", "")
    return TimelineEntry(
        check.checked_at,
        f"The register said: {status_words}",
        effect,
        tone,
        check.source,
        check.raw_status,
    )
