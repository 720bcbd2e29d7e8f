"""Data-subject access: everything about one subject, as one zip (GDPR art. 15).

The zip holds ``subject.json`` (the subject, their contact details while not
erased, each case with what the AI saw (the customer's own chat turns
included) and said, why it was routed, why it was contested, every decision
and appeal with its reasons and the customer's own statement, and their
answers to the notice's two questions with their comments),
``evidence/`` (the files the customer sent), and ``trail-bundle.zip``: the
trail events of those cases as a filtered bundle that verifies offline
(docs/bundle.md), so the subject can check that the record is the record.
"""

import json
from collections.abc import Iterator

from django.db import transaction
from django.utils import timezone
from stream_zip import ZIP_64, stream_zip

from escalations.models import Appeal
from escalations.selectors import subject_by_reference
from escalations.services.appeals import appeal_statement
from escalations.services.evidence import evidence_read
from reviews.models import Case, Decision, Feedback
from reviews.selectors import case_contests, case_input_opened
from reviews.services.notices import notice_url
from reviews.services.subjects import contact_open, subject_text_open
from workbench.services.export import ExportFilters, export_plan, trail_bundle
from workbench.services.trail import Actor, format_at, trail_append


def subject_access_export(
    *, reference: str, system: str | None = None, by: Actor
) -> Iterator[bytes]:
    """The subject's data as zip bytes, streamed; the request is recorded in
    the trail before anything is read."""
    subject = subject_by_reference(reference=reference, system=system)
    cases = list(
        Case.objects.filter(subject=subject)
        .select_related("system", "policy")
        .order_by("created_at")
    )
    with transaction.atomic():
        trail_append(
            action="subject.access_exported",
            actor=by,
            system=subject.system.slug,
            data={"subject": subject.reference, "cases": [case.reference for case in cases]},
        )
    plan = export_plan(ExportFilters(cases=tuple(case.reference for case in cases)))
    decisions = Decision.objects.filter(case__in=cases).select_related("reviewer", "task__queue")
    appeals = list(
        Appeal.objects.filter(case__in=cases)
        .select_related("case__subject", "decided_by")
        .prefetch_related("evidence")
        .order_by("case__created_at", "number")
    )
    by_case: dict = {case.pk: {"decisions": [], "appeals": [], "feedback": []} for case in cases}
    answers = Feedback.objects.filter(case__in=cases).select_related("comment")
    for answer in answers.order_by("answered_at"):
        # Their answers to the notice's two questions, with their own words.
        comment = answer.comment
        by_case[answer.case_id]["feedback"].append(
            {
                "stage": answer.stage,
                "listened": answer.listened,
                "explained": answer.explained,
                "comment": subject_text_open(comment, subject=subject) if comment else None,
                "source": answer.source,
                "answered_at": format_at(answer.answered_at),
                "changed_at": format_at(answer.changed_at) if answer.changed_at else None,
            }
        )
    for decision in decisions.order_by("created_at"):
        by_case[decision.case_id]["decisions"].append(
            {
                "at": format_at(decision.created_at),
                "by": "a person",
                "verdict": decision.verdict,
                "outcome": decision.outcome or None,
                "reason_code": decision.reason_code or None,
                "rationale": decision.rationale,
            }
        )
    files = []
    for appeal in appeals:
        items = []
        for item in appeal.evidence.all():
            path = f"evidence/{appeal.case.reference}-{appeal.number}-{item.name}"
            items.append({"name": item.name, "type": item.content_type, "file": path})
            files.append((path, item))
        by_case[appeal.case_id]["appeals"].append(
            {
                "number": appeal.number,
                "filed_at": format_at(appeal.filed_at),
                "statement": appeal_statement(appeal),
                "evidence": items,
                "status": appeal.status,
                "outcome": appeal.outcome or None,
                "final_outcome": appeal.final_outcome or None,
                "reasons": appeal.reasons or None,
                "decided_at": format_at(appeal.decided_at) if appeal.decided_at else None,
            }
        )
    document = {
        "subject": {
            "reference": subject.reference,
            "system": subject.system.slug,
            "locale": subject.locale,
            "contact": contact_open(subject),
            "erased_at": format_at(subject.erased_at) if subject.erased_at else None,
        },
        "exported_at": format_at(timezone.now()),
        "cases": [
            {
                "reference": case.reference,
                "notice_url": notice_url(case),
                "external_id": case.external_id,
                "received_at": format_at(case.created_at),
                "model": {"name": case.model_name, "version": case.model_version},
                "input": case_input_opened(case=case),
                "contested": [
                    {"at": format_at(contest.at), "reason": contest.reason}
                    for contest in case_contests(case=case)
                ],
                "output": case.output,
                "confidence": case.confidence,
                "explanation": case.explanation,
                "route": case.route,
                "status": case.status,
                "final_outcome": case.final_outcome or None,
                "decided_by": case.decided_by or None,
                **by_case[case.pk],
            }
            for case in cases
        ],
        "trail": "trail-bundle.zip: the events of these cases, verifiable offline "
        "(python -m workbench.verify trail-bundle.zip; see VERIFY.md inside it)",
    }
    now = timezone.now()
    members = [
        (
            "subject.json",
            now,
            0o644,
            ZIP_64,
            [json.dumps(document, indent=2, ensure_ascii=False).encode()],
        )
    ]
    for path, item in files:
        content = evidence_read(item)
        if content is not None:
            members.append((path, now, 0o644, ZIP_64, [content]))
    members.append(("trail-bundle.zip", now, 0o644, ZIP_64, trail_bundle(plan)))
    return stream_zip(members)
