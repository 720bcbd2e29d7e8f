"""Appeals: filed by the customer, decided by someone independent (DESIGN §1, §3).

Lock order, as everywhere: the task, then the case, then the subject, then
(inside ``trail_append``) the chain head.
"""

import hashlib
import logging
from datetime import timedelta

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from escalations.models import Appeal
from escalations.selectors import (
    AppealRules,
    appeal_queue,
    appeal_window,
    case_conflicted_users,
    case_is_urgent,
)
from escalations.services.evidence import evidence_check, evidence_discard, evidence_store
from reviews.models import Case, ReviewTask, Subject
from reviews.services.assignment import TaskError, task_locked_for
from reviews.services.decisions import case_outcome_payload
from reviews.services.feedback import feedback_invite
from reviews.services.notices import customer_date, customer_email, notice_url
from reviews.services.reason_codes import reason_code_problem
from reviews.services.subjects import subject_open, subject_seal
from reviews.services.webhooks import case_webhook
from workbench.errors import Conflict, Invalid, Unavailable
from workbench.models import User
from workbench.services.outbox import webhook_enqueue
from workbench.services.trail import Actor, trail_append

logger = logging.getLogger(__name__)

MAX_STATEMENT_CHARS = 10_000
MAX_REASONS_CHARS = 5_000


class AppealRefused(Conflict):
    """The case cannot be appealed now; ``code`` says why (the window's code)."""


def appeal_file(
    *,
    case: Case,
    statement: str,
    evidence: list[UploadedFile],
    idempotency_key: str,
) -> Appeal:
    """File the customer's appeal against the decision in force.

    Idempotent: the same ``idempotency_key`` (one per rendered form) returns
    the appeal already filed. Refused (``AppealRefused``) outside the window,
    while another appeal is open, or when the policy allows no more appeals.
    Opens an ``appeal`` task from which everyone who took part in the case,
    and their reporting line, is excluded.
    """
    statement = statement.strip()
    problems = []
    if not statement:
        problems.append({"path": "statement", "message": _("Tell us why you disagree.")})
    elif len(statement) > MAX_STATEMENT_CHARS:
        problems.append(
            {
                "path": "statement",
                "message": _("Keep your statement under %(count)s characters.")
                % {"count": f"{MAX_STATEMENT_CHARS:,}"},
            }
        )
    try:
        files = evidence_check(evidence)
    except Invalid as error:
        problems += error.fields
    if problems:
        raise Invalid("the appeal is incomplete", "invalid", fields=problems)

    done = Appeal.objects.filter(idempotency_key=idempotency_key).first()
    if done is not None:
        return _same_filing(done, case)
    stored: list[str] = []
    try:
        with transaction.atomic():
            appeal = _file(case, statement, files, idempotency_key, stored)
    except IntegrityError:
        # The twin request, or a second tab, filed first: the constraints held.
        evidence_discard(stored)
        done = Appeal.objects.filter(idempotency_key=idempotency_key).first()
        if done is not None:
            return _same_filing(done, case)
        raise AppealRefused("an appeal of this decision is already open", "appeal_open") from None
    except BaseException:
        evidence_discard(stored)
        raise
    return appeal


def _same_filing(done: Appeal, case: Case) -> Appeal:
    if done.case_id != case.pk:
        raise Invalid("this form key was used for another appeal", "idempotency_key_reused")
    return done


