"""Server-rendered pages for patients: home, search, practitioner, clinic and service pages."""

from directory.web.views import web

__all__ = ["web"]

from directory.web import hygiene  # noqa: F401  (control characters out of request.args)
