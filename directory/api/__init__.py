"""The public JSON API, ``/api/v1``, built with flask-smorest.

The OpenAPI 3 document (``/api/v1/openapi.json``) is generated from the code: the marshmallow
schemas in ``schemas.py`` and the decorators on each view. A browsable page is at
``/api/v1/docs`` (Swagger UI served from the ``swagger-ui-bundle`` package, no internet).

What every endpoint under ``/api/`` gets without asking, from app-wide hooks keyed on the path:

- errors as RFC 9457 problem documents (``problems.py``), including unknown routes, 405 and
  unexpected exceptions; HTML pages keep their HTML errors;
- on a successful GET: a strong ``ETag`` (hash of the body), ``Cache-Control: public,
  max-age=<API_CACHE_MAX_AGE>`` and 304 for a matching ``If-None-Match`` (``caching.py``);
- in the document: 304, the caching headers, 404 for paths with a parameter, 500, and a
  ``default`` problem response (``base.CommonResponsesPlugin``).

How a domain adds its endpoints (for example the change feed, ``GET /api/v1/changes``)::

    # directory/changes/api.py
    from directory.api import ApiBlueprint, ApiProblem

    changes_api = ApiBlueprint(
        "changes", __name__, url_prefix="/api/v1", description="Status changes, oldest first."
    )

    @changes_api.route("/changes")
    @changes_api.arguments(ChangesArgsSchema, location="query")  # bad values -> 400 problem
    @changes_api.response(200, ChangesPageSchema)  # dumps and documents the answer
    def changes(args):
        \"\"\"Summary line for the document

        Longer description for the document.
        \"\"\"
        if args["since"] is ...:
            raise ApiProblem(400, "plain words for the person", code="invalid_cursor")
        return {...}

    # directory/__init__.py, in create_app(), right after ``api = init_api(app)``:
    from directory.changes.api import changes_api
    api.register_blueprint(changes_api)

Use ``ApiBlueprint`` (not flask-smorest's ``Blueprint``) so that bad parameters become a 400
problem naming each one; raise ``ApiProblem`` for any other error. A view that must not be
cached for 60 s sets its own ``Cache-Control`` header: the hook never overrides one.
"""

from __future__ import annotations

from flask import Flask

from directory.api.base import ApiBlueprint, DirectoryApi
from directory.api.caching import register_caching
from directory.api.problems import ApiProblem, register_problem_handlers

__all__ = ["ApiBlueprint", "ApiProblem", "DirectoryApi", "init_api"]

API_DESCRIPTION = """\
A directory of practitioners whose HPCSA registration is checked against the register.

`verified` is true only while the register's latest answer said the practitioner is active
and that answer is recent; it is the same decision as the badge on every page. Errors are
`application/problem+json` (RFC 9457). Successful GETs carry a strong `ETag` and a short
`Cache-Control`; send `If-None-Match` to get `304 Not Modified`.

All data in this directory's demo and tests is fictional.
"""

SPEC_DEFAULTS = {
    "API_TITLE": "HPCSA practitioner directory",
    "API_VERSION": "1.0.0",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_CONFIG": {"supportedSubmitMethods": ["get"]},
    "API_SPEC_OPTIONS": {"info": {"description": API_DESCRIPTION}},
}


def init_api(app: Flask) -> DirectoryApi:
    """Bind the Api to ``app`` with the directory's own endpoints; returns it so that
    ``create_app`` can register other domains' blueprints on it."""
    for key, value in SPEC_DEFAULTS.items():
        app.config.setdefault(key, value)
    register_problem_handlers(app)
    register_caching(app)
    api = DirectoryApi(app)

    from directory.api.clinics import clinics_api
    from directory.api.practitioners import practitioners_api
    from directory.api.search import search_api
    from directory.api.services import services_api

    for blueprint in (search_api, practitioners_api, clinics_api, services_api):
        api.register_blueprint(blueprint)
    return api