def _file(case: Case, statement: str, files, idempotency_key: str, stored: list[str]) -> Appeal:
    case = Case.objects.select_for_update().select_related("system", "policy").get(pk=case.pk)
    done = Appeal.objects.filter(idempotency_key=idempotency_key).first()
    if done is not None:  # the twin request won the lock
        return _same_filing(done, case)
    now = timezone.now()
    appeals = list(case.appeals.order_by("number"))
    window = appeal_window(case=case, appeals=appeals, now=now)
    if not window.open:
        raise AppealRefused(_refusal(window), window.code)
    subject = Subject.objects.select_for_update().get(pk=case.subject_id)
    rules = AppealRules.of(case)
    urgent = case_is_urgent(case)
    due_at = now + (
        timedelta(hours=rules.urgent_hours) if urgent else timedelta(days=rules.deadline_days)
    )
    try:
        queue = appeal_queue(case=case)
    except Unavailable as error:
        # The operators' mistake, not the customer's: they are told plainly,
        # keep their statement in the form, and the operators are told why.
        logger.error("appeal of %s refused: %s", case.reference, error.message)
        raise Unavailable(
            _(
                "We cannot take appeals of this decision online yet. Nothing was sent: "
                "keep your statement and contact us, or try again later."
            ),
            error.code,
        ) from None
    task = ReviewTask.objects.create(
        case=case,
        kind=ReviewTask.Kind.APPEAL,
        queue=queue,
        priority=30 if urgent else 10,
        due_at=due_at,
    )
    conflicted = case_conflicted_users(case=case, before=now)
    task.excluded.set(conflicted)
    number = len(appeals) + 1
    had_key = subject.key is not None
    appeal = Appeal.objects.create(
        case=case,
        number=number,
        statement=subject_seal(
            subject, statement.encode(), purpose=f"appeal:{case.reference}:{number}"
        ),
        statement_sha256=hashlib.sha256(statement.encode()).hexdigest(),
        outcome_appealed=case.final_outcome,
        notice_issued_at=window.issued_at,
        filed_at=now,
        due_at=due_at,
        urgent=urgent,
        task=task,
        idempotency_key=idempotency_key,
    )
    if not had_key:
        subject.save(update_fields=["key"])
    evidence = []
    for file in files:
        item = evidence_store(subject=subject, appeal=appeal, file=file)
        stored.append(item.stored_as)
        evidence.append({"sha256": item.sha256, "size": item.size, "type": item.content_type})
    case.status = Case.Status.UNDER_APPEAL
    case.save(update_fields=["status"])
    trail_append(
        action="appeal.filed",
        actor=Actor.customer(subject.reference),
        case=case.reference,
        system=case.system.slug,
        data={
            "appeal": number,
            "outcome_appealed": case.final_outcome,
            "statement_sha256": appeal.statement_sha256,
            "evidence": evidence,
            "task": task.pk,
            "queue": queue.slug,
            "due_at": due_at.isoformat(),
            "urgent": urgent,
            "excluded": sorted(
                User.objects.filter(pk__in=conflicted).values_list("username", flat=True)
            ),
        },
    )
    case_webhook(
        case=case,
        topic="appeal.filed",
        appeal={
            "number": number,
            "outcome_appealed": case.final_outcome,
            "filed_at": now.isoformat(),
            "due_at": due_at.isoformat(),
        },
    )
    case.subject = subject

    def filed() -> tuple[str, str]:
        values = {
            "reference": case.reference,
            "filed": customer_date(now),
            "due": customer_date(due_at),
        }
        return (
            _("We received your appeal (%(reference)s)") % values,
            _(
                "We received your appeal of the decision %(reference)s on %(filed)s.\n\n"
                "A person who had no part in the decision will look at it again. "
                "You will have an answer by %(due)s."
            )
            % values
            + "\n\n"
            + _("Follow your appeal here: %(url)s") % {"url": notice_url(case)}
            + "\n",
        )

    customer_email(case=case, topic="appeal.filed", compose=filed)
    return appeal


def _refusal(window) -> str:
    if window.code == "closed":
        return f"the time to appeal this decision ended on {_day(window.closes_at)}"
    if window.code == "appeal_open":
        return "an appeal of this decision is already open"
    if window.code == "no_appeals_left":
        return "this decision was already decided on appeal and cannot be appealed again here"
    return "this decision is not final yet: a person is still reviewing it"


def _day(moment) -> str:
    return date_format(timezone.localtime(moment), "j F Y")


# --- The appeal reviewer ----------------------------------------------------------------------


def _appeal_locked(task_id: int, user: User, fencing_token: int) -> tuple[ReviewTask, Appeal]:
    task = task_locked_for(task_id=task_id, user=user, fencing_token=fencing_token)
    if task.kind != ReviewTask.Kind.APPEAL:
        raise TaskError("this task is not an appeal", "not_an_appeal")
    appeal = Appeal.objects.select_for_update().select_related("case__subject").get(task=task)
    if user.pk in case_conflicted_users(case=appeal.case, before=appeal.filed_at):
        # The reporting line may have changed since the appeal was filed.
        raise TaskError(
            "you may not decide this appeal: you, your manager or one of your reports "
            "took part in the decision appealed",
            "not_independent",
        )
    return task, appeal


@transaction.atomic
def appeal_statement_open(*, task_id: int, user: User, fencing_token: int) -> Appeal:
    """Show the customer's statement to the appeal reviewer who holds the
    task, and log it; the original decision is shown only after this."""
    task, appeal = _appeal_locked(task_id, user, fencing_token)
    if appeal.statement_opened_by_id == user.pk:
        return appeal
    appeal.statement_opened_at = timezone.now()
    appeal.statement_opened_by = user
    appeal.status = Appeal.Status.UNDER_REVIEW
    appeal.save(update_fields=["statement_opened_at", "statement_opened_by", "status"])
    trail_append(
        action="appeal.statement_opened",
        actor=Actor.user(user),
        case=appeal.case.reference,
        system=task.case.system.slug,
        data={"appeal": appeal.number, "task": task.pk},
    )
    return appeal


def appeal_statement(appeal: Appeal) -> str | None:
    """The customer's statement, or None once their data was erased."""
    plaintext = subject_open(
        appeal.case.subject,
        appeal.statement,
        purpose=f"appeal:{appeal.case.reference}:{appeal.number}",
    )
    return None if plaintext is None else plaintext.decode()


