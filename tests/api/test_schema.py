"""The API against its own OpenAPI document (schemathesis): for every
operation, generated requests (valid and invalid) never get a 5xx, and every
answer has a declared status, content type, headers and body shape.

The schema is loaded from the app itself over WSGI (``workbench.wsgi``: the
real middleware stack, no network) and requests carry real API keys: an
ingest key of a system with a published policy for the cases, a compliance
key for the trail. The database is committed to (``transactional_db``), as in
production, so what runs on commit runs too.

Generation is bounded and derandomized (the same requests on every run, no
example database), so CI is stable; ``WORKBENCH_SCHEMA_EXAMPLES=300`` looks
harder locally. Answers that generated requests seldom reach (a repeated
submission, a case read back and contested, the rate limit, an oversized
body) are requested explicitly and checked the same way.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories
from workbench.models import APIKey
from workbench.services import api_key_create
from workbench.services.trail import trail_checkpoint
from workbench.wsgi import application

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = int(os.environ.get("WORKBENCH_SCHEMA_EXAMPLES", "25"))

# Loading the document needs no database: it is built from the code.
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture
def api_keys(transactional_db) -> dict[str, str]:
    system = factories.system_with_policy()
    return {
        scope: api_key_create(system=system, scope=scope, actor=factories.ACTOR).plaintext
        for scope in (APIKey.Scope.INGEST, APIKey.Scope.COMPLIANCE)
    }


def bearer(api_keys: dict[str, str], path: str) -> dict[str, str]:
    scope = APIKey.Scope.COMPLIANCE if path.startswith("/api/v1/trail") else APIKey.Scope.INGEST
    return {"Authorization": f"Bearer {api_keys[scope]}"}


@settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same requests on every run: CI stays stable
    database=None,  # no .hypothesis/ directory in the work tree
    deadline=None,  # a request that waits for a lock is not a failure here
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        # The keys (and the database behind them) are meant to be shared by
        # every example of an operation: what one request stores, the next sees.
        HealthCheck.function_scoped_fixture,
    ],
)
@schema.parametrize()
def test_every_operation_conforms_to_the_schema(case, api_keys):
    case.call_and_validate(headers=bearer(api_keys, case.operation.path), checks=CHECKS)


def call(api_keys, method: str, path: str, *, headers=None, **request):
    """Send one request through the schema's operation and run the checks on
    its answer; returns the answer."""
    case = schema[f"/api/v1{path}"][method].Case(**request)
    headers = bearer(api_keys, case.operation.path) if headers is None else headers
    return case.call_and_validate(headers=headers, checks=CHECKS)


def test_the_answers_of_a_case_s_life_conform(api_keys):
    body = factories.claim_payload(1)
    created = call(api_keys, "POST", "/cases", body=body)
    assert created.status_code == 201
    assert call(api_keys, "POST", "/cases", body=body).status_code == 200
    changed = {**body, "confidence": 0.9}
    assert call(api_keys, "POST", "/cases", body=changed).status_code == 409

    reference = created.json()["reference"]
    at = {"reference": reference}
    assert call(api_keys, "GET", "/cases/{reference}", path_parameters=at).status_code == 200
    contested = call(
        api_keys,
        "POST",
        "/cases/{reference}/contest",
        path_parameters=at,
        body={"reason": "The member says the visit was urgent."},
    )
    assert contested.status_code == 200
    detail = call(api_keys, "GET", "/cases/{reference}", path_parameters=at)
    assert [event["action"] for event in detail.json()["trail"]][-1] == "case.contested"
    # Contested: being decided again, so not final (409); a final one takes it (201).
    rating = {"listened": 4, "explained": 3, "comment": "Clear enough.", "channel": "chat"}
    feedback = "/cases/{reference}/feedback"
    assert call(api_keys, "POST", feedback, path_parameters=at, body=rating).status_code == 409
    final = call(
        api_keys,
        "POST",
        "/cases",
        body=factories.claim_payload(
            9, output={"outcome": "approve"}, confidence=0.99, metadata={"amount": 10}
        ),
    )
    assert final.json()["status"] == "finalized"
    at_final = {"reference": final.json()["reference"]}
    rated = call(api_keys, "POST", feedback, path_parameters=at_final, body=rating)
    assert rated.status_code == 201
    rating["listened"] = 5
    assert (
        call(api_keys, "POST", feedback, path_parameters=at_final, body=rating).status_code == 200
    )

    batch = call(
        api_keys,
        "POST",
        "/cases/batch",
        body={"cases": [factories.claim_payload(2), body, changed, {"external_id": 3}]},
    )
    # The second and third share an external_id: the batch refuses the third.
    assert [item["status"] for item in batch.json()["results"]] == [201, 200, 422, 422]


def test_the_trail_answers_conform(api_keys):
    chat_system = factories.system_with_policy(factories.SUPPORT_POLICY)
    factories.ingest(chat_system, factories.chat_payload())
    trail_checkpoint(sign_head=True)

    page = call(api_keys, "GET", "/trail", query={"after": 0, "limit": 2})
    assert len(page.json()["events"]) == 2
    assert page.json()["next_after"] == 2
    head = call(api_keys, "GET", "/trail/head")
    assert head.json()["checkpoint"]["seq"] == head.json()["seq"]
    assert call(api_keys, "GET", "/trail/public-key").text.startswith("-----BEGIN PUBLIC KEY")


def test_refusals_conform(api_keys, settings):
    no_key = call(api_keys, "GET", "/trail/head", headers={})
    assert no_key.status_code == 401
    wrong_scope = {"Authorization": f"Bearer {api_keys[APIKey.Scope.INGEST]}"}
    assert call(api_keys, "GET", "/trail", headers=wrong_scope).status_code == 401

    too_large = factories.claim_payload(1, metadata={"notes": "x" * (1024 * 1024)})
    assert call(api_keys, "POST", "/cases", body=too_large).status_code == 413

    # 429 carries Retry-After, as declared (response_headers_conformance).
    settings.API_RATE_PER_KEY = "1/m"
    at = {"reference": "WB-2222-2222"}
    assert call(api_keys, "GET", "/cases/{reference}", path_parameters=at).status_code == 404
    limited = call(api_keys, "GET", "/cases/{reference}", path_parameters=at)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"][0]) > 0
