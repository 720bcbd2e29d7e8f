"""POST /api/v1/cases/batch (DESIGN §5): one result per item, in order; the
valid items are stored even when others fail."""

import json
from itertools import count

import pytest

from reviews.models import Case, ReviewTask
from reviews.routing import qa_sampled
from tests import factories
from workbench.models import TrailEvent
from workbench.services import trail_verify

CASES = "/api/v1/cases"
BATCH = "/api/v1/cases/batch"
JSON = "application/json"


def post(client, body, path=BATCH):
    return client.post(path, body, content_type=JSON)


def approval(n: int) -> dict:
    """A confident approval the claims policy finalizes (not QA-sampled)."""
    n = next(
        m
        for m in count(n)
        if not qa_sampled(system="claims-ai", external_id=f"CLM-2026-{m:06d}", rate=0.05)
    )
    return factories.claim_payload(
        n,
        output={"outcome": "approve", "summary": "Covered", "reasons": []},
        confidence=0.97,
        metadata={"amount": 180},
    )


def paths(result: dict) -> list[str]:
    return [problem["path"] for problem in result["error"]["fields"]]


def assert_intake_trail(references: list[str]) -> None:
    """Each created case has exactly its two intake events, and the chain holds."""
    for reference in references:
        actions = list(
            TrailEvent.objects.filter(case=reference)
            .order_by("seq")
            .values_list("action", flat=True)
        )
        assert actions == ["case.received", "case.routed"]
    assert trail_verify().ok


def test_batch_answers_each_item_in_order(api_client):
    stored = factories.claim_payload(100)
    changed = factories.claim_payload(101)
    first = post(api_client, stored, CASES).json()
    post(api_client, changed, CASES)
    bad_type = factories.claim_payload(103, confidence="0.9")
    bad_outcome = factories.claim_payload(104)
    bad_outcome["output"]["outcome"] = "maybe"
    trail_before = TrailEvent.objects.count()

    response = post(
        api_client,
        {
            "cases": [
                factories.claim_payload(102),
                stored,
                {**changed, "confidence": 0.99},
                bad_type,
                bad_outcome,
                approval(105),
            ]
        },
    )

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 200, 409, 422, 422, 201]
    new, same, conflict, wrong_type, wrong_outcome, approved = results

    assert new["case_status"] == "pending_review"
    assert new["route"] == {
        "rule": "adverse-needs-human",
        "queue": "claims-review",
        "policy_version": 1,
    }
    assert new["notice_url"].startswith("http://testserver/notice/")
    assert new["error"] is None
    assert approved["case_status"] == "finalized"
    assert approved["route"]["rule"] is None

    assert (same["id"], same["reference"], same["notice_url"]) == (
        first["id"],
        first["reference"],
        first["notice_url"],
    )
    assert conflict["error"]["code"] == "conflict"
    assert conflict["reference"] is None
    assert (wrong_type["error"]["code"], paths(wrong_type)) == ("invalid", ["confidence"])
    assert (wrong_outcome["error"]["code"], paths(wrong_outcome)) == ("invalid", ["output.outcome"])

    assert Case.objects.count() == 4
    assert Case.objects.get(external_id=changed["external_id"]).confidence == 0.62
    assert not Case.objects.filter(external_id__in=["CLM-2026-000103", "CLM-2026-000104"]).exists()
    assert TrailEvent.objects.count() == trail_before + 2 * 2
    assert_intake_trail([new["reference"], approved["reference"]])


def test_batch_created_cases_are_stored_like_single_ones(api_client):
    response = post(api_client, {"cases": [factories.claim_payload(n) for n in range(110, 115)]})

    results = response.json()["results"]
    assert [r["status"] for r in results] == [201] * 5
    for n, result in zip(range(110, 115), results, strict=True):
        case = Case.objects.get(reference=result["reference"])
        assert str(case.id) == result["id"]
        assert case.external_id == f"CLM-2026-{n:06d}"
        assert ReviewTask.objects.get(case=case).queue.slug == "claims-review"
    assert len({r["reference"] for r in results}) == 5
    assert_intake_trail([r["reference"] for r in results])


def test_the_same_batch_again_changes_nothing(api_client):
    batch = {"cases": [factories.claim_payload(120), approval(121)]}
    first = post(api_client, batch).json()["results"]
    trail_after_first = TrailEvent.objects.count()

    again = post(api_client, batch).json()["results"]

    assert [r["status"] for r in again] == [200, 200]
    assert [r["reference"] for r in again] == [r["reference"] for r in first]
    assert Case.objects.count() == 2
    assert TrailEvent.objects.count() == trail_after_first
    assert trail_verify().ok


