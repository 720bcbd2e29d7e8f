"""The case page through the Django test client: what it shows, deciding on it
(agree, override, escalate, release, stale and foreign forms, CSRF, escaping)
and its reason select without a catalog. Plain requests (no JavaScript) and
htmx requests (``HX-Request: true``)."""

import copy
import re
from datetime import timedelta

import time_machine
from django.test import Client
from django.utils import timezone

from reviews.models import Case, Decision, ReviewTask
from reviews.services.assignment import task_claim_next, task_release
from tests import factories
from tests.factories import client_for
from tests.reviews.screens import (
    HTMX,
    REASON_SELECT,
    case_url,
    decide,
    deny_case,
    form_fields,
    messages_of,
)
from workbench.models import TrailEvent

# --- The case page ---------------------------------------------------------------------------


def test_the_case_page_shows_input_output_route_and_history(system, alice, catalog):
    payload = factories.claim_payload(1)
    payload["input"]["lines"].append(
        {"code": "97110", "description": "Therapy", "amount": 60.5, "reason_codes": ["CO-97"]}
    )
    payload["output"]["reasons"] = [{"code": "CO-50", "text": "Not medically necessary"}]
    case = factories.ingest(system, payload)
    client = client_for(alice)
    client.post("/queues/claim/")

    response = client.get(case_url(case))

    assert response.status_code == 200
    html = response.content.decode()
    assert case.reference in html and "MBR-00001" in html
    # The claim lines as a table, reason codes with their catalog text.
    assert "<code>97110</code>" in html and "240.50" in html  # 180.00 + 60.50
    assert "Included in another service" in html
    # The AI's recommendation.
    assert "62%" in html and "claims-triage" in html and "2026.11.1" in html
    assert "top features: procedure code" in html
    assert "Not deemed a medical necessity" in html  # the catalog's text for CO-50
    # Why it is here: every rule with its result, the one that routed it marked.
    rules = {rule.rule: rule for rule in response.context["rules"]}
    assert set(rules) == {"large-amount", "adverse-needs-human", "low-confidence"}
    assert rules["adverse-needs-human"].fired and rules["adverse-needs-human"].matched
    assert not rules["large-amount"].matched
    assert "metadata.amount &gt; 5000" in html and "confidence below 0.8" in html
    assert "policy version <strong>1</strong>" in html
    # The trail as a timeline.
    actions = [entry.action for entry in response.context["timeline"]]
    assert actions == ["case.received", "case.routed", "case.claimed"]
    assert "by user rev.alice" in html and "by system claims-ai" in html
    # The form: the policy's outcomes, the catalog's active codes, fresh keys.
    assert '<option value="approve">approve</option>' in html
    assert '<option value="CO-97">CO-97 — Included in another service</option>' in html
    assert "Required to override or escalate" in html
    for label in ("Agree", "Override", "Escalate", "Release"):
        assert f">{label}</button>" in html
    for key in ('data-shortcut="a"', 'data-shortcut="o"', 'data-shortcut="e"'):
        assert key in html
    assert (
        form_fields(response)["idempotency_key"]
        != form_fields(client.get(case_url(case)))["idempotency_key"]
    )


def test_a_chat_case_shows_the_conversation_as_bubbles(chat_system, alice):
    case = factories.ingest(
        chat_system, factories.chat_payload(3, text="I want to talk to a human, now!")
    )
    client = client_for(alice)
    client.post("/queues/claim/")

    html = client.get(case_url(case)).content.decode()

    assert 'class="bubble role-customer"' in html
    assert "I want to talk to a human, now!" in html
    assert "AI's answer (under review)" in html
    # The sentiment leaf shows its score; the any-of tree shows each leaf.
    assert "customer sentiment below -0.5" in html and "(score " in html
    assert "any of these" in html


# A transcript in the chat-completions format (issue 17 item 2), its last user
# turn a real Bitext request for a person.
MESSAGES = [
    {"role": "system", "content": "You are the shop's support assistant."},
    {"role": "user", "content": "my parcel never came"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "order_lookup", "arguments": '{"order": "37"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "status: lost in transit"},
    {"role": "assistant", "content": "Sorry, it seems lost."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": factories.support_requests()[542]["instruction"]},
            {"type": "image_url", "image_url": {"url": "https://cdn.example.org/p.jpg"}},
        ],
    },
]


