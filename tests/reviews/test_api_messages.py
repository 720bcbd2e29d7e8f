"""A chatbot's input in the OpenAI chat-completions format (``input.messages``,
issue 17 item 2) through POST /api/v1/cases and /batch: it routes as the same
``input.conversation`` would, the user's turns are the customer's (sealed),
system and tool turns never are, the body digest is of the body as sent, and
bad messages are 422 naming the field with nothing written."""

import copy
import json

import pytest
from django.test import Client

from reviews.models import Case, SubjectText
from reviews.selectors import case_input_opened
from tests import factories
from tests.reviews.intake import CASES, assert_nothing_written, error, post
from workbench.models import TrailEvent

SYSTEM_PROMPT = "You are the shop's support assistant. Answer briefly."
FIRST = factories.support_requests()[5]  # "i need help to cancel order 3707955617"
LATEST = {
    # Bitext, tagged W: the customer is upset (sentiment_below).
    "upset": factories.support_requests()[446]["instruction"],
    # Bitext: the customer asks for a person (text_matches).
    "person": factories.support_requests()[542]["instruction"],
    # Bitext: a plain request, which the policy leaves to the AI.
    "plain": factories.support_requests()[7]["instruction"],
}


def exchange(latest: str) -> tuple[list[dict], list[dict]]:
    """One real exchange, as ``input.conversation`` and as ``input.messages``."""
    conversation = [
        {"role": "customer", "text": FIRST["instruction"]},
        {"role": "assistant", "text": FIRST["response"][:500]},
        {"role": "customer", "text": latest},
    ]
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": FIRST["instruction"]},
        {"role": "assistant", "content": FIRST["response"][:500]},
        {"role": "user", "content": [{"type": "text", "text": latest}]},
    ]
    return conversation, messages


def chat(n: int, messages, **input_extra) -> dict:
    return factories.chat_payload(n, input={"messages": messages, **input_extra})


# --- It routes as the same conversation would ------------------------------------------------


@pytest.mark.parametrize(
    ("latest", "rule"),
    [("upset", "distressed-customer"), ("person", "distressed-customer"), ("plain", None)],
)
def test_a_transcript_routes_exactly_as_the_same_conversation(chat_system, latest, rule):
    client = factories.api_client(chat_system)
    conversation, messages = exchange(LATEST[latest])

    native = post(client, factories.chat_payload(1, input={"conversation": conversation}))
    sent = post(client, chat(2, messages))

    assert native.status_code == sent.status_code == 201, sent.content
    assert sent.json()["route"]["rule"] == native.json()["route"]["rule"] == rule
    assert sent.json()["status"] == native.json()["status"]
    cases = {case.external_id: case for case in Case.objects.all()}
    # Every condition's result (the sentiment score, the pattern's match) is the same.
    assert cases["CHAT-000002"].route == cases["CHAT-000001"].route
    sentiment, pattern = cases["CHAT-000002"].route["conditions"][0]["when"]["any"]
    assert (sentiment["result"], pattern["result"]) == {
        "upset": (True, False),
        "person": (False, True),
        "plain": (False, False),
    }[latest]


def test_content_parts_are_joined_and_an_image_is_kept_as_a_placeholder(chat_system):
    client = factories.api_client(chat_system)
    url = "https://cdn.example.org/zqprivatephoto.jpg"
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "the parcel came broken, see"},
                {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
                {"type": "text", "text": "can I talk to a person"},
            ],
        }
    ]

    response = post(client, chat(3, messages))

    assert response.status_code == 201, response.content
    assert response.json()["route"]["rule"] == "distressed-customer"
    case = Case.objects.get()
    assert case_input_opened(case=case)["conversation"] == [
        {"role": "customer", "text": "the parcel came broken, see\n[image]\ncan I talk to a person"}
    ]
    # The image is never fetched nor kept: its address is nowhere.
    assert "zqprivatephoto" not in json.dumps(case.input)
    assert not TrailEvent.objects.filter(body__contains="zqprivatephoto").exists()


