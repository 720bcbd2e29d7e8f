"""Claiming review tasks: leases, fencing tokens, release and expiry (DESIGN §3).

Lock order everywhere a task and its case change: the task, then the case,
then (inside ``trail_append``) the chain head.
"""

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from reviews.models import Case, Queue, ReviewTask
from workbench.errors import WorkbenchError
from workbench.models import Role, User
from workbench.services.trail import Actor, TrailEntry, trail_append, trail_append_many

LEASE_FIELDS = ["status", "assignee", "claimed_at", "lease_expires_at"]
# Who may be given a task of each kind besides the people of its queue: an
# overdue appeal sits with the supervisors, who may hand it to an appeal reviewer.
KIND_ROLES = {
    ReviewTask.Kind.REVIEW: Role.REVIEWER,
    ReviewTask.Kind.QA: Role.REVIEWER,
    ReviewTask.Kind.APPEAL: Role.APPEAL_REVIEWER,
}


class TaskError(WorkbenchError):
    """A task cannot be taken, released or decided in its present state."""

    status = 409


def tasks_claimable(*, user: User, queue_slug: str | None = None):
    """Open tasks ``user`` may take, in claim order: highest priority, then
    earliest due. Role decides the queues; an exclusion (conflict of
    interest) removes single tasks. The queues are resolved to ids first so
    that the query reads the task table alone, along the partial index of
    open tasks in claim order, and stops at the first row it may take."""
    roles = [group.name for group in user.groups.all()]
    queues = Queue.objects.filter(role__in=roles)
    if queue_slug:
        queues = queues.filter(slug=queue_slug)
    return (
        ReviewTask.objects.filter(
            status=ReviewTask.Status.OPEN, queue_id__in=list(queues.values_list("pk", flat=True))
        )
        .exclude(excluded=user)
        .order_by("-priority", "due_at", "id")
    )


def task_claim_next(*, user: User, queue_slug: str | None = None) -> ReviewTask | None:
    """Give ``user`` the next task they may take, under a lease, or None.

    Expired leases are returned to their queue first (the beat sweep does the
    same every minute). On PostgreSQL concurrent claimers skip each other's
    locked rows; on SQLite, where Django drops SKIP LOCKED, a compare-and-set
    update decides who got a row.
    """
    task_leases_expire()
    with transaction.atomic():
        task = _take(user, queue_slug)
        if task is None:
            return None
        Case.objects.filter(pk=task.case_id).update(status=Case.Status.IN_REVIEW)
        trail_append(
            action="case.claimed",
            actor=Actor.user(user),
            case=task.case.reference,
            system=task.case.system.slug,
            data={
                "task": task.pk,
                "kind": task.kind,
                "queue": task.queue.slug,
                "fencing_token": task.fencing_token,
                "lease_expires_at": task.lease_expires_at.isoformat(),
            },
        )
        task.case.status = Case.Status.IN_REVIEW
        return task


def _take(user: User, queue_slug: str | None) -> ReviewTask | None:
    candidates = tasks_claimable(user=user, queue_slug=queue_slug)
    now = timezone.now()
    if connection.features.has_select_for_update_skip_locked:
        pk = candidates.select_for_update(skip_locked=True).values_list("pk", flat=True).first()
        if pk is None:
            return None
        task = ReviewTask.objects.select_related("queue", "case__system").get(pk=pk)
        _lease(task, user, now)
        task.save(update_fields=[*LEASE_FIELDS, "fencing_token"])
        return task
    for pk, lease_minutes in candidates.values_list("pk", "queue__lease_minutes")[:20]:
        won = ReviewTask.objects.filter(pk=pk, status=ReviewTask.Status.OPEN).update(
            status=ReviewTask.Status.CLAIMED,
            assignee=user,
            claimed_at=now,
            lease_expires_at=now + timedelta(minutes=lease_minutes),
            fencing_token=F("fencing_token") + 1,
        )
        if won:
            return ReviewTask.objects.select_related("queue", "case__system").get(pk=pk)
    return None


def _lease(task: ReviewTask, user: User, now: datetime) -> None:
    task.status = ReviewTask.Status.CLAIMED
    task.assignee = user
    task.claimed_at = now
    task.lease_expires_at = now + timedelta(minutes=task.queue.lease_minutes)
    task.fencing_token += 1


