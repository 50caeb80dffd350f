"""The flask-smorest pieces every API blueprint shares: the ``Api`` (problem documents,
documented caching), ``ApiBlueprint`` (bad parameters -> 400 problem) and the spec plugin
that documents the responses every operation can give."""

from __future__ import annotations

import http
import logging
from typing import Any

import flask
from apispec import BasePlugin
from flask_smorest import Api, Blueprint
from flask_smorest.spec import prepare_response
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from directory.api.problems import (
    API_PATH_PREFIX,
    PROBLEM_MIMETYPE,
    ApiProblem,
    ProblemSchema,
    http_exception_problem,
    is_api_request,
)

log = logging.getLogger(__name__)


# The files the docs page (flask-smorest's swagger_ui.html) loads, and nothing else of the
# package: its index.html is Swagger's petstore demo (it fetches an outside site) and its
# source maps are megabytes nobody needs.
SWAGGER_UI_ASSETS = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}
)


class ApiArgumentsParser(FlaskParser):
    """Bad parameters are a 400 problem naming each one, never webargs' 422."""

    DEFAULT_VALIDATION_STATUS = 400

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        raise ApiProblem.invalid_parameters(error.normalized_messages())


class ApiBlueprint(Blueprint):
    """A flask-smorest ``Blueprint`` whose argument errors are problem documents."""

    ARGUMENTS_PARSER = ApiArgumentsParser()


CACHE_CONTROL_HEADER = {
    "description": "`public, max-age=<API_CACHE_MAX_AGE>` (60 seconds unless configured)",
    "required": True,
    "schema": {"type": "string"},
}
STRONG_ETAG_HEADER = {
    "description": "A strong tag of the body; send it back as `If-None-Match` to get a 304",
    "required": True,
    "schema": {"type": "string"},
}
IF_NONE_MATCH_PARAMETER = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The `ETag` of a copy you hold: answered `304 Not Modified` when unchanged",
    "schema": {"type": "string"},
}


class CommonResponsesPlugin(BasePlugin):
    """Documents, on every operation under ``/api/``, what the app-wide hooks add: 304 and the
    caching headers on GETs, 404 where the path names a resource, 429 (the per-client rate
    limits, ``directory/ratelimits.py``) and 500 everywhere."""

    def operation_helper(self, path: str | None = None, operations=None, **kwargs: Any) -> None:
        if not path or not path.startswith(API_PATH_PREFIX) or not operations:
            return
        for method, operation in operations.items():
            # flask-smorest keys some responses by int, some by str: one kind, for setdefault.
            responses = {str(k): v for k, v in operation.get("responses", {}).items()}
            operation["responses"] = responses
            if method == "get":
                ok = responses.get("200")
                if isinstance(ok, dict):
                    ok.setdefault("headers", {}).update(
                        {"ETag": "STRONG_ETAG", "Cache-Control": "CACHE_CONTROL"}
                    )
                responses.setdefault(
                    "304",
                    {
                        "description": "Not Modified: the `If-None-Match` tag is still current",
                        "headers": {"ETag": "STRONG_ETAG", "Cache-Control": "CACHE_CONTROL"},
                    },
                )
                operation.setdefault("parameters", []).append("IF_NONE_MATCH_TAG")
            if "{" in path:
                responses.setdefault("404", http.HTTPStatus.NOT_FOUND.name)
            responses.setdefault("429", http.HTTPStatus.TOO_MANY_REQUESTS.name)
            responses.setdefault("500", http.HTTPStatus.INTERNAL_SERVER_ERROR.name)


class DirectoryApi(Api):
    """flask-smorest's ``Api`` speaking RFC 9457 problem documents."""

    ERROR_SCHEMA = ProblemSchema

    def __init__(self, app: flask.Flask | None = None, **kwargs: Any) -> None:
        spec_kwargs = kwargs.pop("spec_kwargs", {}) or {}
        spec_kwargs.setdefault("extra_plugins", [CommonResponsesPlugin()])
        super().__init__(app, spec_kwargs=spec_kwargs, **kwargs)

    def _register_responses(self) -> None:
        """Error responses documented as ``application/problem+json`` (flask-smorest's own
        method says ``application/json``)."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            else:
                prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default = {
            "description": "Any other error, as a problem document",
            "schema": self.ERROR_SCHEMA,
        }
        prepare_response(default, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)
        self.spec.components.header("STRONG_ETAG", STRONG_ETAG_HEADER, lazy=True)
        self.spec.components.header("CACHE_CONTROL", CACHE_CONTROL_HEADER, lazy=True)
        self.spec.components.parameter(
            "IF_NONE_MATCH_TAG", "header", IF_NONE_MATCH_PARAMETER, lazy=True
        )

    def _register_error_handlers(self) -> None:
        self._html_http_exception_handler = self._app.error_handler_spec[None][None].get(
            HTTPException
        )
        super()._register_error_handlers()

    def handle_http_exception(self, error: HTTPException):
        """Problem documents under ``/api/``; everywhere else what the app did before."""
        if is_api_request():
            return http_exception_problem(error)
        if self._html_http_exception_handler is not None:
            return self._html_http_exception_handler(error)
        return error  # werkzeug's own HTML page

    def _register_swagger_ui_rule(self, blueprint: flask.Blueprint) -> None:
        """Swagger UI from the ``swagger-ui-bundle`` package's files: nothing from the internet
        (flask-smorest's own rule loads the UI from a CDN)."""
        ui_path = self.config.get("OPENAPI_SWAGGER_UI_PATH")
        if ui_path is None:
            return
        try:
            from swagger_ui_bundle import swagger_ui_path
        except ImportError:  # pragma: no cover - the package is a declared dependency
            log.warning("swagger-ui-bundle is not installed: no API docs page")
            return
        ui_path = "/" + ui_path.strip("/")

        def swagger_ui_asset(filename: str):
            if filename not in SWAGGER_UI_ASSETS:  # no demo page, no source maps
                flask.abort(404)
            return flask.send_from_directory(str(swagger_ui_path), filename)

        blueprint.add_url_rule(ui_path, "openapi_swagger_ui", self._openapi_swagger_ui)
        blueprint.add_url_rule(f"{ui_path}/assets/<path:filename>", view_func=swagger_ui_asset)

    def _openapi_swagger_ui(self):
        docs = self._make_doc_blueprint_name()
        css = flask.url_for(f"{docs}.swagger_ui_asset", filename="swagger-ui.css")
        return flask.render_template(
            "swagger_ui.html",
            title=self.spec.title,
            spec_url=flask.url_for(f"{docs}.openapi_json"),
            swagger_ui_url=css.removesuffix("swagger-ui.css"),
            swagger_ui_config=self.config.get("OPENAPI_SWAGGER_UI_CONFIG", {}),
        )