def test_a_chat_completions_transcript_shows_as_bubbles(chat_system, alice):
    case = factories.ingest(chat_system, factories.chat_payload(4, input={"messages": MESSAGES}))
    client = client_for(alice)
    client.post("/queues/claim/")

    html = re.sub(r"\s+", " ", client.get(case_url(case)).content.decode())

    bubbles = re.findall(r'<li class="bubble role-([a-z]+)">', html)
    assert bubbles == ["system", "customer", "assistant", "tool", "assistant", "customer"]
    assert "You are the shop&#x27;s support assistant." in html
    assert "my parcel never came" in html  # the sealed user turn, opened for the reviewer
    assert "Calls <code>order_lookup({&quot;order&quot;: &quot;37&quot;})</code>" in html
    assert "status: lost in transit" in html
    assert "assistance to talk to a live agent<br>[image]" in html
    assert "cdn.example.org" not in html
    assert "AI's answer (under review)" in html
    assert "customer&#x27;s latest message matches" in html  # the route card's text_matches leaf


def test_other_input_is_shown_as_json(db, alice):
    policy = copy.deepcopy(factories.CLAIMS_POLICY)
    system = factories.system_with_policy(policy)
    case = deny_case(system, input={"document": {"pages": 3, "text": "<b>bold</b>"}})
    client = client_for(alice)
    client.post("/queues/claim/")
    html = client.get(case_url(case)).content.decode()
    assert '<pre class="json">' in html
    assert "&quot;pages&quot;: 3" in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def test_the_case_page_fragment_for_htmx_is_the_decision_panel(system, alice):
    case = deny_case(system)
    client = client_for(alice)
    client.post("/queues/claim/")
    html = client.get(case_url(case), headers=HTMX).content.decode()
    assert html.lstrip().startswith('<section id="decision"')
    assert "<html" not in html and ">Agree</button>" in html


# --- Deciding -------------------------------------------------------------------------------


def test_agree_finalizes_and_goes_back_to_the_queues(system, alice):
    case = deny_case(system)
    client = client_for(alice)
    client.post("/queues/claim/")

    response = decide(client, case, "agree", outcome="deny")

    assert response.status_code == 302 and response["Location"] == "/"
    case.refresh_from_db()
    assert (case.status, case.final_outcome, case.decided_by) == ("finalized", "deny", "human")
    decision = Decision.objects.get()
    assert (decision.verdict, decision.ai_visible) == ("agree", True)
    assert messages_of(response) == [f"Decided {case.reference}: deny (agreed with the AI)."]
    # The case stays readable, without a form.
    html = client.get(case_url(case)).content.decode()
    assert "Final outcome <strong>deny</strong>" in html and ">Agree</button>" not in html


def test_agree_with_htmx_redirects_the_browser(system, alice):
    case = deny_case(system)
    client = client_for(alice)
    client.post("/queues/claim/")
    page = client.get(case_url(case))
    response = client.post(
        case_url(case), {**form_fields(page), "action": "agree", "outcome": "deny"}, headers=HTMX
    )
    assert response.status_code == 200 and response["HX-Redirect"] == "/"
    assert Case.objects.get().status == "finalized"


