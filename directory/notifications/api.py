"""``GET /api/v1/changes``: the public feed of status changes, paged by an opaque cursor."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from directory.api import ApiBlueprint
from directory.extensions import db
from directory.notifications.feed import (
    CURSOR_PATTERN,
    DEFAULT_PAGE,
    MAX_PAGE,
    CursorError,
    FeedPosition,
    changes_since,
)
from directory.registry.statuses import Status

STATUSES = [s.value for s in Status]
# A page that is full never changes; the last page grows as changes arrive.
FULL_PAGE_MAX_AGE = 3600
TAIL_PAGE_MAX_AGE = 10

changes_api = ApiBlueprint(
    "changes",
    __name__,
    url_prefix="/api/v1",
    description="Status changes on the register, oldest first, to keep a copy in step.",
)


class CursorField(fields.String):
    """A ``since`` cursor, loaded as a ``FeedPosition``."""

    def _deserialize(self, value, attr, data, **kwargs) -> FeedPosition:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return FeedPosition.decode(text)
        except CursorError:
            raise ValidationError(
                "is not a cursor from this feed: use the `next` value of a previous page, "
                "or leave it out to start from the first change"
            ) from None


class ChangesArgsSchema(Schema):
    class Meta:
        ordered = True

    since = CursorField(
        metadata={
            "description": "Where to continue: the `next` value of the previous page (opaque). "
            "Leave out to start from the first change.",
            "pattern": CURSOR_PATTERN,
        },
    )
    limit = fields.Integer(
        load_default=DEFAULT_PAGE,
        validate=validate.Range(1, MAX_PAGE, error="must be between {min} and {max}"),
        error_messages={"invalid": "must be a whole number"},
        metadata={"description": f"At most this many changes (default {DEFAULT_PAGE})."},
    )


class ChangeSchema(Schema):
    class Meta:
        ordered = True

    event_id = fields.String(
        required=True,
        metadata={
            "format": "uuid",
            "description": "Unique per change; the same id as in webhooks and emails",
        },
    )
    registration_number = fields.String(
        required=True, metadata={"description": "Canonical form, e.g. `MP0000123`"}
    )
    from_ = fields.String(
        data_key="from",
        attribute="from",
        required=True,
        allow_none=True,
        metadata={"enum": STATUSES, "description": "The status before the change"},
    )
    to = fields.String(
        required=True, metadata={"enum": STATUSES, "description": "The status after the change"}
    )
    occurred_at = fields.String(
        required=True,
        metadata={
            "format": "date-time",
            "description": "When the register said so (the look-up, or a snapshot's date)",
        },
    )
    recorded_at = fields.String(
        required=True,
        metadata={"format": "date-time", "description": "When this directory recorded it"},
    )
    practitioner_url = fields.String(
        required=True, metadata={"format": "uri", "description": "The practitioner's page"}
    )
    cursor = fields.String(
        required=True, metadata={"description": "This change's position, usable as `since`"}
    )


class ChangesPageSchema(Schema):
    class Meta:
        ordered = True

    changes = fields.List(fields.Nested(ChangeSchema), required=True)
    next = fields.String(
        required=True,
        metadata={
            "description": "Pass as `since` for the following changes (also when this page "
            "is empty: store it and ask again later)"
        },
    )
    has_more = fields.Boolean(
        required=True,
        metadata={"description": "True when more changes are available right now"},
    )


@changes_api.route("/changes")
@changes_api.arguments(ChangesArgsSchema, location="query")
@changes_api.response(200, ChangesPageSchema)
def changes(args):
    """Status changes, oldest first, after a cursor

    Every change of a registration's status (for example `active` to `suspended`), in the
    order this directory recorded it. Start without `since`; then pass the page's `next`
    each time. An empty page means there is nothing new yet: keep its `next` and ask again
    later. A change becomes visible here once every database transaction that was writing
    when it was recorded has finished, so a cursor never skips a change. The Atom feed at
    `/changes.atom` carries the latest changes for feed readers.
    """
    page = changes_since(db.session, args.get("since"), args["limit"])
    max_age = FULL_PAGE_MAX_AGE if page.has_more else TAIL_PAGE_MAX_AGE
    return page.to_dict(), {"Cache-Control": f"public, max-age={max_age}"}
