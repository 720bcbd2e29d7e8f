"""Recording a person's decision on a review task (DESIGN §3)."""

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from reviews.models import Case, Decision, Queue, ReasonCode, ReviewTask
from reviews.selectors import BLIND_VIEW, FULL_VIEW
from reviews.services.assignment import TaskError, task_locked_for
from reviews.services.feedback import feedback_invite
from reviews.services.notices import customer_date, customer_email, notice_url
from reviews.services.reason_codes import reason_code_problem
from reviews.services.webhooks import case_webhook
from workbench.errors import Invalid
from workbench.models import Role, User
from workbench.services.outbox import webhook_enqueue
from workbench.services.trail import Actor, trail_append

Verdict = Decision.Verdict
FINAL_VERDICTS = (Verdict.AGREE, Verdict.OVERRIDE)


@dataclass(frozen=True)
class DecisionInput:
    verdict: str
    outcome: str = ""
    reason_code: str = ""
    rationale: str = ""
    ai_visible: bool = True

    @classmethod
    def blind(
        cls, *, chosen: str, ai_outcome: str, reason_code: str = "", rationale: str = ""
    ) -> "DecisionInput":
        """A blind review: the reviewer chose ``chosen`` before the AI's
        outcome was shown, so the verdict follows from comparing the two."""
        verdict = Verdict.AGREE if chosen == ai_outcome else Verdict.OVERRIDE
        return cls(
            verdict=verdict,
            outcome=chosen,
            reason_code=reason_code,
            rationale=rationale,
            ai_visible=False,
        )


def task_is_blind(task: ReviewTask) -> bool:
    """Whether ``task`` is reviewed blind: its queue is, and it is not an
    escalation (a supervisor always sees what the reviewer saw)."""
    return task.queue.blind and task.kind != ReviewTask.Kind.ESCALATION


def decision_input(
    *,
    task: ReviewTask,
    verdict: str,
    committed: str | None,
    outcome: str = "",
    reason_code: str = "",
    rationale: str = "",
) -> DecisionInput:
    """The decision a person's submission on ``task`` makes, by the blind-
    review rule: on a blind task the outcome is the one committed before the
    AI's was shown (``committed``), and the verdict follows from it; there,
    agreeing or overriding before committing is refused. Escalating needs no
    commitment, and is blind when made before one."""
    if not task_is_blind(task):
        return DecisionInput(verdict, outcome, reason_code, rationale)
    if verdict == Verdict.ESCALATE:
        return DecisionInput(
            verdict, outcome, reason_code, rationale, ai_visible=committed is not None
        )
    if committed is None:
        raise Invalid(
            "choose your outcome and commit it first",
            "blind_not_committed",
            fields=[{"path": "outcome", "message": "choose your outcome and commit it first"}],
        )
    return DecisionInput.blind(
        chosen=committed, ai_outcome=task.case.outcome, reason_code=reason_code, rationale=rationale
    )


def decision_record(
    *,
    task_id: int,
    user: User,
    fencing_token: int,
    decision: DecisionInput,
    idempotency_key: str,
) -> Decision:
    """Record ``user``'s verdict on the task they hold.

    Idempotent: the same ``idempotency_key`` (one per rendered form) returns
    the decision already recorded, so a double submit records one decision.
    The lease is checked under the task's row lock. An agreement or override
    finalizes the case, unless the queue wants two reviews: then the first
    review sends the task back for a second person, and two differing
    outcomes go to a supervisor. An escalation goes to a supervisor.
    """
    done = Decision.objects.filter(idempotency_key=idempotency_key).first()
    if done is not None:
        return _same_request(done, task_id, user)
    with transaction.atomic():
        task = task_locked_for(task_id=task_id, user=user, fencing_token=fencing_token)
        done = Decision.objects.filter(idempotency_key=idempotency_key).first()
        if done is not None:  # the twin request won the lock
            return _same_request(done, task_id, user)
        if task.kind == ReviewTask.Kind.APPEAL:
            raise TaskError("an appeal is decided on its appeal page", "not_a_review")
        if task.excluded.filter(pk=user.pk).exists():
            raise TaskError("you may not decide this case: you are excluded from it", "excluded")
        case = Case.objects.select_for_update().get(pk=task.case_id)
        outcome = _checked(decision, case)
        now = timezone.now()
        record = Decision.objects.create(
            task=task,
            case=case,
            reviewer=user,
            verdict=decision.verdict,
            outcome=outcome,
            reason_code=decision.reason_code,
            rationale=decision.rationale,
            seconds_spent=round((now - task.claimed_at).total_seconds(), 3),
            ai_visible=decision.ai_visible,
            fencing_token=fencing_token,
            idempotency_key=idempotency_key,
        )
        _apply(task, case, record, user)
        return record


