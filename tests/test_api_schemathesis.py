"""Schemathesis against the generated OpenAPI document, on the WSGI app with data loaded:
no response is a 5xx, and every response (status, content type, headers, body) is what the
document says. Bounded (``MAX_EXAMPLES`` per operation and mode, no deadline) to keep the
suite quick.

Each operation is driven through its Hypothesis strategy (``operation.as_strategy``), the
documented way to use schemathesis inside any test; ``schemathesis.pytest.from_fixture``
would be shorter but its lazy loader does not run under pytest 9.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_api import build_directory

MAX_EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Path parameters that name real rows, so that 200 answers are checked too (random strings
# almost never name a practitioner, a clinic or a service).
KNOWN = {
    "registration_number": ["MP0000101", "mp 103", "PS0000301", "MP0000106"],
    "slug": ["fictional-sea-point-wellness", "mesotherapy", "prp"],
}


@pytest.fixture
def app(either_app):
    """Every test here on SQLite and on PostgreSQL."""
    return either_app


@pytest.fixture
def api_schema(app):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash must show as a 500, as deployed
    build_directory(app)
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def exercise(strategy, examples: int = MAX_EXAMPLES) -> None:
    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        # The WSGI transport hands back the bytes as sent: ask for them uncompressed (the
        # compression is tested in test_web_delivery.py; HTTP clients undo it themselves).
        case.call_and_validate(checks=CHECKS, headers={"Accept-Encoding": "identity"})

    run()


@pytest.mark.slow
def test_api_conforms_to_its_document(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "GET /api/v1/search",
        "GET /api/v1/practitioners/{registration_number}",
        "GET /api/v1/clinics/{slug}",
        "GET /api/v1/services",
        "GET /api/v1/services/{slug}",
    }
    for operation in operations:
        exercise(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        if len(operation.query) or len(operation.path_parameters):
            # Values outside the document's bounds: still no 5xx, still a documented answer.
            exercise(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        names = [p.name for p in operation.path_parameters]
        for name in names:
            for value in KNOWN.get(name, []):
                exercise(
                    operation.as_strategy(path_parameters={name: value}),
                    examples=MAX_EXAMPLES // 3,
                )
