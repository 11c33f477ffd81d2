"""schemathesis against /api/v1/openapi.json: with a seeded account's token, no operation answers 5xx, and
every answer has a documented content type and matches its documented schema (errors included)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from herald.container import Container
from tests.conftest import auth
from tests.sends.factory import add_contact, world

CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]
# Bounded so the whole run stays well under a minute; derandomized so CI sees the same cases every time.
EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 8}


def _seed(container: Container, account: dict[str, Any]) -> None:
    """Some objects with small ids, so generated ids sometimes name real rows."""
    with container.transaction() as s:
        w = world(s, account["account_id"])
        add_contact(s, w.account_id, "ann@example.com", type_id=w.type_id)


def _failures(app: Any, headers: dict[str, str], mode: GenerationMode) -> dict[str, str]:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    failures: dict[str, str] = {}
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        count += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except BaseException as exc:  # schemathesis raises a FailureGroup (an exception group): collect it
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures[operation.label] = str(exc)[:2000]
    assert count >= 40, f"only {count} operations found in the OpenAPI document"
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_native_api_never_5xx_and_matches_its_openapi_schema(
    app: Any, container: Container, account: dict[str, Any], mode: GenerationMode
) -> None:
    _seed(container, account)
    failures = _failures(app, auth(account), mode)
    assert not failures, "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())


def test_openapi_documents_problem_json_errors(client: Any) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert "Problem" in document["components"]["schemas"]
    create = document["paths"]["/contacts"]["post"]["responses"]
    for code in ("401", "404", "422", "429"):
        assert "application/problem+json" in create[code]["content"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/contacts/99999999999999999999999", None),
        ("PATCH", "/api/v1/contacts/99999999999999999999999", {"first_name": "x"}),
        ("POST", "/api/v1/single-sends", {"single_send_name": "n", "subject": "s", "sender_id": 10**30}),
    ],
)
def test_numbers_no_column_can_hold_are_invalid_input_not_5xx(
    client: Any, account: dict[str, Any], method: str, path: str, body: Any
) -> None:
    r = client.request(method, path, json=body, headers=auth(account))
    assert r.status_code in (404, 422), r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_a_path_the_api_mount_cannot_match_is_still_a_problem_404(client: Any, account: dict[str, Any]) -> None:
    r = client.get("/api/v1/addresses/a%0Ab@example.com/events", headers=auth(account))
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert client.get("/no-such-page").json() == {"detail": "Not Found"}
