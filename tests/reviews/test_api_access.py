"""The intake API's keys and documents (DESIGN §5): 401 without a live key,
the per-key rate limit, the OpenAPI document and the docs page, and JSON
the API reads as it was sent."""

import json

import pytest
from django.test import Client

from reviews.models import Case
from tests import factories
from tests.reviews.intake import (
    CASES,
    assert_nothing_written,
    error,
    post,
)
from workbench.models import APIKey, TrailEvent
from workbench.services import api_key_create, api_key_revoke

# --- 401 --------------------------------------------------------------------------------


def _revoked_key_client(system):
    client = factories.api_client(system)
    key = APIKey.objects.filter(system=system).latest("pk")
    api_key_revoke(key_id=key.pk, actor=factories.ACTOR)
    return client


@pytest.mark.parametrize(
    "make_client",
    [
        lambda system: Client(),
        lambda system: Client(headers={"authorization": "Bearer "}),
        lambda system: Client(headers={"authorization": "Bearer not-a-key"}),
        lambda system: Client(headers={"authorization": "Bearer wb_abcdef012345_nope"}),
        lambda system: Client(headers={"authorization": "Basic dXNlcjpwdw=="}),
        _revoked_key_client,
        lambda system: factories.api_client(system, scope="compliance"),
    ],
    ids=["missing", "empty", "malformed", "unknown", "basic", "revoked", "compliance-scope"],
)
def test_ingest_without_a_live_ingest_key_answers_401(system, make_client):
    client = make_client(system)
    trail_before = TrailEvent.objects.count()

    response = post(client, factories.claim_payload(18))

    assert response.status_code == 401, response.content
    assert error(response) == ("unauthenticated", [])
    assert_nothing_written(trail_before)


def test_a_key_with_a_wrong_secret_answers_401(system):
    issued = api_key_create(system=system, actor=factories.ACTOR)
    marker, prefix, _ = issued.plaintext.split("_", 2)
    client = Client(headers={"authorization": f"Bearer {marker}_{prefix}_wrong"})

    response = post(client, factories.claim_payload(19))

    assert response.status_code == 401
    assert not Case.objects.exists()


def test_every_case_endpoint_needs_a_key(api_client):
    reference = post(api_client, factories.claim_payload(20)).json()["reference"]
    anonymous = Client()

    assert anonymous.get(f"{CASES}/{reference}").status_code == 401
    assert post(anonymous, {"reason": "wrong"}, f"{CASES}/{reference}/contest").status_code == 401
    feedback = {"listened": 1, "explained": 1}
    assert post(anonymous, feedback, f"{CASES}/{reference}/feedback").status_code == 401
    assert (
        post(anonymous, {"cases": [factories.claim_payload(21)]}, f"{CASES}/batch").status_code
        == 401
    )
    assert Case.objects.get().status == Case.Status.PENDING_REVIEW


# --- OpenAPI ----------------------------------------------------------------------------


def test_openapi_document_lists_the_case_paths(db):
    response = Client().get("/api/v1/openapi.json")

    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in (
        "/api/v1/cases",
        "/api/v1/cases/batch",
        "/api/v1/cases/{reference}",
        "/api/v1/cases/{reference}/contest",
        "/api/v1/cases/{reference}/feedback",
    ):
        assert path in paths
    assert {"200", "201", "409", "422"} <= set(paths["/api/v1/cases"]["post"]["responses"])


def test_api_docs_page_answers(db):
    assert Client().get("/api/v1/docs").status_code == 200


def test_escaped_characters_outside_the_basic_plane_are_text(api_client):
    payload = factories.claim_payload(22, explanation="Zoë flagged this 😀 (ünïcode)")

    response = post(api_client, json.dumps(payload, ensure_ascii=True))

    assert response.status_code == 201, response.content
    assert Case.objects.get().explanation == "Zoë flagged this 😀 (ünïcode)"


def test_large_whole_numbers_in_free_json_are_kept(api_client):
    payload = factories.claim_payload(23, metadata={"amount": 4200, "member_no": 10**30})

    response = post(api_client, payload)

    assert response.status_code == 201, response.content
    assert Case.objects.get().metadata["member_no"] == 10**30


def test_each_api_key_has_its_own_rate_limit(system, settings):
    # Fresh keys: their counts start at zero (no cache clearing, which on
    # Redis would flush the broker's database too).
    settings.API_RATE_PER_KEY = "3/m"
    busy, other = factories.api_client(system), factories.api_client(system)
    statuses = [busy.get("/api/v1/cases/WB-NONE-NONE").status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    refused = busy.get("/api/v1/cases/WB-NONE-NONE")
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "60"
    # Another key of the same system is not held back.
    assert other.get("/api/v1/cases/WB-NONE-NONE").status_code == 404
