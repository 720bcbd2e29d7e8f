"""The reviewer's screens through the Django test client: plain requests (no
JavaScript) and htmx requests (``HX-Request: true``)."""

import copy
import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from reviews.models import Case, Decision, Queue, ReviewTask
from reviews.services.assignment import task_claim_next, task_release
from reviews.services.decisions import DecisionInput, decision_record
from tests import factories
from tests.factories import client_for, queue_id
from workbench.models import TrailEvent
from workbench.services import trail_integrate

HTMX = {"HX-Request": "true"}


@pytest.fixture
def bob(db):
    return factories.UserFactory(username="rev.bob", role="reviewer")


@pytest.fixture
def catalog(system):
    factories.reason_code(system, "CO-50", "Not deemed a medical necessity")
    return factories.reason_code(system, "CO-97", "Included in another service")


def case_url(case) -> str:
    return f"/cases/{case.reference}/"


def deny_case(system, n=1, **overrides):
    """A denial: routed to claims-review by adverse-needs-human."""
    return factories.ingest(system, factories.claim_payload(n, **overrides))


def large_case(system, n=1):
    """A large claim: routed to senior-review (two reviews)."""
    return deny_case(system, n, metadata={"amount": 9000})


def form_fields(response) -> dict:
    """The hidden fields of the decision form as rendered."""
    html = response.content.decode()
    return {
        name: re.search(rf'name="{name}" value="([^"]*)"', html)[1]
        for name in ("task", "fencing_token", "idempotency_key")
    }


def decide(client, case, action, **fields):
    page = client.get(case_url(case))
    assert page.status_code == 200
    return client.post(case_url(case), {**form_fields(page), "action": action, **fields})


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- Login, lockout, logout ------------------------------------------------------------------


