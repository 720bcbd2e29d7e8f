"""A supervisor's hand on review tasks: reassign and release (DESIGN §3),
for the tasks of the AI systems they oversee (``reviews.access``)."""

from django.db import transaction
from django.utils import timezone

from reviews.access import appeal_conflicted, queue_workable_by, systems_overseen
from reviews.models import Case, ReviewTask
from reviews.services.assignment import (
    KIND_ROLES,
    LEASE_FIELDS,
    TaskError,
    task_lease_to,
    task_reopen,
)
from workbench.errors import NotFound
from workbench.models import User
from workbench.services import Actor, trail_append


def _locked(task_id: int, by: User | None = None) -> ReviewTask:
    """The task, locked, for a supervisor ``by``: a task of an AI system they
    do not oversee is not found, as one that does not exist."""
    task = (
        ReviewTask.objects.select_for_update(of=("self",))
        .select_related("queue", "case__system", "assignee")
        .filter(pk=task_id)
        .first()
    )
    if (
        task is not None
        and by is not None
        and not systems_overseen(user=by).filter(pk=task.case.system_id).exists()
    ):
        task = None
    if task is None:
        raise NotFound("no such task", "task_not_found")
    if task.status not in (ReviewTask.Status.OPEN, ReviewTask.Status.CLAIMED):
        raise TaskError(f"this task is {task.status}; there is nothing to change", "task_closed")
    return task


@transaction.atomic
def task_reassign(*, task_id: int, to_user: User, by: User) -> ReviewTask:
    """A supervisor gives an open or claimed task to ``to_user``, under a new
    lease: someone with its role, a member of its queue when it lists
    members, not excluded and, for an appeal, independent of the case."""
    task = _locked(task_id, by)
    roles = {task.queue.role, KIND_ROLES.get(task.kind, task.queue.role)}
    if not any(to_user.has_role(role) for role in roles):
        raise TaskError(
            f"{to_user.username} does not have the {' or '.join(sorted(roles))} role "
            "this task needs",
            "wrong_role",
        )
    if not to_user.is_active:
        raise TaskError(f"{to_user.username} is not active", "inactive_user")
    if not queue_workable_by(queue=task.queue, user=to_user):
        raise TaskError(
            f"{to_user.username} is not a member of the queue {task.queue.name}", "not_a_member"
        )
    if task.excluded.filter(pk=to_user.pk).exists():
        raise TaskError(f"{to_user.username} is excluded from this case", "excluded")
    if task.kind == ReviewTask.Kind.APPEAL and appeal_conflicted(task=task, user=to_user):
        raise TaskError(
            f"{to_user.username} is not independent of this case: they or someone in their "
            "reporting line acted on it",
            "not_independent",
        )
    previous = task.assignee.username if task.assignee else None
    task_lease_to(task, to_user, timezone.now())
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
    task = _locked(task_id, by)
    if task.status != ReviewTask.Status.CLAIMED:
        raise TaskError("this task is not claimed", "not_claimed")
    holder = task.assignee.username
    task_reopen(task)
    trail_append(
        action="case.released",
        actor=Actor.user(by),
        case=task.case.reference,
        system=task.case.system.slug,
        data={"task": task.pk, "reason": "released_by_supervisor", "assignee": holder},
    )
    return task