def _same_request(done: Decision, task_id: int, user: User) -> Decision:
    if done.task_id != task_id or done.reviewer_id != user.pk:
        raise Invalid("this form key was used for another decision", "idempotency_key_reused")
    return done


def _checked(decision: DecisionInput, case: Case) -> str:
    """The resulting outcome, after checking the decision against the case's policy."""
    policy = case.policy.document
    problems = []
    if decision.verdict not in Verdict.values:
        problems.append({"path": "verdict", "message": "choose agree, override or escalate"})
    outcome = decision.outcome
    if decision.verdict == Verdict.AGREE:
        outcome = outcome or case.outcome
        if outcome != case.outcome:
            problems.append(
                {"path": "outcome", "message": "agreeing keeps the AI's outcome; use override"}
            )
    elif decision.verdict == Verdict.OVERRIDE:
        # Without an ``outcomes`` list in the policy any outcome is accepted.
        outcomes = policy.get("outcomes")
        if not outcome or (outcomes is not None and outcome not in outcomes):
            problems.append(
                {
                    "path": "outcome",
                    "message": "choose one of this system's outcomes: " + ", ".join(outcomes)
                    if outcomes
                    else "choose the outcome you decide",
                }
            )
        elif outcome == case.outcome:
            problems.append(
                {"path": "outcome", "message": "that is the AI's own outcome; use agree"}
            )
    if decision.verdict in (Verdict.OVERRIDE, Verdict.ESCALATE) and not decision.rationale.strip():
        problems.append(
            {"path": "rationale", "message": f"a rationale is required to {decision.verdict}"}
        )
    if decision.verdict == Verdict.OVERRIDE and not decision.reason_code:
        problems.append({"path": "reason_code", "message": "choose the reason for the override"})
    problem = reason_code_problem(case=case, code=decision.reason_code)
    if problem:
        problems.append(problem)
    if problems:
        raise Invalid("the decision is incomplete", "invalid", fields=problems)
    return outcome if decision.verdict != Verdict.ESCALATE else ""


def _apply(task: ReviewTask, case: Case, record: Decision, user: User) -> None:
    actor = Actor.user(user)
    facts = {
        "task": task.pk,
        "verdict": record.verdict,
        "outcome": record.outcome or None,
        "reason_code": record.reason_code or None,
        "rationale_sha256": hashlib.sha256(record.rationale.encode()).hexdigest(),
        "seconds": record.seconds_spent,
        "ai_visible": record.ai_visible,
        # What was on screen when the person chose the outcome (the case
        # page's parts, reviews.selectors): a blind choice saw BLIND_VIEW alone.
        "visible": list(FULL_VIEW if record.ai_visible else BLIND_VIEW),
    }
    if record.verdict == Verdict.ESCALATE:
        queue = _escalate(task, case, reason="escalated by the reviewer")
        trail_append(
            action="case.escalated",
            actor=actor,
            case=case.reference,
            system=case.system.slug,
            data={**facts, "queue": queue.slug},
        )
        case_webhook(case=case, topic="case.escalated", queue=queue.slug, disagreement=False)
        return

    if task.queue.reviews_required == 2 and task.kind != ReviewTask.Kind.ESCALATION:
        earlier = task.decisions.exclude(pk=record.pk).filter(verdict__in=FINAL_VERDICTS).first()
        if earlier is None:
            # First of two independent reviews: back to the queue for someone else.
            task.excluded.add(user)
            task.status = ReviewTask.Status.OPEN
            task.assignee = None
            task.claimed_at = task.lease_expires_at = None
            task.save(update_fields=["status", "assignee", "claimed_at", "lease_expires_at"])
            case.status = Case.Status.PENDING_REVIEW
            case.save(update_fields=["status"])
            trail_append(
                action="case.reviewed",
                actor=actor,
                case=case.reference,
                system=case.system.slug,
                data={**facts, "review": 1, "of": 2},
            )
            return
        if earlier.outcome != record.outcome:
            queue = _escalate(task, case, reason="the two reviews disagree")
            trail_append(
                action="case.escalated",
                actor=actor,
                case=case.reference,
                system=case.system.slug,
                data={**facts, "review": 2, "of": 2, "queue": queue.slug, "disagreement": True},
            )
            case_webhook(case=case, topic="case.escalated", queue=queue.slug, disagreement=True)
            return

    _finish(task)
    case.status = Case.Status.FINALIZED
    case.final_outcome = record.outcome
    case.decided_by = Case.DecidedBy.HUMAN
    case.finalized_at = timezone.now()
    case.save(update_fields=["status", "final_outcome", "decided_by", "finalized_at"])
    trail_append(
        action="case.decided",
        actor=actor,
        case=case.reference,
        system=case.system.slug,
        data={
            **facts,
            "final_outcome": record.outcome,
            "adverse": case.policy.is_adverse(record.outcome),
        },
    )
    webhook_enqueue(
        system=case.system, topic="case.finalized", payload=case_outcome_payload(case, record)
    )
    _customer_told(case)
    feedback_invite(case=case)  # when the policy asks for it


