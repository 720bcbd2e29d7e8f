"""Intake endpoints: /api/v1/cases (DESIGN §5, contract)."""

from ninja import Query, Router, Status
from pydantic import ValidationError

from reviews.models import Case, Feedback
from reviews.schemas import (
    CASE_WEBHOOKS,
    BatchIn,
    BatchOut,
    CaseCreatedOut,
    CaseFeedOut,
    CaseFeedQuery,
    CaseIn,
    CaseOut,
    ContestIn,
    FeedbackIn,
    FeedbackOut,
)
from reviews.selectors import case_appeal_state, case_feed, case_get_for_system, case_trail
from reviews.services import case_contest, case_ingest, case_ingest_batch, feedback_record
from reviews.services.intake import invalid_from_validation
from reviews.services.notices import notice_url
from workbench.api import RATE_LIMITED, api, errors, ingest_auth
from workbench.selectors import trail_event_as_dict
from workbench.services import Actor
from workbench.services.webhooks import TOPIC_DESCRIPTIONS

router = Router(tags=["cases"], auth=ingest_auth)
# Every operation behind a key: 401 (no or bad key), 429 (over its rate).
# With a body: 400 (not JSON), 413 (too large), 422 (invalid). Writes route by
# the system's policy: 503 until one is published.


def _created(case: Case) -> dict:
    return {
        "id": str(case.id),
        "reference": case.reference,
        "status": case.status,
        "route": {
            "rule": case.route.get("rule"),
            "queue": case.route.get("queue"),
            "policy_version": case.route["policy_version"],
        },
        "notice_url": notice_url(case),
    }


@router.post(
    "",
    response={
        200: CaseCreatedOut,
        201: CaseCreatedOut,
        **errors(400, 401, 409, 413, 422, 429, 503),
    },
    openapi_extra=RATE_LIMITED,
    summary="Submit one AI output",
    description="201 when stored; 200 when the same external_id and body were submitted "
    "before; 409 when the external_id was submitted with a different body.",
)
def case_create(request, payload: CaseIn):
    result = case_ingest(system=request.auth.system, item=payload)
    return Status(result.status, _created(result.case))


@router.get(
    "",
    # 400: a query string that holds a NUL (workbench.middleware), as any URL.
    response={200: CaseFeedOut, **errors(400, 401, 422, 429)},
    openapi_extra=RATE_LIMITED,
    summary="The system's cases changed since a cursor",
    description="Every case of the key's system that changed after `updated_after` (a "
    "trail seq), each once, ordered by the seq of its latest change, with the cursor for the "
    "next page. Start from 0; keep `next_updated_after` and ask again, so that a system whose "
    "webhooks were lost (its receiver down beyond the 25 hours of retries) finds every "
    "change. A case changed again later comes back, with its later seq. 422 for a cursor "
    "past the end of the trail.",
)
def case_feed_list(request, query: Query[CaseFeedQuery]):
    page = case_feed(system=request.auth.system, after=query.updated_after, limit=query.limit)
    return Status(
        200,
        {
            "cases": [
                {
                    "reference": change.case.reference,
                    "external_id": change.case.external_id,
                    "status": change.case.status,
                    "outcome": change.case.final_outcome or None,
                    "decided_by": change.case.decided_by or None,
                    "appeal": case_appeal_state(change.appeal_events),
                    "seq": change.seq,
                    "changed_at": change.at,
                }
                for change in page.changes
            ],
            "next_updated_after": page.next_after,
            "has_more": page.has_more,
        },
    )


