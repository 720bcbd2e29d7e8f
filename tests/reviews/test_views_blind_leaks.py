"""Blind review leaks nothing before the commitment: every state of a blind
case, the page and its htmx fragment, searched for the AI's output; after
the commitment everything shows and the decision records what was visible."""

import copy
import json
import re

import pytest
import time_machine

from reviews.models import Decision, Queue
from tests import factories
from tests.factories import client_for, queue_id
from tests.reviews.screens import (
    HTMX,
    OUTCOME_SELECT,
    REASON_SELECT,
    case_url,
    deny_case,
    form_fields,
    messages_of,
)
from workbench.models import TrailEvent

# --- Blind review leaks nothing before the commitment ----------------------------------------

# Values of the AI's output that occur nowhere else, so that a search of the
# page can neither miss them nor find them by accident.
LEAK_OUTCOME = "zqrefusalx"
LEAK_POLICY = {
    "system": "claims-ai",
    "outcomes": ["approve", LEAK_OUTCOME, "partial"],
    "adverse_outcomes": [LEAK_OUTCOME, "partial"],
    "qa_sample_rate": 0,
    "default_queue": "claims-review",
    "escalation_queue": "supervisor",
    "queues": [
        {"slug": "claims-review", "name": "Claims review", "blind": True},
        {"slug": "second-look", "name": "Second look", "blind": True, "reviews_required": 2},
        {"slug": "supervisor", "name": "Supervisor", "role": "supervisor"},
    ],
    "rules": [
        {
            "name": "large-amount",
            "when": {"field": "metadata.amount", "op": "gt", "value": 5000},
            "queue": "second-look",
        },
        {"name": "zqoutcomerule", "when": {"outcome_in": [LEAK_OUTCOME]}, "queue": "claims-review"},
        {
            "name": "zqconfidencerule",
            "when": {
                "any": [{"confidence_below": 0.8}, {"field": "output.summary", "op": "exists"}]
            },
            "queue": "claims-review",
        },
    ],
}
LEAKS = [
    LEAK_OUTCOME,
    "zqsummary",
    "zqanswer",
    "zqexplanation",
    "ZQ-71",  # the AI's reason code ...
    "zqreasontext",  # ... and its text
    "ZQ-72",  # the claim line's adjustment code
    "0.62",
    "0.620",
    "62%",
    "62 %",
    "62.0",
    "adverse",
    "zqoutcomerule",
    "zqconfidencerule",
    "output.summary",
]


def leak_payload(n, **overrides):
    payload = factories.claim_payload(n, **overrides)
    payload["input"]["lines"][0]["reason_codes"] = ["ZQ-72"]
    payload["output"] = {
        "outcome": LEAK_OUTCOME,
        "summary": "zqsummary of the denial",
        "reasons": [{"code": "ZQ-71", "text": "zqreasontext"}],
        "answer": "zqanswer",
    }
    payload["explanation"] = "zqexplanation: top features"
    payload["confidence"] = 0.62
    return payload


def assert_blind(response, chosen=""):
    """Nothing of the AI's view anywhere in the page; the Outcome select
    offers the policy's outcomes in its order, none picked for the reviewer;
    the Reason select only the catalog and Other."""
    html = response.content.decode()
    selects = OUTCOME_SELECT.findall(html)
    outside = OUTCOME_SELECT.sub("", html).lower()
    found = [leak for leak in LEAKS if leak.lower() in outside]
    assert found == [], f"the blind page shows {found}"
    for options in selects:
        assert re.findall(r'<option value="([^"]*)"', options) == ["", *LEAK_POLICY["outcomes"]]
        picked = re.findall(r'<option value="([^"]*)" selected', options)
        assert picked == ([] if chosen is None else [chosen])
    for options in REASON_SELECT.findall(html):
        assert re.findall(r'<option value="([^"]*)"', options) == ["", "CO-50", "other"]
    if not html.lstrip().startswith('<section id="decision"'):
        # What reached the template (recorded for whole pages, not for a
        # partial): the allow-listed facts, never the case or its output.
        assert response.context["hidden"]
        assert "case" not in response.context and "output" not in response.context


def assert_blind_everywhere(client, case, chosen=""):
    """The page and its htmx fragment."""
    assert_blind(client.get(case_url(case)), chosen)
    fragment = client.get(case_url(case), headers=HTMX)
    assert fragment.content.decode().lstrip().startswith('<section id="decision"')
    assert_blind(fragment, chosen)


@pytest.fixture
def leak_system(db):
    system = factories.system_with_policy(LEAK_POLICY)
    factories.reason_code(system, "CO-50", "Not deemed a medical necessity")
    return system


