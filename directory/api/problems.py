"""Problem documents (RFC 9457, ``application/problem+json``) for every error under ``/api/``.

Three paths lead here, so that no error under ``/api/`` ever leaves as HTML:

1. API code raises :class:`ApiProblem` (also what bad query parameters become). It is not an
   ``HTTPException``, so no HTML error page registered for a status code can catch it.
2. Werkzeug's own errors (unknown route, 405, an unexpected exception turned into a 500) reach
   the Api's ``HTTPException`` handler, which answers a problem for ``/api/`` paths and leaves
   every other path to the HTML error pages.
3. A last ``after_request`` net turns any other error response under ``/api/`` (say one an HTML
   handler for a status code produced) into a problem document.

Problems use ``type: about:blank`` with the HTTP status phrase as ``title`` (RFC 9457 §4.2.1);
``code`` says, in one stable word, which problem it is.
"""

from __future__ import annotations

import http
import json
from typing import Any

from flask import Flask, Response, request
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

PROBLEM_MIMETYPE = "application/problem+json"
API_PATH_PREFIX = "/api/"
# A problem quotes at most this much of what the client sent (its path, a value in
# ``detail``): a 100 kB path or parameter is answered in a few hundred bytes, not echoed.
MAX_ECHO = 200

# One stable word per problem, for clients that branch on it (RFC 9457 extension member).
CODE_BY_STATUS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}

# What a person reads when nothing more specific is known. Werkzeug's defaults mention
# "the server" and "the URL you entered manually"; these say what to do instead.
PLAIN_DETAIL = {
    404: "There is nothing at this address in the API. The endpoints are listed in "
    "/api/v1/openapi.json.",
    405: "This address does not accept that method.",
    500: "Something went wrong on our side. It has been logged; please try again later.",
}


class FieldErrorSchema(Schema):
    """One bad parameter: where it was, its name, and what is wrong with it."""

    class Meta:
        ordered = True

    location = fields.String(
        required=True, metadata={"description": "Where the parameter was: query, path..."}
    )
    parameter = fields.String(required=True, metadata={"description": "The parameter's name"})
    detail = fields.String(required=True, metadata={"description": "What is wrong, in words"})


class ProblemSchema(Schema):
    """An RFC 9457 problem document. Further members may be added later (clients ignore them)."""

    class Meta:
        ordered = True

    type = fields.String(
        required=True,
        metadata={"description": "Always `about:blank`: the status says what happened"},
    )
    title = fields.String(required=True, metadata={"description": "The HTTP status phrase"})
    status = fields.Integer(required=True, metadata={"description": "The HTTP status code"})
    detail = fields.String(
        required=True, metadata={"description": "What went wrong, in plain words"}
    )
    instance = fields.String(metadata={"description": "The path that was requested"})
    code = fields.String(
        required=True,
        metadata={"description": "One stable word for this problem, e.g. `invalid_parameters`"},
    )
    errors = fields.List(
        fields.Nested(FieldErrorSchema),
        metadata={"description": "For `invalid_parameters`: each bad parameter"},
    )
    suggestion = fields.String(
        metadata={"description": "For `invalid_registration_number`: the number likely meant"}
    )


class ApiProblem(Exception):
    """Raise anywhere in API code to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or CODE_BY_STATUS.get(status, "error")
        self.headers = headers or {}
        self.extensions = extensions

    @classmethod
    def invalid_parameters(cls, messages: dict[str, Any]) -> ApiProblem:
        """From webargs' messages, ``{location: {parameter: [message, ...]}}``."""
        errors = [
            {"location": location, "parameter": parameter, "detail": detail}
            for location, by_parameter in messages.items()
            for parameter, details in _as_mapping(by_parameter).items()
            for detail in _flatten(details)
        ]
        detail = "; ".join(f"{e['parameter']}: {e['detail']}" for e in errors)
        return cls(
            400,
            detail or "The request's parameters are not valid.",
            code="invalid_parameters",
            errors=errors,
        )


def _as_mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"_request": value}


def _flatten(details: Any) -> list[str]:
    if isinstance(details, dict):
        return [d for value in details.values() for d in _flatten(value)]
    if isinstance(details, list | tuple):
        return [d for value in details for d in _flatten(value)]
    return [str(details)]


def is_api_request() -> bool:
    return request.path == API_PATH_PREFIX.rstrip("/") or request.path.startswith(API_PATH_PREFIX)


def excerpt(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def problem_response(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """The one place a problem document is written."""
    try:
        title = http.HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": excerpt(detail, 5 * MAX_ECHO),  # the longest real detail is ~300 characters
        "instance": excerpt(request.path),
        "code": code or CODE_BY_STATUS.get(status, "error"),
    }
    body.update({k: v for k, v in extensions.items() if v is not None})
    response = Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_MIMETYPE
    )
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_api_problem(problem: ApiProblem) -> Response:
    return problem_response(
        problem.status,
        problem.detail,
        code=problem.code,
        headers=problem.headers,
        **problem.extensions,
    )


def http_exception_problem(error: HTTPException) -> Response:
    """A problem document for one of werkzeug's errors, keeping headers such as ``Allow``."""
    status = error.code or 500
    detail = PLAIN_DETAIL.get(status) or (error.description or "").strip() or "Error."
    headers = {
        name: value
        for name, value in error.get_headers()
        if name.lower() not in ("content-type", "content-length")
    }
    return problem_response(status, detail, headers=headers)


def problem_safety_net(response: Response) -> Response:
    """``after_request``: no error under ``/api/`` leaves as anything but a problem document."""
    if response.status_code >= 400 and is_api_request() and response.mimetype != PROBLEM_MIMETYPE:
        status = response.status_code
        try:
            description = http.HTTPStatus(status).description
        except ValueError:
            description = "Error."
        keep = {k: v for k, v in response.headers.items() if k.lower() in ("allow", "retry-after")}
        return problem_response(status, PLAIN_DETAIL.get(status, description), headers=keep)
    return response


def register_problem_handlers(app: Flask) -> None:
    app.register_error_handler(ApiProblem, handle_api_problem)
    app.after_request(problem_safety_net)