def test_anonymous_users_are_sent_to_the_login_page(db):
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"

    page = Client().get("/accounts/login/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="username"' in html and 'name="password"' in html
    assert '<label for="id_username">Username</label>' in html


def test_logging_in_leads_to_my_queues_and_logging_out_is_a_post(alice):
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "rev.alice", "password": "pw-for-tests"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200 and "My queues" in page.content.decode()
    assert 'action="/accounts/logout/"' in page.content.decode()

    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302


def test_five_failed_logins_lock_the_username_from_that_address(alice):
    client = Client()
    for _ in range(4):
        response = client.post("/accounts/login/", {"username": "rev.alice", "password": "nope"})
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()

    response = client.post("/accounts/login/", {"username": "rev.alice", "password": "nope"})
    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()
    assert "15 minutes" in response.content.decode()

    # Locked: even the right password is refused now ...
    response = client.post(
        "/accounts/login/", {"username": "rev.alice", "password": "pw-for-tests"}
    )
    assert response.status_code == 429
    assert client.get("/").status_code == 302
    # ... but the same address may still log in as someone else.
    factories.UserFactory(username="rev.carl", role="reviewer")
    response = client.post("/accounts/login/", {"username": "rev.carl", "password": "pw-for-tests"})
    assert response.status_code == 302

    # After the cool-off the right password works again.
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        response = Client().post(
            "/accounts/login/", {"username": "rev.alice", "password": "pw-for-tests"}
        )
    assert response.status_code == 302


# --- My queues ------------------------------------------------------------------------------


def test_my_queues_counts_open_and_claimed_with_the_oldest_due_time(system, alice, bob):
    for n in range(1, 4):
        deny_case(system, n)
    large_case(system, 10)
    task_claim_next(user=bob, queue_slug="claims-review")

    response = client_for(alice).get("/")

    assert response.status_code == 200
    rows = {queue.slug: queue for queue in response.context["queues"]}
    # A reviewer sees the reviewer queues, not the supervisors'.
    assert set(rows) == {"claims-review", "senior-review"}
    assert (rows["claims-review"].open_count, rows["claims-review"].claimed_count) == (2, 1)
    assert (rows["senior-review"].open_count, rows["senior-review"].claimed_count) == (1, 0)
    oldest = ReviewTask.objects.filter(queue__slug="claims-review").order_by("due_at")[0].due_at
    assert rows["claims-review"].oldest_due == oldest
    html = response.content.decode()
    assert html.count(">Claim next</button>") == 3  # one per queue and one overall
    assert 'data-shortcut="n"' in html
    assert "overdue" not in html

    # Past the due time, the date is marked overdue.
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        late = client_for(alice).get("/").content.decode()
    assert 'class="overdue"' in late and ">overdue<" in late


def test_my_queues_with_nothing_waiting_says_so(system, alice):
    html = client_for(alice).get("/").content.decode()
    assert "Nothing waiting for you in your queues" in html


def test_my_queues_table_is_its_own_fragment_for_htmx(system, alice):
    deny_case(system)
    response = client_for(alice).get("/", headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="queue-table"')
    assert "<html" not in html and "Claims review" in html


def test_a_user_without_queues_sees_no_queue(system):
    officer = factories.UserFactory(role="compliance")
    html = client_for(officer).get("/").content.decode()
    assert "no review role" in html


# --- Claiming -----------------------------------------------------------------------------


def test_claim_next_opens_the_case_page(system, alice):
    case = deny_case(system)
    client = client_for(alice)

    response = client.post("/queues/claim/")

    assert response.status_code == 302 and response["Location"] == case_url(case)
    task = ReviewTask.objects.get()
    assert (task.status, task.assignee) == ("claimed", alice)
    page = client.get(case_url(case))
    assert ">Agree</button>" in page.content.decode()


def test_claim_next_in_one_queue_with_htmx_redirects_the_browser(system, alice):
    deny_case(system, 1)
    large = large_case(system, 2)
    response = client_for(alice).post(
        "/queues/claim/", {"queue": queue_id(system, "senior-review")}, headers=HTMX
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == case_url(large)


def test_claim_next_with_nothing_left_goes_back_with_a_message(system, alice):
    claims_review = queue_id(system, "claims-review")
    response = client_for(alice).post("/queues/claim/", {"queue": claims_review})
    assert response.status_code == 302 and response["Location"] == "/"
    assert messages_of(response) == ["Nothing left for you to claim in Claims review."]
    assert client_for(alice).get("/queues/claim/").status_code == 405


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


# --- Blind review --------------------------------------------------------------------------


@pytest.fixture
def blind_system(db):
    policy = copy.deepcopy(factories.CLAIMS_POLICY)
    policy["queues"][0]["blind"] = True  # claims-review
    system = factories.system_with_policy(policy)
    factories.reason_code(system, "CO-50", "Not deemed a medical necessity")
    return system


def test_blind_review_hides_the_ai_until_the_reviewer_commits(blind_system, alice):
    case = deny_case(blind_system)
    client = client_for(alice)
    client.post("/queues/claim/")

    page = client.get(case_url(case))

    html = page.content.decode()
    assert page.context["hidden"]
    assert "62%" not in html and "0.620" not in html
    assert case.output["summary"] not in html
    assert "top features" not in html  # the explanation waits too
    # The claim line's reason codes (the rules on outcome and confidence are
    # withheld whole: see the leak test below).
    assert "hidden until you commit" in html
    timeline = {entry.action: entry for entry in page.context["timeline"]}
    assert "outcome" not in dict(timeline["case.received"].details)
    assert ">Commit outcome</button>" in html and ">Agree</button>" not in html
    assert 'name="outcome"' in html and '<option value="" selected>' in html

    # Committing nothing is refused.
    response = client.post(case_url(case), {**form_fields(page), "action": "commit"})
    assert response.status_code == 422 and "choose your outcome first" in response.content.decode()

    # Commit "approve": the page now shows the AI's outcome and asks to confirm.
    response = client.post(
        case_url(case), {**form_fields(page), "action": "commit", "outcome": "approve"}
    )
    assert response.status_code == 302 and response["Location"] == case_url(case)
    revealed = client.get(case_url(case))
    html = revealed.content.decode()
    assert not revealed.context["hidden"]
    assert "62%" in html and "Your outcome: <span" in html
    assert ">Override</button>" in html and ">Agree</button>" not in html
    # A second commit does not change the first choice.
    client.post(case_url(case), {**form_fields(page), "action": "commit", "outcome": "deny"})
    assert client.get(case_url(case)).context["blind_choice"] == "approve"

    # Confirming a different outcome is an override: reason and rationale needed.
    response = client.post(case_url(case), {**form_fields(revealed), "action": "override"})
    assert response.status_code == 422
    assert not Decision.objects.exists()
    response = client.post(
        case_url(case),
        {
            **form_fields(revealed),
            "action": "override",
            "reason_code": "CO-50",
            "rationale": "The notes show medical necessity.",
        },
    )
    assert response.status_code == 302
    decision = Decision.objects.get()
    assert (decision.verdict, decision.outcome, decision.ai_visible) == (
        "override",
        "approve",
        False,
    )


def test_blind_review_agreement_is_recorded_as_not_seen(blind_system, alice):
    case = deny_case(blind_system)
    client = client_for(alice)
    client.post("/queues/claim/")
    page = client.get(case_url(case))
    client.post(case_url(case), {**form_fields(page), "action": "commit", "outcome": "deny"})
    revealed = client.get(case_url(case))
    assert ">Agree</button>" in revealed.content.decode()

    response = client.post(case_url(case), {**form_fields(revealed), "action": "agree"})

    assert response.status_code == 302
    decision = Decision.objects.get()
    assert (decision.verdict, decision.outcome, decision.ai_visible) == ("agree", "deny", False)
    assert Case.objects.get().final_outcome == "deny"


def test_blind_review_cannot_skip_the_commitment(blind_system, alice):
    case = deny_case(blind_system)
    client = client_for(alice)
    client.post("/queues/claim/")
    page = client.get(case_url(case))
    response = client.post(
        case_url(case), {**form_fields(page), "action": "agree", "outcome": "deny"}
    )
    assert response.status_code == 422
    assert not Decision.objects.exists()


# --- Two reviews ----------------------------------------------------------------------------


def test_the_second_reviewer_does_not_see_the_first_review(system, alice, bob, catalog):
    case = large_case(system)
    alice_client = client_for(alice)
    alice_client.post("/queues/claim/")
    response = decide(
        alice_client,
        case,
        "override",
        outcome="approve",
        reason_code="CO-50",
        rationale="first opinion",
    )
    assert response.status_code == 302
    assert "a second reviewer will decide too" in messages_of(response)[0]

    bob_client = client_for(bob)
    assert bob_client.post("/queues/claim/")["Location"] == case_url(case)
    page = bob_client.get(case_url(case))

    reviewed = [e for e in page.context["timeline"] if e.action == "case.reviewed"]
    assert len(reviewed) == 1 and reviewed[0].details == []
    html = page.content.decode()
    assert "The first of two reviews is recorded" in html
    assert "first opinion" not in html and page.context["decisions"] == []
    assert "approve" not in [value for _, value in page.context["timeline"][-2].details]
    assert "CO-50" not in re.sub(r"<select.*?</select>", "", html, flags=re.S)

    # Once both are in (and agree), the case is final and the reviews are shown.
    response = decide(
        bob_client,
        case,
        "override",
        outcome="approve",
        reason_code="CO-50",
        rationale="second opinion",
    )
    assert response.status_code == 302
    page = bob_client.get(case_url(case))
    reviewed = [e for e in page.context["timeline"] if e.action == "case.reviewed"][0]
    assert ("verdict", "override") in reviewed.details
    html = page.content.decode()
    assert "first opinion" in html and "second opinion" in html
    assert Case.objects.get().final_outcome == "approve"


# --- Queries --------------------------------------------------------------------------------


def _busy(system, reviewers, cases):
    for n in range(1, cases + 1):
        deny_case(system, n) if n % 2 else large_case(system, n)
    for reviewer in reviewers:
        task_claim_next(user=reviewer)


@pytest.mark.parametrize("cases", [4, 12])
def test_my_queues_runs_a_fixed_number_of_queries(
    system, alice, bob, cases, django_assert_num_queries
):
    Queue.objects.filter(system=system).update(hold_limit=2)
    _busy(system, [alice, bob], cases)
    task_claim_next(user=alice)  # alice holds two
    client = client_for(alice)
    # session, user, groups, queues with their counts, the tasks alice holds
    with django_assert_num_queries(5):
        response = client.get("/")
    assert response.status_code == 200


@pytest.mark.parametrize("events", [1, 6])
def test_the_case_page_runs_a_fixed_number_of_queries(
    system, alice, bob, catalog, events, django_assert_num_queries
):
    Queue.objects.filter(system=system).update(release_cooldown_minutes=0)  # claimed back
    _busy(system, [bob], 6)
    case = deny_case(system, 99)
    ReviewTask.objects.filter(case=case).update(priority=50)
    task = task_claim_next(user=alice)
    assert task.case == case
    for _ in range(events - 1):  # more trail events: release and claim again
        task_release(task_id=task.pk, user=alice, fencing_token=task.fencing_token)
        task = task_claim_next(user=alice)
    client = client_for(alice)
    trail_integrate()  # PostgreSQL: the sequencer has caught up
    # session, user, groups, case (+system, policy, subject), its tasks (+queue,
    # assignee), whether a queue of alice's holds it (members), reason codes,
    # trail events, decisions (+reviewer, queue); the trail wait (once)
    with django_assert_num_queries(9 + factories.trail_wait_queries()):
        response = client.get(case_url(case))
    assert response.status_code == 200
    assert len(response.context["timeline"]) >= 2 + events


def test_decision_service_and_screen_agree_on_the_trail(system, alice):
    """A decision made on the screen is the same trail event as one made
    through the service: the view adds nothing of its own."""
    case = deny_case(system)
    client = client_for(alice)
    client.post("/queues/claim/")
    decide(client, case, "agree", outcome="deny")
    body = json.loads(TrailEvent.objects.filter(action="case.decided").get().body)
    assert body["actor"] == {"type": "user", "id": "rev.alice"}
    assert body["data"]["verdict"] == "agree" and body["data"]["ai_visible"] is True
    # The service alone, for comparison.
    other = deny_case(system, 2)
    task = task_claim_next(user=alice)
    assert task.case == other
    decision_record(
        task_id=task.pk,
        user=alice,
        fencing_token=task.fencing_token,
        decision=DecisionInput(verdict="agree"),
        idempotency_key="k-service",
    )
    events = TrailEvent.objects.filter(action="case.decided").order_by("seq")
    assert [set(json.loads(e.body)["data"]) for e in events][0] == set(
        json.loads(events[1].body)["data"]
    )


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
OUTCOME_SELECT = re.compile(r'<select name="outcome"[^>]*>(.*?)</select>', re.S)
REASON_SELECT = re.compile(r'<select name="reason_code"[^>]*>(.*?)</select>', re.S)


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


# --- The reviewer's own workflow: hold limit, renew, recuse -------------------------------------


def test_at_the_hold_limit_claim_next_opens_the_held_case_and_says_why(system, alice):
    held = deny_case(system, 1)
    deny_case(system, 2)
    client = client_for(alice)
    assert client.post("/queues/claim/")["Location"] == case_url(held)
    again = client.post("/queues/claim/", follow=True)
    assert again.redirect_chain[-1][0] == case_url(held)
    page = again.content.decode()
    assert "You already hold a task" in page
    assert ">Agree</button>" in page and ">Release</button>" in page
    assert ReviewTask.objects.filter(assignee=alice).count() == 1
    htmx = client.post("/queues/claim/", headers=HTMX)
    assert htmx["HX-Redirect"] == case_url(held)


def test_the_lease_is_renewed_from_the_page(system, alice):
    case = deny_case(system, 1)
    client = client_for(alice)
    client.post("/queues/claim/")
    page = client.get(case_url(case)).content.decode()
    assert 'data-lease-expires="' in page and "data-lease-warning" in page
    assert 'value="renew"' in page and 'data-shortcut="r"' in page
    with time_machine.travel(timezone.now() + timedelta(minutes=12)):
        renewed = decide(client, case, "renew")
        assert renewed.status_code == 302 and renewed["Location"] == case_url(case)
        task = ReviewTask.objects.get(case=case)
        assert task.lease_expires_at > timezone.now() + timedelta(minutes=14)
    assert TrailEvent.objects.filter(action="case.lease_renewed").count() == 1


def test_recusing_from_the_page_needs_a_reason(system, alice):
    case = deny_case(system, 1)
    client = client_for(alice)
    client.post("/queues/claim/")
    refused = decide(client, case, "recuse", recusal_reason="")
    assert refused.status_code == 422
    assert "say why you recuse yourself" in refused.content.decode()
    assert not TrailEvent.objects.filter(action="case.recused").exists()
    done = decide(client, case, "recuse", recusal_reason="I know the member.")
    assert done.status_code == 302
    task = ReviewTask.objects.get(case=case)
    assert task.status == "open" and alice in task.excluded.all()
    assert TrailEvent.objects.filter(action="case.recused").count() == 1
