"""The intake API, GET /api/v1/cases/{reference} and POST
/api/v1/cases/{reference}/contest (DESIGN §5): a case's status, decision,
route and trail, contesting it, and other systems' cases not found."""

import hashlib
import json

import pytest

from reviews.models import Case, ReviewTask
from tests import factories
from tests.reviews.intake import (
    CASES,
    approval,
    error,
    post,
)
from workbench.models import TrailEvent
from workbench.services import trail_verify

# --- GET /cases/{reference} -------------------------------------------------------------


def test_case_detail_shows_status_decision_route_and_trail(api_client):
    reference = post(api_client, approval(30)).json()["reference"]

    response = api_client.get(f"{CASES}/{reference}")

    assert response.status_code == 200, response.content
    body = response.json()
    case = Case.objects.get()
    assert body["reference"] == reference
    assert body["id"] == str(case.id)
    assert body["external_id"] == case.external_id
    assert body["system"] == "claims-ai"
    assert body["status"] == "finalized"
    assert body["outcome"] == "approve"
    assert body["decided_by"] == "ai"
    assert body["reasons"] == []
    assert body["route"]["rule"] is None
    assert body["route"]["policy_version"] == 1
    assert [rule["rule"] for rule in body["route"]["conditions"]] == [
        "large-amount",
        "adverse-needs-human",
        "low-confidence",
    ]
    assert body["notice_url"].startswith("http://testserver/notice/")
    trail = body["trail"]
    assert [event["action"] for event in trail] == ["case.received", "case.routed"]
    stored = {e.seq: e for e in TrailEvent.objects.filter(case=reference)}
    for event in trail:
        assert event["case"] == reference
        assert event["hash"] == stored[event["seq"]].hash
        assert event["prev_hash"] == stored[event["seq"]].prev_hash
    assert trail[1]["prev_hash"] == trail[0]["hash"]


def test_case_detail_of_a_pending_denial_has_its_reasons(api_client):
    payload = factories.claim_payload(31)
    reference = post(api_client, payload).json()["reference"]

    body = api_client.get(f"{CASES}/{reference}").json()

    assert body["status"] == "pending_review"
    assert body["outcome"] is None
    assert body["decided_by"] is None
    assert body["reasons"] == payload["output"]["reasons"]
    assert body["route"]["queue"] == "claims-review"


def test_another_systems_case_is_not_found(api_client):
    reference = post(api_client, factories.claim_payload(32)).json()["reference"]
    other = factories.api_client(factories.system_with_policy(factories.SUPPORT_POLICY))

    response = other.get(f"{CASES}/{reference}")

    assert response.status_code == 404, response.content
    assert error(response)[0] == "case_not_found"
    assert "trail" not in response.json()


def test_an_unknown_reference_is_not_found(api_client):
    response = api_client.get(f"{CASES}/WB-2222-2222")

    assert response.status_code == 404
    assert error(response)[0] == "case_not_found"


# --- POST /cases/{reference}/contest ----------------------------------------------------


def test_contesting_a_finalized_case_sends_it_to_a_person(api_client):
    reference = post(api_client, approval(40)).json()["reference"]
    reason = "The member says the approval was for the wrong claim line (MBR call 2026-11-03)."

    response = post(api_client, {"reason": reason}, f"{CASES}/{reference}/contest")

    assert response.status_code == 200, response.content
    assert response.json()["reference"] == reference
    assert response.json()["status"] == "pending_review"
    case = Case.objects.get()
    assert case.status == Case.Status.PENDING_REVIEW
    task = ReviewTask.objects.get(case=case)
    assert task.status == ReviewTask.Status.OPEN
    assert task.queue.slug == factories.CLAIMS_POLICY["default_queue"]
    event = TrailEvent.objects.filter(case=reference).latest("seq")
    assert event.action == "case.contested"
    data = json.loads(event.body)["data"]
    assert data["reason_sha256"] == hashlib.sha256(reason.encode()).hexdigest()
    assert data["previous_status"] == "finalized"
    assert reason not in event.body
    assert "wrong claim line" not in "".join(TrailEvent.objects.values_list("body", flat=True))
    assert trail_verify().ok


def test_contesting_a_pending_case_keeps_its_task_and_raises_its_priority(api_client):
    reference = post(api_client, factories.claim_payload(41)).json()["reference"]

    response = post(api_client, {"reason": "customer called"}, f"{CASES}/{reference}/contest")

    assert response.status_code == 200, response.content
    task = ReviewTask.objects.get()
    assert task.priority == 20
    assert TrailEvent.objects.filter(case=reference, action="case.contested").count() == 1


def test_contesting_an_unknown_case_is_not_found(api_client):
    trail_before = TrailEvent.objects.count()

    response = post(api_client, {"reason": "wrong"}, f"{CASES}/WB-2222-2222/contest")

    assert response.status_code == 404, response.content
    assert error(response)[0] == "case_not_found"
    assert TrailEvent.objects.count() == trail_before


def test_contesting_another_systems_case_is_not_found(api_client):
    reference = post(api_client, approval(42)).json()["reference"]
    other = factories.api_client(factories.system_with_policy(factories.SUPPORT_POLICY))

    response = post(other, {"reason": "wrong"}, f"{CASES}/{reference}/contest")

    assert response.status_code == 404
    assert Case.objects.get().status == Case.Status.FINALIZED


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"reason": ""}, "reason"),
        ({}, "reason"),
        ({"reason": 42}, "reason"),
        ({"reason": "r" * 5001}, "reason"),
        ({"reason": "ok", "urgent": True}, "urgent"),
    ],
)
def test_contest_needs_a_reason(api_client, body, path):
    reference = post(api_client, approval(43)).json()["reference"]
    trail_before = TrailEvent.objects.count()

    response = post(api_client, body, f"{CASES}/{reference}/contest")

    assert response.status_code == 422, response.content
    assert error(response) == ("invalid", [path])
    assert Case.objects.get().status == Case.Status.FINALIZED
    assert not ReviewTask.objects.exists()
    assert TrailEvent.objects.count() == trail_before
