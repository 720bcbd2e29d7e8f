"""Assigning review tasks to people (not Celery tasks: those are in ``reviews.tasks``):
claiming, leases, fencing tokens, release and expiry (DESIGN §3).

Lock order everywhere a task and its case change: the task, then the case,
then (inside ``trail_append``) the chain head; for a claim on PostgreSQL the
head is locked last of all, while the transaction commits.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Case as DbCase
from django.db.models import F, Q, When
from django.utils import timezone

from reviews.access import appeal_conflicted, queues_workable
from reviews.models import Case, Queue, ReviewTask
from workbench.db import prepared_statements
from workbench.errors import WorkbenchError
from workbench.models import AISystem, Role, User
from workbench.services import Actor, TrailEntry, trail_append, trail_append_many

LEASE_FIELDS = ["status", "assignee", "claimed_at", "lease_expires_at"]
HOLD_LIMIT_MAX = 100  # the highest hold_limit a policy may set (reviews.routing)
ACTIVE = (ReviewTask.Status.OPEN, ReviewTask.Status.CLAIMED)
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


class HoldLimitReached(TaskError):
    """Claim next, at the queue's ``hold_limit``: ``held`` is the task the
    reviewer holds (the earliest due), to open instead."""

    def __init__(self, message: str, held: ReviewTask):
        super().__init__(message, "hold_limit")
        self.held = held


def _held_count(user: User) -> int:
    return ReviewTask.objects.filter(status=ReviewTask.Status.CLAIMED, assignee=user).count()


def tasks_claimable(*, user: User, queue_slug: str | None = None, queue_id: int | None = None):
    """Open tasks ``user`` may take, in claim order: those not on a release
    cooldown for them first, then highest priority, then earliest due. The
    queues they may work decide (role and membership: ``queues_workable``;
    ``queue_id`` one queue; ``queue_slug`` the queues of that slug, in any AI
    system), less the queues whose ``hold_limit`` they are at; an exclusion
    (conflict of interest, recusal) removes single tasks. The queues are
    resolved to ids first, so that the query reads the task table alone.
    (The SQLite claim; PostgreSQL's is ``CLAIM_SQL``, the same rules.)"""
    queues = queues_workable(user=user).filter(hold_limit__gt=_held_count(user))
    if queue_slug:
        queues = queues.filter(slug=queue_slug)
    if queue_id:
        queues = queues.filter(pk=queue_id)
    now = timezone.now()
    cooling = Q(released_by=user, cooldown_until__gt=now)
    return (
        ReviewTask.objects.filter(
            status=ReviewTask.Status.OPEN, queue_id__in=list(queues.values_list("pk", flat=True))
        )
        .exclude(excluded=user)
        .annotate(cooling=DbCase(When(cooling, then=1), default=0))
        .order_by("cooling", "-priority", "due_at", "id")
    )


@dataclass(frozen=True)
class _Where:
    """Which of the user's queues a claim looks in (None: any)."""

    slug: str | None = None
    queue_id: int | None = None


def task_claim_next(
    *, user: User, queue_slug: str | None = None, queue_id: int | None = None
) -> ReviewTask | None:
    """Give ``user`` the next task they may take, under a lease, or None:
    in one queue (``queue_id``), the queues of one slug, or all of theirs.

    Expired leases are returned to their queue first (the beat sweep does the
    same every minute). On PostgreSQL concurrent claimers skip each other's
    locked rows, and one statement picks, leases and marks the case; on
    SQLite, where Django drops SKIP LOCKED, a compare-and-set update decides
    who got a row.
    """
    where = _Where(queue_slug or None, queue_id or None)
    while True:
        try:
            if connection.features.has_select_for_update_skip_locked:
                task = _claim_skip_locked(user, where)
            else:
                task = _claim_compare_and_set(user, where)
        except _NotIndependent as refused:
            # Rolled back: the exclusion is kept (the appeal's line changed
            # since it was filed) and the claim goes on without that task.
            refused.task.excluded.add(user)
            continue
        break
    if task is None:
        _hold_limit_check(user, where)
    return task


class _NotIndependent(Exception):
    """Raised inside a claim's transaction to undo it: the appeal picked is
    one ``user`` may not decide."""

    def __init__(self, task: ReviewTask):
        self.task = task


def _independence_check(user: User, task: ReviewTask) -> None:
    """Claim time: the appeal's conflicts are read anew (a change of
    managers since filing counts). Only for appeals, after the pick: the
    claim's statement stays one query."""
    if task.kind == ReviewTask.Kind.APPEAL and appeal_conflicted(task=task, user=user):
        raise _NotIndependent(task)


def _claim_compare_and_set(user: User, where: _Where) -> ReviewTask | None:
    task_leases_expire()
    with transaction.atomic():
        task = _take(user, where)
        if task is None:
            return None
        _independence_check(user, task)
        Case.objects.filter(pk=task.case_id).update(status=Case.Status.IN_REVIEW)
        _record_claim(user, task)
    return task


def _hold_limit_check(user: User, where: _Where) -> None:
    """Nothing was claimed: if that is because the user is at the hold limit
    of a queue they asked for, say so, with the task they hold."""
    held = _held_count(user)
    if not held:
        return
    queues = queues_workable(user=user).filter(hold_limit__lte=held)
    if where.slug:
        queues = queues.filter(slug=where.slug)
    if where.queue_id:
        queues = queues.filter(pk=where.queue_id)
    limit = queues.order_by("hold_limit").values_list("hold_limit", flat=True).first()
    if limit is None:
        return
    task = (
        ReviewTask.objects.filter(status=ReviewTask.Status.CLAIMED, assignee=user)
        .select_related("case", "queue")
        .order_by("due_at", "id")
        .first()
    )
    tasks = "a task" if limit == 1 else f"{limit} tasks"
    raise HoldLimitReached(
        f"You already hold {tasks}, the most this queue lets one reviewer hold at once: "
        f"decide or release {task.case.reference} before claiming another.",
        task,
    )


def _claim_skip_locked(user: User, where: _Where) -> ReviewTask | None:
    # The look for expired leases rides along in the claim's statement: when
    # there are some, it claims nothing, they go back to their queues, and
    # the claim runs again (without looking, so it cannot go round forever).
    # When nothing but tasks on their cooldown is left for the user, it runs
    # once more, taking those too (the one case of a second statement).
    check_expired, cooldown = True, True
    while True:
        # Planning the claim's statement took ~1.5 ms of the database's CPU,
        # more than running it: its plan is kept for the connection.
        with transaction.atomic(), prepared_statements():
            expired, task = _take_skip_locked(user, where, check_expired, cooldown)
            if task is not None:
                _independence_check(user, task)
                _record_claim(user, task)
                return task
        if expired:
            task_leases_expire()
            check_expired = False
        elif cooldown:
            cooldown = False
        else:
            return None


def _record_claim(user: User, task: ReviewTask) -> None:
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
        # The busiest writer of the trail: the chain head is locked only
        # while the claim commits (trail_append_many).
        at_commit=True,
    )
    task.case.status = Case.Status.IN_REVIEW


