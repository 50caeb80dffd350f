"""A clinic's own systems change its profile and listings through the API, with the same
rules as its pages (``services``): ``PATCH /api/v1/clinics/<slug>``,
``GET|POST /api/v1/clinics/<slug>/listings`` and
``GET|PATCH|DELETE /api/v1/clinics/<slug>/listings/<number>``.

Authentication: ``Authorization: Bearer <token>`` (a clinic's API token, for that clinic
only), or a signed-in session cookie, whose writes must carry ``X-CSRFToken``. Every change
names the ``version`` it was based on; a stale one is refused with 409 and changes nothing.

A body that is a JSON object with invalid fields (a wrong type as much as a rule broken) is
422 ``invalid_fields``; a body that is not a JSON object at all is 400 ``malformed_body``; a
bad query parameter is 400 ``invalid_parameters``, as everywhere in the API.
"""

from __future__ import annotations

from flask import request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from marshmallow import EXCLUDE, fields, validate

from directory.accounts import csrf
from directory.accounts import services as svc
from directory.api.base import ApiArgumentsParser, ApiBlueprint
from directory.api.problems import ApiProblem
from directory.api.schemas import Ordered
from directory.extensions import db
from directory.listings.models import Clinic, Listing

NOT_AN_OBJECT = (
    "The body must be one JSON object (Content-Type: application/json), "
    'e.g. {"version": 3, "phone": "021 555 0199"}: nothing changed.'
)


class ClinicArgumentsParser(ApiArgumentsParser):
    """Fields of a JSON object that break the schema are 422 ``invalid_fields``, like every
    other field rule of these endpoints; a body that is not a JSON object is 400."""

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        messages = error.normalized_messages()
        if "json" not in messages:
            super().handle_error(
                error,
                req,
                schema,
                error_status_code=error_status_code,
                error_headers=error_headers,
            )
        body = req.get_json(silent=True) if req.is_json else None
        if not isinstance(body, dict):
            raise ApiProblem(400, NOT_AN_OBJECT, code="malformed_body")
        listed = ApiProblem.invalid_parameters(messages)
        raise ApiProblem(
            422, listed.detail, code="invalid_fields", errors=listed.extensions["errors"]
        )

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        raise ApiProblem(400, f"The body is not valid JSON. {NOT_AN_OBJECT}", code="malformed_body")


class ClinicBlueprint(ApiBlueprint):
    ARGUMENTS_PARSER = ClinicArgumentsParser()


clinic_accounts_api = ClinicBlueprint(
    "clinic_accounts",
    __name__,
    url_prefix="/api/v1",
    description="A clinic's own profile and listings, changed by the clinic (authenticated: "
    "`Authorization: Bearer <token>`). Every change names the `version` it is based on.",
)

BEARER = [{"bearerAuth": []}]
SLUG = {
    "in": "path",
    "name": "slug",
    "description": "The clinic's slug",
    "schema": {"type": "string", "minLength": 1, "maxLength": 120},
}
NUMBER = {
    "in": "path",
    "name": "number",
    "description": "The practitioner's HPCSA registration number",
    "schema": {"type": "string", "minLength": 1, "maxLength": 40},
}
PRIVATE = {"Cache-Control": "private, no-store"}
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
WRITE_ERRORS = {
    "400": {
        "description": "The body is not one JSON object (`malformed_body`), or a query "
        "parameter is invalid (`invalid_parameters`): nothing changed",
        "content": PROBLEM,
    },
    "401": {"description": "No token, or an unknown or revoked one", "content": PROBLEM},
    "403": {"description": "Not allowed (e.g. the clinic is suspended)", "content": PROBLEM},
    "409": {"description": "Based on a stale version: nothing changed", "content": PROBLEM},
    "422": {
        "description": "`invalid_fields`: fields of the JSON object that are invalid (a wrong "
        "type, or a rule broken), each named in `errors` with its message: nothing changed",
        "content": PROBLEM,
    },
    "503": {"description": "The register did not answer (adding a listing)", "content": PROBLEM},
}


