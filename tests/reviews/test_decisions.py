import json
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from reviews.models import Case, Decision, ReasonCode, ReviewTask
from reviews.selectors import BLIND_VIEW, FULL_VIEW
from reviews.services.assignment import task_claim_next, task_release
from reviews.services.decisions import DecisionInput, decision_record
from tests import factories
from workbench.errors import WorkbenchError
from workbench.models import TrailEvent
from workbench.services import trail_verify


@pytest.fixture
def reviewer(db):
    return factories.UserFactory(role="reviewer")


@pytest.fixture
def catalog(system):
    return factories.reason_code(system)


def claimed(system, reviewer, n=1, **overrides):
    factories.ingest(system, factories.claim_payload(n, **overrides))
    return task_claim_next(user=reviewer)


def decide(task, user, key=None, **fields):
    return decision_record(
        task_id=task.pk,
        user=user,
        fencing_token=task.fencing_token,
        decision=DecisionInput(**fields),
        idempotency_key=key or uuid.uuid4().hex,
    )


def last_event(action):
    return json.loads(TrailEvent.objects.filter(action=action).latest("seq").body)


def test_agreeing_finalizes_the_case_with_the_ai_outcome(system, reviewer):
    task = claimed(system, reviewer)
    decision = decide(task, reviewer, verdict="agree")
    case = Case.objects.get()
    assert (case.status, case.final_outcome, case.decided_by) == ("finalized", "deny", "human")
    assert decision.seconds_spent >= 0 and decision.ai_visible
    assert ReviewTask.objects.get().status == "done"
    data = last_event("case.decided")["data"]
    assert (data["verdict"], data["final_outcome"]) == ("agree", "deny")
    assert trail_verify().ok


def test_overriding_needs_an_outcome_a_reason_and_a_rationale(system, reviewer, catalog):
    task = claimed(system, reviewer)
    with pytest.raises(WorkbenchError) as caught:
        decide(task, reviewer, verdict="override")
    assert caught.value.code == "invalid"
    assert {f["path"] for f in caught.value.fields} == {"outcome", "rationale", "reason_code"}
    assert not Decision.objects.exists() and Case.objects.get().status == "in_review"

    decide(
        task,
        reviewer,
        verdict="override",
        outcome="approve",
        reason_code="CO-50",
        rationale="The therapy was pre-authorised <script>alert(1)</script>",
    )
    case = Case.objects.get()
    assert (case.final_outcome, case.decided_by) == ("approve", "human")
    data = last_event("case.decided")["data"]
    assert data["reason_code"] == "CO-50" and "rationale" not in data
    assert len(data["rationale_sha256"]) == 64


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        (
            {"verdict": "override", "outcome": "maybe", "reason_code": "CO-50", "rationale": "x"},
            "outcome",
        ),
        (
            {"verdict": "override", "outcome": "deny", "reason_code": "CO-50", "rationale": "x"},
            "outcome",
        ),
        (
            {"verdict": "override", "outcome": "approve", "reason_code": "XX-1", "rationale": "x"},
            "reason_code",
        ),
        ({"verdict": "escalate"}, "rationale"),
        ({"verdict": "agree", "outcome": "approve"}, "outcome"),
        ({"verdict": "shrug"}, "verdict"),
    ],
)
def test_invalid_decisions_name_the_field_and_change_nothing(
    system, reviewer, catalog, fields, path
):
    task = claimed(system, reviewer)
    events = TrailEvent.objects.count()
    with pytest.raises(WorkbenchError) as caught:
        decide(task, reviewer, **fields)
    assert path in {f["path"] for f in caught.value.fields}
    assert TrailEvent.objects.count() == events and not Decision.objects.exists()


def test_a_double_submitted_form_records_one_decision(system, reviewer):
    task = claimed(system, reviewer)
    first = decide(task, reviewer, key="form-1", verdict="agree")
    again = decide(task, reviewer, key="form-1", verdict="agree")
    assert first.pk == again.pk and Decision.objects.count() == 1
    assert TrailEvent.objects.filter(action="case.decided").count() == 1


