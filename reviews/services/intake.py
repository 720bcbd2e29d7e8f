"""Intake: AI outputs come in, are routed, and land in the trail (DESIGN §4, §5)."""

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from pydantic import ValidationError

from reviews.models import Case, Policy, Queue, ReviewTask, Subject, SubjectText
from reviews.routing import Facts, Route, route_evaluate
from reviews.schemas import CaseIn
from reviews.selectors import policy_active
from reviews.services.feedback import feedback_invite_many
from reviews.services.notices import notice_token, notice_token_hash
from reviews.services.subjects import (
    SubjectErased,
    contact_open,
    contact_seal,
    conversation_split,
    subject_key_ensure,
    subject_key_new,
    subject_text_seal,
)
from reviews.services.webhooks import cases_routed_webhooks
from workbench.db import bulk_insert
from workbench.errors import Conflict, Invalid, WorkbenchError
from workbench.models import AISystem
from workbench.services.trail import (
    Actor,
    TrailEntry,
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


STORE_ATTEMPTS = 5


def _store_settling_races(system, policy, pending) -> list[tuple[int, IngestResult]]:
    # Subjects are created with INSERT ... ON CONFLICT DO NOTHING, so a subject
    # two batches both find new never fails either. Two ingesters may also
    # both find a case new and both insert it: the unique constraint stops the
    # second (once the first has committed), whose whole attempt rolls back;
    # the next attempt sees the first's cases (200 or 409) and inserts its own
    # with ON CONFLICT DO NOTHING, so that a third writer cannot make it fail
    # again: what it finds taken it answers 200 or 409 too. Two batches
    # updating the same subjects may deadlock: PostgreSQL aborts one, which
    # runs again. No lock is held while cases are written; the chain head is
    # locked only for the last step.
    careful = False
    for attempt in range(STORE_ATTEMPTS):
        try:
            with transaction.atomic():
                return _store(system, policy, pending, careful=careful)
        except (IntegrityError, OperationalError) as exc:
            retry = isinstance(exc, IntegrityError) or _is_deadlock(exc)
            if not retry or attempt == STORE_ATTEMPTS - 1:
                raise
            careful = careful or isinstance(exc, IntegrityError)
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
    body = item.model_dump(mode="json")
    if item._input_sent is not None:
        body["input"] = item._input_sent  # as sent, not as read (input.messages)
    # A key added to the body later counts only when given, so that a case
    # submitted before it existed is the same body again (200, not 409).
    if not body.get("explanation_customer"):
        body.pop("explanation_customer", None)
    return json_digest(body)


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
    system: AISystem, policy: Policy, pending: dict[str, _Pending], *, careful: bool = False
) -> list[tuple[int, IngestResult]]:
    if AISystem.objects.filter(pk=system.pk, stopped=True).exists():
        for entry in pending.values():
            entry.route = _route(entry.item, policy, stopped=True)

    done: list[tuple[int, IngestResult]] = []
    fresh = _answer_existing(system, list(pending.values()), done)
    if not fresh:
        return done

    # The customer's words leave the input here: routing has read them; they
    # are kept sealed with the subject's key (SubjectText), never in the case.
    split = {entry.item.external_id: conversation_split(entry.item.input) for entry in fresh}
    keyed = {e.item.subject.reference for e in fresh if split[e.item.external_id][1]}
    subjects = _subjects_upsert(system, [entry.item for entry in fresh], keyed=keyed)
    queues = {
        q.slug: q
        for q in Queue.objects.filter(system=system, slug__in={e.route.queue for e in fresh})
    }
    references = _unique_references(len(fresh))
    now = timezone.now()
    built: list[tuple[_Pending, Case, ReviewTask | None]] = []
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
            input=split[item.external_id][0],
            output=item.output.model_dump(mode="json"),
            confidence=item.confidence,
            explanation=item.explanation,
            explanation_customer=item.explanation_customer,
            metadata=item.metadata,
            body_digest=entry.digest,
            policy=policy,
            route=route.as_dict(),
            notice_token_hash=notice_token_hash(notice_token(reference)),
        )
        task = None
        if route.needs_human:
            case.status = Case.Status.PENDING_REVIEW
            queue = queues[route.queue]
            task = ReviewTask(
                case=case,
                kind=route.task_kind,
                queue=queue,
                priority=route.priority,
                due_at=now + timedelta(hours=queue.sla_hours),
            )
        else:
            case.status = Case.Status.FINALIZED
            case.final_outcome = item.output.outcome
            case.decided_by = Case.DecidedBy.AI
            case.finalized_at = now
        built.append((entry, case, task))
    if careful:
        built = _cases_insert_new(system, built, done)
    else:
        bulk_insert([case for _, case, _ in built])
    trail = trail_prepare(
        [
            event
            for entry, case, _ in built
            for event in _intake_events(system, case, entry.item, entry.route)
        ]
    )
    bulk_insert([task for _, _, task in built if task is not None])
    bulk_insert(
        [
            subject_text_seal(
                subject=case.subject, kind=SubjectText.Kind.CONVERSATION, value=words, case=case
            )
            for _, case, _ in built
            if (words := split[case.external_id][1]) and case.subject.key is not None
        ]
    )  # an erased subject's words are not kept: there is no key to seal them with
    cases_routed_webhooks(system=system, cases=[case for _, case, _ in built])
    feedback_invite_many(system=system, cases=[case for _, case, _ in built], policy=policy)
    trail_append_many(trail)  # last: the chain head stays locked until commit
    done += [(entry.index, IngestResult(201, case=case)) for entry, case, _ in built]
    return done


