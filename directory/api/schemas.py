"""Marshmallow schemas of the API: they validate the query string and are the OpenAPI document's
component schemas (the document is generated from them, never written by hand)."""

from __future__ import annotations

import unicodedata

from marshmallow import Schema, ValidationError, fields, validate

from directory.listings.places import parse_coordinates
from directory.listings.vocabulary import service_terms
from directory.registry.statuses import Status
from directory.search.backend import MAX_PER_PAGE, MAX_RADIUS_KM, SORT_ORDERS

MAX_QUERY_LENGTH = 500
MAX_FILTER_LENGTH = 120
MAX_PAGE = 1000
STATUSES = tuple(s.value for s in Status)
# What the validator below enforces, for the document (ECMA-262 syntax; C0, DEL and C1).
NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"


def no_control_characters(value: str) -> None:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValidationError("must not contain control characters (such as tabs or newlines)")


def text_field(max_length: int, description: str, **kwargs) -> fields.String:
    return fields.String(
        validate=[
            validate.Length(max=max_length, error="must be at most {max} characters long"),
            no_control_characters,
        ],
        metadata={"description": description, "pattern": NO_CONTROL_CHARACTERS},
        **kwargs,
    )


class Ordered(Schema):
    class Meta:
        ordered = True


class Coordinates(fields.String):
    """``"latitude,longitude"`` in the query string -> a (latitude, longitude) pair."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_coordinates(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


# --- Query parameters ------------------------------------------------------------------------


class SearchArgsSchema(Ordered):
    q = text_field(
        MAX_QUERY_LENGTH,
        "Free text: a treatment, a name, anything. Quotes make a phrase; misspellings are "
        "corrected where possible (see `did_you_mean`).",
        load_default="",
    )
    where = text_field(
        MAX_FILTER_LENGTH,
        "A place, as typed: a town, city or suburb (old names such as `Port Elizabeth` and "
        "short forms such as `Jozi` too), a province or a postal code.",
        load_default="",
    )
    # The document lists the vocabulary's slugs: an unknown service is a 400 problem, so the
    # document must not allow it (a service's name or synonym is understood too).
    service = text_field(MAX_FILTER_LENGTH, "Only practitioners offering this service (its slug).")
    service.metadata["enum"] = [term.slug for term in service_terms()]
    city = text_field(MAX_FILTER_LENGTH, "Only practitioners listed at a clinic in this city.")
    province = text_field(MAX_FILTER_LENGTH, "Only clinics in this province.")
    clinic = text_field(MAX_FILTER_LENGTH, "Only practitioners listed at this clinic (its slug).")
    status = fields.String(
        validate=validate.OneOf(STATUSES, error="must be one of: {choices}"),
        metadata={
            "description": "Only this registration status. Statuses other than `active` "
            "match only together with `include_unverified=true`."
        },
    )
    include_unverified = fields.Boolean(
        load_default=False,
        error_messages={"invalid": "must be true or false"},
        metadata={
            "description": "Also list practitioners this directory cannot currently "
            "vouch for, each with its status. Default: only currently verified ones."
        },
    )
    page = fields.Integer(
        load_default=1,
        validate=validate.Range(1, MAX_PAGE, error="must be between {min} and {max}"),
        error_messages={"invalid": "must be a whole number"},
        metadata={"description": "Page number, from 1."},
    )
    per_page = fields.Integer(
        load_default=20,
        validate=validate.Range(1, MAX_PER_PAGE, error="must be between {min} and {max}"),
        error_messages={"invalid": "must be a whole number"},
        metadata={"description": "Results per page."},
    )
    sort = fields.String(
        load_default="relevance",
        validate=validate.OneOf(SORT_ORDERS, error="must be one of: {choices}"),
        metadata={
            "description": "`relevance`, `name`, `verified` (most recently confirmed first) "
            "or `distance` (nearest first: needs a place in `q` or `where`, or `near`)."
        },
    )
    near = Coordinates(
        validate=validate.Length(max=60, error="must be at most {max} characters long"),
        metadata={
            "description": "A location to measure distances from, `latitude,longitude` in "
            "decimal degrees (e.g. the device's own location). Without it, distances are "
            "measured from the town, city or suburb named in `q` or `where`.",
            "pattern": "^ *-?[0-9.]+ *, *-?[0-9.]+ *$",
            "example": "-26.1076,28.0567",
        },
    )
    radius = fields.Float(
        allow_nan=False,
        validate=validate.Range(
            0, MAX_RADIUS_KM, min_inclusive=False, error="must be more than {min} and at most {max}"
        ),
        error_messages={"invalid": "must be a number of kilometres"},
        metadata={
            "description": "Only practitioners with a clinic at most this many kilometres "
            "from the place (or `near`); it replaces the place's city filter, and a clinic "
            "without coordinates is left out. Needs a place or `near`, like `sort=distance`."
        },
    )


# --- Shared pieces ---------------------------------------------------------------------------


class ServiceRefSchema(Ordered):
    slug = fields.String(required=True)
    name = fields.String(required=True)


class ClinicRefSchema(Ordered):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    city = fields.String(required=True)
    province = fields.String(required=True)


class SearchClinicSchema(ClinicRefSchema):
    distance_km = fields.Float(
        required=True,
        allow_none=True,
        metadata={
            "description": "Kilometres from the search's `origin` (as the crow flies); null "
            "without an origin or when the clinic gave no coordinates"
        },
    )


class OriginSchema(Ordered):
    label = fields.String(
        required=True, metadata={"description": "`Sandton, Johannesburg`, `your location`"}
    )
    latitude = fields.Float(required=True)
    longitude = fields.Float(required=True)


class VerificationFieldsSchema(Ordered):
    registration_number = fields.String(
        required=True, metadata={"description": "Canonical form, e.g. `MP0012345`"}
    )
    name = fields.String(required=True, metadata={"description": "As the register writes it"})
    status = fields.String(
        required=True,
        metadata={"description": "The register's status, canonical", "enum": list(STATUSES)},
    )
    verified = fields.Boolean(
        required=True,
        metadata={
            "description": "True only while the register confirmed an active "
            "registration recently enough; the same decision as every page's badge."
        },
    )
    verified_at = fields.DateTime(
        required=True,
        allow_none=True,
        metadata={"description": "When the register last confirmed this registration"},
    )


# --- Search ----------------------------------------------------------------------------------


class SearchResultSchema(VerificationFieldsSchema):
    services = fields.List(fields.Nested(ServiceRefSchema), required=True)
    clinics = fields.List(
        fields.Nested(SearchClinicSchema),
        required=True,
        metadata={"description": "Nearest first when the search has an `origin`"},
    )
    distance_km = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "To the nearest of `clinics` (null: not measured)"},
    )
    snippet = fields.String(
        required=True,
        metadata={"description": "HTML: a passage with `<mark>` around the words that matched"},
    )
    url = fields.String(
        required=True, metadata={"format": "uri", "description": "The practitioner's page"}
    )


class NamedResultSchema(SearchResultSchema):
    headline = fields.String(
        required=True,
        metadata={"description": "The badge's words, e.g. `HPCSA register: suspended`"},
    )
    named_by = fields.String(
        required=True,
        metadata={
            "description": "Why it is listed: the search's words are this practitioner's "
            "`name`, or its `registration_number`",
            "enum": ["name", "registration_number"],
        },
    )


class FacetValueSchema(Ordered):
    value = fields.String(required=True, metadata={"description": "Slug (services) or name"})
    label = fields.String(required=True)
    count = fields.Integer(required=True)


class SearchResponseSchema(Ordered):
    results = fields.List(
        fields.Nested(SearchResultSchema),
        required=True,
        metadata={
            "description": "This page's matches. Without `include_unverified`, only "
            "practitioners verified now (judged from the database at the moment of the "
            "answer, never from the search index's copy)."
        },
    )
    named = fields.List(
        fields.Nested(NamedResultSchema),
        required=True,
        metadata={
            "description": "Practitioners the words of `q` name (a registration number in "
            "any typed form, or words that are all words of a listed practitioner's names), "
            "verified or not, at most 5, not-verified ones first; only on page 1, and never "
            "one already in `results`. Not counted in `total`."
        },
    )
    total = fields.Integer(
        required=True,
        metadata={
            "description": "Matches over all pages: the index's count less this page's "
            "matches that `results` leaves out (no longer verified, or gone). A one-page "
            "answer counts exactly its `results`; other pages' counts may lag by seconds."
        },
    )
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    pages = fields.Integer(required=True)
    facets = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Nested(FacetValueSchema)),
        required=True,
        metadata={"description": "Counts over all matches: `services`, `cities`"},
    )
    did_you_mean = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "A corrected query when the words typed look misspelt"},
    )
    understood = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": 'How the query was read, e.g. `{"service": "mesotherapy"}`'},
    )
    origin = fields.Nested(
        OriginSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": "Where distances are measured from: the place the search named "
            "(when the directory knows its coordinates) or `near`; null: no distances"
        },
    )


# --- Practitioners ---------------------------------------------------------------------------


class CategorySchema(Ordered):
    category = fields.String(required=True)
    raw_status = fields.String(required=True, allow_none=True)
    status = fields.String(required=True)


class CheckSchema(Ordered):
    checked_at = fields.DateTime(
        required=True, metadata={"description": "When the register's answer is from"}
    )
    source = fields.String(required=True)
    outcome = fields.String(
        required=True,
        metadata={
            "description": "`ok`, `not_found`, or `error` (no answer: changes nothing)",
            "enum": ["ok", "not_found", "error"],
        },
    )
    status = fields.String(required=True, allow_none=True)
    raw_status = fields.String(required=True, allow_none=True)
    effect = fields.String(required=True, allow_none=True)


class VerdictSchema(Ordered):
    tone = fields.String(
        required=True,
        metadata={"enum": ["verified", "adverse", "stale", "pending", "unknown"]},
    )
    badge = fields.String(required=True, metadata={"enum": ["green", "red", "amber"]})
    headline = fields.String(required=True, metadata={"description": "The badge's words"})
    explanation = fields.String(required=True, metadata={"description": "What it means"})
    days_since_confirmed = fields.Integer(required=True, allow_none=True)


class ListingSchema(ClinicRefSchema):
    services = fields.List(fields.Nested(ServiceRefSchema), required=True)
    description = fields.String(required=True, metadata={"description": "The clinic's words"})


class PractitionerSchema(VerificationFieldsSchema):
    register_format = fields.String(
        required=True, metadata={"description": "The number as the register writes it"}
    )
    register = fields.String(
        required=True, allow_none=True, metadata={"description": "The register of the prefix"}
    )
    title = fields.String(required=True, allow_none=True)
    surname = fields.String(required=True, allow_none=True)
    full_names = fields.String(required=True, allow_none=True)
    city = fields.String(required=True, allow_none=True)
    category = fields.String(required=True, allow_none=True)
    categories = fields.List(fields.Nested(CategorySchema), required=True)
    raw_status = fields.String(
        required=True, allow_none=True, metadata={"description": "The register's own words"}
    )
    status_as_of = fields.DateTime(required=True, allow_none=True)
    last_checked_at = fields.DateTime(required=True, allow_none=True)
    headline = fields.String(required=True, metadata={"description": "= `verdict.headline`"})
    verdict = fields.Nested(VerdictSchema, required=True)
    register_record_url = fields.String(
        required=True,
        metadata={"format": "uri", "description": "This registration on the HPCSA iRegister"},
    )
    history = fields.List(
        fields.Nested(CheckSchema),
        required=True,
        metadata={"description": "The most recent checks, newest first"},
    )
    clinics = fields.List(
        fields.Nested(ListingSchema),
        required=True,
        metadata={"description": "Where the practitioner is listed (the clinics' own words)"},
    )
    services = fields.List(fields.Nested(ServiceRefSchema), required=True)
    url = fields.String(
        required=True, metadata={"format": "uri", "description": "The practitioner's page"}
    )


# --- Clinics and services --------------------------------------------------------------------


class ClinicPractitionerSchema(VerificationFieldsSchema):
    headline = fields.String(required=True)
    services = fields.List(fields.Nested(ServiceRefSchema), required=True)
    description = fields.String(required=True)
    url = fields.String(required=True, metadata={"format": "uri"})


class ClinicSchema(Ordered):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    phone = fields.String(required=True, allow_none=True)
    email = fields.String(required=True, allow_none=True)
    website = fields.String(required=True, allow_none=True)
    street_address = fields.String(required=True, allow_none=True)
    city = fields.String(required=True)
    province = fields.String(required=True)
    postal_code = fields.String(required=True, allow_none=True)
    latitude = fields.Float(required=True, allow_none=True)
    longitude = fields.Float(required=True, allow_none=True)
    practitioners = fields.List(
        fields.Nested(ClinicPractitionerSchema),
        required=True,
        metadata={"description": "Everyone the clinic lists, each with the register's status"},
    )


class ServiceSchema(Ordered):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    synonyms = fields.List(fields.String(), required=True)


class ServiceListSchema(Ordered):
    services = fields.List(fields.Nested(ServiceSchema), required=True)


class ServiceDetailSchema(ServiceSchema):
    total_practitioners = fields.Integer(
        required=True, metadata={"description": "Currently verified practitioners offering it"}
    )
    practitioners = fields.List(
        fields.Nested(SearchResultSchema),
        required=True,
        metadata={"description": "The first of them; `search_url` pages through all"},
    )
    search_url = fields.String(
        required=True, metadata={"format": "uri", "description": "This service's search"}
    )