@pytest.mark.parametrize("what", ["released", "reassigned", "expired", "foreign"])
def test_a_stale_or_foreign_form_is_refused(system, reviewer, what):
    task = claimed(system, reviewer)
    user, token = reviewer, task.fencing_token
    if what == "released":
        task_release(task_id=task.pk, user=reviewer, fencing_token=token)
        expected = "lease_lost"
    elif what == "reassigned":
        task_release(task_id=task.pk, user=reviewer, fencing_token=token)
        task_claim_next(user=reviewer)  # claimed again: a new fencing token
        expected = "stale_form"
    elif what == "foreign":
        user, expected = factories.UserFactory(role="reviewer"), "not_your_task"
    else:
        expected = "lease_expired"
    later = timezone.now() + timedelta(minutes=20 if what == "expired" else 0)
    with time_machine.travel(later), pytest.raises(WorkbenchError) as caught:
        decision_record(
            task_id=task.pk,
            user=user,
            fencing_token=token,
            decision=DecisionInput("agree"),
            idempotency_key="k",
        )
    assert caught.value.code == expected
    assert not Decision.objects.exists()
    assert Case.objects.get().final_outcome == ""


def test_escalating_opens_a_supervisor_task(system, reviewer):
    task = claimed(system, reviewer)
    decide(task, reviewer, verdict="escalate", rationale="Conflicting medical records")
    case = Case.objects.get()
    assert case.status == "pending_review"
    escalation = ReviewTask.objects.get(kind="escalation")
    assert escalation.queue.slug == "supervisor" and escalation.status == "open"
    supervisor = factories.UserFactory(role="supervisor")
    task = task_claim_next(user=supervisor)
    assert task == escalation
    decide(task, supervisor, verdict="agree")
    case.refresh_from_db()
    assert (case.status, case.final_outcome) == ("finalized", "deny")


def two_reviews(system, first, second, outcome_second):
    task = claimed(system, first, metadata={"amount": 9000})
    assert task.queue.slug == "senior-review"
    decide(task, first, verdict="agree")
    case = Case.objects.get()
    assert case.status == "pending_review"  # waits for the second review
    assert task_claim_next(user=first) is None  # not the same person twice
    task = task_claim_next(user=second)
    if outcome_second == "deny":
        decide(task, second, verdict="agree")
    else:
        decide(
            task,
            second,
            verdict="override",
            outcome=outcome_second,
            reason_code="CO-50",
            rationale="Amount was within the plan's limit",
        )
    case.refresh_from_db()
    return case


def test_two_agreeing_reviews_finalize(system, reviewer):
    case = two_reviews(system, reviewer, factories.UserFactory(role="reviewer"), "deny")
    assert (case.status, case.final_outcome) == ("finalized", "deny")
    assert Decision.objects.count() == 2


def test_two_disagreeing_reviews_go_to_a_supervisor(system, reviewer, catalog):
    case = two_reviews(system, reviewer, factories.UserFactory(role="reviewer"), "approve")
    assert case.status == "pending_review"
    assert ReviewTask.objects.get(kind="escalation").queue.slug == "supervisor"
    assert last_event("case.escalated")["data"]["disagreement"] is True


def test_a_human_final_decision_queues_a_signed_webhook_once(system, reviewer, catalog):
    from workbench.models import AISystem, OutboxMessage

    AISystem.objects.filter(pk=system.pk).update(callback_url="https://claims.example.org/hook")
    task = claimed(system, reviewer)
    decide(
        task,
        reviewer,
        key="k1",
        verdict="override",
        outcome="approve",
        reason_code="CO-50",
        rationale="Pre-authorised",
    )
    decide(
        task,
        reviewer,
        key="k1",
        verdict="override",
        outcome="approve",
        reason_code="CO-50",
        rationale="Pre-authorised",
    )
    message = OutboxMessage.objects.get(channel="webhook")  # the customer's email aside
    case = Case.objects.get()
    assert (message.topic, message.destination) == (
        "case.finalized",
        "https://claims.example.org/hook",
    )
    assert message.payload == {
        "reference": case.reference,
        "external_id": case.external_id,
        "outcome": "approve",
        "decided_by": "human",
        "verdict": "override",
        "reasons": [{"code": "CO-50", "text": "Not medically necessary"}],
        "appeal": None,
    }