def _answer_existing(
    system: AISystem, entries: list[_Pending], done: list[tuple[int, IngestResult]]
) -> list[_Pending]:
    """Answer the entries whose external_id is taken (200: the same body
    again; 409: another body) into ``done``; return the others."""
    existing = {
        case.external_id: case
        for case in Case.objects.filter(
            system=system, external_id__in=[entry.item.external_id for entry in entries]
        )
    }
    fresh = []
    for entry in entries:
        external_id = entry.item.external_id
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
    return fresh


def _cases_insert_new(system: AISystem, built: list, done: list) -> list:
    """Insert the cases with ON CONFLICT DO NOTHING and keep those inserted.
    A case skipped because another writer committed its external_id first
    (PostgreSQL waits for that writer before deciding) is answered 200 or 409
    like any resubmission. A case skipped for another reason (its random
    reference was taken meanwhile) makes the attempt start again."""
    Case.objects.bulk_create([case for _, case, _ in built], batch_size=500, ignore_conflicts=True)
    inserted = set(
        Case.objects.filter(pk__in=[case.pk for _, case, _ in built]).values_list("pk", flat=True)
    )
    skipped = [entry for entry, case, _ in built if case.pk not in inserted]
    if _answer_existing(system, skipped, done):
        raise IntegrityError("a case reference was taken by another writer")
    return [row for row in built if row[1].pk in inserted]


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
    if route.sentiment is not None:
        # A number, not the words: the connection index's sentiment trend.
        received["sentiment"] = route.sentiment
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
        "distressed": route.distressed,
    }
    if case.status == Case.Status.FINALIZED:
        routed["final_outcome"] = case.final_outcome
        routed["decided_by"] = case.decided_by
    return [
        TrailEntry("case.received", actor, case.reference, system.slug, received),
        TrailEntry("case.routed", actor, case.reference, system.slug, routed),
    ]


def _subjects_upsert(
    system: AISystem, items: list[CaseIn], *, keyed: set[str] = frozenset()
) -> dict[str, Subject]:
    """The subjects of ``items`` by reference, creating the new ones. The
    latest contact details and locale given for a subject win; a subject is
    written only when they changed. The subjects in ``keyed`` (whose
    customer wrote something) get a key if they have none, unless erased."""
    latest = {item.subject.reference: item.subject for item in items}
    subjects = {
        s.reference: s for s in Subject.objects.filter(system=system, reference__in=list(latest))
    }
    created = []
    for reference, given in sorted(latest.items()):  # one order for every writer
        subject = subjects.get(reference)
        if subject is None:
            subject = Subject(system=system, reference=reference, locale=given.locale)
            contact = _contact(given)
            if contact:
                contact_seal(subject, contact)
            elif reference in keyed:
                subject.key = subject_key_new()
            subjects[reference] = subject
            created.append(subject)
            continue
        _subject_refresh(subject, given, keyed=reference in keyed)
    if created:
        # INSERT ... ON CONFLICT DO NOTHING: a batch that creates the same new
        # subject at the same time wins (PostgreSQL waits for it to commit),
        # and its row is read back with the others, which sets their ids.
        Subject.objects.bulk_create(created, batch_size=500, ignore_conflicts=True)
        stored = Subject.objects.filter(
            system=system, reference__in=[subject.reference for subject in created]
        )
        for subject in stored:
            mine = subjects[subject.reference]
            subjects[subject.reference] = subject
            if mine.key is None or bytes(subject.key or b"") != bytes(mine.key):
                # The other batch's row, or one without a key: the details
                # given here are the latest, as for any subject found.
                _subject_refresh(
                    subject, latest[subject.reference], keyed=subject.reference in keyed
                )
    return subjects


def _subject_refresh(subject: Subject, given, *, keyed: bool = False) -> None:
    """Write the contact details and locale given for an existing subject
    when they changed (never for an erased one)."""
    if subject.erased_at is not None:
        return
    contact = _contact(given)
    fresh_contact = bool(contact) and contact != contact_open(subject)
    if fresh_contact or keyed:
        # Never a key of our own over one another writer has just set.
        try:
            subject_key_ensure(subject)
        except SubjectErased:
            return  # erased meanwhile: nothing of theirs is kept from now on
    if fresh_contact or subject.locale != given.locale:
        subject.locale = given.locale
        if fresh_contact:
            contact_seal(subject, contact)
        subject.save(update_fields=["locale", "contact"])


def _contact(given) -> dict:
    return {k: v for k, v in (("name", given.name), ("email", given.email)) if v}


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