def _customer_told(case: Case) -> None:
    """A person decided the case: the customer hears it by email, in their
    language (the notice link says what and why, and how to appeal)."""

    def compose() -> tuple[str, str]:
        values = {"reference": case.reference, "date": customer_date(case.finalized_at)}
        return (
            _("Our decision on %(reference)s") % values,
            _(
                "A person has reviewed %(reference)s and made our decision on %(date)s. "
                "An automated system assessed it first."
            )
            % values
            + "\n\n"
            + _("Read the decision, the reasons and how to appeal here: %(url)s")
            % {"url": notice_url(case)}
            + "\n",
        )

    customer_email(case=case, topic="case.decided", compose=compose)


def case_outcome_payload(case: Case, decision: Decision | None = None) -> dict:
    """What the AI system learns of a final outcome (DESIGN §5 webhook)."""
    reasons = case.output.get("reasons", [])
    if decision is not None and decision.verdict == Verdict.OVERRIDE:
        code = ReasonCode.objects.filter(
            system_id=case.system_id, code=decision.reason_code
        ).first()
        # A code the AI system sent but the catalog lacks keeps the AI's own text.
        given = {r.get("code"): r.get("text", "") for r in reasons if isinstance(r, dict)}
        text = code.customer_text if code else given.get(decision.reason_code, "")
        reasons = [{"code": decision.reason_code, "text": text}]
    return {
        "reference": case.reference,
        "external_id": case.external_id,
        "outcome": case.final_outcome,
        "decided_by": case.decided_by,
        "verdict": decision.verdict if decision else None,
        "reasons": reasons,
        "appeal": None,
    }


def _finish(task: ReviewTask) -> None:
    task.status = ReviewTask.Status.DONE
    task.lease_expires_at = None
    task.save(update_fields=["status", "lease_expires_at"])


def _escalate(task: ReviewTask, case: Case, *, reason: str) -> Queue:
    queue = escalation_queue(case)
    _finish(task)
    ReviewTask.objects.create(
        case=case,
        kind=ReviewTask.Kind.ESCALATION,
        queue=queue,
        priority=task.priority + 10,
        due_at=timezone.now() + timedelta(hours=queue.sla_hours),
    )
    case.status = Case.Status.PENDING_REVIEW
    case.save(update_fields=["status"])
    return queue


def escalation_queue(case: Case) -> Queue:
    """The policy's ``escalation_queue``, else the system's first supervisors'
    queue (a policy published before the default existed); never another
    system's queue."""
    slug = case.policy.document.get("escalation_queue")
    queues = Queue.objects.filter(system_id=case.system_id)
    queue = (
        queues.filter(slug=slug).first()
        if slug
        else queues.filter(role=Role.SUPERVISOR).order_by("slug").first()
    )
    if queue is None:
        raise TaskError(
            "there is no supervisors' queue to escalate to; add one to the policy",
            "no_escalation_queue",
        )
    return queue
