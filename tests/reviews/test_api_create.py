"""The intake API, POST /api/v1/cases (DESIGN §5): what a valid case answers
(201, or 200 for the same body again, 409 for a conflict), what lands in the
database and in the trail, the kill switch and the chat policy's routing."""

import json
from urllib.parse import urlsplit

import pytest

from reviews.models import Case, ReviewTask
from reviews.services.notices import notice_token_hash
from tests import factories
from tests.reviews.intake import (
    CASES,
    REFERENCE,
    approval,
    error,
    post,
    tweet,
)
from workbench.models import TrailEvent
from workbench.services import trail_verify

# --- 201: stored and routed ------------------------------------------------------------


def test_create_answers_201_with_reference_route_and_absolute_notice_url(api_client):
    response = post(api_client, factories.claim_payload())

    assert response.status_code == 201, response.content
    body = response.json()
    case = Case.objects.get()
    assert body["id"] == str(case.id)
    assert REFERENCE.match(body["reference"])
    assert body["reference"] == case.reference
    assert body["status"] == "pending_review"
    assert body["route"] == {
        "rule": "adverse-needs-human",
        "queue": "claims-review",
        "policy_version": 1,
    }
    url = urlsplit(body["notice_url"])
    assert (url.scheme, url.netloc) == ("http", "testserver")
    token = url.path.removeprefix("/notice/").rstrip("/")
    assert url.path == f"/notice/{token}/" and token
    # Only the hash of the link's secret is stored.
    assert case.notice_token_hash == notice_token_hash(token)
    assert case.notice_token_hash != token
    assert not TrailEvent.objects.filter(body__contains=token).exists()


def test_denial_goes_to_claims_review_with_an_open_task(api_client):
    response = post(api_client, factories.claim_payload(3))

    assert response.status_code == 201, response.content
    case = Case.objects.get(reference=response.json()["reference"])
    assert case.status == Case.Status.PENDING_REVIEW
    assert case.final_outcome == "" and case.decided_by == ""
    task = ReviewTask.objects.get(case=case)
    assert task.status == ReviewTask.Status.OPEN
    assert task.queue.slug == "claims-review"
    assert task.kind == ReviewTask.Kind.REVIEW


def test_large_amount_goes_to_senior_review_first(api_client):
    response = post(api_client, factories.claim_payload(4, metadata={"amount": 9000}))

    assert response.status_code == 201, response.content
    assert response.json()["route"]["rule"] == "large-amount"
    assert ReviewTask.objects.get().queue.slug == "senior-review"


def test_confident_approval_is_finalized_by_the_ai(api_client):
    response = post(api_client, approval(10))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "finalized"
    assert body["route"] == {"rule": None, "queue": None, "policy_version": 1}
    case = Case.objects.get()
    assert case.status == Case.Status.FINALIZED
    assert case.decided_by == Case.DecidedBy.AI
    assert case.final_outcome == "approve"
    assert case.finalized_at is not None
    assert not ReviewTask.objects.exists()


def test_intake_trail_records_received_and_routed_without_personal_data(api_client):
    before = TrailEvent.objects.count()
    payload = factories.claim_payload(5)

    response = post(api_client, payload)

    assert response.status_code == 201, response.content
    reference = response.json()["reference"]
    events = list(TrailEvent.objects.filter(seq__gt=before).order_by("seq"))
    assert [(e.action, e.case, e.system) for e in events] == [
        ("case.received", reference, "claims-ai"),
        ("case.routed", reference, "claims-ai"),
    ]
    received = json.loads(events[0].body)["data"]
    assert received["external_id"] == payload["external_id"]
    assert received["subject"] == payload["subject"]["reference"]
    assert received["outcome"] == "deny"
    assert received["body_sha256"] == Case.objects.get().body_digest
    routed = json.loads(events[1].body)["data"]
    assert routed["rule"] == "adverse-needs-human"
    assert routed["queue"] == "claims-review"
    for event in TrailEvent.objects.all():
        assert "Ana Ruiz" not in event.body
        assert "ana@example.org" not in event.body
    assert trail_verify().ok


# --- Idempotency and conflicts ---------------------------------------------------------


def test_same_body_again_answers_200_with_the_same_case(api_client):
    payload = factories.claim_payload(6)
    first = post(api_client, payload)
    trail_after_first = TrailEvent.objects.count()

    again = post(api_client, payload)

    assert first.status_code == 201, first.content
    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert Case.objects.count() == 1
    assert ReviewTask.objects.count() == 1
    assert TrailEvent.objects.count() == trail_after_first
    assert trail_verify().ok


def test_same_body_again_with_keys_reordered_is_still_the_same(api_client):
    payload = factories.claim_payload(7)
    first = post(api_client, payload)

    again = post(api_client, json.dumps(dict(reversed(list(payload.items())))))

    assert again.status_code == 200, again.content
    assert again.json()["reference"] == first.json()["reference"]


def test_same_external_id_with_a_different_body_conflicts(api_client):
    payload = factories.claim_payload(8)
    first = post(api_client, payload)
    trail_after_first = TrailEvent.objects.count()

    response = post(api_client, {**payload, "confidence": 0.63})

    assert first.status_code == 201
    assert response.status_code == 409, response.content
    assert error(response)[0] == "conflict"
    case = Case.objects.get()
    assert case.confidence == 0.62
    assert TrailEvent.objects.count() == trail_after_first
    assert trail_verify().ok


