"""Bulk import of clinics and their listings from JSON Lines: one clinic per line.

    {"clinic": {"name": ..., "slug": ..., "city": ..., "province": ..., ...},
     "listings": [{"registration_number": ..., "services": [...], "description": ...}]}

Used by ``flask directory import-listings``, by ``flask demo load`` and (later) by a clinic
API, so that every way in validates the same way. The rules:

- every field is validated; a bad clinic field rejects the whole line (clinic and listings),
  a bad listing (unknown registration number, unknown service, bad field) rejects only that
  listing; each problem is reported with its line number and reason, and the rest imported;
- a clinic can never invent a registration: a listing's number must already be in the
  register table (``practitioners``);
- re-running is idempotent: clinics are upserted by slug, listings by (practitioner,
  clinic), a listing's services are replaced by the line's; a clinic's optional fields the
  line leaves out are cleared (the line is the clinic's whole record);
- ``prune=True`` also removes the clinic's listings the line no longer names (never when one
  of the line's listings could not be read: its number might be the one about to go);
- a suspended clinic's line is rejected (its listings stay set aside until it is restored),
  and a claimed clinic's line is skipped with a warning: the clinic keeps its own profile
  and listings (``directory.listings.standing``), so no import overwrites what it wrote.

A file that is not JSON Lines at all (binary, empty, no line holding a JSON object) raises
``UnreadableListings`` before anything is changed.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from directory.listings import phones, standing
from directory.listings.models import Clinic, Listing, Service
from directory.listings.places import canonical_province, provinces
from directory.listings.vocabulary import (
    SLUG_SHAPE,
    ensure_services,
    resolve_slug,
    suggest_service,
)
from directory.registry import numbers
from directory.registry.models import Practitioner
from directory.registry.verification import verdict
from directory.util.clock import utcnow

Severity = Literal["error", "warning"]

MAX_LISTINGS_PER_CLINIC = 500
MAX_SERVICES_PER_LISTING = 40
MAX_LINE_CHARS = 1_000_000
CLINIC_KEYS = (
    "name",
    "slug",
    "description",
    "phone",
    "email",
    "website",
    "street_address",
    "city",
    "province",
    "postal_code",
    "latitude",
    "longitude",
    "opening_hours",
)
LISTING_KEYS = ("registration_number", "services", "description")
# Roughly South Africa (with Lesotho, Eswatini): coordinates outside get a warning.
SA_LATITUDES = (-35.5, -21.5)
SA_LONGITUDES = (16.0, 33.5)

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,62})$"
)
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")
_POSTAL_CODE = re.compile(r"^\d{4}$")
# Control characters (Unicode category Cc) and lone surrogates, except tab and line breaks,
# which are whitespace (kept in multi-line fields, collapsed elsewhere).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# What ``surrogateescape`` decoding leaves where a line's bytes were not UTF-8.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


class UnreadableListings(ValueError):
    """The file cannot be read as JSON Lines at all; nothing was changed."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one line: what, where, and whether it was skipped."""

    line: int
    reason: str
    severity: Severity = "error"
    clinic: str | None = None  # the clinic's slug, when it could be read
    listing: int | None = None  # 1-based position in the line's "listings"
    registration_number: str | None = None
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"type": "problem", **asdict(self)}

    def __str__(self) -> str:
        where = [f"line {self.line}"]
        if self.clinic:
            where.append(f"clinic {self.clinic}")
        if self.listing is not None:
            number = f" ({self.registration_number})" if self.registration_number else ""
            where.append(f"listing {self.listing}{number}")
        return f"{', '.join(where)}: {self.severity}: {self.reason}"


@dataclass
class ImportReport:
    lines: int = 0  # non-blank lines read
    clinics_created: int = 0
    clinics_updated: int = 0
    clinics_unchanged: int = 0
    clinics_skipped: int = 0  # claimed clinics: they keep their own record (a warning each)
    listings_created: int = 0
    listings_updated: int = 0
    listings_unchanged: int = 0
    listings_removed: int = 0
    lines_rejected: int = 0  # lines whose clinic was not imported at all
    listings_rejected: int = 0  # listings skipped (including those of rejected lines)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def exit_code(self) -> int:
        """0 when everything was imported, 1 when anything was rejected (warnings do not count)."""
        return 1 if self.errors else 0

    def summary(self) -> dict[str, Any]:
        counts = {k: v for k, v in asdict(self).items() if k != "problems"}
        return {
            "type": "summary",
            **counts,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "exit_code": self.exit_code,
        }