@router.post(
    "/batch",
    response={200: BatchOut, **errors(400, 401, 413, 422, 429, 503)},
    openapi_extra=RATE_LIMITED,
    summary="Submit up to 1,000 outputs",
)
def case_create_batch(request, payload: BatchIn):
    items = []
    for raw in payload.cases:
        try:
            items.append(CaseIn.model_validate(raw))
        except ValidationError as exc:
            items.append(invalid_from_validation(exc))
    results = case_ingest_batch(system=request.auth.system, items=items)
    out = []
    for result in results:
        if result.error is not None:
            error = result.error
            out.append(
                {
                    "status": result.status,
                    "error": {"code": error.code, "message": error.message, "fields": error.fields},
                }
            )
        else:
            created = _created(result.case)
            created["case_status"] = created.pop("status")
            out.append({"status": result.status, **created})
    return Status(200, {"results": out})


@router.get(
    "/{reference}",
    response={200: CaseOut, **errors(401, 404, 429)},
    openapi_extra=RATE_LIMITED,
    summary="A case and its trail",
)
def case_detail(request, reference: str):
    case = case_get_for_system(system=request.auth.system, reference=reference)
    trail = [trail_event_as_dict(event) for event in case_trail(case=case)]
    return Status(
        200,
        {
            "id": str(case.id),
            "reference": case.reference,
            "external_id": case.external_id,
            "system": request.auth.system.slug,
            "status": case.status,
            "outcome": case.final_outcome or None,
            "decided_by": case.decided_by or None,
            "reasons": case.output.get("reasons", []),
            "route": case.route,
            "appeal": case_appeal_state(trail),
            "notice_url": notice_url(case),
            "trail": trail,
        },
    )


@router.post(
    "/{reference}/contest",
    response={200: CaseCreatedOut, **errors(400, 401, 404, 409, 413, 422, 429, 503)},
    openapi_extra=RATE_LIMITED,
    summary="Flag a case as contested: it goes to a person",
)
def case_contest_create(request, reference: str, payload: ContestIn):
    system = request.auth.system
    case = case_contest(
        system=system, reference=reference, reason=payload.reason, actor=Actor.system(system.slug)
    )
    return Status(200, _created(case))


@router.post(
    "/{reference}/feedback",
    response={
        200: FeedbackOut,
        201: FeedbackOut,
        **errors(400, 401, 404, 409, 413, 422, 429),
    },
    openapi_extra=RATE_LIMITED,
    summary="Submit the customer's answers to the two questions",
    description="Ratings the system collected in its own channel about the final decision "
    "of one of its cases (the first decision, or the appeal's): 201 for the first answer, "
    "200 when it replaces an earlier one (within 14 days of the first). 409 with code "
    "`not_final` while the case is being decided or appealed, `too_late` after 14 days, "
    "`subject_erased` once the customer's data was erased; 422 with the field paths for a "
    "score outside 1 to 5 or a comment over 2,000 characters or with markup.",
)
def case_feedback_create(request, reference: str, payload: FeedbackIn):
    system = request.auth.system
    case = case_get_for_system(system=system, reference=reference)
    recorded = feedback_record(
        case=case,
        listened=payload.listened,
        explained=payload.explained,
        comment=payload.comment,
        source=Feedback.Source.SYSTEM,
        channel=payload.channel,
        actor=Actor.system(system.slug),
    )
    feedback = recorded.feedback
    return Status(
        200 if recorded.changed else 201,
        {
            "reference": case.reference,
            "stage": feedback.stage,
            "listened": feedback.listened,
            "explained": feedback.explained,
            "comment_sha256": feedback.comment.sha256 if feedback.comment else None,
            "decided_by": feedback.decided_by,
            "source": feedback.source,
            "channel": feedback.channel or None,
            "answered_at": feedback.answered_at.isoformat(),
            "changed_at": feedback.changed_at.isoformat() if feedback.changed_at else None,
            "changed": recorded.changed,
        },
    )


_WEBHOOK_SUMMARIES = {
    "case.finalized": "A person finalized a case",
    "case.appeal_decided": "An appeal was decided",
}
for _topic, _schema in CASE_WEBHOOKS.items():
    api.add_webhook(
        _topic,
        _schema,
        summary=_WEBHOOK_SUMMARIES.get(_topic) or TOPIC_DESCRIPTIONS[_topic].capitalize(),
    )