def test_no_webhook_before_the_case_is_final(system, reviewer):
    from workbench.models import AISystem, OutboxMessage

    AISystem.objects.filter(pk=system.pk).update(callback_url="https://claims.example.org/hook")
    task = claimed(system, reviewer, metadata={"amount": 9000})  # two reviews needed
    decide(task, reviewer, verdict="agree")
    assert not OutboxMessage.objects.exists()


@pytest.mark.parametrize(("chosen", "verdict"), [("deny", "agree"), ("approve", "override")])
def test_a_blind_choice_becomes_agree_or_override_and_is_marked_blind(chosen, verdict):
    decision = DecisionInput.blind(chosen=chosen, ai_outcome="deny", rationale="checked")
    assert (decision.verdict, decision.outcome, decision.ai_visible) == (verdict, chosen, False)


# --- Reasons without a catalog ----------------------------------------------------------------


def ai_coded(system, reviewer, n=1, code="CO-50"):
    """A denial with a reason code in the output and another on its claim line."""
    payload = factories.claim_payload(n)
    payload["output"]["reasons"] = [{"code": code, "text": "Not deemed a medical necessity"}]
    payload["input"]["lines"][0]["reason_codes"] = ["N-130"]
    factories.ingest(system, payload)
    return task_claim_next(user=reviewer)


@pytest.mark.parametrize("code", ["CO-50", "N-130", "other"])
def test_without_a_catalog_an_override_takes_the_ais_codes_or_other(system, reviewer, code):
    assert not ReasonCode.objects.exists()
    task = ai_coded(system, reviewer)

    decide(task, reviewer, verdict="override", outcome="approve", reason_code=code, rationale="ok")

    case = Case.objects.get()
    assert (case.final_outcome, Decision.objects.get().reason_code) == ("approve", code)
    assert last_event("case.decided")["data"]["reason_code"] == code


def test_the_outcome_webhook_of_an_override_with_the_ais_code_keeps_the_ais_text(system, reviewer):
    from reviews.services.decisions import case_outcome_payload

    task = ai_coded(system, reviewer)
    decide(
        task, reviewer, verdict="override", outcome="partial", reason_code="CO-50", rationale="ok"
    )
    case = Case.objects.get()
    payload = case_outcome_payload(case, Decision.objects.get())
    assert payload["reasons"] == [{"code": "CO-50", "text": "Not deemed a medical necessity"}]


def test_a_code_neither_in_the_catalog_nor_the_ais_is_refused(system, reviewer, catalog):
    task = ai_coded(system, reviewer)
    events = TrailEvent.objects.count()
    with pytest.raises(WorkbenchError) as caught:
        decide(
            task, reviewer, verdict="override", outcome="approve", reason_code="CO-1", rationale="x"
        )
    assert caught.value.code == "invalid"
    [problem] = [f for f in caught.value.fields if f["path"] == "reason_code"]
    assert "not a reason for this case" in problem["message"]
    assert TrailEvent.objects.count() == events and not Decision.objects.exists()
    # Another case's AI code is no reason for this one.
    other = ai_coded(system, factories.UserFactory(role="reviewer"), n=2, code="CO-9")
    assert other.case.output["reasons"][0]["code"] == "CO-9"
    with pytest.raises(WorkbenchError):
        decide(
            task, reviewer, verdict="override", outcome="approve", reason_code="CO-9", rationale="x"
        )


# --- What was visible ---------------------------------------------------------------------------