class ProfilePatchSchema(Ordered):
    class Meta:
        ordered = True
        unknown = EXCLUDE

    version = fields.Integer(
        required=True, metadata={"description": "The version this is based on"}
    )
    name = fields.String(validate=validate.Length(max=10_000))
    description = fields.String(allow_none=True, validate=validate.Length(max=100_000))
    phone = fields.String(allow_none=True, validate=validate.Length(max=10_000))
    email = fields.String(allow_none=True, validate=validate.Length(max=10_000))
    website = fields.String(allow_none=True, validate=validate.Length(max=10_000))
    street_address = fields.String(allow_none=True, validate=validate.Length(max=10_000))
    city = fields.String(validate=validate.Length(max=10_000))
    province = fields.String(validate=validate.Length(max=10_000))
    postal_code = fields.String(allow_none=True, validate=validate.Length(max=10_000))
    latitude = fields.Float(allow_none=True, allow_nan=False)
    longitude = fields.Float(allow_none=True, allow_nan=False)
    opening_hours = fields.String(allow_none=True, validate=validate.Length(max=10_000))


class ProfileSchema(Ordered):
    slug = fields.String(required=True)
    version = fields.Integer(required=True)
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    website = fields.String(allow_none=True)
    street_address = fields.String(allow_none=True)
    city = fields.String(required=True)
    province = fields.String(required=True)
    postal_code = fields.String(allow_none=True)
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    opening_hours = fields.String(allow_none=True)


class OwnListingSchema(Ordered):
    registration_number = fields.String(required=True)
    name = fields.String(required=True, metadata={"description": "The register's spelling"})
    services = fields.List(fields.String(), required=True, metadata={"description": "Slugs"})
    description = fields.String(required=True)
    version = fields.Integer(required=True)


class OwnListingsSchema(Ordered):
    listings = fields.List(fields.Nested(OwnListingSchema), required=True)
    held = fields.List(
        fields.Dict(),
        required=True,
        metadata={"description": "Listings waiting for a site admin (not public)"},
    )


class ListingCreateSchema(Ordered):
    class Meta:
        ordered = True
        unknown = EXCLUDE

    registration_number = fields.String(required=True, validate=validate.Length(max=100))
    name = fields.String(
        required=True,
        validate=validate.Length(max=10_000),
        metadata={"description": "The practitioner's name, as the register spells it"},
    )
    services = fields.List(fields.String(validate=validate.Length(max=1000)), required=True)
    description = fields.String(load_default="", validate=validate.Length(max=100_000))


class ListingCreatedSchema(Ordered):
    state = fields.String(
        required=True, metadata={"description": "`listed`, or `held` for a site admin's review"}
    )
    register_name = fields.String(required=True)
    listing = fields.Nested(OwnListingSchema, allow_none=True)


class ListingPatchSchema(Ordered):
    class Meta:
        ordered = True
        unknown = EXCLUDE

    version = fields.Integer(required=True)
    services = fields.List(fields.String(validate=validate.Length(max=1000)))
    description = fields.String(validate=validate.Length(max=100_000))


class VersionArgsSchema(Ordered):
    version = fields.Integer(required=True, metadata={"description": "The version to remove"})


