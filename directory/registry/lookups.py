"""What a register said about one number: the value every source hands to the rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from directory.registry.statuses import Outcome


@dataclass(frozen=True, slots=True)
class RegisterRow:
    """One category row of the register, with the number already in canonical form."""

    registration_number: str
    title: str | None
    surname: str | None
    full_names: str | None
    city: str | None
    postal_code: str | None
    category: str
    status: str  # the raw string, as the register wrote it


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The register's answer for one number (or the failure to get one).

    ``observed_at`` is when the register said it: the look-up time, or a snapshot's
    as-of date. ``undated`` marks an answer whose date is only an estimate (a snapshot
    imported without ``--as-of``, dated by its file's modification time): the export may
    be older, so it never lifts an adverse or pending status (``checks.decide``).
    ``transient`` marks failures a retry may cure (timeouts, 5xx, 429...); ``retry_after``
    is the register's own Retry-After in seconds, when it sent one.
    """

    registration_number: str
    outcome: Outcome
    observed_at: datetime
    source: str
    rows: tuple[RegisterRow, ...] = ()
    digest: str | None = None
    error: str | None = None
    duration_ms: int | None = None
    transient: bool = False
    retry_after: float | None = None
    undated: bool = False
    http_status: int | None = field(default=None, compare=False)

    @property
    def is_answer(self) -> bool:
        """True when the register actually answered (rows or an explicit not-found)."""
        return self.outcome is not Outcome.ERROR
