"""Deadlines: a task past its due time goes to the supervisors (DESIGN §3)."""

from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from reviews.models import ReviewTask
from reviews.services.assignment import TaskError
from reviews.services.decisions import escalation_queue
from reviews.services.webhooks import cases_overdue_webhooks
from workbench.models import Role
from workbench.services.trail import Actor, TrailEntry, trail_append_many

BATCH = 500


def tasks_escalate_overdue(*, now: datetime | None = None) -> int:
    """Move every open or claimed task past its due time into its policy's
    escalation queue, with a higher priority and the reason in the trail.
    Whoever holds a claimed task keeps it. Tasks already with the supervisors
    stay where they are. Returns how many moved; run by beat every minute."""
    now = now or timezone.now()
    overdue = (
        Q(status__in=[ReviewTask.Status.OPEN, ReviewTask.Status.CLAIMED], due_at__lt=now)
        & ~Q(kind=ReviewTask.Kind.ESCALATION)
        & ~Q(queue__role=Role.SUPERVISOR)
    )
    moved = 0
    while ReviewTask.objects.filter(overdue).exists():
        with transaction.atomic():
            tasks = list(
                ReviewTask.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("case__system", "case__policy", "queue")
                .filter(overdue)
                .order_by("due_at", "id")[:BATCH]
            )
            entries, moved_cases = [], []
            for task in tasks:
                try:
                    target = escalation_queue(task.case)
                except TaskError:
                    continue  # no supervisors' queue: the supervisor board still shows it
                due = task.due_at.isoformat()
                entries.append(
                    TrailEntry(
                        "case.overdue",
                        Actor.workbench("deadlines"),
                        task.case.reference,
                        task.case.system.slug,
                        {
                            "task": task.pk,
                            "kind": task.kind,
                            "from": task.queue.slug,
                            "to": target.slug,
                            "due_at": due,
                            "reason": "overdue: not decided by its due time",
                        },
                    )
                )
                moved_cases.append(
                    (task.case, {"task_kind": task.kind, "queue": target.slug, "due_at": due})
                )
                task.queue = target
                task.priority += 10
                task.save(update_fields=["queue", "priority"])
            cases_overdue_webhooks(moved=moved_cases)
            trail_append_many(entries)
        if not entries:
            break
        moved += len(entries)
    return moved
