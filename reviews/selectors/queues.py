"""Reads of the reviewer's screens: the queues, the tasks held, and which
cases a person may open (``reviews.access``)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from reviews.access import CaseAccess, case_access, queues_workable
from reviews.models import (
    Case,
    Queue,
    QueueTaskCount,
    ReviewTask,
)
from workbench.errors import NotFound
from workbench.models import User

# --- Reviewer and supervisor screens ---------------------------------------------------
# Each screen reads a fixed number of queries whatever the number of cases,
# tasks or events: counts are one grouped query, relations are joined.

ACTIVE_TASK = (ReviewTask.Status.OPEN, ReviewTask.Status.CLAIMED)


def queues_overview(
    *,
    roles: Iterable[str] | None,
    now: datetime | None = None,
    overdue: bool = False,
    user: User | None = None,
    systems=None,
) -> list[Queue]:
    """Queues (those of ``roles``, or all when None) annotated with
    ``open_count``, ``claimed_count``, ``oldest_due`` (of the open and
    claimed tasks), when ``overdue``, ``overdue_count`` (open or claimed
    past their due time) and, for ``user``, ``excluded_count`` (open tasks
    they may not take: they had a part in the case) and ``claimable_count``;
    with ``roles`` and ``user``, only the queues the user may work
    (membership); ``systems`` (a queryset), only those AI systems' queues.

    The counts are the sums of the queue's ``QueueTaskCount`` rows, kept by
    triggers: counting the open tasks themselves took ~40 ms per view with
    43,000 of them. The oldest due time is one probe of ``task_active_due``.
    The overdue count still counts tasks (along that index): only the
    supervisors' board shows it."""
    now = now or timezone.now()
    counts = QueueTaskCount.objects.filter(queue=OuterRef("pk")).values("queue")
    active = ReviewTask.objects.filter(queue=OuterRef("pk"), status__in=ACTIVE_TASK)
    queues = Queue.objects.select_related("system").annotate(
        open_count=Coalesce(Subquery(counts.annotate(n=Sum("open")).values("n")), 0),
        claimed_count=Coalesce(Subquery(counts.annotate(n=Sum("claimed")).values("n")), 0),
        oldest_due=Subquery(active.order_by("due_at").values("due_at")[:1]),
    )
    if overdue:
        late = active.filter(due_at__lt=now).values("queue").annotate(n=Count("pk")).values("n")
        queues = queues.annotate(overdue_count=Coalesce(Subquery(late), 0))
    if user is not None:
        excluded = (
            ReviewTask.excluded.through.objects.filter(
                user=user,
                reviewtask__queue=OuterRef("pk"),
                reviewtask__status=ReviewTask.Status.OPEN,
            )
            .values("reviewtask__queue")
            .annotate(n=Count("pk"))
            .values("n")
        )
        queues = queues.annotate(excluded_count=Coalesce(Subquery(excluded), 0))
    if roles is not None and user is not None:
        # Only the queues the user may work: a queue listing members shows
        # its counts to them alone.
        queues = queues.filter(pk__in=queues_workable(user=user, roles=roles).values("pk"))
    elif roles is not None:
        queues = queues.filter(role__in=list(roles))
    if systems is not None:
        queues = queues.filter(system__in=systems)
    queues = list(queues.order_by("name", "system__name"))
    for queue in queues if user is not None else ():
        queue.claimable_count = max(queue.open_count - queue.excluded_count, 0)
    return queues


def tasks_held(*, user: User) -> list[ReviewTask]:
    """The tasks ``user`` holds a lease on, earliest due first."""
    return list(
        ReviewTask.objects.filter(status=ReviewTask.Status.CLAIMED, assignee=user)
        .select_related("case", "queue")
        .order_by("due_at")
    )


@dataclass
class CaseForReviewer:
    case: Case
    tasks: list[ReviewTask]  # every task of the case, oldest first, with queue and assignee
    access: str = CaseAccess.WORK  # how the user opens it (reviews.access.CaseAccess)

    @property
    def read_only(self) -> bool:
        return self.access in (CaseAccess.SUPERVISE, "compliance")

    def held_by(self, user: User, now: datetime | None = None) -> ReviewTask | None:
        """The task of this case ``user`` holds a live lease on, if any. (An
        expired lease is still ``claimed`` until the sweep, but no longer theirs.)"""
        now = now or timezone.now()
        for task in self.tasks:
            if (
                task.status == ReviewTask.Status.CLAIMED
                and task.assignee_id == user.pk
                and task.lease_expires_at is not None
                and task.lease_expires_at > now
            ):
                return task
        return None

    @property
    def active_tasks(self) -> list[ReviewTask]:
        return [task for task in self.tasks if task.status in ACTIVE_TASK]

    @property
    def second_review_pending(self) -> bool:
        """A two-review task waits for its second person: the first review
        must stay out of sight until then."""
        return any(
            task.queue.reviews_required == 2
            and task.kind != ReviewTask.Kind.ESCALATION
            and task.status in ACTIVE_TASK
            for task in self.tasks
        )


def _case_and_tasks(reference: str) -> tuple[Case, list[ReviewTask]]:
    """The case with what its page shows joined, and its tasks in order;
    ``NotFound`` when there is none."""
    case = (
        Case.objects.select_related("system", "policy", "subject")
        .filter(reference=reference)
        .first()
    )
    if case is None:
        raise NotFound(f"no case {reference!r}", "case_not_found")
    tasks = list(case.tasks.select_related("queue", "assignee").order_by("created_at", "id"))
    return case, tasks


def case_for_reviewer(*, reference: str, user: User, roles: Iterable[str]) -> CaseForReviewer:
    """The case if ``user`` may open it (``reviews.access.case_access``:
    a queue of theirs holds or held it, they acted on it, or they oversee
    its AI system); otherwise ``NotFound``, the same as a case that does not
    exist, so that references do not leak. ``access`` says how."""
    case, tasks = _case_and_tasks(reference)
    access = case_access(case=case, tasks=tasks, user=user, roles=set(roles))
    return CaseForReviewer(case=case, tasks=tasks, access=access)


def case_for_compliance(*, reference: str) -> CaseForReviewer:
    """Any case, read-only, for a compliance officer (who gives a purpose
    first: ``case_view_record``); ``NotFound`` when there is none."""
    case, tasks = _case_and_tasks(reference)
    return CaseForReviewer(case=case, tasks=tasks, access="compliance")
