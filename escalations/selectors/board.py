"""The supervisor's board: queue health, the tasks that need a supervisor's
eye, open escalations, who can take what, the AI systems and their kill
switch, and the tasks about to miss their deadline."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from reviews.access import systems_overseen
from reviews.models import Queue, ReviewTask
from reviews.selectors import ACTIVE_TASK, queues_overview
from workbench.models import AISystem, Role, User

# --- The supervisor's board ---------------------------------------------------------------


@dataclass
class SupervisorBoard:
    queues: list[Queue]
    attention: list[ReviewTask]  # claimed, or open past their due time
    escalations: list[ReviewTask]
    people: dict[str, list[tuple[int, str]]]  # role -> [(user id, username)]
    systems: list[AISystem]
    limit: int
    members: dict[int, set[int]] = field(default_factory=dict)  # queue id -> member ids


def supervisor_board(
    *, user: User | None = None, now: datetime | None = None, limit: int = 100
) -> SupervisorBoard:
    """Queue health, the tasks that need a supervisor's eye, open escalations,
    who can take what (with each queue's members), and the AI systems with
    their kill switch: of the systems ``user`` oversees
    (``reviews.access.systems_overseen``; all of them without a user)."""
    now = now or timezone.now()
    related = ("case__system", "queue", "assignee")
    systems = systems_overseen(user=user) if user is not None else AISystem.objects.all()
    tasks = ReviewTask.objects.filter(case__system__in=systems)
    attention = list(
        tasks.filter(
            Q(status=ReviewTask.Status.CLAIMED) | Q(status=ReviewTask.Status.OPEN, due_at__lt=now)
        )
        .select_related(*related)
        .prefetch_related("excluded")
        .order_by("due_at", "id")[:limit]
    )
    escalations = list(
        tasks.filter(kind=ReviewTask.Kind.ESCALATION, status__in=ACTIVE_TASK)
        .select_related(*related)
        .order_by("-priority", "due_at", "id")[:limit]
    )
    people: dict[str, list[tuple[int, str]]] = {}
    rows = (
        User.objects.filter(is_active=True, groups__name__in=Role.values)
        .order_by("username")
        .values_list("groups__name", "pk", "username")
    )
    for role, pk, username in rows:
        people.setdefault(role, []).append((pk, username))
    queues = queues_overview(roles=None, now=now, overdue=True, systems=systems)
    members: dict[int, set[int]] = {}
    names: dict[int, list[str]] = {}
    rows = (
        Queue.members.through.objects.filter(queue__in=[queue.pk for queue in queues])
        .order_by("user__username")
        .values_list("queue_id", "user_id", "user__username")
    )
    for queue_id, member, username in rows:
        members.setdefault(queue_id, set()).add(member)
        names.setdefault(queue_id, []).append(username)
    for queue in queues:
        queue.member_names = names.get(queue.pk, [])
    return SupervisorBoard(
        queues=queues,
        attention=attention,
        escalations=escalations,
        people=people,
        systems=list(systems.order_by("slug")),
        limit=limit,
        members=members,
    )


@dataclass
class DueSoon:
    task: ReviewTask
    left: timedelta


def tasks_due_soon(
    *, now: datetime | None = None, share: float = 0.2, limit: int = 50, systems=None
):
    """Open or claimed review and appeal tasks that have used up 80% of the
    time their queue allows and are not overdue yet: the supervisor's warning
    ahead of a breach (of ``systems``, a queryset, when given: the board's)."""
    now = now or timezone.now()
    near = Q()
    queues = Queue.objects.exclude(role=Role.SUPERVISOR)
    if systems is not None:
        queues = queues.filter(system__in=systems)
    for queue in queues:
        near |= Q(queue=queue, due_at__lt=now + timedelta(hours=queue.sla_hours * share))
    if not near:
        return []
    tasks = (
        ReviewTask.objects.filter(near, due_at__gte=now)
        .filter(status__in=[ReviewTask.Status.OPEN, ReviewTask.Status.CLAIMED])
        .select_related("case__system", "queue", "assignee")
        .order_by("due_at", "id")[:limit]
    )
    return [DueSoon(task, task.due_at - now) for task in tasks]
