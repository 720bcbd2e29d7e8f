"""Reads for appeals: the policy's appeal rules, the appeal window, who is
kept from deciding (the one rule of independence, ``reviews.access``), and
the appeal reviewer's reads."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from escalations.models import Appeal

# The one rule of independence (everyone who acted and their whole reporting
# line), re-exported for the appeal services.
from reviews.access import (  # noqa: F401
    appeal_conflicted,
    case_conflicted_users,
    queue_workable_by,
)
from reviews.models import Case, Queue
from workbench.errors import NotFound, Unavailable
from workbench.models import Role, User

# --- The policy's appeal rules ----------------------------------------------------------


@dataclass(frozen=True)
class AppealRules:
    """What the policy that decided a case says about appealing it (DESIGN §4).
    Policies published before a setting existed get its default here."""

    window_days: int
    deadline_days: int
    urgent_hours: int
    allowed: int
    queue: str | None
    adverse: tuple[str, ...]
    outcomes: tuple[str, ...] | None  # None: the policy accepts any outcome
    outcome_wording: dict
    external_review: str

    @classmethod
    def of(cls, case: Case) -> "AppealRules":
        document = case.policy.document
        return cls(
            window_days=document.get("appeal_window_days", 184),
            deadline_days=document.get("appeal_deadline_days", 30),
            urgent_hours=document.get("appeal_urgent_hours", 72),
            allowed=document.get("appeals_allowed", 1),
            queue=document.get("appeal_queue"),
            adverse=tuple(document.get("adverse_outcomes", [])),
            outcomes=tuple(document["outcomes"]) if document.get("outcomes") else None,
            outcome_wording=document.get("outcome_wording") or {},
            external_review=document.get("external_review", ""),
        )


def appeal_queue(*, case: Case) -> Queue:
    """The policy's ``appeal_queue``, else the system's first queue of appeal
    reviewers (a policy published before the default existed); never another
    system's queue."""
    slug = AppealRules.of(case).queue
    queues = Queue.objects.filter(system_id=case.system_id)
    queues = queues.filter(slug=slug) if slug else queues.filter(role=Role.APPEAL_REVIEWER)
    queue = queues.order_by("slug").first()
    if queue is None:
        raise Unavailable(
            f"the AI system {case.system.slug!r} has no appeals queue: its policy must "
            "declare a queue with the appeal_reviewer role",
            "no_appeal_queue",
        )
    return queue


def case_is_urgent(case: Case) -> bool:
    """An AI system marks a case urgent with ``metadata.urgent: true``: its
    appeal is decided within the policy's ``appeal_urgent_hours``."""
    return isinstance(case.metadata, dict) and case.metadata.get("urgent") is True


# --- The appeal window ----------------------------------------------------------------------


@dataclass(frozen=True)
class AppealWindow:
    """Whether the case can be appealed now, and if not, why (``code``)."""

    code: str  # open, not_final, appeal_open, no_appeals_left, closed
    issued_at: datetime | None = None  # when the decision now in force was issued
    closes_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.code == "open"


def appeal_window(
    *, case: Case, appeals: list[Appeal], now: datetime | None = None
) -> AppealWindow:
    """The window runs from when the notice of the decision in force was
    issued: the case's final decision, or the decision on its latest appeal."""
    now = now or timezone.now()
    rules = AppealRules.of(case)
    if any(appeal.status != Appeal.Status.DECIDED for appeal in appeals):
        return AppealWindow("appeal_open")
    if case.status == Case.Status.FINALIZED:
        issued_at = case.finalized_at
    elif case.status == Case.Status.APPEAL_DECIDED and appeals:
        issued_at = appeals[-1].decided_at
    else:
        return AppealWindow("not_final")
    closes_at = issued_at + timedelta(days=rules.window_days)
    if len(appeals) >= rules.allowed:
        return AppealWindow("no_appeals_left", issued_at, closes_at)
    if now >= closes_at:
        return AppealWindow("closed", issued_at, closes_at)
    return AppealWindow("open", issued_at, closes_at)


# --- Staff reads ----------------------------------------------------------------------------


def appeal_for_staff(*, reference: str, roles: set[str], user: User | None = None) -> Appeal:
    """The latest appeal of the case, if one of ``roles`` is the role of the
    queue its task is in and ``user`` may work that queue (its members) and
    is independent of the case (``appeal_conflicted``: not someone who acted
    on it, nor anyone in their reporting line); otherwise ``NotFound``
    (references do not leak)."""
    appeal = (
        Appeal.objects.select_related(
            "case__system", "case__policy", "case__subject", "task__queue", "task__assignee"
        )
        .filter(case__reference=reference)
        .order_by("-number")
        .first()
    )
    if appeal is None or appeal.task is None or appeal.task.queue.role not in roles:
        raise NotFound(f"no appeal of {reference!r}", "appeal_not_found")
    if user is not None and appeal.task.assignee_id != user.pk and _kept_from(appeal, user):
        raise NotFound(f"no appeal of {reference!r}", "appeal_not_found")
    return appeal


def _kept_from(appeal: Appeal, user: User) -> bool:
    task = appeal.task
    if not queue_workable_by(queue=task.queue, user=user):
        return True
    return task.queue.role == Role.APPEAL_REVIEWER and appeal_conflicted(task=task, user=user)
