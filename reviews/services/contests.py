"""A case contested by its AI system (the customer disputes it): it goes to a
person, and the reason is kept, sealed, for the reviewer (DESIGN §4)."""

import hashlib
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from reviews.models import Case, Queue, ReviewTask, Subject, SubjectText
from reviews.selectors import policy_active
from reviews.services.subjects import SubjectErased, subject_key_ensure, subject_text_seal
from reviews.services.webhooks import case_webhook
from workbench.errors import Conflict, NotFound
from workbench.models import AISystem
from workbench.services.trail import Actor, trail_append


@transaction.atomic
def case_contest(*, system: AISystem, reference: str, reason: str, actor: Actor) -> Case:
    """Flag a case as contested: it goes to a person (DESIGN §4)."""
    # Lock order as everywhere: the case's open tasks, the case, the subject, the head.
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
    # The reason is the customer's words (relayed by the system or an
    # agent): sealed with their key for the case's reviewer; the trail holds
    # its digest. An erased subject's reason is not kept.
    subject = Subject.objects.select_for_update().get(pk=case.subject_id)
    words = None
    try:
        subject_key_ensure(subject)
        words = subject_text_seal(
            subject=subject, kind=SubjectText.Kind.CONTEST, value=reason, case=case
        )
    except SubjectErased:
        pass
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
    if words is not None:
        words.save()
    trail_append(
        action="case.contested", actor=actor, case=case.reference, system=system.slug, data=data
    )
    case_webhook(case=case, topic="case.contested", queue=data.get("queue"))
    return case
