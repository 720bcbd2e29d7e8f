"""Reads for intake and review."""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from reviews.access import CaseAccess, case_access, queues_workable, systems_overseen
from reviews.models import (
    Case,
    Decision,
    Policy,
    Queue,
    QueueTaskCount,
    ReasonCode,
    ReviewTask,
    SubjectText,
)
from workbench.errors import Invalid, NotFound, Unavailable
from workbench.models import AISystem, Role, TrailEvent, TrailHead, User
from workbench.services import trail_integrate


def policy_active(*, system: AISystem) -> Policy:
    """The policy version in force: the latest published."""
    policy = Policy.objects.filter(system=system).order_by("-version").first()
    if policy is None:
        raise Unavailable(
            f"the AI system {system.slug!r} has no routing policy yet; "
            "publish one with load_policy",
            "no_policy",
        )
    return policy


def case_get_for_system(*, system: AISystem, reference: str) -> Case:
    """A case of ``system`` by reference; another system's case is not found."""
    case = Case.objects.filter(system=system, reference=reference).first()
    if case is None:
        raise NotFound(f"no case {reference!r}", "case_not_found")
    return case


def case_trail(*, case: Case) -> list[TrailEvent]:
    trail_integrate()  # read your writes (DESIGN §6)
    return list(TrailEvent.objects.filter(case=case.reference).order_by("seq"))


# --- Keeping in step: the cases changed since a cursor (GET /api/v1/cases) ---------------

FEED_SCAN = 2000  # trail events read per step
FEED_SCAN_MAX = 50_000  # and at most per page: a page always moves the cursor on


@dataclass
class CaseChange:
    case: Case
    seq: int  # the latest change of the case up to the page's cursor
    at: str
    appeal_events: list[dict]  # the case's appeal.* events, as exported, oldest first


@dataclass
class CaseFeedPage:
    changes: list[CaseChange]  # by seq
    next_after: int  # the cursor for the next page (the given one when nothing changed)
    has_more: bool


def case_feed(*, system: AISystem, after: int, limit: int) -> CaseFeedPage:
    """The cases of ``system`` that changed after the trail's ``seq``
    ``after``, each once, at its latest change up to the returned cursor.

    Every change of a case writes a trail event, so the trail is the feed:
    its events are read in ``seq`` order and the cursor is the ``seq`` of
    the last one consumed. A case that changes again later comes back on a
    later page, with its later ``seq``; the case's state is read as it is
    now (it may be newer than its ``seq``, never older). Because an event
    is visible only with every lower ``seq`` (the chain is integrated in
    order), a cursor never skips a change that committed late, as a time
    would. The one place the feed reads the trail: whatever changes in how
    events get their ``seq`` has to keep that promise here. A cursor past
    the chain's head is refused (``bad_cursor``)."""
    trail_integrate()  # read your writes (DESIGN §6)
    head = TrailHead.objects.filter(id=1).values_list("seq", flat=True).first() or 0
    if after > head:
        raise Invalid(
            "the cursor is past the end of the trail",
            "bad_cursor",
            fields=[
                {
                    "path": "updated_after",
                    "message": f"{after} is after the trail's last seq ({head}); "
                    "use a next_updated_after this API returned, or 0",
                }
            ],
        )
    latest: dict[str, tuple[int, str]] = {}
    cursor, scanned, more = after, 0, False
    while not more:
        rows = list(
            TrailEvent.objects.filter(system=system.slug, case__isnull=False, seq__gt=cursor)
            .order_by("seq")
            .values_list("seq", "case", "at")[:FEED_SCAN]
        )
        for seq, reference, at in rows:
            if reference not in latest and len(latest) == limit:
                more = True
                break
            latest[reference] = (seq, at)
            cursor = seq
        scanned += len(rows)
        if len(rows) < FEED_SCAN:
            break
        if scanned >= FEED_SCAN_MAX:
            more = True
    cases = {
        case.reference: case
        for case in Case.objects.filter(system=system, reference__in=list(latest))
    }
    appeals: dict[str, list[dict]] = {}
    events = TrailEvent.objects.filter(case__in=list(cases), action__startswith="appeal.").order_by(
        "seq"
    )
    for event in events:
        appeals.setdefault(event.case, []).append(
            {**json.loads(event.body), "prev_hash": event.prev_hash, "hash": event.hash}
        )
    changes = [
        CaseChange(case=cases[reference], seq=seq, at=at, appeal_events=appeals.get(reference, []))
        for reference, (seq, at) in sorted(latest.items(), key=lambda item: item[1][0])
        if reference in cases
    ]
    return CaseFeedPage(changes=changes, next_after=cursor, has_more=more)


