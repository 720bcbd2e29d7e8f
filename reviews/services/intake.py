"""Intake: AI outputs come in, are routed, and land in the trail (DESIGN §4, §5)."""

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from pydantic import ValidationError

from reviews.models import Case, Policy, Queue, ReviewTask, Subject
from reviews.routing import Facts, Route, route_evaluate
from reviews.schemas import CaseIn
from reviews.selectors import policy_active
from reviews.services.notices import notice_token, notice_token_hash
from reviews.services.subjects import contact_open, contact_seal
from reviews.services.webhooks import case_webhook, cases_routed_webhooks
from workbench.db import bulk_insert
from workbench.errors import Conflict, Invalid, NotFound, WorkbenchError
from workbench.models import AISystem
from workbench.services.trail import (
    Actor,
    TrailEntry,
    trail_append,
    trail_append_many,
    trail_prepare,
)

REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I


@dataclass
class IngestResult:
    """One item's fate: 201 created, 200 same as before, 409 conflict, 422 invalid."""

    status: int
    case: Case | None = None
    error: WorkbenchError | None = None


@dataclass
class _Pending:
    index: int
    item: CaseIn
    digest: str
    route: Route | None = None
    extra: dict = field(default_factory=dict)


def new_reference() -> str:
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"WB-{chars[:4]}-{chars[4:]}"


def invalid_from_validation(exc: ValidationError) -> Invalid:
    """A pydantic error as ``Invalid`` naming every bad field path."""
    fields = []
    for problem in exc.errors(include_url=False):
        path = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"]
        if not path and message.startswith("Value error, "):
            # model-level checks name their own path: "input.conversation: ..."
            path, _, message = message.removeprefix("Value error, ").partition(": ")
        fields.append({"path": path or "(body)", "message": message})
    return Invalid("the case is invalid", "invalid", fields=fields)


def case_ingest(*, system: AISystem, item: CaseIn) -> IngestResult:
    """Submit one AI output. Raises on invalid input or conflict."""
    (result,) = case_ingest_batch(system=system, items=[item])
    if result.error is not None:
        raise result.error
    return result


def case_ingest_batch(
    *, system: AISystem, items: list[CaseIn | WorkbenchError]
) -> list[IngestResult]:
    """Submit many outputs at once. Each item gets its own result, in order;
    valid items are stored even when others fail. The whole batch is written
    in one transaction; the trail head is locked only for its last step."""
    policy = policy_active(system=system)
    results: list[IngestResult | None] = [None] * len(items)
    pending: dict[str, _Pending] = {}
    for index, item in enumerate(items):
        if isinstance(item, WorkbenchError):
            results[index] = IngestResult(item.status, error=item)
            continue
        problem = _item_problem(item, policy, pending)
        if problem is not None:
            results[index] = IngestResult(problem.status, error=problem)
            continue
        pending[item.external_id] = _Pending(index, item, _body_digest(item))

    # Rules are evaluated before any lock is taken: they are pure and the
    # slowest part (sentiment, regexes).
    for entry in pending.values():
        entry.route = _route(entry.item, policy, stopped=False)

    if pending:
        for index, result in _store_settling_races(system, policy, pending):
            results[index] = result
    return results  # type: ignore[return-value]


def _store_settling_races(system, policy, pending) -> list[tuple[int, IngestResult]]:
    # Two ingesters may both find a case (or subject) new and both insert it:
    # the unique constraint stops the second, which then looks again and
    # answers 200 or 409. Two batches updating the same subjects may deadlock:
    # PostgreSQL aborts one, which runs again. No lock is held while cases
    # are written; the chain head is locked only for the last step.
    for attempt in range(5):
        try:
            with transaction.atomic():
                return _store(system, policy, pending)
        except (IntegrityError, OperationalError) as exc:
            retry = isinstance(exc, IntegrityError) or _is_deadlock(exc)
            if not retry or attempt == 4:
                raise
    raise AssertionError("unreachable")


