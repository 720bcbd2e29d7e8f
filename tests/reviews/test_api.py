"""The intake API, POST/GET /api/v1/cases (DESIGN §5): status codes, error
codes and field paths, what lands in the database and in the trail."""

import hashlib
import json
import re
from itertools import count
from urllib.parse import urlsplit

import pytest
from django.test import Client

from reviews.models import Case, ReviewTask
from reviews.routing import qa_sampled
from reviews.services.notices import notice_token_hash
from tests import factories
from workbench.models import APIKey, TrailEvent
from workbench.services import api_key_create, api_key_revoke, trail_verify

CASES = "/api/v1/cases"
JSON = "application/json"
REFERENCE = re.compile(r"^WB-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$")


def post(client, body, path=CASES):
    """POST ``body``: a dict is sent as JSON, bytes or text as they are."""
    return client.post(path, body, content_type=JSON)


def error(response) -> tuple[str, list[str]]:
    body = response.json()["error"]
    return body["code"], [problem["path"] for problem in body["fields"]]


def approval(n: int, **overrides) -> dict:
    """A confident approval the claims policy finalizes: no rule matches, and
    ``n`` is moved past external_ids the 5% QA sample would pick."""
    n = next(
        m
        for m in count(n)
        if not qa_sampled(system="claims-ai", external_id=f"CLM-2026-{m:06d}", rate=0.05)
    )
    body = factories.claim_payload(
        n,
        output={"outcome": "approve", "summary": "Covered", "reasons": []},
        confidence=0.97,
        metadata={"amount": 180},
    )
    body.update(overrides)
    return body


def tweet(tweet_id: str) -> str:
    with open(factories.DATA / "emotion" / "vader_tweets_human_ratings.jsonl") as f:
        rows = (json.loads(line) for line in f)
        return next(row["text"] for row in rows if row["id"] == tweet_id)


def assert_nothing_written(trail_before: int) -> None:
    assert Case.objects.count() == 0
    assert ReviewTask.objects.count() == 0
    assert TrailEvent.objects.count() == trail_before
    assert trail_verify().ok


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


# --- 422: every bad field named --------------------------------------------------------


def test_invalid_body_names_every_bad_field_at_once(api_client):
    trail_before = TrailEvent.objects.count()
    payload = factories.claim_payload(9, confidence="0.62", explanation="x" * 20_001)
    del payload["kind"]
    del payload["model"]["version"]
    payload["subject"]["email"] = "not an email"
    payload["output"]["reasons"][0]["code"] = ""
    payload["surprise"] = True

    response = post(api_client, payload)

    assert response.status_code == 422, response.content
    code, paths = error(response)
    assert code == "invalid"
    assert set(paths) == {
        "kind",
        "model.version",
        "subject.email",
        "output.reasons.0.code",
        "confidence",
        "explanation",
        "surprise",
    }
    assert_nothing_written(trail_before)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda p: p.pop("external_id"), "external_id"),
        (lambda p: p.pop("subject"), "subject"),
        (lambda p: p.pop("output"), "output"),
        (lambda p: p.pop("confidence"), "confidence"),
        (lambda p: p.update(confidence="high"), "confidence"),
        (lambda p: p.update(confidence=True), "confidence"),
        (lambda p: p.update(confidence=1.5), "confidence"),
        (lambda p: p.update(confidence=-0.01), "confidence"),
        (lambda p: p.update(confidence=10**400), "confidence"),
        (lambda p: p.update(kind="horoscope"), "kind"),
        (lambda p: p.update(input=["not", "an", "object"]), "input"),
        (lambda p: p.update(metadata="amount=4200"), "metadata"),
        (lambda p: p.update(external_id=""), "external_id"),
        (lambda p: p.update(external_id=12345), "external_id"),
        (lambda p: p.update(external_id="E" * 201), "external_id"),
        (lambda p: p.update(explanation="x" * 20_001), "explanation"),
        (lambda p: p["output"].update(summary="x" * 2001), "output.summary"),
        (lambda p: p["output"].update(answer="x" * 20_001), "output.answer"),
        (lambda p: p["output"].update(reasons=[{"code": "CO-1"}] * 51), "output.reasons"),
        (lambda p: p["output"].update(colour="red"), "output.colour"),
        (lambda p: p["subject"].update(reference=""), "subject.reference"),
        (lambda p: p["subject"].update(name="n" * 201), "subject.name"),
        (lambda p: p["subject"].update(locale="en US; drop"), "subject.locale"),
        (lambda p: p["model"].pop("name"), "model.name"),
        (lambda p: p.update(unknown_field=1), "unknown_field"),
    ],
)
def test_invalid_field_is_named_by_its_path(api_client, change, path):
    trail_before = TrailEvent.objects.count()
    payload = factories.claim_payload(11)
    change(payload)

    response = post(api_client, payload)

    assert response.status_code == 422, response.content
    code, paths = error(response)
    assert code == "invalid"
    assert paths == [path]
    assert_nothing_written(trail_before)