def _actor() -> svc.Actor:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        found = svc.token_actor(db.session, token.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise ApiProblem(
                401,
                "The API token is not valid (unknown or revoked).",
                code="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="clinics"'},
            )
        return found
    if current_user.is_authenticated:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            try:
                csrf.protect()  # a cookie-authenticated write must carry X-CSRFToken
            except CSRFError as exc:
                raise ApiProblem(
                    403, f"CSRF check failed: {exc.description}", code="csrf_failed"
                ) from exc
        return svc.Actor(user=current_user._get_current_object())
    raise ApiProblem(
        401,
        "Authentication is required: send Authorization: Bearer <token>.",
        code="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="clinics"'},
    )


def _clinic(actor: svc.Actor, slug: str) -> Clinic:
    clinic = db.session.scalar(db.select(Clinic).where(Clinic.slug == slug.strip().lower()))
    if clinic is None or not actor.may_edit(clinic):
        raise ApiProblem(404, "There is no such clinic for these credentials.")
    return clinic


def _problem(exc: svc.AccountError) -> ApiProblem:
    db.session.rollback()
    if isinstance(exc, svc.Invalid):
        return ApiProblem(
            422,
            exc.message,
            code="invalid_fields",
            errors=[
                {"location": "json", "parameter": k, "detail": v} for k, v in exc.errors.items()
            ],
        )
    if isinstance(exc, svc.TooManyLookups):
        return ApiProblem(
            429, exc.message, code="too_many_lookups", headers={"Retry-After": str(exc.retry_after)}
        )
    codes = {403: "forbidden", 404: "not_found", 409: "stale_version"}
    return ApiProblem(exc.status, exc.message, code=codes.get(exc.status))


def _listing(listing: Listing) -> dict:
    return {
        "registration_number": listing.practitioner.registration_number,
        "name": listing.practitioner.display_name,
        "services": sorted(s.slug for s in listing.services),
        "description": listing.description or "",
        "version": listing.version,
    }


def _profile(clinic: Clinic) -> dict:
    return {"slug": clinic.slug, "version": clinic.version, **svc.profile_of(clinic)}


@clinic_accounts_api.route("/clinics/<slug>", methods=["PATCH"], parameters=[SLUG])
@clinic_accounts_api.arguments(ProfilePatchSchema, error_status_code=422)
@clinic_accounts_api.response(200, ProfileSchema, headers=None)
@clinic_accounts_api.doc(security=BEARER, responses=WRITE_ERRORS)
def patch_clinic(changes: dict, slug: str):
    """Change the clinic's profile

    Send only the fields to change, and the `version` you read. The clinic's slug is its
    address and cannot change. 409 when the profile changed since that version.
    """
    actor = _actor()
    clinic = _clinic(actor, slug)
    based_on = changes.pop("version")
    try:
        svc.update_profile(db.session, actor, clinic, changes, based_on)
        db.session.commit()
    except svc.AccountError as exc:
        raise _problem(exc) from exc
    return _profile(clinic), 200, PRIVATE


@clinic_accounts_api.route("/clinics/<slug>/profile", methods=["GET"], parameters=[SLUG])
@clinic_accounts_api.response(200, ProfileSchema)
@clinic_accounts_api.doc(security=BEARER, responses=WRITE_ERRORS)
def get_profile(slug: str):
    """The clinic's profile as it edits it, with the `version` a PATCH must name"""
    actor = _actor()
    clinic = _clinic(actor, slug)
    db.session.commit()  # the token's last use
    return _profile(clinic), 200, PRIVATE


@clinic_accounts_api.route("/clinics/<slug>/listings", methods=["GET"], parameters=[SLUG])
@clinic_accounts_api.response(200, OwnListingsSchema)
@clinic_accounts_api.doc(security=BEARER, responses=WRITE_ERRORS)
def list_listings(slug: str):
    """The clinic's listings, with their versions, and those waiting for review"""
    actor = _actor()
    clinic = _clinic(actor, slug)
    held = [
        {
            "registration_number": h.registration_number,
            "name_given": h.name_given,
            "register_name": h.register_name,
            "services": h.services,
        }
        for h in svc.held_listings(db.session, clinic)
    ]
    db.session.commit()  # the token's last use
    listings = [_listing(li) for li in svc.clinic_listings(db.session, clinic)]
    return {"listings": listings, "held": held}, 200, PRIVATE


@clinic_accounts_api.route("/clinics/<slug>/listings", methods=["POST"], parameters=[SLUG])
@clinic_accounts_api.arguments(ListingCreateSchema, error_status_code=422)
@clinic_accounts_api.response(201, ListingCreatedSchema)
@clinic_accounts_api.alt_response(202, schema=ListingCreatedSchema, description="Held for review")
@clinic_accounts_api.doc(security=BEARER, responses=WRITE_ERRORS)
def create_listing(data: dict, slug: str):
    """Add a practitioner by registration number

    The register is asked now: 422 when it does not know the number, 503 when it does not
    answer (nothing saved), 429 `too_many_lookups` (with `Retry-After`) when the clinic has
    asked about as many numbers as `CLINIC_LOOKUP_LIMIT` allows (the register is not asked).
    When `name` does not match the register's spelling, the listing is held for a site admin
    (202, `state: held`) and is not public until approved.
    """
    actor = _actor()
    clinic = _clinic(actor, slug)
    try:
        outcome = svc.add_listing(db.session, actor, clinic, **data)
        db.session.commit()
    except svc.RegisterUnavailable as exc:
        db.session.rollback()
        raise ApiProblem(
            503,
            "The HPCSA register did not answer just now; nothing was saved. Try again later.",
            code="register_unavailable",
            headers={"Retry-After": "60"},
        ) from exc
    except svc.AccountError as exc:
        raise _problem(exc) from exc
    if outcome.held is not None:
        return (
            {"state": "held", "register_name": outcome.register_name, "listing": None},
            202,
            PRIVATE,
        )
    return (
        {
            "state": "listed",
            "register_name": outcome.register_name,
            "listing": _listing(outcome.listing),
        },
        201,
        PRIVATE,
    )


@clinic_accounts_api.route(
    "/clinics/<slug>/listings/<number>", methods=["GET"], parameters=[SLUG, NUMBER]
)
@clinic_accounts_api.response(200, OwnListingSchema)
@clinic_accounts_api.doc(security=BEARER, responses=WRITE_ERRORS)
def get_listing(slug: str, number: str):
    """One of the clinic's listings, with its version"""
    actor = _actor()
    clinic = _clinic(actor, slug)
    try:
        listing = svc.find_listing(db.session, clinic, number)
    except svc.AccountError as exc:
        raise _problem(exc) from exc
    db.session.commit()
    return _listing(listing), 200, PRIVATE


@clinic_accounts_api.route(
    "/clinics/<slug>/listings/<number>", methods=["PATCH"], parameters=[SLUG, NUMBER]
)
@clinic_accounts_api.arguments(ListingPatchSchema, error_status_code=422)
@clinic_accounts_api.response(200, OwnListingSchema)
@clinic_accounts_api.doc(security=BEARER, responses=WRITE_ERRORS)
def patch_listing(changes: dict, slug: str, number: str):
    """Change a listing's treatments or description (409 when stale)"""
    actor = _actor()
    clinic = _clinic(actor, slug)
    based_on = changes.pop("version")
    try:
        listing = svc.update_listing(db.session, actor, clinic, number, changes, based_on)
        db.session.commit()
    except svc.AccountError as exc:
        raise _problem(exc) from exc
    return _listing(listing), 200, PRIVATE


@clinic_accounts_api.route(
    "/clinics/<slug>/listings/<number>", methods=["DELETE"], parameters=[SLUG, NUMBER]
)
@clinic_accounts_api.arguments(VersionArgsSchema, location="query")
@clinic_accounts_api.response(204)
@clinic_accounts_api.doc(security=BEARER, responses=WRITE_ERRORS)
def delete_listing(args: dict, slug: str, number: str):
    """Remove a listing (`?version=` the version you read; 409 when stale)"""
    actor = _actor()
    clinic = _clinic(actor, slug)
    try:
        svc.remove_listing(db.session, actor, clinic, number, args["version"])
        db.session.commit()
    except svc.AccountError as exc:
        raise _problem(exc) from exc
    return "", 204, PRIVATE
