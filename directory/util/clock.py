"""Time in one place: aware UTC everywhere in Python, naive UTC in the database, and South
African time (SAST, UTC+2 all year) only where a patient reads a date or a time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The zone every date or time a patient reads is shown in; the API and the feeds keep ISO UTC.
LOCAL_ZONE = ZoneInfo("Africa/Johannesburg")
LOCAL_ZONE_NAME = "SAST"


def as_local(value: datetime) -> datetime:
    """``value`` in South African time (naive datetimes are UTC, as everywhere)."""
    return as_utc(value).astimezone(LOCAL_ZONE)


def local_date(value: datetime) -> str:
    """``3 March 2026``: the date in South Africa (no platform-specific strftime flags)."""
    return _date_text(as_local(value).date())


@lru_cache(maxsize=4096)
def _date_text(day: date) -> str:
    # strftime is most of the cost, and a page of badges repeats a few dates.
    return f"{day.day} {day:%B %Y}"


def local_datetime(value: datetime) -> str:
    """``3 March 2026, 16:05 SAST``."""
    value = as_local(value)
    return f"{value.day} {value:%B %Y, %H:%M} {LOCAL_ZONE_NAME}"


class UTCDateTime(TypeDecorator):
    """Stores naive UTC (portable: SQLite keeps no zone), hands back aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL paths on SQLite
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)