def test_unknown_outcome_is_named_at_output_outcome(api_client):
    trail_before = TrailEvent.objects.count()
    payload = factories.claim_payload(12)
    payload["output"]["outcome"] = "maybe"

    response = post(api_client, payload)

    assert response.status_code == 422, response.content
    assert error(response) == ("invalid", ["output.outcome"])
    assert_nothing_written(trail_before)


@pytest.mark.parametrize(
    ("conversation", "paths"),
    [
        (None, ["input.conversation"]),
        ([], ["input.conversation"]),
        ("hello", ["input.conversation"]),
        ([{"role": "customer"}], ["input.conversation.0.text"]),
        ([{"role": "robot", "text": "hi"}], ["input.conversation.0.role"]),
        (
            [{"role": "customer", "text": "hi"}, "hello", {"role": "agent", "text": 7}],
            ["input.conversation.1", "input.conversation.2.text"],
        ),
        ([{"role": "customer", "text": "x" * 20_001}], ["input.conversation.0.text"]),
    ],
)
def test_chatbot_answer_needs_the_conversation(chat_system, conversation, paths):
    client = factories.api_client(chat_system)
    trail_before = TrailEvent.objects.count()
    payload = factories.chat_payload(1)
    payload["input"] = {} if conversation is None else {"conversation": conversation}

    response = post(client, payload)

    assert response.status_code == 422, response.content
    assert error(response) == ("invalid", paths)
    assert_nothing_written(trail_before)


def test_an_empty_body_is_invalid(api_client):
    response = post(api_client, b"")

    assert response.status_code == 422, response.content
    assert error(response)[0] == "invalid"
    assert not Case.objects.exists()


def test_a_json_array_body_is_invalid(api_client):
    response = post(api_client, json.dumps([factories.claim_payload(13)]))

    assert response.status_code == 422, response.content
    assert error(response)[0] == "invalid"
    assert not Case.objects.exists()


# --- 400 and 413: bodies that are not JSON we accept -----------------------------------


def _deep_object_in_input(levels: int) -> bytes:
    payload = factories.claim_payload(14)
    payload["input"] = {"__deep__": None}
    nested = '{"a": ' * levels + "1" + "}" * levels
    return json.dumps(payload).replace('{"__deep__": null}', nested).encode()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (json.dumps(factories.claim_payload(15, confidence=float("nan"))), "malformed_json"),
        (json.dumps(factories.claim_payload(15, metadata={"x": float("inf")})), "malformed_json"),
        (json.dumps(factories.claim_payload(15, metadata={"x": float("-inf")})), "malformed_json"),
        ('{"external_id": "CLM-1", "kind": ', "malformed_json"),
        ("{'external_id': 'CLM-1'}", "malformed_json"),
        (json.dumps(factories.claim_payload(15)).encode() + b"\xff\xfe", "bad_encoding"),
        (b'{"external_id": "CLM-\xc3\x28"}', "bad_encoding"),
        (_deep_object_in_input(100), "too_deep"),
        (json.dumps(factories.claim_payload(15)).replace("0.62", "1e309"), "malformed_json"),
        (
            json.dumps(factories.claim_payload(15, metadata={"x": "1e999"})).replace(
                '"1e999"', "1e999"
            ),
            "malformed_json",
        ),
        (
            json.dumps(factories.claim_payload(15, metadata={"x": "-1e999"})).replace(
                '"-1e999"', "-1e999"
            ),
            "malformed_json",
        ),
        (json.dumps(factories.claim_payload(15, explanation="\ud800")), "bad_encoding"),
        (json.dumps(factories.claim_payload(15, metadata={"note": "\udfff"})), "bad_encoding"),
        (json.dumps(factories.claim_payload(15, metadata={"\ud83d": 1})), "bad_encoding"),
        (json.dumps(factories.claim_payload(15, explanation="a\u0000b")), "bad_encoding"),
        (json.dumps(factories.claim_payload(15, metadata={"note": "\u0000"})), "bad_encoding"),
        (b"[" * 100_000, "too_deep"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b'{"a": ' * 100_000, "too_deep"),
    ],
    ids=[
        "nan",
        "infinity",
        "minus-infinity",
        "truncated",
        "single-quotes",
        "bad-utf8-tail",
        "bad-utf8-inside",
        "100-objects-in-input",
        "overflowing-confidence",
        "overflowing-number",
        "overflowing-negative-number",
        "lone-surrogate",
        "lone-surrogate-in-input",
        "lone-surrogate-in-key",
        "nul",
        "nul-in-input",
        "100k-open-brackets",
        "100k-closed-brackets",
        "100k-open-objects",
    ],
)
def test_unacceptable_json_answers_400(api_client, body, code):
    trail_before = TrailEvent.objects.count()

    response = post(api_client, body)

    assert response.status_code == 400, response.content
    assert error(response) == (code, [])
    assert_nothing_written(trail_before)