def reason_codes_for(*, system: AISystem) -> list[ReasonCode]:
    """The codes a reviewer of ``system`` may pick from: the active ones, by code."""
    return list(ReasonCode.objects.filter(system=system, active=True).order_by("code"))


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


def case_for_reviewer(*, reference: str, user: User, roles: Iterable[str]) -> CaseForReviewer:
    """The case if ``user`` may open it (``reviews.access.case_access``:
    a queue of theirs holds or held it, they acted on it, or they oversee
    its AI system); otherwise ``NotFound``, the same as a case that does not
    exist, so that references do not leak. ``access`` says how."""
    case = (
        Case.objects.select_related("system", "policy", "subject")
        .filter(reference=reference)
        .first()
    )
    if case is None:
        raise NotFound(f"no case {reference!r}", "case_not_found")
    tasks = list(case.tasks.select_related("queue", "assignee").order_by("created_at", "id"))
    access = case_access(case=case, tasks=tasks, user=user, roles=set(roles))
    return CaseForReviewer(case=case, tasks=tasks, access=access)


def case_for_compliance(*, reference: str) -> CaseForReviewer:
    """Any case, read-only, for a compliance officer (who gives a purpose
    first: ``case_view_record``); ``NotFound`` when there is none."""
    case = (
        Case.objects.select_related("system", "policy", "subject")
        .filter(reference=reference)
        .first()
    )
    if case is None:
        raise NotFound(f"no case {reference!r}", "case_not_found")
    tasks = list(case.tasks.select_related("queue", "assignee").order_by("created_at", "id"))
    return CaseForReviewer(case=case, tasks=tasks, access="compliance")


# --- What the decision form offers ---------------------------------------------------------
# One rule each for the Outcome and the Reason select, called by the form, the
# page and the services that check a decision, so that what is offered and
# what is accepted cannot drift apart.

OTHER_REASON = "other"
OTHER_REASON_LABEL = "Other (explained in the rationale)"


@dataclass
class ReasonChoices:
    """The reason codes a person may choose on one case, in the order offered."""

    options: list[tuple[str, str]]  # (code, label)
    catalog: dict[str, ReasonCode]  # the catalog's entry of each code the page may show

    @property
    def codes(self) -> set[str]:
        return {code for code, _ in self.options}


def case_ai_reason_codes(case: Case) -> dict[str, str]:
    """The reason codes the AI gave on ``case``, in order, each with the AI's
    text (``output.reasons``) or none (for claims, ``input.lines[].reason_codes``)."""
    given: dict[str, str] = {}
    output = case.output if isinstance(case.output, dict) else {}
    for reason in output.get("reasons") or []:
        if isinstance(reason, dict) and reason.get("code") not in (None, ""):
            given.setdefault(str(reason["code"]), str(reason.get("text") or ""))
    lines = case.input.get("lines") if isinstance(case.input, dict) else None
    for line in lines if isinstance(lines, list) else []:
        codes = line.get("reason_codes") if isinstance(line, dict) else None
        for code in codes if isinstance(codes, list) else []:
            if code not in (None, ""):
                given.setdefault(str(code), "")
    return given


def case_reason_choices(*, case: Case, blind: bool = False) -> ReasonChoices:
    """What the Reason select offers on ``case``, and all that a decision on
    it may carry: the system's active catalog (by code), then the codes the AI
    gave on this case (overriding never waits for a catalog), then
    ``OTHER_REASON``. ``blind`` (before a blind reviewer commits): the AI's
    codes are left out, since offering them would show them. One query."""
    given = {} if blind else case_ai_reason_codes(case)
    rows = ReasonCode.objects.filter(system_id=case.system_id).filter(
        Q(active=True) | Q(code__in=list(given))
    )
    catalog = {row.code: row for row in rows.order_by("code")}
    options = {
        code: f"{code} — {row.description[:90]}" for code, row in catalog.items() if row.active
    }
    for code, text in given.items():
        if code not in options:
            row = catalog.get(code)
            about = row.description if row is not None else text
            options[code] = (f"{code} — {about[:90]}" if about else code) + " (given by the AI)"
    options.setdefault(OTHER_REASON, OTHER_REASON_LABEL)
    return ReasonChoices(options=list(options.items()), catalog=catalog)


