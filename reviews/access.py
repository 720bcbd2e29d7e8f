"""Who may work which queue, open which case, and decide which appeal
(DESIGN §3): the one place for these rules, read by the claim, the queue
pages, the case page, the supervisors' board and the appeal services.

- A queue is worked by the people with its role; when it lists members,
  by those of them only.
- A reviewer opens a case while it is (or was) in a queue they may work, or
  when they acted on it; a supervisor opens (read-only) the cases of the AI
  systems they oversee; anything else is ``NotFound``, as for a case that
  does not exist.
- An appeal is kept from everyone who acted on the case and from their whole
  reporting line, up and down (``workbench.selectors.reporting_line``).
"""

import json
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from reviews.models import Case, Queue, ReviewTask
from workbench.errors import NotFound
from workbench.models import AISystem, Role, TrailEvent, User
from workbench.selectors import reporting_line
from workbench.services.trail import format_at, trail_integrate

Membership = Queue.members.through


def queues_workable(*, user: User, roles: Iterable[str] | None = None) -> QuerySet[Queue]:
    """The queues ``user`` may work: of one of their roles (``roles``, else
    their groups), and listing no members or listing them."""
    if roles is None:
        roles = [group.name for group in user.groups.all()]
    listed = Membership.objects.filter(queue=OuterRef("pk"))
    return Queue.objects.filter(role__in=list(roles)).filter(
        ~Exists(listed) | Exists(listed.filter(user=user))
    )


def queue_workable_by(*, queue: Queue, user: User) -> bool:
    """Whether ``user`` may work ``queue`` by its membership (the role is
    checked where the role needed depends on the task)."""
    members = set(queue.members.values_list("pk", flat=True))
    return not members or user.pk in members


def systems_overseen(*, user: User) -> QuerySet[AISystem]:
    """The AI systems whose queues a supervisor's board lists and whose cases
    they open: those without a supervisors' queue, and those with one that
    ``user`` may work (its members, or everyone when it lists none)."""
    supervisor_queues = Queue.objects.filter(system=OuterRef("pk"), role=Role.SUPERVISOR)
    workable = queues_workable(user=user, roles=[Role.SUPERVISOR]).filter(system=OuterRef("pk"))
    return AISystem.objects.filter(~Exists(supervisor_queues) | Exists(workable))


def case_actors(*, case: Case, before: datetime | None = None) -> set[str]:
    """The usernames of the people who acted on the case (its trail's user
    actors), until ``before`` when given."""
    trail_integrate()  # every committed action counts (DESIGN §6: read your writes)
    # A compliance officer's reading (case.viewed) is no part in the case.
    events = TrailEvent.objects.filter(case=case.reference).exclude(action="case.viewed")
    if before is not None:
        events = events.filter(at__lt=format_at(before))
    return {username for _, username in _user_actors(events)}


def _user_actors(events: QuerySet[TrailEvent]) -> Iterable[tuple[str, str]]:
    """(case reference, username) of each event a user acted in."""
    for reference, body in events.values_list("case", "body"):
        actor = json.loads(body).get("actor") or {}
        if actor.get("type") == "user":
            yield reference, actor.get("id")


def case_conflicted_users(*, case: Case, before: datetime) -> set[int]:
    """Who may not decide an appeal of ``case`` filed at ``before``: every
    person who acted on the case until then (claimed, reviewed, decided,
    escalated, recused, decided an earlier appeal), everyone above any of
    them in the reporting line and everyone below, transitively. Read anew at
    each use, so that a change of managers while the appeal is open counts."""
    usernames = case_actors(case=case, before=before)
    actors = User.objects.filter(username__in=usernames).values_list("pk", flat=True)
    return reporting_line(user_ids=actors)