def _is_deadlock(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == "40P01"


def _item_problem(item: CaseIn, policy: Policy, pending: dict) -> WorkbenchError | None:
    outcomes = policy.document.get("outcomes")
    if outcomes is not None and item.output.outcome not in outcomes:
        return Invalid(
            "the case is invalid",
            fields=[
                {
                    "path": "output.outcome",
                    "message": f"unknown outcome {item.output.outcome!r}; "
                    f"this system's outcomes are {', '.join(outcomes)}",
                }
            ],
        )
    if item.external_id in pending:
        return Invalid(
            "the case is invalid",
            "duplicate_in_batch",
            fields=[
                {
                    "path": "external_id",
                    "message": f"{item.external_id!r} appears earlier in this batch "
                    f"(item {pending[item.external_id].index})",
                }
            ],
        )
    return None


def json_digest(value) -> str:
    """SHA-256 of ``value`` as JSON with sorted keys and no spaces."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _body_digest(item: CaseIn) -> str:
    return json_digest(item.model_dump(mode="json"))


def _route(item: CaseIn, policy: Policy, *, stopped: bool) -> Route:
    facts = Facts(
        kind=item.kind,
        input=item.input,
        output=item.output.model_dump(mode="json"),
        confidence=item.confidence,
        metadata=item.metadata,
        model=item.model.model_dump(),
        explanation=item.explanation,
    )
    return route_evaluate(
        policy.document,
        version=policy.version,
        facts=facts,
        external_id=item.external_id,
        stopped=stopped,
    )


def _store(
    system: AISystem, policy: Policy, pending: dict[str, _Pending]
) -> list[tuple[int, IngestResult]]:
    if AISystem.objects.filter(pk=system.pk, stopped=True).exists():
        for entry in pending.values():
            entry.route = _route(entry.item, policy, stopped=True)

    done: list[tuple[int, IngestResult]] = []
    existing = {
        case.external_id: case
        for case in Case.objects.filter(system=system, external_id__in=list(pending))
    }
    fresh = []
    for external_id, entry in pending.items():
        case = existing.get(external_id)
        if case is None:
            fresh.append(entry)
        elif case.body_digest == entry.digest:
            done.append((entry.index, IngestResult(200, case=case)))
        else:
            conflict = Conflict(
                f"external_id {external_id!r} was submitted before with a different body "
                f"(case {case.reference})"
            )
            done.append((entry.index, IngestResult(409, error=conflict)))
    if not fresh:
        return done

    subjects = _subjects_upsert(system, [entry.item for entry in fresh])
    queues = {
        q.slug: q
        for q in Queue.objects.filter(system=system, slug__in={e.route.queue for e in fresh})
    }
    references = _unique_references(len(fresh))
    now = timezone.now()
    cases, tasks, trail = [], [], []
    for entry, reference in zip(fresh, references, strict=True):
        item, route = entry.item, entry.route
        case = Case(
            reference=reference,
            system=system,
            external_id=item.external_id,
            kind=item.kind,
            subject=subjects[item.subject.reference],
            model_name=item.model.name,
            model_version=item.model.version,
            input=item.input,
            output=item.output.model_dump(mode="json"),
            confidence=item.confidence,
            explanation=item.explanation,
            metadata=item.metadata,
            body_digest=entry.digest,
            policy=policy,
            route=route.as_dict(),
            notice_token_hash=notice_token_hash(notice_token(reference)),
        )
        if route.needs_human:
            case.status = Case.Status.PENDING_REVIEW
            queue = queues[route.queue]
            tasks.append(
                ReviewTask(
                    case=case,
                    kind=route.task_kind,
                    queue=queue,
                    priority=route.priority,
                    due_at=now + timedelta(hours=queue.sla_hours),
                )
            )
        else:
            case.status = Case.Status.FINALIZED
            case.final_outcome = item.output.outcome
            case.decided_by = Case.DecidedBy.AI
            case.finalized_at = now
        cases.append(case)
        trail += _intake_events(system, case, item, route)
    trail = trail_prepare(trail)
    bulk_insert(cases)
    bulk_insert(tasks)
    cases_routed_webhooks(system=system, cases=cases)
    trail_append_many(trail)  # last: the chain head stays locked until commit
    done += [
        (entry.index, IngestResult(201, case=case))
        for entry, case in zip(fresh, cases, strict=True)
    ]
    return done


def _intake_events(system: AISystem, case: Case, item: CaseIn, route: Route) -> list[TrailEntry]:
    actor = Actor.system(system.slug)
    received = {
        "external_id": item.external_id,
        "kind": item.kind,
        "subject": item.subject.reference,
        "model": {"name": item.model.name, "version": item.model.version},
        "outcome": item.output.outcome,
        "reason_codes": [reason.code for reason in item.output.reasons],
        "confidence": item.confidence,
        "body_sha256": case.body_digest,
    }
    # Every condition's result is on the case's route; the event names the
    # rules that matched and pins the whole route by its digest, which keeps
    # the event small (canonicalizing a large tree is the cost of an event).
    routed = {
        "status": case.status,
        "reason": route.reason,
        "rule": route.rule,
        "queue": route.queue,
        "task": route.task_kind,
        "policy_version": route.policy_version,
        "matched": [result["rule"] for result in route.conditions if result["matched"]],
        "route_sha256": json_digest(case.route),
        "adverse": route.adverse,
        "segments": route.segments,
    }
    if case.status == Case.Status.FINALIZED:
        routed["final_outcome"] = case.final_outcome
        routed["decided_by"] = case.decided_by
    return [
        TrailEntry("case.received", actor, case.reference, system.slug, received),
        TrailEntry("case.routed", actor, case.reference, system.slug, routed),
    ]


def _subjects_upsert(system: AISystem, items: list[CaseIn]) -> dict[str, Subject]:
    """The subjects of ``items`` by reference, creating the new ones. The
    latest contact details and locale given for a subject win; a subject is
    written only when they changed."""
    latest = {item.subject.reference: item.subject for item in items}
    subjects = {
        s.reference: s for s in Subject.objects.filter(system=system, reference__in=list(latest))
    }
    created = []
    for reference, given in sorted(latest.items()):  # one order for every writer
        contact = {k: v for k, v in (("name", given.name), ("email", given.email)) if v}
        subject = subjects.get(reference)
        if subject is None:
            subject = Subject(system=system, reference=reference, locale=given.locale)
            if contact:
                contact_seal(subject, contact)
            subjects[reference] = subject
            created.append(subject)
            continue
        if subject.erased_at is not None:
            continue
        fresh_contact = bool(contact) and contact != contact_open(subject)
        if fresh_contact or subject.locale != given.locale:
            subject.locale = given.locale
            if fresh_contact:
                contact_seal(subject, contact)
            subject.save(update_fields=["locale", "key", "contact"])
    Subject.objects.bulk_create(created, batch_size=500)
    return subjects


def _unique_references(count: int) -> list[str]:
    # Another writer taking one of these between the check and the insert
    # (odds 1 in 10^12 a case) trips the unique constraint and the batch retries.
    chosen: set[str] = set()
    while len(chosen) < count:
        candidates = {new_reference() for _ in range(count - len(chosen))} - chosen
        taken = set(
            Case.objects.filter(reference__in=candidates).values_list("reference", flat=True)
        )
        chosen |= candidates - taken
    return list(chosen)


@transaction.atomic
def case_contest(*, system: AISystem, reference: str, reason: str, actor: Actor) -> Case:
    """Flag a case as contested: it goes to a person (DESIGN §4)."""
    # Lock order as everywhere: the case's open tasks, then the case, then the head.
    live = [ReviewTask.Status.OPEN, ReviewTask.Status.CLAIMED]
    open_tasks = list(
        ReviewTask.objects.select_for_update()
        .filter(case__system=system, case__reference=reference, status__in=live)
        .values_list("pk", flat=True)
    )
    case = (
        Case.objects.select_for_update()
        .select_related("policy")
        .filter(system=system, reference=reference)
        .first()
    )
    if case is None:
        raise NotFound(f"no case {reference!r}", "case_not_found")
    if case.status in (Case.Status.UNDER_APPEAL, Case.Status.APPEAL_DECIDED):
        raise Conflict(
            f"case {reference} is {case.status.replace('_', ' ')}; it is with an appeal already",
            "under_appeal",
        )
    reason_digest = hashlib.sha256(reason.encode()).hexdigest()
    data = {"reason_sha256": reason_digest, "previous_status": case.status}
    if case.status == Case.Status.FINALIZED:
        policy = policy_active(system=system)
        queue = Queue.objects.get(system=system, slug=policy.document["default_queue"])
        ReviewTask.objects.create(
            case=case,
            kind=ReviewTask.Kind.REVIEW,
            queue=queue,
            priority=20,
            due_at=timezone.now() + timedelta(hours=queue.sla_hours),
        )
        case.status = Case.Status.PENDING_REVIEW
        case.save(update_fields=["status"])
        data["queue"] = queue.slug
    else:
        ReviewTask.objects.filter(pk__in=open_tasks).update(priority=20)
    data["status"] = case.status
    trail_append(
        action="case.contested", actor=actor, case=case.reference, system=system.slug, data=data
    )
    case_webhook(case=case, topic="case.contested", queue=data.get("queue"))
    return case