# The outcomes a kind of system usually gives, offered when the policy lists none.
KIND_OUTCOMES = {
    "claim_decision": ("approve", "partial", "deny"),
    "chatbot_answer": ("answered", "escalated", "refused"),
    "content_moderation": ("allow", "restrict", "remove"),
}
RECENT_CASES = 1_000  # how many of the system's latest cases name outcomes too


def case_outcome_choices(*, case: Case, blind: bool = False) -> list[str]:
    """What the Outcome select offers on ``case``: the policy's ``outcomes``
    when it lists them; otherwise (DESIGN §4) the outcomes the policy names
    (``adverse_outcomes``, ``outcome_in`` tests, ``outcome_wording``), those
    of the system's latest ``RECENT_CASES`` cases (one bounded query along
    ``case_system_recent``) and the kind's usual ones, sorted, so that a
    reviewer can always choose one other than the AI's. ``blind``: this case
    itself is left out, so that the list does not depend on its AI outcome."""
    document = case.policy.document
    if document.get("outcomes"):
        return [str(outcome) for outcome in document["outcomes"]]
    named = set(KIND_OUTCOMES.get(case.kind, ()))
    named.update(document.get("adverse_outcomes") or [])
    named.update(document.get("outcome_wording") or {})
    for rule in document.get("rules") or []:
        if isinstance(rule, dict):
            named.update(_outcomes_tested(rule.get("when")))
    recent = Case.objects.filter(system_id=case.system_id).order_by("-created_at")
    if blind:
        recent = recent.exclude(pk=case.pk)
    named.update(recent.values_list("output__outcome", flat=True)[:RECENT_CASES])
    if not blind:
        named.add(case.outcome)
    return sorted(outcome for outcome in named if isinstance(outcome, str) and outcome)


def _outcomes_tested(cond) -> set[str]:
    if not isinstance(cond, dict):
        return set()
    found = set(cond["outcome_in"]) if isinstance(cond.get("outcome_in"), list) else set()
    for name in ("all", "any"):
        for part in cond.get(name) if isinstance(cond.get(name), list) else []:
            found |= _outcomes_tested(part)
    return found | _outcomes_tested(cond.get("not"))


# --- Blind review: what a blind reviewer may see (STYLE 14) ---------------------------------
# Before a reviewer of a blind queue commits to their own outcome, the case
# page, its htmx fragment, its history and its route card are built from the
# lists below and from nothing else: a field, a condition or an event data key
# that is not listed stays hidden, however new it is.

# The parts of the page, named as the trail records them: ``visible`` in
# case.decided, case.reviewed and case.escalated lists what was on screen
# when the person chose the outcome.
BLIND_VIEW = ("case", "input", "rules_on_input", "queue", "lease")
AI_VIEW = (
    "outcome",
    "confidence",
    "reasons",
    "summary",
    "answer",
    "explanation",
    "adverse",
    "rules_on_output",
)
FULL_VIEW = BLIND_VIEW + AI_VIEW

# Route conditions shown to a blind reviewer, with their result: tests of what
# the AI saw (the customer's words, the case's input, metadata and model),
# never of what it said. Any other leaf, and a rule that holds one, is withheld.
BLIND_SHOWN_LEAVES = {"sentiment_below", "text_matches"}
BLIND_SHOWN_FIELD_ROOTS = {"input", "metadata", "model", "kind"}
# For claims, the lines' reason codes are the AI's adjustments, not its input.
BLIND_HIDDEN_FIELD_PARTS = {"reason_codes"}

# The trail's data a blind reviewer may read, per action. An action not
# listed shows who did it and when, without its data.
BLIND_TRAIL = {
    "case.received": ("external_id", "kind", "subject", "model"),
    "case.routed": ("status", "queue", "policy_version"),
    "case.claimed": ("task", "queue", "fencing_token", "lease_expires_at"),
    "case.released": ("task", "reason", "assignee"),
    "case.reassigned": ("task", "from", "to"),
    "case.contested": ("status", "queue"),
    "case.overdue": ("task", "from", "to", "due_at", "reason"),
}
# case.routed also names the rule when the route card may (``RouteView.disclosed``).
BLIND_TRAIL_ROUTE = ("reason", "rule")
BLIND_NOTE = "Parts that would show the AI's recommendation are hidden in blind review."


# --- The route, explained ---------------------------------------------------------------

FIELD_OPS_SHOWN = {
    "eq": "=",
    "ne": "≠",
    "gt": ">",
    "ge": "≥",
    "lt": "<",
    "le": "≤",
    "in": "in",
    "contains": "contains",
    "exists": "exists",
}