def test_override_without_a_rationale_is_refused_and_changes_nothing(system, alice, catalog):
    case = deny_case(system)
    client = client_for(alice)
    client.post("/queues/claim/")
    events = TrailEvent.objects.count()

    response = decide(client, case, "override", outcome="approve", reason_code="CO-50")

    assert response.status_code == 422
    html = response.content.decode()
    assert "a rationale is required to override" in html
    assert 'id="id_rationale_error"' in html and 'aria-invalid="true"' in html
    # The user's input is kept.
    assert '<option value="approve" selected>approve</option>' in html
    assert '<option value="CO-50" selected>' in html
    assert not Decision.objects.exists()
    assert Case.objects.get().status == "in_review"
    assert TrailEvent.objects.count() == events

    # With htmx, the same error comes back as the decision panel alone.
    page = client.get(case_url(case))
    response = client.post(
        case_url(case),
        {**form_fields(page), "action": "override", "outcome": "approve"},
        headers=HTMX,
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="decision"')
    assert "choose the reason for the override" in html


def test_override_records_the_reviewers_outcome(system, alice, catalog):
    case = deny_case(system)
    client = client_for(alice)
    client.post("/queues/claim/")

    response = decide(
        client,
        case,
        "override",
        outcome="approve",
        reason_code="CO-50",
        rationale="Pre-authorised on 3 March; the denial missed it.",
    )

    assert response.status_code == 302
    case.refresh_from_db()
    assert (case.final_outcome, case.decided_by) == ("approve", "human")
    decision = Decision.objects.get()
    assert (decision.verdict, decision.reason_code) == ("override", "CO-50")
    assert decision.rationale == "Pre-authorised on 3 March; the denial missed it."


def test_a_double_submitted_form_records_one_decision(system, alice):
    case = deny_case(system)
    client = client_for(alice)
    client.post("/queues/claim/")
    fields = {**form_fields(client.get(case_url(case))), "action": "agree", "outcome": "deny"}

    assert client.post(case_url(case), fields).status_code == 302
    assert client.post(case_url(case), fields).status_code == 302

    assert Decision.objects.count() == 1


def test_escalate_needs_a_rationale_and_goes_to_the_supervisors(system, alice):
    case = deny_case(system)
    client = client_for(alice)
    client.post("/queues/claim/")

    assert decide(client, case, "escalate").status_code == 422
    response = decide(client, case, "escalate", rationale="Looks like fraud; not mine to call.")

    assert response.status_code == 302
    assert messages_of(response) == [f"Escalated {case.reference} to the supervisors."]
    escalation = ReviewTask.objects.get(kind="escalation")
    assert (escalation.queue.slug, escalation.status) == ("supervisor", "open")
    # The reviewer can still read the case (their queue holds its review task).
    assert client.get(case_url(case)).status_code == 200


def test_release_gives_the_task_back(system, alice):
    case = deny_case(system)
    client = client_for(alice)
    client.post("/queues/claim/")

    response = decide(client, case, "release", rationale="ignored")

    assert response.status_code == 302 and response["Location"] == "/"
    task = ReviewTask.objects.get()
    assert (task.status, task.assignee) == ("open", None)
    assert TrailEvent.objects.filter(action="case.released").count() == 1
    assert not Decision.objects.exists()


def test_a_stale_form_is_refused_with_409(system, alice):
    case = deny_case(system)
    client = client_for(alice)
    client.post("/queues/claim/")
    stale = form_fields(client.get(case_url(case)))
    task = ReviewTask.objects.get()
    task_release(task_id=task.pk, user=alice, fencing_token=task.fencing_token)
    task_claim_next(user=alice)  # the same task, under a new token

    response = client.post(
        case_url(case), {**stale, "action": "agree", "outcome": "deny", "rationale": "mine"}
    )

    assert response.status_code == 409
    html = response.content.decode()
    assert "this form is out of date" in html
    assert not Decision.objects.exists() and Case.objects.get().status == "in_review"
    # The form is shown again under the current token, with the input kept.
    assert form_fields(response)["fencing_token"] == str(ReviewTask.objects.get().fencing_token)
    assert "mine</textarea>" in html


def test_an_expired_lease_shows_no_form_and_is_refused(system, alice):
    case = deny_case(system)
    client = client_for(alice)
    client.post("/queues/claim/")
    fields = form_fields(client.get(case_url(case)))

    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        page = client.get(case_url(case))
        response = client.post(case_url(case), {**fields, "action": "agree", "outcome": "deny"})

    assert ">Agree</button>" not in page.content.decode()
    assert "lease expired" in page.content.decode()
    assert response.status_code == 409
    assert "your lease on this task expired" in response.content.decode()
    assert not Decision.objects.exists()


def test_another_reviewers_task_cannot_be_decided(system, alice, bob):
    case = deny_case(system)
    alice_client = client_for(alice)
    alice_client.post("/queues/claim/")
    fields = form_fields(alice_client.get(case_url(case)))

    bob_client = client_for(bob)
    page = bob_client.get(case_url(case))  # bob may read it ...
    assert page.status_code == 200
    html = page.content.decode()
    assert "claimed by rev.alice" in html and ">Agree</button>" not in html
    response = bob_client.post(case_url(case), {**fields, "action": "agree", "outcome": "deny"})

    assert response.status_code == 409  # ... but not decide it
    assert "claimed by someone else" in response.content.decode()
    assert not Decision.objects.exists()
    assert ReviewTask.objects.get().assignee == alice


def test_a_task_of_another_case_is_not_found(system, alice):
    first, second = deny_case(system, 1), deny_case(system, 2)
    client = client_for(alice)
    client.post("/queues/claim/")
    held = ReviewTask.objects.get(status="claimed")
    other = second if held.case_id == first.pk else first
    fields = form_fields(client.get(case_url(held.case)))
    response = client.post(case_url(other), {**fields, "action": "agree"})
    assert response.status_code == 404
    assert not Decision.objects.exists()


def test_a_case_outside_the_users_queues_is_not_found(system, alice):
    case = deny_case(system)
    appeals = factories.UserFactory(role="appeal_reviewer")
    assert client_for(appeals).get(case_url(case)).status_code == 404
    assert client_for(alice).get("/cases/WB-NOPE-NOPE/").status_code == 404

    # A case whose only open task is in the supervisors' queue: a reviewer
    # who never had it cannot tell it exists.
    supervisor_case = deny_case(system, 2)
    task = supervisor_case.tasks.get()
    ReviewTask.objects.filter(pk=task.pk).update(
        queue=type(task.queue).objects.get(slug="supervisor")
    )
    response = client_for(alice).get(case_url(supervisor_case))
    assert response.status_code == 404
    assert client_for(alice).post(case_url(supervisor_case), {}).status_code == 404


def test_posting_without_the_csrf_token_is_forbidden(system, alice):
    case = deny_case(system)
    client_for(alice).post("/queues/claim/")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    fields = form_fields(client.get(case_url(case)))

    response = client.post(case_url(case), {**fields, "action": "agree", "outcome": "deny"})

    assert response.status_code == 403
    assert not Decision.objects.exists()
    assert client.post("/queues/claim/").status_code == 403


def test_the_page_carries_the_csrf_token_for_htmx_and_loads_htmx_from_static(system, alice):
    html = client_for(alice).get("/").content.decode()
    assert re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"[A-Za-z0-9]+\"\}'>", html)
    assert '<script src="/static/js/htmx.min.js" defer></script>' in html
    assert "<script>" not in html and "cdn" not in html.lower()