@pytest.mark.parametrize("same_body", [True, False], ids=["same-body", "other-body"])
def test_a_duplicate_external_id_inside_one_batch_is_refused(api_client, same_body):
    earlier = factories.claim_payload(130)
    later = earlier if same_body else {**earlier, "confidence": 0.5}

    response = post(api_client, {"cases": [earlier, factories.claim_payload(131), later]})

    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 201, 422]
    assert results[2]["error"]["code"] == "duplicate_in_batch"
    assert paths(results[2]) == ["external_id"]
    case = Case.objects.get(external_id=earlier["external_id"])
    assert case.reference == results[0]["reference"]
    assert case.confidence == 0.62
    assert_intake_trail([results[0]["reference"], results[1]["reference"]])


def test_item_problems_are_named_by_their_paths(api_client, chat_system):
    unknown_field = {**factories.claim_payload(140), "surprise": 1}
    missing = factories.claim_payload(141)
    del missing["subject"]
    del missing["model"]["name"]
    chat = factories.chat_payload(142, kind="chatbot_answer")
    chat["input"] = {"conversation": [{"role": "customer"}, {"role": "bot", "text": "hi"}]}
    no_conversation = factories.chat_payload(143)
    no_conversation["input"] = {}
    trail_before = TrailEvent.objects.count()

    response = post(
        api_client, {"cases": [unknown_field, missing, chat, no_conversation, "not a case"]}
    )

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == [422] * 5
    assert {r["error"]["code"] for r in results} == {"invalid"}
    assert paths(results[0]) == ["surprise"]
    assert sorted(paths(results[1])) == ["model.name", "subject"]
    assert paths(results[2]) == ["input.conversation.0.text", "input.conversation.1.role"]
    assert paths(results[3]) == ["input.conversation"]
    assert paths(results[4]) == ["(body)"]
    assert not Case.objects.exists()
    assert TrailEvent.objects.count() == trail_before
    assert trail_verify().ok


def test_a_non_object_item_fails_alone(api_client):
    response = post(api_client, {"cases": [42, factories.claim_payload(150), None]})

    assert response.status_code == 200, response.content
    assert [r["status"] for r in response.json()["results"]] == [422, 201, 422]
    assert Case.objects.count() == 1


def test_a_batch_of_one_thousand_is_taken(api_client):
    trail_before = TrailEvent.objects.count()
    cases = [factories.claim_payload(n, explanation="x" * 400) for n in range(1000, 2000)]
    body = json.dumps({"cases": cases})
    assert len(body.encode()) > 1024 * 1024  # over the single-case limit

    response = post(api_client, body)

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201] * 1000
    assert [Case.objects.get(reference=r["reference"]).external_id for r in results[:3]] == [
        "CLM-2026-001000",
        "CLM-2026-001001",
        "CLM-2026-001002",
    ]
    assert Case.objects.count() == 1000
    assert ReviewTask.objects.count() == 1000
    assert TrailEvent.objects.count() == trail_before + 2000
    assert trail_verify().ok


@pytest.mark.parametrize(
    "body",
    [
        {"cases": [factories.claim_payload(n) for n in range(3000, 4001)]},
        {"cases": []},
        {"cases": factories.claim_payload(1)},
        {},
    ],
    ids=["1001-items", "empty", "not-a-list", "no-cases"],
)
def test_a_batch_that_is_not_a_list_of_up_to_1000_is_refused_whole(api_client, body):
    trail_before = TrailEvent.objects.count()

    response = post(api_client, body)

    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert [problem["path"] for problem in error["fields"]] == ["cases"]
    assert not Case.objects.exists()
    assert TrailEvent.objects.count() == trail_before
    assert trail_verify().ok


def test_malformed_batch_json_answers_400(api_client):
    body = json.dumps({"cases": [factories.claim_payload(160, confidence=float("nan"))]})

    response = post(api_client, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert not Case.objects.exists()


def test_a_batch_has_its_own_larger_body_limit(api_client, settings):
    settings.API_MAX_BATCH_BODY_BYTES = 2 * 1024 * 1024
    blob = "x" * (1024 * 1024)
    under = {"cases": [factories.claim_payload(170, metadata={"blob": blob})]}
    over = {"cases": [factories.claim_payload(n, metadata={"blob": blob}) for n in (171, 172)]}

    taken = post(api_client, under)
    refused = post(api_client, over)

    assert taken.status_code == 200, taken.content
    assert taken.json()["results"][0]["status"] == 201
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "too_large"
    assert Case.objects.count() == 1
    assert trail_verify().ok


def test_a_stopped_system_batch_goes_to_people(db):
    client = factories.api_client(factories.system_with_policy(stopped=True))

    response = post(client, {"cases": [approval(180), factories.claim_payload(181)]})

    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 201]
    assert [r["route"]["rule"] for r in results] == ["kill-switch", "kill-switch"]
    assert [r["case_status"] for r in results] == ["pending_review", "pending_review"]
    assert ReviewTask.objects.count() == 2


def test_a_batch_needs_an_ingest_key(system):
    compliance = factories.api_client(system, scope="compliance")

    response = post(compliance, {"cases": [factories.claim_payload(190)]})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert not Case.objects.exists()