@dataclass
class ConditionNode:
    label: str
    result: bool
    blind_ok: bool = True  # a blind reviewer may see it (and every part of it)
    score: float | None = None  # sentiment leaves: the customer's VADER score
    children: list["ConditionNode"] = field(default_factory=list)


@dataclass
class RuleResult:
    rule: str
    matched: bool
    fired: bool  # the rule that routed the case
    tree: ConditionNode


@dataclass
class RouteView:
    """The route as the page shows it. Blind, a rule that tests the AI's
    outcome or confidence is withheld whole (its name may tell the outcome:
    ``adverse-needs-human``), and so is anything that would tell its result:
    which rule routed the case when one such rule comes before it, and a QA
    sample or no match at all, which say that every rule failed."""

    reason: str  # "rule", "qa_sample", "system_stopped", "default"; "" when withheld
    rule: str | None  # the rule that routed the case, when shown
    queue: str | None
    policy_version: int | None
    rules: list[RuleResult]  # the rules shown, in policy order
    withheld: int = 0  # rules withheld from a blind reviewer

    @property
    def disclosed(self) -> bool:
        return bool(self.reason)


def route_explained(*, route: dict, blind: bool) -> RouteView:
    """Every rule of the route with its result and its condition tree, and
    why the case came to a person; ``blind``: only what BLIND_* allows."""
    rules: list[RuleResult] = []
    withheld = 0
    fired_shown = False  # the rule that routed the case is shown, and none withheld before it
    for entry in route.get("conditions") or []:
        tree = _condition_node(entry.get("when") or {})
        fired = route.get("reason") == "rule" and entry.get("rule") == route.get("rule")
        if blind and not tree.blind_ok:
            withheld += 1
            continue
        if fired and not withheld:
            fired_shown = True
        rules.append(RuleResult(str(entry.get("rule")), bool(entry.get("matched")), fired, tree))
    reason = str(route.get("reason") or "")
    # With a rule withheld, a QA sample or no match says "none matched", and
    # the rule that routed the case says that those before it did not.
    telling = reason != "system_stopped" and not (reason == "rule" and fired_shown)
    if blind and withheld and telling:
        reason = ""
        for rule in rules:
            rule.fired = False
    return RouteView(
        reason=reason,
        rule=route.get("rule") if reason else None,
        queue=route.get("queue"),
        policy_version=route.get("policy_version"),
        rules=rules,
        withheld=withheld,
    )


def _condition_node(cond: dict) -> ConditionNode:
    result = bool(cond.get("result"))
    if "field" in cond:
        op, path = cond.get("op"), str(cond.get("field"))
        shown = f"{path} {FIELD_OPS_SHOWN.get(op, op)}"
        if op != "exists" or "value" in cond:
            shown += f" {json.dumps(cond.get('value'), ensure_ascii=False)}"
        parts = path.split(".")
        blind_ok = parts[0] in BLIND_SHOWN_FIELD_ROOTS and not (
            set(parts) & BLIND_HIDDEN_FIELD_PARTS
        )
        return ConditionNode(shown, result, blind_ok)
    for name in ("all", "any"):
        if name in cond:
            children = [_condition_node(part) for part in cond[name]]
            label = "all of these" if name == "all" else "any of these"
            ok = all(child.blind_ok for child in children)
            return ConditionNode(label, result, ok, None, children)
    if "not" in cond:
        child = _condition_node(cond["not"])
        return ConditionNode("not", result, child.blind_ok, None, [child])
    blind_ok = any(name in cond for name in BLIND_SHOWN_LEAVES)
    if "outcome_in" in cond:
        label = "AI outcome is one of " + ", ".join(map(str, cond["outcome_in"]))
    elif "confidence_below" in cond:
        label = f"confidence below {cond['confidence_below']}"
    elif "confidence_at_least" in cond:
        label = f"confidence at least {cond['confidence_at_least']}"
    elif "sentiment_below" in cond:
        score = cond.get("score")
        return ConditionNode(
            f"customer sentiment below {cond['sentiment_below']}",
            result,
            blind_ok,
            score=score if isinstance(score, int | float) else None,
        )
    elif "text_matches" in cond:
        label = f"customer's latest message matches {cond['text_matches']}"
    else:
        label = json.dumps({k: v for k, v in cond.items() if k != "result"}, ensure_ascii=False)
    return ConditionNode(label, result, blind_ok)


# --- The case's trail, for people ------------------------------------------------------