def test_html_in_the_case_input_and_in_a_rationale_is_shown_escaped(system, alice):
    payload = factories.claim_payload(1)
    payload["input"]["lines"][0]["description"] = "<script>alert('input')</script>"
    payload["explanation"] = "<img src=x onerror=alert(1)>"
    case = factories.ingest(system, payload)
    client = client_for(alice)
    client.post("/queues/claim/")

    response = decide(client, case, "override", rationale="<script>alert('why')</script>")

    assert response.status_code == 422
    html = response.content.decode()
    assert "&lt;script&gt;alert(&#x27;input&#x27;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(&#x27;why&#x27;)&lt;/script&gt;</textarea>" in html
    assert "<script>alert" not in html and "<img src=x" not in html

    # Recorded, the rationale is shown escaped among the decisions.
    response = decide(client, case, "escalate", rationale="<script>alert('why')</script>")
    assert response.status_code == 302
    html = client.get(case_url(case)).content.decode()
    assert '<p class="rationale">&lt;script&gt;alert(&#x27;why&#x27;)&lt;/script&gt;</p>' in html
    assert "<script>alert" not in html


# --- Reasons without a catalog -----------------------------------------------------------------


def test_without_a_catalog_the_reason_select_offers_the_ais_codes_and_other(system, alice):
    case = deny_case(system)  # claim_payload: one CARC code in the output and on its line
    code = case.output["reasons"][0]["code"]
    client = client_for(alice)
    client.post("/queues/claim/")

    page = client.get(case_url(case))

    reasons = REASON_SELECT.search(page.content.decode())[1]
    assert re.findall(r'<option value="([^"]*)"', reasons) == ["", code, "other"]
    assert "Other (explained in the rationale)</option>" in reasons
    assert f"{code} — " in reasons and "(given by the AI)</option>" in reasons

    response = decide(
        client, case, "override", outcome="approve", reason_code=code, rationale="Covered."
    )
    assert response.status_code == 302
    assert Decision.objects.get(case=case).reason_code == code

    case = deny_case(system, 2)
    assert client.post("/queues/claim/")["Location"] == case_url(case)
    response = decide(
        client, case, "override", outcome="approve", reason_code="other", rationale="Covered."
    )
    assert response.status_code == 302
    assert Decision.objects.get(case=case).reason_code == "other"


def test_a_reason_from_another_case_is_refused_next_to_the_field(system, alice):
    cases = [deny_case(system, 1), deny_case(system, 2)]
    client = client_for(alice)
    client.post("/queues/claim/")
    held = ReviewTask.objects.get(status="claimed").case
    [other] = [case for case in cases if case.pk != held.pk]
    other_code = other.output["reasons"][0]["code"]
    assert other_code != held.output["reasons"][0]["code"]

    response = decide(
        client, held, "override", outcome="approve", reason_code=other_code, rationale="x"
    )

    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="id_reason_code_error"' in html and "Select a valid choice" in html
    assert not Decision.objects.exists()