def test_the_trail_records_which_parts_were_visible(system, reviewer, catalog):
    task = claimed(system, reviewer, 1)
    decide(task, reviewer, verdict="agree")
    assert last_event("case.decided")["data"]["visible"] == list(FULL_VIEW)

    task = claimed(system, reviewer, 2)
    decide(task, reviewer, verdict="escalate", rationale="unsure", ai_visible=False)
    assert last_event("case.escalated")["data"]["visible"] == list(BLIND_VIEW)

    task = claimed(system, reviewer, 3, metadata={"amount": 9000})  # two reviews
    decide(task, reviewer, verdict="agree", ai_visible=False)
    data = last_event("case.reviewed")["data"]
    assert (data["ai_visible"], data["visible"]) == (False, list(BLIND_VIEW))
    assert trail_verify().ok


@pytest.mark.parametrize(
    ("locale", "title"), [("es", "Nuestra decisión sobre"), ("en-GB", "Our decision on")]
)
def test_the_customer_is_told_by_email_in_their_language_when_a_person_decides(
    system, reviewer, locale, title
):
    from workbench.models import OutboxMessage

    payload = factories.claim_payload(1)
    payload["subject"]["locale"] = locale
    factories.ingest(system, payload)
    task = task_claim_next(user=reviewer)
    decide(task, reviewer, key="k1", verdict="agree")
    (email,) = OutboxMessage.objects.filter(channel="email")
    assert (email.topic, email.destination) == ("case.decided", "ana@example.org")
    assert email.payload["subject"].startswith(title)
    assert "/notice/" in email.payload["body"]
    assert email.payload["about"] == f"subject:{task.case.subject_id}"  # erasure finds it


def test_no_email_when_the_ai_decides_alone_or_no_address_is_known(system, reviewer):
    from workbench.models import OutboxMessage

    factories.ingest(
        system, factories.claim_payload(1, output={"outcome": "approve"}, confidence=0.99)
    )
    payload = factories.claim_payload(2)
    payload["subject"] = {"reference": "MBR-NO-EMAIL"}
    factories.ingest(system, payload)
    task = task_claim_next(user=reviewer)
    decide(task, reviewer, key="k1", verdict="agree")
    assert not OutboxMessage.objects.filter(channel="email").exists()


# --- The blind-review rule (decision_input) ---------------------------------------------------


def a_task(*, blind: bool, kind: str = "review", ai_outcome: str = "deny"):
    from types import SimpleNamespace

    return SimpleNamespace(
        queue=SimpleNamespace(blind=blind), kind=kind, case=SimpleNamespace(outcome=ai_outcome)
    )


def test_a_blind_task_takes_the_committed_outcome_and_refuses_a_verdict_before_it():
    from reviews.services.decisions import decision_input

    task = a_task(blind=True)
    with pytest.raises(WorkbenchError) as caught:
        decision_input(task=task, verdict="agree", committed=None, outcome="deny")
    assert caught.value.code == "blind_not_committed"
    assert [f["path"] for f in caught.value.fields] == ["outcome"]
    agreed = decision_input(task=task, verdict="agree", committed="deny", outcome="approve")
    assert (agreed.verdict, agreed.outcome, agreed.ai_visible) == ("agree", "deny", False)
    overridden = decision_input(task=task, verdict="agree", committed="approve", rationale="r")
    assert (overridden.verdict, overridden.outcome) == ("override", "approve")


def test_escalating_needs_no_commitment_and_is_blind_before_one():
    from reviews.services.decisions import decision_input

    task = a_task(blind=True)
    before = decision_input(task=task, verdict="escalate", committed=None, rationale="unsure")
    after = decision_input(task=task, verdict="escalate", committed="deny", rationale="unsure")
    assert (before.verdict, before.ai_visible, after.ai_visible) == ("escalate", False, True)


def test_an_escalation_task_or_an_open_queue_is_not_blind():
    from reviews.services.decisions import decision_input, task_is_blind

    assert not task_is_blind(a_task(blind=True, kind="escalation"))
    seen = decision_input(task=a_task(blind=False), verdict="override", committed=None, outcome="x")
    assert (seen.verdict, seen.outcome, seen.ai_visible) == ("override", "x", True)