def test_system_and_tool_turns_are_shown_but_never_the_customer(chat_system):
    client = factories.api_client(chat_system)
    messages = [
        {"role": "system", "content": "If they ask for a human agent, say a person will call."},
        {"role": "user", "content": LATEST["plain"], "name": "Zqanaruiz"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "order_lookup", "arguments": '{"order": "3707955617"}'},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": "HORRIBLE, total MESS: the agent says the order is lost!!!",
        },
    ]

    response = post(client, chat(4, messages, temperature=0.2))

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "finalized"  # the plain user turn was read
    case = Case.objects.get()
    assert case.input["temperature"] == 0.2 and "messages" not in case.input
    stored = case.input["conversation"]
    assert [turn["role"] for turn in stored] == ["system", "customer", "assistant", "tool"]
    assert stored[1] == {"role": "customer"}  # the words are sealed, the name not kept
    assert stored[2]["tool_calls"][0]["function"]["name"] == "order_lookup"
    assert stored[3]["text"].startswith("HORRIBLE") and stored[3]["tool_call_id"] == "call_1"
    sealed = SubjectText.objects.get(case=case, kind=SubjectText.Kind.CONVERSATION)
    assert sealed.subject.reference == "CUS-00004"
    assert LATEST["plain"] not in json.dumps(case.input)
    assert case_input_opened(case=case)["conversation"][1]["text"] == LATEST["plain"]
    assert not TrailEvent.objects.filter(body__contains="Zqanaruiz").exists()
    assert "Zqanaruiz" not in json.dumps(case_input_opened(case=case))


def test_a_transcript_without_a_user_turn_routes_on_nothing_the_customer_wrote(chat_system):
    client = factories.api_client(chat_system)
    messages = [
        {"role": "system", "content": "Hand over to a human agent when asked."},
        {"role": "assistant", "content": "Hello! How can I help?"},
    ]

    response = post(client, chat(5, messages))

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "finalized"
    assert not SubjectText.objects.exists()


# --- The body as sent: same again 200, changed 409 -------------------------------------------


def test_the_same_messages_again_is_200_and_changed_messages_are_409(chat_system):
    client = factories.api_client(chat_system)
    _, messages = exchange(LATEST["person"])
    messages[-1]["content"].append({"type": "image_url", "image_url": {"url": "https://a/1.png"}})
    body = chat(6, messages)

    first = post(client, body)
    again = post(client, copy.deepcopy(body))

    assert first.status_code == 201 and again.status_code == 200, again.content
    assert again.json() == first.json()
    # A change the conversation read from it would not show is still a change.
    changed = copy.deepcopy(body)
    changed["input"]["messages"][-1]["content"][-1]["image_url"]["url"] = "https://a/2.png"
    assert post(client, changed).status_code == 409
    worded = copy.deepcopy(body)
    worded["input"]["messages"][1]["content"] += "!"
    assert post(client, worded).status_code == 409
    # The same exchange as a conversation is another body.
    conversation, _ = exchange(LATEST["person"])
    native = factories.chat_payload(6, input={"conversation": conversation})
    assert post(client, native).status_code == 409
    assert Case.objects.count() == 1 and SubjectText.objects.count() == 1


# --- Bad messages: 422 naming the field, nothing written -------------------------------------

USER = {"role": "user", "content": "hello"}