# Claim next in one statement (PostgreSQL). Unless expired leases wait to be
# returned to their queues, walk the open tasks of the queues the user may
# work (role, membership, below the queue's hold limit) in claim order along
# task_open_claim_order, skip the rows other claimers hold, the tasks the
# user is excluded from and (unless nothing else is left: a second run) those
# they released within the queue's cooldown, lease the first, mark its case in review, and
# return what the caller and the trail event need. The queue ids
# are an InitPlan, so the task table is read alone and the walk stops at the
# first row it may take (see tasks_claimable).
TASK_FIELDS = [f.attname for f in ReviewTask._meta.concrete_fields]
QUEUE_FIELDS = [f.attname for f in Queue._meta.concrete_fields]
CLAIM_QUEUES = """
      t.queue_id = ANY(ARRAY(
          SELECT q.id FROM reviews_queue q
          WHERE q.role = ANY(%(roles)s) AND (%(slug)s::text IS NULL OR q.slug = %(slug)s)
            AND (%(queue)s::bigint IS NULL OR q.id = %(queue)s)
            AND (NOT EXISTS (SELECT 1 FROM reviews_queue_members m WHERE m.queue_id = q.id)
                 OR EXISTS (SELECT 1 FROM reviews_queue_members m
                            WHERE m.queue_id = q.id AND m.user_id = %(user)s))
            AND q.hold_limit > (SELECT held FROM held)
      ))
      AND NOT EXISTS (
          SELECT 1 FROM reviews_reviewtask_excluded x
          WHERE x.reviewtask_id = t.id AND x.user_id = %(user)s
      )"""
