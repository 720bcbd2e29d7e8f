import hashlib
import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from reviews.models import Case, Queue, ReviewTask
from reviews.services.assignment import TaskError, task_claim_next, task_leases_expire, task_release
from tests import factories
from workbench.errors import Invalid
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
    Queue.objects.filter(system=system).update(hold_limit=4)  # the default holds one
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


# --- Fair to the reviewer and to the case ------------------------------------------------------


def test_a_released_task_goes_to_someone_else_first_unless_nothing_else_is_left(system, reviewer):
    first, second = denial(system, 1), denial(system, 2)
    task = task_claim_next(user=reviewer)
    assert task.case == first
    task_release(task_id=task.pk, user=reviewer, fencing_token=task.fencing_token)
    again = task_claim_next(user=reviewer)
    assert again.case == second  # not the one just released
    task_release(task_id=again.pk, user=reviewer, fencing_token=again.fencing_token)
    # Both on cooldown for them: the first in claim order comes back.
    assert task_claim_next(user=reviewer).case == first
    # Someone else is given the released one at once.
    other = factories.UserFactory(role="reviewer")
    assert task_claim_next(user=other).case == second


def test_the_cooldown_is_the_queues_and_ends(system, reviewer):
    first, _ = denial(system, 1), denial(system, 2)
    Queue.objects.filter(system=system).update(release_cooldown_minutes=5)
    task = task_claim_next(user=reviewer)
    task_release(task_id=task.pk, user=reviewer, fencing_token=task.fencing_token)
    event = json.loads(TrailEvent.objects.filter(action="case.released").get().body)
    assert event["data"]["cooldown_until"]
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert task_claim_next(user=reviewer).case == first


def test_recusing_excludes_the_reviewer_from_the_case_for_good(system, reviewer):
    from reviews.models import Recusal
    from reviews.services.held import task_recuse

    case = denial(system, 1)
    task = task_claim_next(user=reviewer)
    with pytest.raises(Invalid) as refused:
        task_recuse(task_id=task.pk, user=reviewer, fencing_token=task.fencing_token, reason=" ")
    assert refused.value.code == "reason_required"
    assert ReviewTask.objects.get(pk=task.pk).status == "claimed"
    reason = "The claimant is my neighbour."
    task_recuse(task_id=task.pk, user=reviewer, fencing_token=task.fencing_token, reason=reason)
    task.refresh_from_db()
    assert (task.status, task.assignee) == ("open", None)
    assert reviewer in task.excluded.all()
    assert task_claim_next(user=reviewer) is None  # nothing else: still not theirs
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert task_claim_next(user=reviewer) is None
    event = TrailEvent.objects.filter(action="case.recused").get()
    assert event.case == case.reference
    assert reason not in event.body
    assert (
        json.loads(event.body)["data"]["reason_sha256"]
        == hashlib.sha256(reason.encode()).hexdigest()
    )
    assert Recusal.objects.get().reason == reason


def test_a_reviewer_holds_at_most_the_queues_hold_limit(system, reviewer):
    from reviews.services.assignment import HoldLimitReached

    _, second, _ = denial(system, 1), denial(system, 2), denial(system, 3)
    held = task_claim_next(user=reviewer)
    with pytest.raises(HoldLimitReached) as limit:
        task_claim_next(user=reviewer)
    assert limit.value.code == "hold_limit"
    assert limit.value.held.pk == held.pk
    assert ReviewTask.objects.filter(assignee=reviewer).count() == 1
    Queue.objects.filter(system=system).update(hold_limit=2)
    assert task_claim_next(user=reviewer).case == second
    with pytest.raises(HoldLimitReached):
        task_claim_next(user=reviewer)


def test_a_lease_is_renewed_by_its_holder_and_recorded(system, reviewer):
    from reviews.services.held import task_lease_renew

    denial(system, 1)
    task = task_claim_next(user=reviewer)
    with time_machine.travel(timezone.now() + timedelta(minutes=10), tick=False):
        renewed = task_lease_renew(task_id=task.pk, user=reviewer, fencing_token=task.fencing_token)
        assert renewed.lease_expires_at == timezone.now() + timedelta(minutes=15)
    assert renewed.fencing_token == task.fencing_token  # the form stays valid
    assert TrailEvent.objects.filter(action="case.lease_renewed").count() == 1
    other = factories.UserFactory(role="reviewer")
    with pytest.raises(TaskError) as refused:
        task_lease_renew(task_id=task.pk, user=other, fencing_token=task.fencing_token)
    assert refused.value.code == "not_your_task"
    with time_machine.travel(timezone.now() + timedelta(hours=1)), pytest.raises(TaskError) as late:
        task_lease_renew(task_id=task.pk, user=reviewer, fencing_token=task.fencing_token)
    assert late.value.code == "lease_expired"
    assert TrailEvent.objects.filter(action="case.lease_renewed").count() == 1


def test_a_forged_task_id_or_token_is_refused_and_nothing_written(system, chat_system, reviewer):
    from reviews.services.held import task_lease_renew, task_recuse

    denial(system, 1)
    mine = task_claim_next(user=reviewer)
    chat = factories.ingest(chat_system, factories.chat_payload(2, text="I want a human now"))
    theirs = task_claim_next(user=factories.UserFactory(role="reviewer"))
    assert theirs.case == chat
    before = TrailEvent.objects.count()
    for call in (
        lambda: task_release(task_id=theirs.pk, user=reviewer, fencing_token=theirs.fencing_token),
        lambda: task_lease_renew(
            task_id=theirs.pk, user=reviewer, fencing_token=mine.fencing_token
        ),
        lambda: task_recuse(
            task_id=theirs.pk, user=reviewer, fencing_token=theirs.fencing_token, reason="x"
        ),
        lambda: task_release(task_id=mine.pk, user=reviewer, fencing_token=mine.fencing_token + 7),
        lambda: task_release(task_id=10**9, user=reviewer, fencing_token=1),
    ):
        with pytest.raises(TaskError) as refused:
            call()
        assert refused.value.code in {"not_your_task", "stale_form", "task_not_found"}
    assert TrailEvent.objects.count() == before
    assert ReviewTask.objects.get(pk=theirs.pk).status == "claimed"