def appeal_conflicted(*, task: ReviewTask, user: User) -> bool:
    """Whether ``user`` may not take the appeal ``task`` (filed when the task
    was created): excluded on it, or in the line of someone who acted."""
    if task.excluded.filter(pk=user.pk).exists():
        return True
    return user.pk in case_conflicted_users(case=task.case, before=task.created_at)


# --- Opening a case ---------------------------------------------------------------------------


class CaseAccess:
    """How a person opens a case: ``work`` (a queue of theirs holds or held
    it), ``acted`` (they acted on it), ``supervise`` (read-only, with the
    supervisor's actions)."""

    WORK = "work"
    ACTED = "acted"
    SUPERVISE = "supervise"


def case_access(*, case: Case, tasks: list[ReviewTask], user: User, roles: set[str]) -> str:
    """How ``user`` may open ``case`` (``CaseAccess``), or ``NotFound``."""
    queue_ids = {task.queue_id for task in tasks}
    workable = set(
        queues_workable(user=user, roles=roles)
        .filter(pk__in=queue_ids)
        .values_list("pk", flat=True)
    )
    for task in tasks:
        if task.queue_id not in workable:
            continue
        # An appeal's queue lets in only those independent of the case.
        if task.kind != ReviewTask.Kind.APPEAL or not appeal_conflicted(task=task, user=user):
            return CaseAccess.WORK
    if Role.SUPERVISOR in roles and systems_overseen(user=user).filter(pk=case.system_id).exists():
        return CaseAccess.SUPERVISE
    if any(task.assignee_id == user.pk for task in tasks) or (
        user.get_username() in case_actors(case=case)
    ):
        return CaseAccess.ACTED
    raise NotFound(f"no case {case.reference!r}", "case_not_found")


def task_people(*, task: ReviewTask, roles: Iterable[str]) -> QuerySet[User]:
    """The active people who may be handed ``task``: one of ``roles``, a
    member of its queue when it lists members, not excluded."""
    people = User.objects.filter(is_active=True, groups__name__in=list(roles))
    members = Membership.objects.filter(queue_id=task.queue_id)
    if members.exists():
        people = people.filter(pk__in=members.values("user_id"))
    return people.exclude(Q(pk__in=task.excluded.values("pk"))).distinct()


def cases_openable(*, cases: list[Case], user: User, roles: set[str]) -> set:
    """The pks of those of ``cases`` that ``user`` may open by ``case_access``
    (any way: work, supervise, acted), in a fixed number of queries whatever
    their number, for lists such as the staff search. Each way in is the one
    ``case_access`` takes, read for all the cases at once; an appeal task is
    checked for conflicts (``appeal_conflicted``) only for a case that no
    other way opens."""
    pks = {case.pk for case in cases}
    if not pks:
        return set()
    tasks = ReviewTask.objects.filter(case_id__in=pks)
    workable = queues_workable(user=user, roles=roles).values("pk")
    openable = set(
        tasks.filter(queue__in=workable)
        .exclude(kind=ReviewTask.Kind.APPEAL)
        .values_list("case_id", flat=True)
    )
    if Role.SUPERVISOR in roles:
        overseen = set(systems_overseen(user=user).values_list("pk", flat=True))
        openable |= {case.pk for case in cases if case.system_id in overseen}
    openable |= set(tasks.filter(assignee=user).values_list("case_id", flat=True))
    rest = {case.reference: case.pk for case in cases if case.pk not in openable}
    if rest:
        trail_integrate()  # as case_actors: every committed action counts
        events = TrailEvent.objects.filter(case__in=list(rest)).exclude(action="case.viewed")
        username = user.get_username()
        openable |= {rest[ref] for ref, actor in _user_actors(events) if actor == username}
    appeals = (
        tasks.filter(queue__in=workable, kind=ReviewTask.Kind.APPEAL)
        .exclude(case_id__in=openable)
        .select_related("case")
    )
    for task in appeals:
        if task.case_id not in openable and not appeal_conflicted(task=task, user=user):
            openable.add(task.case_id)
    return openable