def test_json_nested_to_the_limit_is_accepted(api_client):
    # The body, input and 30 objects inside: 32 levels.
    response = post(api_client, _deep_object_in_input(30))

    assert response.status_code == 201, response.content


def test_body_over_one_mebibyte_answers_413(api_client):
    trail_before = TrailEvent.objects.count()
    payload = factories.claim_payload(16, metadata={"blob": "x" * (1024 * 1024)})

    response = post(api_client, payload)

    assert response.status_code == 413, response.content
    assert error(response) == ("too_large", [])
    assert_nothing_written(trail_before)


def test_body_just_under_one_mebibyte_is_read(api_client):
    payload = factories.claim_payload(17, metadata={"blob": ""})
    room = 1024 * 1024 - len(json.dumps(payload).encode())
    payload["metadata"]["blob"] = "x" * room

    response = post(api_client, payload)

    assert len(json.dumps(payload).encode()) == 1024 * 1024
    assert response.status_code == 201, response.content


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
    assert (
        post(anonymous, {"cases": [factories.claim_payload(21)]}, f"{CASES}/batch").status_code
        == 401
    )
    assert Case.objects.get().status == Case.Status.PENDING_REVIEW


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


# --- What the customer wrote, and what they read (issue 13) ---------------------------------


def test_the_ai_system_may_send_an_explanation_for_the_customer_as_text_or_per_locale(
    api_client,
):
    for n, value in ((1, "The amount was above the plan's limit."), (2, {"en": "A", "es": "B"})):
        response = post(api_client, factories.claim_payload(n, explanation_customer=value))
        assert response.status_code == 201, response.content
        assert (
            Case.objects.get(reference=response.json()["reference"]).explanation_customer == value
        )
    schema = Client().get("/api/v1/openapi.json").json()["components"]["schemas"]["CaseIn"]
    assert "explanation_customer" in schema["properties"]
    assert "explanation_customer" not in schema.get("required", [])


@pytest.mark.parametrize(
    "value", [{"english": "x"}, {"es": 5}, "<b>bold</b>", "x" * 5001, ["a list"], {"es": "a\x01"}]
)
def test_a_bad_explanation_for_the_customer_is_422_naming_the_field(api_client, value):
    response = post(api_client, factories.claim_payload(1, explanation_customer=value))
    assert response.status_code == 422
    code, paths = error(response)
    assert code == "invalid" and any(path.startswith("explanation_customer") for path in paths)
    assert Case.objects.count() == 0


def test_a_body_sent_before_the_explanation_field_existed_is_still_the_same_body(api_client):
    from reviews.schemas import CaseIn
    from reviews.services.intake import _body_digest, json_digest

    body = factories.claim_payload(1)
    item = CaseIn.model_validate(body)
    before = item.model_dump(mode="json")
    before.pop("explanation_customer")
    assert _body_digest(item) == json_digest(before)  # the digest stored before the change
    first = post(api_client, body)
    assert post(api_client, body).status_code == 200
    again = {**body, "explanation_customer": ""}  # the default, given: the same body
    assert post(api_client, again).json()["reference"] == first.json()["reference"]


def test_a_customer_turn_that_cannot_be_kept_is_refused_and_nothing_is_written(chat_system):
    api = factories.api_client(chat_system)
    before = TrailEvent.objects.count()
    megabyte = factories.chat_payload(1, text="x" * (1024 * 1024))
    assert post(api, megabyte).status_code == 413  # over the body limit
    nul = json.dumps(factories.chat_payload(2, text="a\u0000b"))
    response = post(api, nul)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_encoding"
    invalid = json.dumps(factories.chat_payload(3, text="@@")).encode().replace(b"@@", b"\xff\xfe")
    response = post(api, invalid)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_encoding"
    assert_nothing_written(before)
    # In a batch the long turn fails alone, by its path; the other case is stored.
    batch = {"cases": [factories.chat_payload(4, text="y" * 20_001), factories.chat_payload(5)]}
    results = post(api, batch, f"{CASES}/batch").json()["results"]
    assert [item["status"] for item in results] == [422, 201]
    assert [f["path"] for f in results[0]["error"]["fields"]] == ["input.conversation.0.text"]
    from reviews.models import SubjectText

    assert Case.objects.count() == 1 and SubjectText.objects.count() == 1


def test_a_contest_reason_that_cannot_be_kept_is_refused_and_nothing_is_written(api_client):
    reference = post(api_client, approval(1)).json()["reference"]
    path = f"{CASES}/{reference}/contest"
    assert post(api_client, {"reason": "x" * (1024 * 1024)}, path).status_code == 413
    response = post(api_client, {"reason": "x" * 5001}, path)
    assert response.status_code == 422 and error(response)[1] == ["reason"]
    assert post(api_client, json.dumps({"reason": "a\u0000b"}), path).status_code == 400
    from reviews.models import SubjectText

    assert not SubjectText.objects.exists()
    assert not TrailEvent.objects.filter(action="case.contested").exists()
    assert Case.objects.get(reference=reference).status == "finalized"