# Whole seconds: no timestamp on the page can spell 0.62 by chance.
@time_machine.travel("2026-11-10 09:00:00Z", tick=False)
def test_no_state_of_a_blind_case_shows_the_ai_before_the_commitment(leak_system, alice, bob):
    case = factories.ingest(leak_system, leak_payload(1))
    assert case.route["rule"] == "zqoutcomerule"
    client = client_for(alice)
    # alice holds the first case while she is the second reviewer of another.
    Queue.objects.filter(system=leak_system).update(hold_limit=2)

    # Claimed.
    assert client.post("/queues/claim/", {"queue": queue_id(leak_system, "claims-review")})[
        "Location"
    ] == case_url(case)
    assert_blind_everywhere(client, case)
    page = client.get(case_url(case))
    html = page.content.decode()
    assert ">Commit outcome</button>" in html and "Blind review:" in html
    assert "2 rules of the policy test the AI's outcome or confidence" in html
    assert "Why the policy sent it to a person is shown once you commit" in html
    assert "large-amount" in html and "metadata.amount &gt; 5000" in html  # a test of the input
    assert "hidden until you commit" in html  # the claim line's reason codes
    # Someone else who may read the case sees no more.
    assert_blind_everywhere(client_for(bob), case)

    # After validation errors: the form's, and the service's (an escalation
    # without a rationale), plain and with htmx.
    fields = form_fields(page)
    for headers in ({}, HTMX):
        response = client.post(case_url(case), {**fields, "action": "commit"}, headers=headers)
        assert response.status_code == 422
        assert_blind(response)
        response = client.post(
            case_url(case),
            {**fields, "action": "escalate", "reason_code": "CO-50"},
            headers=headers,
        )
        assert (
            response.status_code == 422 and "a rationale is required" in response.content.decode()
        )
        assert_blind(response)
        # The AI's code is no choice before the commitment, refused like any
        # made-up code (the error repeats what was sent, nothing more).
        response = client.post(
            case_url(case),
            {**fields, "action": "escalate", "reason_code": "ZQ-71", "rationale": "x"},
            headers=headers,
        )
        assert response.status_code == 422 and not Decision.objects.exists()
        assert "Select a valid choice. ZQ-71 is not one of the available choices." in (
            response.content.decode()
        )
        response.content = response.content.replace(b"ZQ-71", b"XX-00")
        assert_blind(response)
        response = client.post(
            case_url(case), {**fields, "action": "commit", "outcome": "nonsense"}, headers=headers
        )
        assert response.status_code == 422
        assert_blind(response, chosen=None)

    # After release and a new claim.
    assert client.post(case_url(case), {**fields, "action": "release"}).status_code == 302
    assert_blind_everywhere(client_for(bob), case)
    assert client.post("/queues/claim/", {"queue": queue_id(leak_system, "claims-review")})[
        "Location"
    ] == case_url(case)
    assert_blind_everywhere(client, case)

    # As the second reviewer of a two-review blind queue.
    second = factories.ingest(leak_system, leak_payload(2, metadata={"amount": 9000}))
    assert second.route["rule"] == "large-amount"
    assert client.post("/queues/claim/", {"queue": queue_id(leak_system, "second-look")})[
        "Location"
    ] == case_url(second)
    assert_blind_everywhere(client, second)
    page = client.get(case_url(second))
    assert "Rule <strong>large-amount</strong>" in page.content.decode()  # first rule: says nothing
    fields = form_fields(page)
    client.post(case_url(second), {**fields, "action": "commit", "outcome": "approve"})
    revealed = client.get(case_url(second))
    assert LEAK_OUTCOME in OUTCOME_SELECT.sub("", revealed.content.decode())
    response = client.post(
        case_url(second),
        {
            **form_fields(revealed),
            "action": "override",
            "reason_code": "ZQ-71",
            "rationale": "paid",
        },
    )
    assert response.status_code == 302
    assert "a second reviewer will decide too" in messages_of(response)[0]
    assert_blind_everywhere(client, second)  # the first reviewer, until the second commits
    bob_client = client_for(bob)
    assert bob_client.post("/queues/claim/", {"queue": queue_id(leak_system, "second-look")})[
        "Location"
    ] == case_url(second)
    assert_blind_everywhere(bob_client, second)
    page = bob_client.get(case_url(second))
    for headers in ({}, HTMX):
        response = bob_client.post(
            case_url(second), {**form_fields(page), "action": "commit"}, headers=headers
        )
        assert response.status_code == 422
        assert_blind(response)