@pytest.mark.parametrize(
    ("input_", "paths"),
    [
        ({"messages": []}, ["input.messages"]),
        ({"messages": "hello"}, ["input.messages"]),
        ({"messages": None}, ["input.messages"]),
        (
            {"messages": [USER, USER, {"role": "customer", "content": "hi"}]},
            ["input.messages.2.role"],
        ),
        ({"messages": [{"role": "function", "content": "x"}]}, ["input.messages.0.role"]),
        ({"messages": [{"content": "hi"}]}, ["input.messages.0.role"]),
        ({"messages": [{"role": 7, "content": "hi"}]}, ["input.messages.0.role"]),
        ({"messages": [USER, "hello"]}, ["input.messages.1"]),
        ({"messages": [{"role": "user"}]}, ["input.messages.0.content"]),
        ({"messages": [{"role": "user", "content": None}]}, ["input.messages.0.content"]),
        ({"messages": [{"role": "user", "content": 42}]}, ["input.messages.0.content"]),
        ({"messages": [{"role": "user", "content": []}]}, ["input.messages.0.content"]),
        ({"messages": [{"role": "assistant", "content": None}]}, ["input.messages.0.content"]),
        (
            {"messages": [{"role": "user", "content": [{"type": "video", "video": "x"}]}]},
            ["input.messages.0.content.0.type"],
        ),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url"}]}]},
            ["input.messages.0.content.0.type"],
        ),
        (
            {"messages": [{"role": "user", "content": ["hello"]}]},
            ["input.messages.0.content.0.type"],
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
            ["input.messages.0.content.0.text"],
        ),
        ({"messages": [{**USER, "name": 5}]}, ["input.messages.0.name"]),
        ({"messages": [{**USER, "tool_calls": []}]}, ["input.messages.0.tool_calls"]),
        (
            {"messages": [{"role": "assistant", "content": None, "tool_calls": "lookup"}]},
            ["input.messages.0.tool_calls", "input.messages.0.content"],
        ),
        (
            {"messages": [{"role": "user", "content": "x" * 20_001}]},
            ["input.messages.0.content"],
        ),
        (
            {"messages": [USER], "conversation": [{"role": "customer", "text": "hello"}]},
            ["input.messages"],
        ),
        (
            {"messages": [{"role": "robot", "content": "x"}, {"role": "user", "content": 1}]},
            ["input.messages.0.role", "input.messages.1.content"],
        ),
    ],
)
def test_bad_messages_are_422_naming_the_field(chat_system, input_, paths):
    client = factories.api_client(chat_system)
    trail_before = TrailEvent.objects.count()

    response = post(client, factories.chat_payload(7, input=input_))

    assert response.status_code == 422, response.content
    assert error(response) == ("invalid", paths)
    assert_nothing_written(trail_before)
    assert not SubjectText.objects.exists()


def test_an_unknown_role_is_refused_with_the_roles_named(chat_system):
    client = factories.api_client(chat_system)

    response = post(client, chat(8, [{"role": "bot", "content": "hi"}]))

    (problem,) = response.json()["error"]["fields"]
    assert problem["path"] == "input.messages.0.role"
    assert "'bot'" in problem["message"] and "user" in problem["message"]


def test_assistant_tool_calls_with_null_content_are_accepted(chat_system):
    client = factories.api_client(chat_system)
    messages = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]},
        {"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "{}"}]},
        {"role": "assistant", "content": None, "refusal": "I cannot help with that."},
    ]

    assert post(client, chat(9, messages)).status_code == 201
    stored = Case.objects.get().input["conversation"]
    assert stored[1]["text"] == "" and stored[3]["text"] == "I cannot help with that."


# --- Batches ---------------------------------------------------------------------------------


def test_a_batch_mixes_messages_and_conversations_and_a_bad_item_fails_alone(chat_system):
    client = factories.api_client(chat_system)
    _, upset = exchange(LATEST["upset"])
    batch = {
        "cases": [
            chat(10, upset),
            chat(11, [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]),
            factories.chat_payload(12),
            chat(13, exchange(LATEST["plain"])[1]),
        ]
    }

    results = post(client, batch, f"{CASES}/batch").json()["results"]

    assert [item["status"] for item in results] == [201, 422, 201, 201]
    assert [f["path"] for f in results[1]["error"]["fields"]] == ["input.messages.1.role"]
    assert results[0]["route"]["rule"] == "distressed-customer"
    assert results[3]["case_status"] == "finalized"
    assert SubjectText.objects.count() == 3
    again = post(client, batch, f"{CASES}/batch").json()["results"]
    assert [item["status"] for item in again] == [200, 422, 200, 200]


def test_the_openapi_document_describes_both_shapes_of_a_chatbots_input(db):
    schema = Client().get("/api/v1/openapi.json").json()["components"]["schemas"]["CaseIn"]
    described = schema["properties"]["input"]["description"]
    assert '"conversation"' in described and '"messages"' in described
    assert "[image]" in described and "tool_calls" in described
