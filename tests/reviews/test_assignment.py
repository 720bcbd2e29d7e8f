from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from reviews.models import Case, ReviewTask
from reviews.services.assignment import task_claim_next, task_leases_expire, task_release
from tests import factories
from workbench.models import TrailEvent


@pytest.fixture
def reviewer(db):
    return factories.UserFactory(role="reviewer")


def denial(system, n, **overrides):
    return factories.ingest(system, factories.claim_payload(n, **overrides))


def test_claim_next_takes_the_highest_priority_then_the_earliest_due(system, reviewer):
    first, second, urgent = (denial(system, n) for n in (1, 2, 3))
    ReviewTask.objects.filter(case=urgent).update(priority=9)
    ReviewTask.objects.filter(case=second).update(due_at=timezone.now())
    order = [task_claim_next(user=reviewer).case for _ in range(3)]
    assert order == [urgent, second, first]
    assert task_claim_next(user=reviewer) is None


def test_a_claim_leases_the_task_and_records_it(system, reviewer):
    case = denial(system, 1)
    task = task_claim_next(user=reviewer)
    assert (task.status, task.assignee, task.fencing_token) == ("claimed", reviewer, 1)
    assert task.lease_expires_at - task.claimed_at == timedelta(minutes=15)
    case.refresh_from_db()
    assert case.status == Case.Status.IN_REVIEW
    event = TrailEvent.objects.filter(action="case.claimed").get()
    assert event.case == case.reference


def test_only_the_queues_of_the_users_role_and_not_excluded_tasks(system, reviewer):
    case = denial(system, 1)
    supervisor = factories.UserFactory(role="supervisor")
    assert task_claim_next(user=supervisor) is None  # claims-review is for reviewers
    ReviewTask.objects.get(case=case).excluded.add(reviewer)
    assert task_claim_next(user=reviewer) is None
    assert task_claim_next(user=factories.UserFactory(role="reviewer")).case == case


def test_claim_next_in_one_queue(system, reviewer):
    denial(system, 1)
    big = denial(system, 2, metadata={"amount": 9000})
    assert task_claim_next(user=reviewer, queue_slug="senior-review").case == big


def test_release_hands_the_task_back(system, reviewer):
    denial(system, 1)
    task = task_claim_next(user=reviewer)
    task_release(task_id=task.pk, user=reviewer, fencing_token=task.fencing_token)
    task.refresh_from_db()
    assert (task.status, task.assignee) == ("open", None)
    assert task.case.status == Case.Status.PENDING_REVIEW
    again = task_claim_next(user=reviewer)
    assert again.pk == task.pk and again.fencing_token == 2


@pytest.mark.parametrize(
    ("who", "token", "code"),
    [("other", 1, "not_your_task"), ("same", 7, "stale_form")],
)
def test_release_refuses_another_reviewer_and_a_stale_form(system, reviewer, who, token, code):
    denial(system, 1)
    task = task_claim_next(user=reviewer)
    user = factories.UserFactory(role="reviewer") if who == "other" else reviewer
    with pytest.raises(Exception) as caught:
        task_release(task_id=task.pk, user=user, fencing_token=token)
    assert caught.value.code == code
    task.refresh_from_db()
    assert task.status == "claimed" and task.assignee == reviewer


def test_expired_leases_return_to_the_queue(system, reviewer):
    denial(system, 1)
    task = task_claim_next(user=reviewer)
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert task_leases_expire() == 1
        with pytest.raises(Exception) as caught:
            task_release(task_id=task.pk, user=reviewer, fencing_token=task.fencing_token)
        assert caught.value.code == "lease_lost"
    task.refresh_from_db()
    assert (task.status, task.assignee) == ("open", None)
    event = TrailEvent.objects.filter(action="case.released").get()
    assert '"reason":"lease_expired"' in event.body


def test_an_expired_lease_is_reclaimed_lazily_at_claim_time(system, reviewer):
    denial(system, 1)
    task_claim_next(user=reviewer)
    other = factories.UserFactory(role="reviewer")
    assert task_claim_next(user=other) is None
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        task = task_claim_next(user=other)
    assert task.assignee == other and task.fencing_token == 2


def test_a_supervisor_reassigns_and_releases(system, reviewer):
    from reviews.services.assignment import task_reassign, task_release_by_supervisor

    supervisor = factories.UserFactory(role="supervisor")
    other = factories.UserFactory(role="reviewer")
    denial(system, 1)
    task = task_claim_next(user=reviewer)
    moved = task_reassign(task_id=task.pk, to_user=other, by=supervisor)
    assert moved.assignee == other and moved.fencing_token == 2
    with pytest.raises(Exception) as caught:  # the first reviewer's form is now stale
        task_release(task_id=task.pk, user=reviewer, fencing_token=1)
    assert caught.value.code == "not_your_task"
    with pytest.raises(Exception) as caught:
        task_reassign(task_id=task.pk, to_user=supervisor, by=supervisor)
    assert caught.value.code == "wrong_role"
    released = task_release_by_supervisor(task_id=task.pk, by=supervisor)
    assert (released.status, released.assignee) == ("open", None)
    actions = list(TrailEvent.objects.values_list("action", flat=True).order_by("seq"))[-3:]
    assert actions == ["case.claimed", "case.reassigned", "case.released"]
