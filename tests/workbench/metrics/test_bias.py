"""The rubber-stamp report (workbench.metrics.bias)."""

import uuid
from datetime import UTC, date, datetime, timedelta

import time_machine
from django.template.loader import render_to_string

from reviews.models import Case
from reviews.selectors import AI_VIEW
from reviews.services.assignment import task_claim_next
from reviews.services.decisions import DecisionInput, decision_record
from tests import factories
from tests.workbench.metrics.world import POLICY, denial
from workbench.metrics import (
    AI_VIEW_PARTS,
    Rate,
    automation_bias_report,
)
from workbench.services.trail import Actor, trail_append


def test_the_rubber_stamp_report_flags_fast_agreeing_reviewers(db):
    system = factories.system_with_policy(POLICY)
    factories.reason_code(system)
    fast = factories.UserFactory(username="rev.fast", role="reviewer")
    careful = factories.UserFactory(username="rev.careful", role="reviewer")
    monday = date(2026, 11, 9)
    start = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)
    for n in range(1, 53):
        with time_machine.travel(start + timedelta(minutes=n), tick=False):
            denial(system, n, {})
    for i, user in enumerate([fast] * 50 + [careful] * 2):
        seconds = 10 if user is fast else 120
        moment = start + timedelta(hours=2, minutes=i)
        with time_machine.travel(moment, tick=False):
            task = task_claim_next(user=user)
        with time_machine.travel(moment + timedelta(seconds=seconds), tick=False):
            decision_record(
                task_id=task.pk,
                user=user,
                fencing_token=task.fencing_token,
                decision=DecisionInput(verdict="agree", ai_visible=user is fast),
                idempotency_key=uuid.uuid4().hex,
            )
    report = automation_bias_report(week_start=monday)
    rows = {r.username: r for r in report.reviewers}
    assert rows["rev.fast"].decisions == 50 and rows["rev.fast"].agreement == Rate(50, 50)
    assert rows["rev.fast"].adverse_median == 10 and rows["rev.fast"].fast == 50
    assert rows["rev.fast"].flagged
    assert rows["rev.careful"].adverse_median == 120 and not rows["rev.careful"].flagged
    assert report.reviewers[0].username == "rev.fast"  # flags first
    # Only rev.careful reviewed blind.
    assert [(b.system, b.agreement) for b in report.blind] == [("claims-ai", Rate(2, 2))]
    # The week after is empty.
    assert automation_bias_report(week_start=monday + timedelta(days=7)).reviewers == []


def test_blind_agreement_counts_only_verdicts_made_on_the_allow_listed_page(db):
    """A verdict recorded as blind before the page was built by allow-list
    (no ``visible`` list: the page showed the adverse flag and the outcome
    rule) could read the AI's outcome: it is counted apart, not as blind."""
    system = factories.system_with_policy(POLICY)
    factories.reason_code(system)
    reviewer = factories.UserFactory(username="rev.blind", role="reviewer")
    start = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        for n in range(1, 6):
            denial(system, n, {})
    decisions = [
        DecisionInput(verdict="agree", ai_visible=False),
        DecisionInput(verdict="agree", ai_visible=False),
        DecisionInput.blind(
            chosen="approve", ai_outcome="deny", reason_code="CO-50", rationale="x"
        ),
        DecisionInput(verdict="agree"),  # the AI's recommendation on screen: not blind
    ]
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        for decision in decisions:
            task = task_claim_next(user=reviewer)
            decision_record(
                task_id=task.pk,
                user=reviewer,
                fencing_token=task.fencing_token,
                decision=decision,
                idempotency_key=uuid.uuid4().hex,
            )
        # As the trail recorded blind verdicts before: no "visible" list.
        last = Case.objects.get(status="pending_review")
        trail_append(
            action="case.decided",
            actor=Actor.user(reviewer),
            case=last.reference,
            system=system.slug,
            data={"verdict": "agree", "ai_visible": False, "seconds": 40},
        )

    report = automation_bias_report(week_start=date(2026, 11, 9))

    [blind] = report.blind
    assert (blind.system, blind.agreement, blind.earlier) == ("claims-ai", Rate(2, 3), 1)
    assert {r.username: r.decisions for r in report.reviewers} == {"rev.blind": 5}
    html = render_to_string(
        "workbench/compliance_reviewers.html#report",
        {"report": report, "previous": date(2026, 11, 2), "next": date(2026, 11, 16)},
    )
    assert "1 earlier blind verdict left out" in html


def test_the_metrics_know_the_parts_that_show_the_ai():
    assert set(AI_VIEW_PARTS) == set(AI_VIEW)