ACTION_LABELS = {
    "case.received": "Received from the AI system",
    "case.routed": "Routed",
    "case.claimed": "Claimed",
    "case.released": "Released",
    "case.reassigned": "Reassigned",
    "case.reviewed": "Review recorded",
    "case.decided": "Decided",
    "case.escalated": "Escalated",
    "case.contested": "Contested",
    "case.overdue": "Overdue: moved to the supervisors",
    "case.lease_renewed": "Lease renewed",
    "case.recused": "Recused (conflict of interest)",
    "case.viewed": "Read by a compliance officer",
    "appeal.filed": "Appeal filed by the customer",
    "appeal.statement_opened": "Customer's statement opened",
    "appeal.decided": "Appeal decided",
}


@dataclass
class TimelineEntry:
    seq: int
    at: datetime
    action: str
    label: str
    actor: str
    details: list[tuple[str, str]]
    note: str = ""  # why details are hidden


def case_timeline(
    *, case: Case, hide_reviews: bool, blind: bool, route_disclosed: bool = False
) -> list[TimelineEntry]:
    """The case's trail events, oldest first, with actor and data read from
    the hashed body. ``hide_reviews`` keeps the data of a first review out of
    a second reviewer's sight; ``blind`` shows only the data ``BLIND_TRAIL``
    allows (and, when ``route_disclosed``, the rule that routed the case)."""
    entries = []
    for event in case_trail(case=case):
        body = json.loads(event.body)
        action = body.get("action", "")
        actor = body.get("actor") or {}
        data = body.get("data") or {}
        note = ""
        if hide_reviews and action == "case.reviewed":
            data = {}
            note = "The first of two reviews is recorded; it stays hidden until both are in."
        elif blind:
            allowed = BLIND_TRAIL.get(action, ())
            if action == "case.routed" and route_disclosed:
                allowed += BLIND_TRAIL_ROUTE
            shown = {key: value for key, value in data.items() if key in allowed}
            note = BLIND_NOTE if len(shown) < len(data) else ""
            data = shown
        entries.append(
            TimelineEntry(
                seq=event.seq,
                at=datetime.fromisoformat(body["at"]),
                action=action,
                label=ACTION_LABELS.get(action, action),
                actor=f"{actor.get('type', '?')} {actor.get('id', '?')}",
                details=[(key, _shown(value)) for key, value in data.items()],
                note=note,
            )
        )
    return entries


def _shown(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        # Digests are for verification, not for reading: their start is enough.
        if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            return value[:12] + "…"
        return value
    return json.dumps(value, ensure_ascii=False)


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


def case_decisions(*, case: Case) -> list[Decision]:
    """The people's decisions on the case, oldest first, with who made them."""
    return list(
        Decision.objects.filter(case=case)
        .select_related("reviewer", "task__queue")
        .order_by("created_at", "id")
    )


# --- What the customer wrote ----------------------------------------------------------------


def case_input_opened(*, case: Case):
    """The case's input as the AI system sent it, for people who may read it:
    the customer's turns of its conversation get their words back from where
    they are sealed (``SubjectText``). Once erased (or for a subject erased
    before the case came in) such a turn has ``"erased": true`` and no text."""
    data = case.input
    conversation = data.get("conversation") if isinstance(data, dict) else None
    if not isinstance(conversation, list):
        return data
    sealed = [
        index
        for index, turn in enumerate(conversation)
        if isinstance(turn, dict) and turn.get("role") == "customer" and "text" not in turn
    ]
    if not sealed:
        return data  # no customer turn, or a case stored before turns were sealed
    from reviews.services.subjects import subject_text_open  # services import selectors

    row = SubjectText.objects.filter(case=case, kind=SubjectText.Kind.CONVERSATION).first()
    words = (subject_text_open(row, subject=case.subject) if row else None) or {}
    turns = list(conversation)
    for index in sealed:
        text = words.get(str(index))
        turns[index] = {
            **turns[index],
            **({"text": text} if text is not None else {"erased": True}),
        }
    return {**data, "conversation": turns}


@dataclass
class Contest:
    at: datetime
    reason: str | None  # None once erased


def case_contests(*, case: Case) -> list[Contest]:
    """Why the case was contested, each time, oldest first: the customer's
    words, sealed, shown to whoever reviews the case."""
    from reviews.services.subjects import subject_text_open  # services import selectors

    rows = SubjectText.objects.filter(case=case, kind=SubjectText.Kind.CONTEST).order_by(
        "created_at", "pk"
    )
    return [Contest(row.created_at, subject_text_open(row, subject=case.subject)) for row in rows]