CLAIM_SQL = f"""
WITH held AS (
    -- What the user holds, counted once and at most to the highest hold limit
    -- a policy may set, along task_held_by.
    SELECT count(*) AS held FROM (
        SELECT 1 FROM reviews_reviewtask
        WHERE status = 'claimed' AND assignee_id = %(user)s
        LIMIT {HOLD_LIMIT_MAX}
    ) mine
), expired AS (
    SELECT %(check_expired)s AND EXISTS (
        SELECT 1 FROM reviews_reviewtask
        WHERE status = 'claimed' AND lease_expires_at <= %(now)s
    ) AS found
), picked AS (
    -- Unless nothing else is left (cooldown false: the second try), not a
    -- task the user released within its queue's cooldown.
    SELECT t.id FROM reviews_reviewtask t
    WHERE NOT (SELECT found FROM expired)
      AND t.status = 'open' AND {CLAIM_QUEUES}
      AND (NOT %(cooldown)s OR t.released_by_id IS DISTINCT FROM %(user)s
           OR t.cooldown_until <= %(now)s)
    ORDER BY t.priority DESC, t.due_at, t.id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE reviews_reviewtask t
    SET status = 'claimed', assignee_id = %(user)s, claimed_at = %(now)s,
        lease_expires_at = %(now)s + make_interval(mins => q.lease_minutes),
        fencing_token = t.fencing_token + 1
    FROM picked, reviews_queue q
    WHERE t.id = picked.id AND q.id = t.queue_id
    RETURNING {", ".join(f"t.{name}" for name in TASK_FIELDS)}
), marked AS (
    UPDATE reviews_case c SET status = 'in_review'
    FROM leased WHERE c.id = leased.case_id
    RETURNING c.id, c.reference, c.system_id, c.status
)
SELECT expired.found, leased.*, marked.reference, marked.system_id, marked.status, s.slug,
       {", ".join(f"q.{name}" for name in QUEUE_FIELDS)}
FROM expired LEFT JOIN (
    leased
    JOIN marked ON marked.id = leased.case_id
    JOIN workbench_aisystem s ON s.id = marked.system_id
    JOIN reviews_queue q ON q.id = leased.queue_id
) ON true
"""


def _take_skip_locked(
    user: User, where: _Where, check_expired: bool, cooldown: bool = True
) -> tuple[bool, ReviewTask | None]:
    """Whether expired leases were found, and the task claimed (``CLAIM_SQL``).

    One statement and one round trip: the ORM version took six, and
    composing their SQL cost more CPU than PostgreSQL spent running them.
    The task comes back whole, with its queue, and its case and system
    holding the fields a claim reads (the others load on access)."""
    params = {
        "check_expired": check_expired,
        "cooldown": cooldown,
        "roles": [group.name for group in user.groups.all()],
        "slug": where.slug,
        "queue": where.queue_id,
        "user": user.pk,
        "now": timezone.now(),
    }
    with connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, params)
        expired, *row = cursor.fetchone()
    if row[0] is None:
        return expired, None
    db, n = connection.alias, len(TASK_FIELDS)
    task = ReviewTask.from_db(db, TASK_FIELDS, row[:n])
    reference, system_id, status, slug = row[n : n + 4]
    case = Case.from_db(
        db, ["id", "reference", "system_id", "status"], [task.case_id, reference, system_id, status]
    )
    case.system = AISystem.from_db(db, ["id", "slug"], [system_id, slug])
    task.case = case
    task.queue = Queue.from_db(db, QUEUE_FIELDS, row[n + 4 :])
    task.assignee = user
    return False, task


def _take(user: User, where: _Where) -> ReviewTask | None:
    """SQLite: try the first open tasks in claim order until a compare-and-set
    update wins one."""
    candidates = tasks_claimable(user=user, queue_slug=where.slug, queue_id=where.queue_id)
    now = timezone.now()
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


def task_lease_to(task: ReviewTask, user: User, now: datetime) -> None:
    """Put ``task`` (locked, not saved) under ``user``'s lease, with a new token."""
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
    """Hand a claimed task back to its queue. It is not offered to ``user``
    again for the queue's ``release_cooldown_minutes``, unless nothing else
    is left for them (``task_claim_next``)."""
    task = task_locked_for(task_id=task_id, user=user, fencing_token=fencing_token)
    task_reopen(task, released_by=user)
    trail_append(
        action="case.released",
        actor=Actor.user(user),
        case=task.case.reference,
        system=task.case.system.slug,
        data={
            "task": task.pk,
            "reason": "released",
            "cooldown_until": task.cooldown_until.isoformat(),
        },
    )
    return task


def task_reopen(task: ReviewTask, released_by: User | None = None) -> None:
    """Put ``task`` (locked) back in its queue; released by a reviewer, it
    is on their cooldown for the queue's ``release_cooldown_minutes``."""
    task.status = ReviewTask.Status.OPEN
    task.assignee = None
    task.claimed_at = None
    task.lease_expires_at = None
    fields = LEASE_FIELDS
    if released_by is not None:
        task.released_by = released_by
        task.cooldown_until = timezone.now() + timedelta(
            minutes=task.queue.release_cooldown_minutes
        )
        fields = [*LEASE_FIELDS, "released_by", "cooldown_until"]
    task.save(update_fields=fields)
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
            task_reopen(task)
        trail_append_many(entries)
    return len(tasks)
