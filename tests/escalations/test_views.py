"""The supervisor's screen: queue health, reassign and release, escalations,
and the kill switch; plain requests and htmx requests."""

import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from reviews.models import Case, Decision, ReviewTask
from reviews.services.assignment import task_claim_next
from reviews.services.decisions import DecisionInput, decision_record
from tests import factories
from tests.factories import client_for, queue_id
from workbench.models import AISystem, TrailEvent

HTMX = {"HX-Request": "true"}


@pytest.fixture
def bob(db):
    return factories.UserFactory(username="rev.bob", role="reviewer")


def deny_case(system, n=1, **overrides):
    return factories.ingest(system, factories.claim_payload(n, **overrides))


def escalated(system, reviewer, n=1) -> ReviewTask:
    deny_case(system, n)
    task = task_claim_next(user=reviewer)
    decision_record(
        task_id=task.pk,
        user=reviewer,
        fencing_token=task.fencing_token,
        decision=DecisionInput(verdict="escalate", rationale="not sure"),
        idempotency_key=f"esc-{n}",
    )
    return ReviewTask.objects.get(case=task.case, kind="escalation")


def last_event(action) -> dict:
    return json.loads(TrailEvent.objects.filter(action=action).latest("seq").body)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_only_supervisors_see_the_supervisor_page(system, sam, alice):
    assert client_for(alice).get("/supervisor/").status_code == 404
    assert Client().get("/supervisor/").status_code == 302  # to the login page
    response = client_for(sam).get("/supervisor/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/supervisor/" aria-current="page">Supervisor</a>' in html
    # A reviewer's navigation has no supervisor link.
    assert ">Supervisor</a>" not in client_for(alice).get("/").content.decode()
    # Nor may a reviewer act as one.
    assert client_for(alice).post("/supervisor/tasks/1/release/").status_code == 404
    assert (
        client_for(alice).post("/supervisor/systems/claims-ai/switch/", {"reason": "x"}).status_code
        == 404
    )


def test_queue_health_counts_open_claimed_and_overdue(system, sam, alice):
    for n in range(1, 4):
        deny_case(system, n)
    task_claim_next(user=alice)

    with time_machine.travel(timezone.now() + timedelta(days=3)):
        deny_case(system, 9, metadata={"amount": 9000})  # senior-review, due tomorrow
        response = client_for(sam).get("/supervisor/")

    queues = {queue.slug: queue for queue in response.context["board"].queues}
    assert set(queues) == {"claims-review", "senior-review", "supervisor", "appeals"}
    review = queues["claims-review"]
    assert (review.open_count, review.claimed_count, review.overdue_count) == (2, 1, 3)
    senior = queues["senior-review"]
    assert (senior.open_count, senior.claimed_count, senior.overdue_count) == (1, 0, 0)
    # The list: every claimed task and every open one past its due time.
    listed = {row["task"].case.external_id for row in response.context["attention"]}
    assert listed == {f"CLM-2026-{n:06d}" for n in (1, 2, 3)}
    html = response.content.decode()
    assert ">overdue</span>" in html and "rev.alice" in html
    assert html.count(">Reassign</button>") == 3 and html.count(">Release</button>") == 1


def test_the_board_is_its_own_fragment_for_htmx(system, sam):
    response = client_for(sam).get("/supervisor/", headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="board"') and "<html" not in html


def test_reassigning_a_claimed_task(system, sam, alice, bob):
    deny_case(system)
    task = task_claim_next(user=alice)
    page = client_for(sam).get("/supervisor/")
    row = page.context["attention"][0]
    # The choices: people with the queue's role, not the one holding it.
    assert [name for _, name in row["candidates"]] == ["rev.bob"]

    response = client_for(sam).post(f"/supervisor/tasks/{task.pk}/reassign/", {"to_user": bob.pk})

    assert response.status_code == 302 and response["Location"] == "/supervisor/"
    assert messages_of(response) == [f"{task.case.reference} is now with rev.bob."]
    task.refresh_from_db()
    assert (task.status, task.assignee) == ("claimed", bob)
    data = last_event("case.reassigned")
    assert data["actor"]["id"] == "sup.sam"
    assert (data["data"]["from"], data["data"]["to"]) == ("rev.alice", "rev.bob")


def test_reassigning_to_someone_without_the_role_is_refused(system, sam, alice):
    deny_case(system)
    task = task_claim_next(user=alice)
    officer = factories.UserFactory(username="comp.dana", role="compliance")

    response = client_for(sam).post(
        f"/supervisor/tasks/{task.pk}/reassign/", {"to_user": officer.pk}, headers=HTMX
    )

    assert response.status_code == 409
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="board"')
    assert "does not have the reviewer role" in html
    task.refresh_from_db()
    assert task.assignee == alice
    # No one chosen: 422.
    response = client_for(sam).post(f"/supervisor/tasks/{task.pk}/reassign/", {})
    assert response.status_code == 422 and "choose who takes the task" in response.content.decode()


def test_releasing_a_claimed_task(system, sam, alice):
    deny_case(system)
    task = task_claim_next(user=alice)

    response = client_for(sam).post(f"/supervisor/tasks/{task.pk}/release/", headers=HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="board"')
    assert f"Released {task.case.reference}" in html  # the message, in the fragment
    task.refresh_from_db()
    assert (task.status, task.assignee) == ("open", None)
    assert last_event("case.released")["data"]["reason"] == "released_by_supervisor"
    # Again: nothing to release now.
    again = client_for(sam).post(f"/supervisor/tasks/{task.pk}/release/")
    assert again.status_code == 409 and "this task is not claimed" in again.content.decode()


def test_stopping_and_restarting_an_ai_system_needs_a_reason(system, sam):
    client = client_for(sam)
    url = f"/supervisor/systems/{system.slug}/switch/"

    response = client.post(url, {"stopped": "1", "reason": ""})
    assert response.status_code == 422
    assert "give a reason for stopping or restarting" in response.content.decode()
    assert not AISystem.objects.get().stopped
    response = client.post(url, {"stopped": "1", "reason": "   "})
    assert response.status_code == 422 and not AISystem.objects.get().stopped

    response = client.post(url, {"stopped": "1", "reason": "Denial rate doubled overnight"})
    assert response.status_code == 302
    assert AISystem.objects.get().stopped
    event = last_event("system.stopped")
    assert event["actor"]["id"] == "sup.sam" and len(event["data"]["reason_sha256"]) == 64
    html = client.get("/supervisor/").content.decode()
    assert ">stopped</span>" in html and ">Restart</button>" in html

    # A stopped system's cases all go to a person.
    case = deny_case(system, 5, output={"outcome": "approve", "summary": "ok", "reasons": []},
                     confidence=0.99)  # fmt: skip
    assert case.status == "pending_review" and case.route["reason"] == "system_stopped"

    response = client.post(url, {"stopped": "0", "reason": "Model rolled back"}, headers=HTMX)
    assert response.status_code == 200 and ">Stop</button>" in response.content.decode()
    assert not AISystem.objects.get().stopped
    assert last_event("system.restarted")["system"] == system.slug
    assert client.post("/supervisor/systems/nope/switch/", {"reason": "x"}).status_code == 404


def test_escalations_are_listed_and_decided_on_the_case_page(system, sam, alice):
    task = escalated(system, alice)
    client = client_for(sam)

    page = client.get("/supervisor/")
    assert [t.pk for t in page.context["board"].escalations] == [task.pk]
    html = page.content.decode()
    assert f'href="/cases/{task.case.reference}/"' in html

    # The supervisor claims it from the supervisors' queue ...
    response = client.post("/queues/claim/", {"queue": queue_id(system, "supervisor")})
    assert response["Location"] == f"/cases/{task.case.reference}/"
    case_page = client.get(response["Location"])
    html = case_page.content.decode()
    assert "Escalation in Supervisor" in html and ">Override</button>" in html
    # The escalating reviewer's rationale is there to read.
    assert "Decisions so far" in html and "not sure" in html and "by rev.alice" in html
    # ... and decides it with the same form.
    fields = {
        name: re.search(rf'name="{name}" value="([^"]*)"', html)[1]
        for name in ("task", "fencing_token", "idempotency_key")
    }
    response = client.post(
        f"/cases/{task.case.reference}/", {**fields, "action": "agree", "outcome": "deny"}
    )
    assert response.status_code == 302
    case = Case.objects.get()
    assert (case.status, case.final_outcome) == ("finalized", "deny")
    assert Decision.objects.filter(reviewer=sam, task=task).exists()


def test_posting_to_the_supervisor_page_needs_the_csrf_token(system, sam, alice):
    deny_case(system)
    task = task_claim_next(user=alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(sam)
    assert client.post(f"/supervisor/tasks/{task.pk}/release/").status_code == 403
    task.refresh_from_db()
    assert task.status == "claimed"


@pytest.mark.parametrize("cases", [3, 10])
def test_the_supervisor_page_runs_a_fixed_number_of_queries(
    system, sam, alice, bob, cases, django_assert_num_queries
):
    for n in range(1, cases + 1):
        deny_case(system, n)
    task_claim_next(user=alice)
    task_claim_next(user=bob)
    escalated(system, alice, 100)
    client = client_for(sam)
    # session, user, groups, claimed/overdue tasks (+ their exclusions), open
    # escalations, people by role, queues with their counts, AI systems, the
    # queues' deadlines and the tasks due soon
    with django_assert_num_queries(11):
        response = client.get("/supervisor/")
    assert response.status_code == 200


# --- The appeal page ----------------------------------------------------------------------------


def test_the_appeal_form_offers_the_outcomes_and_reasons_of_the_case(system, alice, carol):
    from escalations.services import appeal_file

    case = factories.decided_case(system, alice)
    code = case.output["reasons"][0]["code"]
    appeal_file(case=case, statement="It was needed.", evidence=[], idempotency_key="a1")
    client = client_for(carol)
    client.post("/queues/claim/")

    def fields(html):
        return {
            name: re.search(rf'name="{name}" value="([^"]*)"', html)[1]
            for name in ("task", "fencing_token", "idempotency_key")
        }

    page = client.get(f"/appeals/{case.reference}/").content.decode()
    client.post(f"/appeals/{case.reference}/", {**fields(page), "action": "open"})
    html = client.get(f"/appeals/{case.reference}/").content.decode()

    def options(name):
        select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)[1]
        return re.findall(r'<option value="([^"]*)"', select)

    assert options("final_outcome") == ["", "approve", "deny", "partial"]
    assert options("reason_code") == ["", code, "other"]
    response = client.post(
        f"/appeals/{case.reference}/",
        {
            **fields(html),
            "action": "decide",
            "outcome": "overturned",
            "final_outcome": "approve",
            "reason_code": "other",
            "reasons": "Your doctor's letter shows the visit was needed.",
        },
    )
    assert response.status_code == 302
    assert Case.objects.get(pk=case.pk).final_outcome == "approve"
