"""One registration as plain values, for every surface that describes it (API, CLI)."""

from __future__ import annotations

from typing import Any

from directory.registry import numbers
from directory.registry.models import Practitioner
from directory.registry.professions import profession
from directory.registry.verification import Verdict


def registration_facts(practitioner: Practitioner, judged: Verdict) -> dict[str, Any]:
    """What the system holds about one registration: the register's facts, the categories, the
    status and check state, and ``judged`` (the practitioner's ``verdict``).

    Datetimes stay datetimes: each caller writes them its own way (the API through its schema,
    ``flask registry show`` as ISO text). Values are the stored ones, unformatted.
    """
    p = practitioner
    prefix, _ = numbers.split(p.registration_number)
    return {
        "registration_number": p.registration_number,
        "register_format": numbers.register_format(p.registration_number),
        "register": numbers.register_name(prefix),
        "profession": profession(prefix, p.category),
        "name": p.display_name,
        "title": p.title,
        "surname": p.surname,
        "full_names": p.full_names,
        "city": p.city,
        "postal_code": p.postal_code,
        "category": p.category,
        "categories": [
            {"category": c.category, "status": c.status, "raw_status": c.raw_status}
            for c in p.categories
        ],
        "status": p.status,
        "raw_status": p.raw_status,
        "status_as_of": p.status_as_of,
        "status_changed_at": p.status_changed_at,
        "verified": judged.verified,
        "verdict": {
            "tone": judged.tone,
            "headline": judged.headline,
            "explanation": judged.explanation,
        },
        "verified_at": p.verified_at,
        "outcome": p.last_outcome,
        "last_checked_at": p.last_checked_at,
        "next_check_at": p.next_check_at,
        "consecutive_failures": p.consecutive_failures,
        "not_found_pending_since": p.not_found_pending_since,
    }