@transaction.atomic
def appeal_decide(
    *,
    task_id: int,
    user: User,
    fencing_token: int,
    outcome: str,
    final_outcome: str,
    reason_code: str,
    reasons: str,
    idempotency_key: str,
) -> Appeal:
    """Uphold, overturn or modify the decision appealed, with reasons in words
    the customer reads. The case takes the outcome decided; the AI system
    learns it by webhook and the customer by email.

    ``upheld`` keeps the outcome; ``overturned`` and ``modified`` replace it
    (overturned: reversed; modified: changed in part, e.g. a partial payment).
    Idempotent on ``idempotency_key``."""
    done = Appeal.objects.filter(decision_key=idempotency_key).first()
    if done is not None:
        if done.task_id != task_id or done.decided_by_id != user.pk:
            raise Invalid("this form key was used for another decision", "idempotency_key_reused")
        return done
    task, appeal = _appeal_locked(task_id, user, fencing_token)
    if appeal.statement_opened_by_id != user.pk:
        raise Invalid(
            "open the customer's statement before deciding",
            "statement_unopened",
        )
    case = (
        Case.objects.select_for_update().select_related("system", "policy").get(pk=appeal.case_id)
    )
    final_outcome = _checked(case, appeal, outcome, final_outcome, reason_code, reasons)
    now = timezone.now()
    appeal.status = Appeal.Status.DECIDED
    appeal.outcome = outcome
    appeal.final_outcome = final_outcome
    appeal.reason_code = reason_code
    appeal.reasons = reasons.strip()
    appeal.decided_at = now
    appeal.decided_by = user
    appeal.decision_key = idempotency_key
    appeal.save()
    task.status = ReviewTask.Status.DONE
    task.lease_expires_at = None
    task.save(update_fields=["status", "lease_expires_at"])
    case.status = Case.Status.APPEAL_DECIDED
    case.final_outcome = final_outcome
    case.decided_by = Case.DecidedBy.HUMAN
    case.save(update_fields=["status", "final_outcome", "decided_by"])
    trail_append(
        action="appeal.decided",
        actor=Actor.user(user),
        case=case.reference,
        system=case.system.slug,
        data={
            "appeal": appeal.number,
            "task": task.pk,
            "outcome": outcome,
            "outcome_appealed": appeal.outcome_appealed,
            "final_outcome": final_outcome,
            "reason_code": reason_code or None,
            "reasons_sha256": hashlib.sha256(appeal.reasons.encode()).hexdigest(),
            "seconds": round((now - task.claimed_at).total_seconds(), 3),
        },
    )
    payload = case_outcome_payload(case)
    payload["reasons"] = [{"code": reason_code or None, "text": appeal.reasons}]
    payload["appeal"] = {
        "number": appeal.number,
        "outcome": outcome,
        "outcome_appealed": appeal.outcome_appealed,
        "filed_at": appeal.filed_at.isoformat(),
        "decided_at": now.isoformat(),
    }
    webhook_enqueue(system=case.system, topic="case.appeal_decided", payload=payload)

    def decided() -> tuple[str, str]:
        values = {"reference": case.reference, "decided": customer_date(now)}
        return (
            _("Your appeal has been decided (%(reference)s)") % values,
            _("Your appeal of the decision %(reference)s was decided on %(decided)s.") % values
            + "\n\n"
            + _("Read the outcome and the reasons here: %(url)s") % {"url": notice_url(case)}
            + "\n",
        )

    customer_email(case=case, topic="appeal.decided", compose=decided)
    feedback_invite(case=case)  # when the policy asks for it
    return appeal


def _checked(case, appeal, outcome, final_outcome, reason_code, reasons) -> str:
    rules = AppealRules.of(case)
    problems = []
    if outcome not in Appeal.Outcome.values:
        problems.append({"path": "outcome", "message": "choose upheld, overturned or modified"})
    elif outcome == Appeal.Outcome.UPHELD:
        final_outcome = appeal.outcome_appealed
    elif not final_outcome or (rules.outcomes is not None and final_outcome not in rules.outcomes):
        problems.append(
            {
                "path": "final_outcome",
                "message": "choose the new outcome: " + ", ".join(rules.outcomes)
                if rules.outcomes
                else "choose the new outcome",
            }
        )
    elif final_outcome == appeal.outcome_appealed:
        problems.append(
            {
                "path": "final_outcome",
                "message": "that is the outcome appealed; to keep it, uphold the decision",
            }
        )
    if not reasons.strip():
        problems.append(
            {"path": "reasons", "message": "give your reasons, in words the customer understands"}
        )
    elif len(reasons) > MAX_REASONS_CHARS:
        problems.append(
            {
                "path": "reasons",
                "message": f"keep the reasons under {MAX_REASONS_CHARS:,} characters",
            }
        )
    problem = reason_code_problem(case=case, code=reason_code)
    if problem:
        problems.append(problem)
    if problems:
        raise Invalid("the appeal decision is incomplete", "invalid", fields=problems)
    return final_outcome
