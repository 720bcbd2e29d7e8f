"""What a reviewer does with the task they hold, besides deciding it: renew
its lease, or recuse themselves from the case (DESIGN §3)."""

import hashlib
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from reviews.models import Recusal, ReviewTask
from reviews.services.assignment import ACTIVE, task_locked_for, task_reopen
from workbench.errors import Invalid
from workbench.models import User
from workbench.services import Actor, trail_append

RECUSAL_REASON_MAX = 2000


@transaction.atomic
def task_recuse(*, task_id: int, user: User, fencing_token: int, reason: str) -> ReviewTask:
    """``user`` steps away from the case they hold for a conflict of
    interest: the task goes back to its queue and they are excluded from
    every open task of the case, and from its appeals (they acted on it), for
    good. The reason is kept in a ``Recusal``; the trail holds its SHA-256."""
    reason = (reason or "").strip()
    if not reason:
        message = "say why you recuse yourself (the conflict of interest)"
        raise Invalid(
            message, "reason_required", fields=[{"path": "recusal_reason", "message": message}]
        )
    if len(reason) > RECUSAL_REASON_MAX:
        message = f"the reason is longer than {RECUSAL_REASON_MAX} characters"
        raise Invalid(
            message, "reason_too_long", fields=[{"path": "recusal_reason", "message": message}]
        )
    task = task_locked_for(task_id=task_id, user=user, fencing_token=fencing_token)
    task_reopen(task)
    for other in ReviewTask.objects.filter(case_id=task.case_id, status__in=ACTIVE):
        other.excluded.add(user)
    Recusal.objects.create(case_id=task.case_id, task=task, reviewer=user, reason=reason)
    trail_append(
        action="case.recused",
        actor=Actor.user(user),
        case=task.case.reference,
        system=task.case.system.slug,
        data={
            "task": task.pk,
            "reason_sha256": hashlib.sha256(reason.encode()).hexdigest(),
        },
    )
    return task


@transaction.atomic
def task_lease_renew(*, task_id: int, user: User, fencing_token: int) -> ReviewTask:
    """Renew the lease ``user`` holds (not an expired one): it runs the
    queue's ``lease_minutes`` from now. Recorded (``case.lease_renewed``)."""
    task = task_locked_for(task_id=task_id, user=user, fencing_token=fencing_token)
    task.lease_expires_at = timezone.now() + timedelta(minutes=task.queue.lease_minutes)
    task.save(update_fields=["lease_expires_at"])
    trail_append(
        action="case.lease_renewed",
        actor=Actor.user(user),
        case=task.case.reference,
        system=task.case.system.slug,
        data={"task": task.pk, "lease_expires_at": task.lease_expires_at.isoformat()},
    )
    return task