def test_the_same_external_id_from_another_system_is_another_case(api_client):
    support = factories.system_with_policy(factories.SUPPORT_POLICY)
    chat = factories.chat_payload(1, external_id="SHARED-1")
    claim = factories.claim_payload(1, external_id="SHARED-1")

    first = post(api_client, claim)
    second = post(factories.api_client(support), chat)

    assert (first.status_code, second.status_code) == (201, 201)
    assert Case.objects.filter(external_id="SHARED-1").count() == 2


# --- The kill switch --------------------------------------------------------------------


def test_a_stopped_system_still_takes_cases_but_a_person_decides(db):
    stopped = factories.system_with_policy(stopped=True)
    client = factories.api_client(stopped)

    response = post(client, approval(50))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending_review"
    assert body["route"]["rule"] == "kill-switch"
    assert body["route"]["queue"] == "claims-review"
    case = Case.objects.get()
    assert case.decided_by == "" and case.final_outcome == ""
    assert ReviewTask.objects.get(case=case).queue.slug == "claims-review"
    routed = json.loads(TrailEvent.objects.get(case=case.reference, action="case.routed").body)
    assert routed["data"]["reason"] == "system_stopped"


# --- Chat routing -----------------------------------------------------------------------


def _route_conditions(client, reference) -> dict:
    conditions = client.get(f"{CASES}/{reference}").json()["route"]["conditions"]
    return {c["rule"]: c for c in conditions}


@pytest.mark.parametrize(
    "text",
    [
        tweet("3205"),  # "HORRIBLE news tonight!!! total fucking MESS!!! ..."
        factories.support_requests()[446]["instruction"],  # Bitext, tagged W
    ],
    ids=["tweet", "bitext-w"],
)
def test_a_furious_customer_goes_to_chat_escalations(chat_system, text):
    client = factories.api_client(chat_system)

    response = post(client, factories.chat_payload(60, text=text))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending_review"
    assert body["route"]["rule"] == "distressed-customer"
    assert body["route"]["queue"] == "chat-escalations"
    sentiment, pattern = _route_conditions(client, body["reference"])["distressed-customer"][
        "when"
    ]["any"]
    assert sentiment["result"] is True and sentiment["score"] < -0.5
    assert pattern["result"] is False


def test_asking_for_a_human_goes_to_chat_escalations(chat_system):
    client = factories.api_client(chat_system)

    response = post(client, factories.chat_payload(61, text="can I talk to a human"))

    assert response.status_code == 201, response.content
    assert response.json()["route"]["rule"] == "distressed-customer"
    sentiment, pattern = _route_conditions(client, response.json()["reference"])[
        "distressed-customer"
    ]["when"]["any"]
    assert pattern["result"] is True
    assert sentiment["result"] is False


def test_only_the_latest_customer_turn_is_read(chat_system):
    client = factories.api_client(chat_system)
    payload = factories.chat_payload(62)
    payload["input"]["conversation"] = [
        {"role": "customer", "text": "let me talk to a person"},
        {"role": "agent", "text": "Hello, I am a person. How can I help?"},
        {"role": "customer", "text": "i need help to cancel order 3707955617"},
    ]

    response = post(client, payload)

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "finalized"


def test_a_neutral_confident_answer_is_finalized(chat_system):
    client = factories.api_client(chat_system)

    response = post(client, factories.chat_payload(5))  # "i need help to cancel order ..."

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "finalized"
    case = Case.objects.get()
    assert case.decided_by == "ai"
    assert case.final_outcome == "answered"


def test_a_neutral_but_unsure_answer_goes_to_a_person(chat_system):
    client = factories.api_client(chat_system)

    response = post(client, factories.chat_payload(5, confidence=0.4))

    assert response.status_code == 201, response.content
    assert response.json()["route"]["rule"] == "low-confidence"


def test_the_trail_records_the_chat_sentiment_and_distress_and_no_words(db):
    from reviews.routing import sentiment_score
    from workbench.models import TrailEvent

    system = factories.system_with_policy(factories.SUPPORT_POLICY)
    text = "I am furious, this is the worst service ever"
    upset = factories.ingest(system, factories.chat_payload(1, text=text))
    calm = factories.ingest(system, factories.chat_payload(2, text="Thank you, that helps"))

    def data(case, action):
        body = TrailEvent.objects.get(case=case.reference, action=action).body
        assert text not in body  # a number, never the words
        return json.loads(body)["data"]

    assert data(upset, "case.received")["sentiment"] == sentiment_score(text)
    assert data(upset, "case.routed")["distressed"] is True
    assert data(calm, "case.received")["sentiment"] > 0
    assert data(calm, "case.routed")["distressed"] is False
    claims = factories.system_with_policy()
    claim = factories.ingest(claims, factories.claim_payload(1))
    assert "sentiment" not in data(claim, "case.received")
    assert data(claim, "case.routed")["distressed"] is False
    published = json.loads(
        TrailEvent.objects.filter(action="policy.published", system="claims-ai").get().body
    )["data"]
    assert published["audit"]["overturn_rate"] == 0.20  # the resolved thresholds
