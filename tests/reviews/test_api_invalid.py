"""The intake API, POST /api/v1/cases (DESIGN §5): bodies it refuses (422 with
every bad field named by its path, 400 and 413 for bodies that are not JSON
it accepts) with nothing written, and the customer's texts (issue 13)."""

import json

import pytest
from django.test import Client

from reviews.models import Case
from tests import factories
from tests.reviews.intake import (
    CASES,
    approval,
    assert_nothing_written,
    error,
    post,
)
from workbench.models import TrailEvent

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