def task_locked_for(*, task_id: int, user: User, fencing_token: int) -> ReviewTask:
    """The task, locked, if ``user`` holds its lease under ``fencing_token``;
    else a ``TaskError`` saying why (released, reassigned, expired, another's)."""
    task = (
        ReviewTask.objects.select_for_update(of=("self",))
        .select_related("queue", "case__system", "case__policy")
        .filter(pk=task_id)
        .first()
    )
    if task is None:
        raise TaskError("no such task", "task_not_found")
    if task.status != ReviewTask.Status.CLAIMED or task.assignee_id is None:
        raise TaskError(
            "this task is no longer yours: it was released or decided; claim the next one",
            "lease_lost",
        )
    if task.assignee_id != user.pk:
        raise TaskError("this task is claimed by someone else", "not_your_task")
    if task.fencing_token != fencing_token:
        raise TaskError(
            "this form is out of date: the task was released and claimed again since",
            "stale_form",
        )
    if task.lease_expires_at <= timezone.now():
        raise TaskError(
            "your lease on this task expired; it went back to the queue", "lease_expired"
        )
    return task


@transaction.atomic
def task_release(*, task_id: int, user: User, fencing_token: int) -> ReviewTask:
    """Hand a claimed task back to its queue."""
    task = task_locked_for(task_id=task_id, user=user, fencing_token=fencing_token)
    _reopen(task)
    trail_append(
        action="case.released",
        actor=Actor.user(user),
        case=task.case.reference,
        system=task.case.system.slug,
        data={"task": task.pk, "reason": "released"},
    )
    return task


def _reopen(task: ReviewTask) -> None:
    task.status = ReviewTask.Status.OPEN
    task.assignee = None
    task.claimed_at = None
    task.lease_expires_at = None
    task.save(update_fields=LEASE_FIELDS)
    Case.objects.filter(pk=task.case_id).update(status=Case.Status.PENDING_REVIEW)


def task_leases_expire(*, now: datetime | None = None) -> int:
    """Return every task whose lease ran out to its queue. Returns how many."""
    now = now or timezone.now()
    expired = Q(status=ReviewTask.Status.CLAIMED, lease_expires_at__lte=now)
    if not ReviewTask.objects.filter(expired).exists():
        return 0
    with transaction.atomic():
        tasks = list(
            ReviewTask.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("case__system", "assignee")
            .filter(expired)
        )
        entries = []
        for task in tasks:
            entries.append(
                TrailEntry(
                    "case.released",
                    Actor.workbench("lease-expiry"),
                    task.case.reference,
                    task.case.system.slug,
                    {
                        "task": task.pk,
                        "reason": "lease_expired",
                        "assignee": task.assignee.username,
                    },
                )
            )
            _reopen(task)
        trail_append_many(entries)
    return len(tasks)


def _locked(task_id: int) -> ReviewTask:
    task = (
        ReviewTask.objects.select_for_update(of=("self",))
        .select_related("queue", "case__system", "assignee")
        .filter(pk=task_id)
        .first()
    )
    if task is None:
        raise TaskError("no such task", "task_not_found")
    if task.status not in (ReviewTask.Status.OPEN, ReviewTask.Status.CLAIMED):
        raise TaskError(f"this task is {task.status}; there is nothing to change", "task_closed")
    return task


@transaction.atomic
def task_reassign(*, task_id: int, to_user: User, by: User) -> ReviewTask:
    """A supervisor gives an open or claimed task to ``to_user``, under a new lease."""
    task = _locked(task_id)
    roles = {task.queue.role, KIND_ROLES.get(task.kind, task.queue.role)}
    if not any(to_user.has_role(role) for role in roles):
        raise TaskError(
            f"{to_user.username} does not have the {' or '.join(sorted(roles))} role "
            "this task needs",
            "wrong_role",
        )
    if task.excluded.filter(pk=to_user.pk).exists():
        raise TaskError(f"{to_user.username} is excluded from this case", "excluded")
    previous = task.assignee.username if task.assignee else None
    _lease(task, to_user, timezone.now())
    task.save(update_fields=[*LEASE_FIELDS, "fencing_token"])
    Case.objects.filter(pk=task.case_id).update(status=Case.Status.IN_REVIEW)
    trail_append(
        action="case.reassigned",
        actor=Actor.user(by),
        case=task.case.reference,
        system=task.case.system.slug,
        data={"task": task.pk, "from": previous, "to": to_user.username},
    )
    return task


@transaction.atomic
def task_release_by_supervisor(*, task_id: int, by: User) -> ReviewTask:
    """A supervisor takes a claimed task away from whoever holds it."""
    task = _locked(task_id)
    if task.status != ReviewTask.Status.CLAIMED:
        raise TaskError("this task is not claimed", "not_claimed")
    holder = task.assignee.username
    _reopen(task)
    trail_append(
        action="case.released",
        actor=Actor.user(by),
        case=task.case.reference,
        system=task.case.system.slug,
        data={"task": task.pk, "reason": "released_by_supervisor", "assignee": holder},
    )
    return task