@time_machine.travel("2026-11-10 09:00:00Z", tick=False)
def test_after_the_commitment_everything_shows_and_the_decision_records_what_was_visible(
    leak_system, alice
):
    case = factories.ingest(leak_system, leak_payload(1))
    client = client_for(alice)
    client.post("/queues/claim/")
    page = client.get(case_url(case))
    client.post(case_url(case), {**form_fields(page), "action": "commit", "outcome": "approve"})

    revealed = client.get(case_url(case))

    assert not revealed.context["hidden"]
    html = revealed.content.decode()
    outside = OUTCOME_SELECT.sub("", html)
    for shown in LEAKS:
        if shown in ("62 %", "62.0", "output.summary"):
            continue
        assert shown.lower() in outside.lower(), shown
    assert "output.summary exists" in html
    assert "Rule <strong>zqoutcomerule</strong>" in html
    reasons = re.findall(r'<option value="([^"]*)"', REASON_SELECT.search(html)[1])
    assert reasons == ["", "CO-50", "ZQ-71", "ZQ-72", "other"]  # the AI's codes too, now
    routed = [e for e in revealed.context["timeline"] if e.action == "case.routed"][0]
    assert ("adverse", "true") in routed.details

    response = client.post(
        case_url(case),
        {
            **form_fields(revealed),
            "action": "override",
            "reason_code": "other",
            "rationale": "The plan covers it.",
        },
    )

    assert response.status_code == 302
    decision = Decision.objects.get()
    assert (decision.verdict, decision.outcome, decision.reason_code, decision.ai_visible) == (
        "override",
        "approve",
        "other",
        False,
    )
    data = json.loads(TrailEvent.objects.get(action="case.decided").body)["data"]
    assert data["ai_visible"] is False
    assert data["visible"] == ["case", "input", "rules_on_input", "queue", "lease"]


def test_a_commitment_survives_a_release_and_a_new_claim(blind_system, alice):
    """Having seen the AI's outcome, the reviewer cannot commit again by
    releasing the task and claiming it back."""
    case = deny_case(blind_system)
    client = client_for(alice)
    client.post("/queues/claim/")
    page = client.get(case_url(case))
    client.post(case_url(case), {**form_fields(page), "action": "commit", "outcome": "approve"})
    revealed = client.get(case_url(case))
    client.post(case_url(case), {**form_fields(revealed), "action": "release"})
    assert client.post("/queues/claim/")["Location"] == case_url(case)

    again = client.get(case_url(case))

    assert not again.context["hidden"] and again.context["blind_choice"] == "approve"
    assert ">Commit outcome</button>" not in again.content.decode()


def test_a_qa_sample_in_a_blind_queue_reads_as_a_review(db, alice):
    """A QA sample says that no rule matched, so that the AI's outcome is not
    adverse and its confidence high: blind, neither the route's reason nor the
    task's kind tells it."""
    policy = copy.deepcopy(LEAK_POLICY)
    policy["qa_sample_rate"] = 1
    policy["rules"] = policy["rules"][1:2]  # zqoutcomerule
    system = factories.system_with_policy(policy)
    case = factories.ingest(
        system, leak_payload(1, confidence=0.95) | {"output": {"outcome": "approve"}}
    )
    assert case.route["reason"] == "qa_sample"
    client = client_for(alice)
    client.post("/queues/claim/")

    html = client.get(case_url(case)).content.decode()

    assert "quality-assurance" not in html and "Qa in" not in html and "qa-sample" not in html
    assert "Review in Claims review" in html
    assert '"qa"' not in html and ">qa<" not in html


def test_a_blind_reviewer_of_a_chat_completions_transcript_sees_it_and_nothing_of_the_ai(db, alice):
    policy = copy.deepcopy(factories.SUPPORT_POLICY)
    policy["queues"][0]["blind"] = True
    system = factories.system_with_policy(policy)
    messages = [
        {"role": "system", "content": "zqsystemprompt: be brief."},
        {"role": "user", "content": [{"type": "text", "text": "can I talk to a human"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "zqtool"}}]},
        {"role": "tool", "content": "zqtooloutput"},
    ]
    payload = factories.chat_payload(
        1,
        input={"messages": messages},
        output={"outcome": "handoff", "summary": "zqsummary", "answer": "zqanswer"},
        explanation="zqexplanation",
        confidence=0.871,
    )
    case = factories.ingest(system, payload)
    client = client_for(alice)
    client.post("/queues/claim/")

    for response in (client.get(case_url(case)), client.get(case_url(case), headers=HTMX)):
        html = OUTCOME_SELECT.sub("", response.content.decode())
        leaks = ["zqanswer", "zqsummary", "zqexplanation", "0.871", "87%", "87.1", "0.87"]
        assert [leak for leak in leaks if leak in html] == []
    html = client.get(case_url(case)).content.decode()
    # What the AI saw is the blind reviewer's to read: the transcript, as bubbles.
    assert re.findall(r'<li class="bubble role-([a-z]+)">', html) == [
        "system",
        "customer",
        "assistant",
        "tool",
    ]
    assert "can I talk to a human" in html and "zqsystemprompt" in html
    assert "zqtool()" in html and "zqtooloutput" in html
    assert "proposed" not in html
