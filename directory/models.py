"""Imports every domain's models so that the metadata (and Alembic) sees all tables."""

from directory.accounts.models import (  # noqa: F401
    ApiToken,
    AuditEntry,
    ClinicSuspension,
    HeldListing,
    IssuedLink,
    User,
    UserSession,
)
from directory.listings.models import Clinic, Listing, Service, listing_services  # noqa: F401
from directory.notifications.models import (  # noqa: F401
    ChangeFeedEntry,
    NotificationDelivery,
    NotificationOutbox,
)
from directory.registry.models import (  # noqa: F401
    Practitioner,
    RegistrationCategory,
    StatusEvent,
    VerificationCheck,
)
from directory.reports.models import ConcernReport  # noqa: F401
from directory.search.models import SearchOutbox  # noqa: F401
