"""Assigning review tasks to people (not Celery tasks: those are in ``reviews.tasks``):
claiming, leases, fencing tokens, release and expiry (DESIGN §3).

Lock order everywhere a task and its case change: the task, then the case,
then (inside ``trail_append``) the chain head; for a claim on PostgreSQL the
head is locked last of all, while the transaction commits.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from reviews.models import Case, Queue, ReviewTask
from workbench.db import prepared_statements
from workbench.errors import WorkbenchError
from workbench.models import AISystem, Role, User
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


def tasks_claimable(*, user: User, queue_slug: str | None = None, queue_id: int | None = None):
    """Open tasks ``user`` may take, in claim order: highest priority, then
    earliest due. Role decides the queues (``queue_id`` one queue;
    ``queue_slug`` the queues of that slug, in any AI system); an exclusion
    (conflict of interest) removes single tasks. The queues are resolved to
    ids first so that the query reads the task table alone, along the
    partial index of open tasks in claim order, and stops at the first row
    it may take."""
    roles = [group.name for group in user.groups.all()]
    queues = Queue.objects.filter(role__in=roles)
    if queue_slug:
        queues = queues.filter(slug=queue_slug)
    if queue_id:
        queues = queues.filter(pk=queue_id)
    return (
        ReviewTask.objects.filter(
            status=ReviewTask.Status.OPEN, queue_id__in=list(queues.values_list("pk", flat=True))
        )
        .exclude(excluded=user)
        .order_by("-priority", "due_at", "id")
    )


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
    if connection.features.has_select_for_update_skip_locked:
        return _claim_skip_locked(user, where)
    task_leases_expire()
    with transaction.atomic():
        task = _take(user, where)
        if task is None:
            return None
        Case.objects.filter(pk=task.case_id).update(status=Case.Status.IN_REVIEW)
        _record_claim(user, task)
    return task


@dataclass(frozen=True)
class _Where:
    """Which of the user's queues a claim looks in (None: any)."""

    slug: str | None = None
    queue_id: int | None = None


def _claim_skip_locked(user: User, where: _Where) -> ReviewTask | None:
    # The look for expired leases rides along in the claim's statement: when
    # there are some, it claims nothing, they go back to their queues, and
    # the claim runs again (without looking, so it cannot go round forever).
    check_expired = True
    while True:
        # Planning the claim's statement took ~1.5 ms of the database's CPU,
        # more than running it: its plan is kept for the connection.
        with transaction.atomic(), prepared_statements():
            expired, task = _take_skip_locked(user, where, check_expired)
            if task is not None:
                _record_claim(user, task)
                return task
        if not expired:
            return None
        task_leases_expire()
        check_expired = False


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
# returned to their queues, walk the open tasks of the user's queues in claim
# order along task_open_claim_order, skip the rows other claimers hold and
# the tasks the user is excluded from, lease the first, mark its case in
# review, and return what the caller and the trail event need. The queue ids
# are an InitPlan, so the task table is read alone and the walk stops at the
# first row it may take (see tasks_claimable).
TASK_FIELDS = [f.attname for f in ReviewTask._meta.concrete_fields]
QUEUE_FIELDS = [f.attname for f in Queue._meta.concrete_fields]
CLAIM_SQL = f"""
WITH expired AS (
    SELECT %(check_expired)s AND EXISTS (
        SELECT 1 FROM reviews_reviewtask
        WHERE status = 'claimed' AND lease_expires_at <= %(now)s
    ) AS found
), picked AS (
    SELECT t.id FROM reviews_reviewtask t
    WHERE NOT (SELECT found FROM expired)
      AND t.status = 'open'
      AND t.queue_id = ANY(ARRAY(
          SELECT q.id FROM reviews_queue q
          WHERE q.role = ANY(%(roles)s) AND (%(slug)s::text IS NULL OR q.slug = %(slug)s)
            AND (%(queue)s::bigint IS NULL OR q.id = %(queue)s)
      ))
      AND NOT EXISTS (
          SELECT 1 FROM reviews_reviewtask_excluded x
          WHERE x.reviewtask_id = t.id AND x.user_id = %(user)s
      )
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
    user: User, where: _Where, check_expired: bool
) -> tuple[bool, ReviewTask | None]:
    """Whether expired leases were found, and the task claimed (``CLAIM_SQL``).

    One statement and one round trip: the ORM version took six, and
    composing their SQL cost more CPU than PostgreSQL spent running them.
    The task comes back whole, with its queue, and its case and system
    holding the fields a claim reads (the others load on access)."""
    params = {
        "check_expired": check_expired,
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


# --- Queue counts ---------------------------------------------------------------------------

FOLD_SQL = """
WITH folded AS (
    DELETE FROM reviews_queuetaskcount
    WHERE id IN (SELECT id FROM reviews_queuetaskcount WHERE slot <> 0 FOR UPDATE SKIP LOCKED)
    RETURNING queue_id, open, claimed
), merged AS (
    INSERT INTO reviews_queuetaskcount (queue_id, slot, open, claimed)
    SELECT queue_id, 0, sum(open), sum(claimed) FROM folded GROUP BY queue_id ORDER BY queue_id
    ON CONFLICT (queue_id, slot) DO UPDATE
    SET open = reviews_queuetaskcount.open + EXCLUDED.open,
        claimed = reviews_queuetaskcount.claimed + EXCLUDED.claimed
)
SELECT count(*) FROM folded
"""


def queue_task_counts_fold() -> int:
    """Fold the per-connection rows of the queue counts into one row per
    queue (PostgreSQL; see ``QueueTaskCount``), so that a queue's counts stay
    a sum of a few rows however many connections came and went. Rows of
    transactions still running are locked and left for the next fold; the
    slot-0 rows are written in queue order, so two folds cannot deadlock.
    Returns how many rows were folded. Derived data: no trail event."""
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(FOLD_SQL)
        return cursor.fetchone()[0]
