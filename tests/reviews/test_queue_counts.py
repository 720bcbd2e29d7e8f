"""The queue counts kept by triggers (reviews migration 0005) always equal a
count of the tasks themselves, whatever changed the tasks."""

import threading
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from escalations.services.supervision import task_reassign
from reviews.models import Decision, Queue, QueueTaskCount, ReviewTask
from reviews.selectors import queues_overview
from reviews.services.assignment import (
    task_claim_next,
    task_leases_expire,
    task_release,
)
from reviews.services.decisions import DecisionInput, decision_record
from reviews.services.queue_counts import queue_task_counts_fold
from tests import factories


def counted() -> dict[str, tuple[int, int]]:
    """Open and claimed per queue, counted from the tasks."""
    rows = Queue.objects.annotate(
        o=Count("tasks", filter=Q(tasks__status="open")),
        c=Count("tasks", filter=Q(tasks__status="claimed")),
    )
    return {q.slug: (q.o, q.c) for q in rows}


def kept() -> dict[str, tuple[int, int]]:
    """The same, as the queue pages read it."""
    return {q.slug: (q.open_count, q.claimed_count) for q in queues_overview(roles=None)}


def denial(system, n, **overrides):
    return factories.ingest(system, factories.claim_payload(n, **overrides))


def test_counts_follow_every_kind_of_change(system):
    alice = factories.UserFactory(role="reviewer")
    bob = factories.UserFactory(role="reviewer")
    supervisor = factories.UserFactory(role="supervisor")
    for n in range(6):
        denial(system, n)
    denial(system, 50, metadata={"amount": 9000})  # senior-review
    assert kept() == counted()
    assert kept()["claims-review"] == (6, 0)

    first = task_claim_next(user=alice, queue_slug="claims-review")
    second = task_claim_next(user=bob, queue_slug="claims-review")
    assert kept()["claims-review"] == (4, 2)
    task_release(task_id=first.pk, user=alice, fencing_token=first.fencing_token)
    decision_record(
        task_id=second.pk,
        user=bob,
        fencing_token=second.fencing_token,
        decision=DecisionInput("escalate", rationale="needs a second look"),
        idempotency_key=uuid.uuid4().hex,
    )
    open_task = ReviewTask.objects.filter(status="open", queue__slug="claims-review").first()
    task_reassign(task_id=open_task.pk, to_user=alice, by=supervisor)
    claimed = task_claim_next(user=bob, queue_slug="claims-review")
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        assert task_leases_expire() == 2
    ReviewTask.objects.filter(pk=claimed.pk).update(queue=Queue.objects.get(slug="senior-review"))
    undecided = ReviewTask.objects.filter(status="open").exclude(
        pk__in=Decision.objects.values("task")
    )
    undecided.filter(pk=undecided.first().pk).delete()
    assert kept() == counted()
    assert (
        sum(o + c for o, c in kept().values())
        == ReviewTask.objects.filter(status__in=["open", "claimed"]).count()
    )


def test_the_supervisors_overview_counts_overdue_tasks(system):
    denial(system, 1)
    denial(system, 2)
    ReviewTask.objects.filter(case__external_id__endswith="2").update(
        due_at=timezone.now() - timedelta(hours=1)
    )
    overview = {q.slug: q for q in queues_overview(roles=None, overdue=True)}
    assert overview["claims-review"].overdue_count == 1
    assert overview["senior-review"].overdue_count == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_each_keep_a_row_and_folding_keeps_the_sums():
    system = factories.system_with_policy()
    for n in range(40):
        denial(system, n)
    Queue.objects.filter(system=system).update(hold_limit=5)  # each holds all they claim
    reviewers = [factories.UserFactory(role="reviewer") for _ in range(4)]
    start = threading.Barrier(4)
    errors = []

    def work(user):
        try:
            start.wait()
            for _ in range(5):
                task_claim_next(user=user, queue_slug="claims-review")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert kept() == counted()
    assert kept()["claims-review"] == (20, 20)
    assert QueueTaskCount.objects.exclude(slot=0).count() >= 2  # a row per connection

    assert queue_task_counts_fold() >= 2
    assert set(QueueTaskCount.objects.values_list("slot", flat=True)) == {0}
    assert kept() == counted()