class _FieldError(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


# The field rules, for other writers of clinics and listings (``directory.accounts``).
FieldError = _FieldError


def clean_text(value: Any, name: str, max_length: int, *, multiline: bool = False) -> str | None:
    return _text(value, name, max_length, multiline=multiline)


def clean_email(value: Any) -> str | None:
    return _email(value)


# --- reading the file ----------------------------------------------------------------------


def read_listing_lines(path: str | Path) -> list[str]:
    """The file's lines, once it is known to be JSON Lines; ``UnreadableListings`` otherwise.

    A line that is not UTF-8 or not JSON is left for the importer to report by number;
    the file as a whole is refused only when no line at all holds a JSON object.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError as exc:
        raise UnreadableListings(f"{path} is a directory, not a JSON Lines file") from exc
    except OSError as exc:
        raise UnreadableListings(f"cannot read {path}: {exc.strerror or exc}") from exc
    if b"\x00" in data:
        raise UnreadableListings(f"{path} is a binary file, not JSON Lines text")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = [raw.decode("utf-8", errors="surrogateescape") for raw in data.splitlines()]
    if not any(line.strip() for line in lines):
        raise UnreadableListings(f"{path} is empty: expected one JSON object (a clinic) per line")
    if not any(_is_json_object(line) for line in lines):
        hint = ""
        try:
            whole = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            whole = None
        if isinstance(whole, list):
            hint = " (it is one JSON array: write each clinic object on a line of its own)"
        elif isinstance(whole, dict):
            hint = " (it is one JSON object spread over several lines: put it on one line)"
        raise UnreadableListings(f"{path} is not JSON Lines: no line holds a JSON object{hint}")
    return lines


def _is_json_object(line: str) -> bool:
    text = line.strip()
    if not text.startswith("{"):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


# --- importing ---------------------------------------------------------------------------


def import_listing_file(session: Session, path: str | Path, *, prune: bool = False) -> ImportReport:
    """Read and import a JSON Lines file. The caller commits (or rolls back)."""
    return import_listing_lines(session, read_listing_lines(path), prune=prune)


def import_listing_lines(
    session: Session, lines: Iterable[str], *, prune: bool = False, first_line: int = 1
) -> ImportReport:
    """Import JSON Lines text, one clinic per line. The caller commits (or rolls back)."""
    importer = _Importer(session, prune=prune)
    for line_number, text in enumerate(lines, start=first_line):
        if not text.strip():
            continue
        importer.report.lines += 1
        record = importer.parse(line_number, text)
        if record is not None:
            importer.import_record(line_number, record)
    session.flush()
    return importer.report


def import_listing_records(
    session: Session, records: Iterable[dict[str, Any]], *, prune: bool = False
) -> ImportReport:
    """Import already-parsed records (one dict per clinic), numbered from 1 like lines.

    They go through JSON text first, so that what is imported is exactly what a file with
    the same content would import.
    """
    return import_listing_lines(
        session, (json.dumps(record, ensure_ascii=False) for record in records), prune=prune
    )


@dataclass
class _ParsedListing:
    position: int
    registration_number: str
    service_slugs: list[str]
    description: str


class ListingRules:
    """The rules every listing is written by, whoever writes it: the bulk import, a clinic's
    own pages and its API (``directory.accounts.services``). A listing's fields are validated
    here, its services must be in the treatment vocabulary, and it is written through the
    ORM so that the search outbox learns of it in the same transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        ensure_services(session)
        self.services = {s.slug: s for s in session.scalars(select(Service))}

    def validate_listing(self, position: int, raw: dict[str, Any]) -> _ParsedListing:
        number_text = raw.get("registration_number")
        if not isinstance(number_text, str) or not number_text.strip():
            raise _FieldError("registration_number", "registration_number is required (text)")
        try:
            number = numbers.normalise(number_text)
        except numbers.RegistrationNumberError as exc:
            raise _FieldError("registration_number", str(exc)) from exc

        raw_services = raw.get("services")
        if not isinstance(raw_services, list) or not raw_services:
            raise _FieldError("services", "services must be a non-empty list of service names")
        if len(raw_services) > MAX_SERVICES_PER_LISTING:
            raise _FieldError(
                "services", f"more than {MAX_SERVICES_PER_LISTING} services in one listing"
            )
        slugs: list[str] = []
        for item in raw_services:
            if not isinstance(item, str):
                raise _FieldError("services", f"a service must be a name, not {item!r}"[:200])
            slug = resolve_slug(item)
            if slug is None or slug not in self.services:
                shown = _shorten(item)
                guess = suggest_service(item)
                hint = f"; did you mean {guess.name!r} ({guess.slug})?" if guess else ""
                raise _FieldError(
                    "services",
                    f"unknown service {shown!r}{hint} (the listing is skipped; "
                    "see `flask directory services` for the vocabulary)",
                )
            if slug not in slugs:
                slugs.append(slug)

        description = _text(raw.get("description"), "description", 4000, multiline=True) or ""
        return _ParsedListing(position, number, slugs, description)

    def write_listing(
        self,
        clinic: Clinic,
        practitioner: Practitioner,
        item: _ParsedListing,
        listing: Listing | None,
    ) -> tuple[Listing, Literal["created", "updated", "unchanged"]]:
        """Create ``listing`` (when None) or bring it in line with ``item``."""
        services = [self.services[slug] for slug in item.service_slugs]
        if listing is None:
            listing = Listing(
                practitioner=practitioner,
                clinic=clinic,
                description=item.description,
                services=services,
            )
            self.session.add(listing)
            return listing, "created"
        changed = listing.description != item.description
        if changed:
            listing.description = item.description
        if {s.slug for s in listing.services} != set(item.service_slugs):
            listing.services = services
            listing.updated_at = utcnow()  # a row update, so that its version moves too
            changed = True
        return listing, "updated" if changed else "unchanged"


class _Importer:
    def __init__(self, session: Session, *, prune: bool) -> None:
        self.session = session
        self.prune = prune
        self.report = ImportReport()
        self.rules = ListingRules(session)
        self.slug_lines: dict[str, int] = {}

    def problem(self, line: int, reason: str, **where: Any) -> None:
        self.report.problems.append(Problem(line=line, reason=reason, **where))

    def warn_unknown_keys(
        self, line: int, given: dict, known: Iterable[str], what: str, **where: Any
    ) -> None:
        """A warning per key of ``given`` outside ``known`` (sorted): ignored, not fatal."""
        for key in sorted(set(given) - set(known)):
            reason = f"unknown {what} {key!r} ignored"
            self.problem(line, reason, severity="warning", field=key, **where)

    # One line -> a dict, or a reported problem.
    def parse(self, line: int, text: str) -> dict[str, Any] | None:
        if len(text) > MAX_LINE_CHARS:
            self.reject_line(line, f"the line is longer than {MAX_LINE_CHARS:,} characters")
            return None
        if _UNDECODABLE.search(text):
            self.reject_line(line, "the line is not UTF-8 text")
            return None
        try:
            record = json.loads(text, parse_constant=_refuse_constant)
        except ValueError as exc:
            reason = f"not valid JSON: {getattr(exc, 'msg', exc)}"
            if hasattr(exc, "colno"):
                reason += f" (column {exc.colno})"
            self.reject_line(line, reason)
            return None
        if not isinstance(record, dict):
            self.reject_line(
                line, 'each line must be a JSON object: {"clinic": {...}, "listings": [...]}'
            )
            return None
        return record

    def reject_line(self, line: int, reason: str, *, listings: int = 0, **where: Any) -> None:
        self.problem(line, reason, **where)
        self.report.lines_rejected += 1
        self.report.listings_rejected += listings

    def import_record(self, line: int, record: dict[str, Any]) -> None:
        raw_listings = record.get("listings", [])
        listing_count = len(raw_listings) if isinstance(raw_listings, list) else 0
        clinic_data = record.get("clinic")
        if not isinstance(clinic_data, dict):
            self.reject_line(
                line,
                '"clinic" is missing or not an object: {"clinic": {"name": ..., "slug": ..., '
                '"city": ..., "province": ...}}',
                listings=listing_count,
            )
            return
        self.warn_unknown_keys(line, record, ("clinic", "listings"), "key")

        values, errors = validate_clinic(clinic_data)
        slug = values.get("slug") or _safe_slug(clinic_data.get("slug"))
        self.warn_unknown_keys(line, clinic_data, CLINIC_KEYS, "clinic field", clinic=slug)
        if not isinstance(raw_listings, list):
            errors.append(_FieldError("listings", '"listings" must be a list of objects'))
        elif len(raw_listings) > MAX_LISTINGS_PER_CLINIC:
            errors.append(
                _FieldError(
                    "listings", f"more than {MAX_LISTINGS_PER_CLINIC} listings for one clinic"
                )
            )
        if not errors and slug in self.slug_lines:
            errors.append(
                _FieldError(
                    "slug",
                    f"clinic {slug} already appeared on line {self.slug_lines[slug]} of this file",
                )
            )
        if errors:
            for error in errors:
                self.problem(line, error.reason, clinic=slug, field=error.field)
            self.report.lines_rejected += 1
            self.report.listings_rejected += listing_count
            return
        for warning in coordinate_warnings(values):
            self.problem(line, warning, severity="warning", clinic=slug, field="latitude")
        self.slug_lines[slug] = line

        if standing.suspended_slug(self.session, slug):
            self.reject_line(
                line,
                f"clinic {slug} is suspended: its line is not imported (its listings stay out "
                "of the directory until a site admin restores it; import it again after that)",
                listings=listing_count,
                clinic=slug,
            )
            return
        if self.is_claimed(slug):
            self.problem(
                line,
                f"clinic {slug} is claimed: it keeps its own profile and listings, so this "
                "line changes nothing (ask the clinic, or a site admin, to make the change)",
                severity="warning",
                clinic=slug,
            )
            self.report.clinics_skipped += 1
            return
        parsed, rejected_numbers, unreadable = self.validate_listings(line, slug, raw_listings)
        clinic = self.upsert_clinic(values)
        kept = self.upsert_listings(line, clinic, parsed)
        if self.prune:
            if unreadable:
                self.problem(
                    line,
                    "listings not pruned: a listing on this line could not be read",
                    severity="warning",
                    clinic=slug,
                )
            else:
                self.prune_listings(clinic, kept, rejected_numbers)

    def validate_listings(
        self, line: int, slug: str, raw_listings: list[Any]
    ) -> tuple[list[_ParsedListing], set[str], bool]:
        """The listings that can be imported, the numbers of those rejected (whose existing
        listings pruning must keep), and whether any could not even be identified."""
        parsed: list[_ParsedListing] = []
        rejected: set[str] = set()
        unreadable = False
        seen: dict[str, int] = {}
        for position, raw in enumerate(raw_listings, start=1):
            where = {"clinic": slug, "listing": position}
            if not isinstance(raw, dict):
                self.problem(line, "a listing must be a JSON object", **where)
                self.report.listings_rejected += 1
                unreadable = True
                continue
            number_text = raw.get("registration_number")
            if isinstance(number_text, str):
                where["registration_number"] = number_text.strip()[:20]
            self.warn_unknown_keys(line, raw, LISTING_KEYS, "listing field", **where)
            try:
                listing = self.validate_listing(position, raw)
            except _FieldError as error:
                self.problem(line, error.reason, field=error.field, **where)
                self.report.listings_rejected += 1
                if error.field == "registration_number":
                    unreadable = True
                else:
                    rejected.add(numbers.normalise(number_text))
                continue
            where["registration_number"] = listing.registration_number
            if listing.registration_number in seen:
                self.problem(
                    line,
                    f"{listing.registration_number} is already listed at this clinic "
                    f"(listing {seen[listing.registration_number]})",
                    field="registration_number",
                    **where,
                )
                self.report.listings_rejected += 1
                continue
            seen[listing.registration_number] = position
            parsed.append(listing)
        return parsed, rejected, unreadable

    def validate_listing(self, position: int, raw: dict[str, Any]) -> _ParsedListing:
        return self.rules.validate_listing(position, raw)

    def is_claimed(self, slug: str) -> bool:
        """A claimed clinic edits its own record: an operator's file (often older than the
        clinic's own edits) must not overwrite it, and would leave no trace of who did."""
        clinic = self.session.scalar(select(Clinic).where(Clinic.slug == slug))
        return clinic is not None and standing.is_claimed(clinic)

    def upsert_clinic(self, values: dict[str, Any]) -> Clinic:
        clinic = self.session.scalar(select(Clinic).where(Clinic.slug == values["slug"]))
        if clinic is None:
            clinic = Clinic(**values)
            self.session.add(clinic)
            self.report.clinics_created += 1
            return clinic
        changed = _assign(clinic, values)
        if changed:
            self.report.clinics_updated += 1
        else:
            self.report.clinics_unchanged += 1
        return clinic

    def upsert_listings(
        self, line: int, clinic: Clinic, parsed: list[_ParsedListing]
    ) -> list[Listing]:
        """Create or update the line's listings; every listing the line names."""
        wanted = [p.registration_number for p in parsed]
        practitioners = (
            {
                p.registration_number: p
                for p in self.session.scalars(
                    select(Practitioner).where(Practitioner.registration_number.in_(wanted))
                )
            }
            if wanted
            else {}
        )
        existing = (
            {
                listing.practitioner_id: listing
                for listing in self.session.scalars(
                    select(Listing)
                    .where(Listing.clinic_id == clinic.id)
                    .options(selectinload(Listing.services))
                )
            }
            if clinic.id is not None
            else {}
        )
        kept: list[Listing] = []
        for item in parsed:
            where = {
                "clinic": clinic.slug,
                "listing": item.position,
                "registration_number": item.registration_number,
            }
            practitioner = practitioners.get(item.registration_number)
            if practitioner is None:
                self.problem(
                    line,
                    f"{item.registration_number} is not in the register table: a clinic "
                    "cannot add a registration (import the register or verify the number "
                    "first, and check it is typed correctly)",
                    field="registration_number",
                    **where,
                )
                self.report.listings_rejected += 1
                continue
            judged = verdict(practitioner)
            if judged.tone == "adverse":
                self.problem(
                    line,
                    f"the register says {judged.status.replace('_', ' ')}: the listing is "
                    "imported and shown with that status, never as verified",
                    severity="warning",
                    **where,
                )
            listing, change = self.rules.write_listing(
                clinic, practitioner, item, existing.get(practitioner.id)
            )
            existing[practitioner.id] = listing
            if change == "created":
                self.report.listings_created += 1
            elif change == "updated":
                self.report.listings_updated += 1
            else:
                self.report.listings_unchanged += 1
            kept.append(listing)
        return kept

    def prune_listings(self, clinic: Clinic, kept: list[Listing], keep_numbers: set[str]) -> None:
        kept_objects = {id(listing) for listing in kept}
        for listing in list(clinic.listings):
            if id(listing) in kept_objects:
                continue
            if listing.practitioner.registration_number not in keep_numbers:
                clinic.listings.remove(listing)
                self.session.delete(listing)
                self.report.listings_removed += 1


# --- field validation --------------------------------------------------------------------


def validate_clinic(data: dict[str, Any]) -> tuple[dict[str, Any], list[_FieldError]]:
    """The clinic's cleaned values (every key of CLINIC_KEYS), and every field's problem."""
    values: dict[str, Any] = {}
    errors: list[_FieldError] = []

    def check(key: str, validate) -> None:
        try:
            values[key] = validate(data.get(key))
        except _FieldError as error:
            errors.append(error)

    check("name", lambda v: _text(v, "name", 200, required=True))
    check("slug", lambda v: _slug(v, data.get("name")))
    check("description", lambda v: _text(v, "description", 5000, multiline=True))
    check("phone", _phone)
    check("email", _email)
    check("website", _website)
    check("street_address", lambda v: _text(v, "street_address", 300))
    check("city", _city)
    check("province", _province)
    check("postal_code", _postal_code)
    check("latitude", lambda v: _coordinate(v, "latitude", 90.0))
    check("longitude", lambda v: _coordinate(v, "longitude", 180.0))
    check("opening_hours", lambda v: _text(v, "opening_hours", 1000, multiline=True))
    if not errors and (values["latitude"] is None) != (values["longitude"] is None):
        missing = "longitude" if values["longitude"] is None else "latitude"
        errors.append(_FieldError(missing, "latitude and longitude go together: give both"))
    return values, errors


def coordinate_warnings(values: dict[str, Any]) -> list[str]:
    lat, lon = values.get("latitude"), values.get("longitude")
    if lat is None or lon is None:
        return []
    if SA_LATITUDES[0] <= lat <= SA_LATITUDES[1] and SA_LONGITUDES[0] <= lon <= SA_LONGITUDES[1]:
        return []
    return [f"coordinates ({lat}, {lon}) are outside South Africa: latitude and longitude swapped?"]


def _text(
    value: Any, name: str, max_length: int, *, required: bool = False, multiline: bool = False
) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _FieldError(name, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise _FieldError(name, f"{name} must be text, not {type(value).__name__}")
    text = unicodedata.normalize("NFC", value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    bad = _CONTROL.search(text)
    if bad:
        raise _FieldError(name, f"{name} contains control characters (such as {bad.group()!r})")
    if multiline:
        text = "\n".join(line.rstrip() for line in text.strip().split("\n"))
    else:
        text = re.sub(r"\s+", " ", text).strip()
    if len(text) > max_length:
        raise _FieldError(name, f"{name} is longer than {max_length} characters ({len(text)})")
    return text


def _slug(value: Any, name: Any) -> str:
    text = _text(value, "slug", 120, required=True)
    assert text is not None
    if not SLUG_SHAPE.match(text):
        suggestion = slugify(name) if isinstance(name, str) else slugify(text)
        hint = f", e.g. {suggestion!r}" if suggestion else ""
        raise _FieldError(
            "slug",
            f"slug {_shorten(text)!r} must be lower-case letters and digits joined by single "
            f"dashes{hint}",
        )
    return text


def slugify(text: str) -> str:
    """``"Sample Skin & Laser, Cape Town"`` -> ``"sample-skin-laser-cape-town"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = decomposed.encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:120].strip("-")


def _safe_slug(value: Any) -> str | None:
    """The slug as given, for naming the clinic in a problem report even when it is bad."""
    if isinstance(value, str) and value.strip():
        return _shorten(value.strip())
    return None


def _phone(value: Any) -> str | None:
    text = _text(value, "phone", 40)
    if text is None:
        return None
    try:
        return phones.normalise(text)
    except phones.NotAPhoneNumber as exc:
        raise _FieldError("phone", str(exc)) from exc


def _email(value: Any) -> str | None:
    text = _text(value, "email", 200)
    if text is None:
        return None
    match = _EMAIL.match(text)
    if not match:
        raise _FieldError("email", f"email {_shorten(text)!r} is not an e-mail address")
    local, domain = text.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def _website(value: Any) -> str | None:
    text = _text(value, "website", 300)
    if text is None:
        return None
    has_scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text) and not re.match(r"^[^/]+:\d", text)
    candidate = text if has_scheme else f"https://{text}"
    try:
        parts = urlsplit(candidate)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError as exc:
        raise _FieldError("website", f"website {_shorten(text)!r} is not a web address") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise _FieldError("website", f"website must be an http or https address, not {text!r}")
    if parts.username or parts.password:
        raise _FieldError("website", "website must not contain a user name or password")
    if " " in candidate or not _HOST.match(host):
        raise _FieldError("website", f"website {_shorten(text)!r} is not a web address")
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))


def _city(value: Any) -> str:
    text = _text(value, "city", 120, required=True)
    assert text is not None
    if text.isupper() or text.islower():
        text = text.title()
    return text


def _province(value: Any) -> str:
    text = _text(value, "province", 60, required=True)
    canonical = canonical_province(text)
    if canonical is None:
        raise _FieldError(
            "province",
            f"province {_shorten(text or '')!r} is not one of South Africa's nine provinces "
            f"({', '.join(provinces())})",
        )
    return canonical


def _postal_code(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9999:
        return f"{value:04d}"
    text = _text(value, "postal_code", 10)
    if text is None:
        return None
    if not _POSTAL_CODE.match(text):
        raise _FieldError(
            "postal_code", f"postal_code {_shorten(text)!r} must be four digits, e.g. 8001"
        )
    return text


def _coordinate(value: Any, name: str, limit: float) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise _FieldError(name, f"{name} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise _FieldError(name, f"{name} must be a number, not {_shorten(str(value))!r}") from exc
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise _FieldError(name, f"{name} must be between -{limit:g} and {limit:g}")
    return number


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _assign(obj: Any, values: dict[str, Any]) -> bool:
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def iter_problems(report: ImportReport) -> Iterator[Problem]:
    """Problems in line order (errors and warnings interleaved as they occur)."""
    yield from sorted(report.problems, key=lambda p: (p.line, p.listing or 0))
