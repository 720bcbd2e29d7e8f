"""Deadlines: overdue tasks go to the supervisors; the board warns ahead."""

import json
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from escalations.selectors import tasks_due_soon
from escalations.services import appeal_file, tasks_escalate_overdue
from escalations.services.supervision import task_reassign
from escalations.tasks import deadlines_escalate
from reviews.models import ReviewTask
from reviews.services.assignment import task_claim_next
from tests import factories
from tests.factories import client_for, decided_case
from workbench.models import TrailEvent
from workbench.services import trail_verify


def test_a_review_task_past_due_moves_to_the_supervisors_with_the_reason(system):
    case = factories.ingest(system, factories.claim_payload(1))
    task = case.tasks.get()
    assert round((task.due_at - case.created_at).total_seconds()) == 48 * 3600

    with time_machine.travel(task.due_at - timedelta(minutes=1)):
        assert tasks_escalate_overdue() == 0
    with time_machine.travel(task.due_at + timedelta(minutes=1)):
        assert deadlines_escalate() == 1  # the beat task, run in-process
        assert tasks_escalate_overdue() == 0  # once only

    task.refresh_from_db()
    assert (task.queue.slug, task.kind, task.status) == ("supervisor", "review", "open")
    assert task.priority == 10
    event = json.loads(TrailEvent.objects.get(action="case.overdue").body)
    assert event["actor"] == {"type": "workbench", "id": "deadlines"}
    assert event["data"]["from"] == "claims-review" and event["data"]["to"] == "supervisor"
    assert "overdue" in event["data"]["reason"]
    assert trail_verify().ok


def test_beat_runs_the_deadline_sweep_every_minute():
    from workbench.celery import app

    entry = app.conf.beat_schedule["deadlines-escalate"]
    assert entry["task"] == deadlines_escalate.name and entry["schedule"] == 60.0


def test_a_claimed_task_past_due_keeps_its_holder(system, alice):
    factories.ingest(system, factories.claim_payload(1))
    task = task_claim_next(user=alice)
    with time_machine.travel(task.due_at + timedelta(minutes=1)):
        tasks_escalate_overdue()
    task.refresh_from_db()
    assert (task.queue.slug, task.assignee, task.status) == ("supervisor", alice, "claimed")


def test_an_overdue_appeal_goes_to_the_supervisors_who_may_hand_it_to_an_appeal_reviewer(
    system, alice, sam
):
    case = decided_case(system, alice)
    appeal = appeal_file(
        case=case, statement="Please look again.", evidence=[], idempotency_key=uuid.uuid4().hex
    )
    carol = factories.UserFactory(username="appeal.carol", role="appeal_reviewer")
    with time_machine.travel(appeal.due_at + timedelta(hours=1)):
        assert tasks_escalate_overdue() == 1
        task = ReviewTask.objects.get(kind="appeal")
        assert task.queue.slug == "supervisor"
        # The supervisor hands it to an appeal reviewer, whose role is not the queue's.
        task_reassign(task_id=task.pk, to_user=carol, by=sam)
        # The original reviewer may not have it, even from a supervisor.
        alice.groups.add(*carol.groups.all())
        with pytest.raises(Exception) as refused:
            task_reassign(task_id=task.pk, to_user=alice, by=sam)
        assert refused.value.code == "excluded"


def test_the_supervisor_board_warns_of_tasks_near_their_deadline(system, sam):
    factories.ingest(system, factories.claim_payload(1))
    task = ReviewTask.objects.get()
    # 48 h SLA: the warning starts with a fifth of it (9.6 h) left.
    with time_machine.travel(task.due_at - timedelta(hours=10)):
        assert tasks_due_soon() == []
    with time_machine.travel(task.due_at - timedelta(hours=9)):
        (soon,) = tasks_due_soon()
        assert soon.task == task and soon.left == timedelta(hours=9)
        page = client_for(sam).get("/supervisor/").content.decode()
    assert "Due soon" in page and case_link(task) in page


def case_link(task) -> str:
    return f'href="/cases/{task.case.reference}/"'


def test_the_customer_page_shows_the_date_of_the_answer_on_appeal(system, alice):
    from reviews.services.notices import notice_token

    case = decided_case(system, alice)
    appeal = appeal_file(
        case=case, statement="Please look again.", evidence=[], idempotency_key="k"
    )
    page = Client().get(f"/notice/{notice_token(case.reference)}/").content.decode()
    assert f"You will have an answer by {appeal.due_at:%-d %B %Y}" in page
    assert appeal.due_at.date() == (timezone.now() + timedelta(days=30)).date()
