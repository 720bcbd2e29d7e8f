"""A small world of claims cases for the metrics tests: denials and
approvals by region, decisions, appeals, at fixed times."""

import copy
import uuid
from datetime import UTC, datetime, timedelta

import time_machine

from escalations.services import appeal_decide, appeal_file, appeal_statement_open
from escalations.services.deadlines import tasks_escalate_overdue
from reviews.routing import qa_sampled
from reviews.services.assignment import task_claim_next
from reviews.services.decisions import DecisionInput, decision_record
from tests import factories
from workbench.models import DailyRollup, SegmentRollup

T0 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
DAY = T0.date()
POLICY = {**copy.deepcopy(factories.CLAIMS_POLICY), "fairness_segments": ["metadata.region"]}


def not_sampled(count: int, start: int = 100) -> list[int]:
    """Case numbers whose approvals the QA sample leaves to the AI."""
    return [
        n
        for n in range(start, start + 200)
        if not qa_sampled(system="claims-ai", external_id=f"CLM-2026-{n:06d}", rate=0.05)
    ][:count]


def sampled(count: int) -> list[int]:
    return [
        n
        for n in range(1000, 5000)
        if qa_sampled(system="claims-ai", external_id=f"CLM-2026-{n:06d}", rate=0.05)
    ][:count]


def denial(system, n, region):
    return factories.ingest(system, factories.claim_payload(n, metadata={"amount": 100, **region}))


def approval(system, n, region):
    payload = factories.claim_payload(
        n,
        metadata={"amount": 100, **region},
        output={"outcome": "approve", "summary": "Covered", "reasons": []},
        confidence=0.95,
    )
    return factories.ingest(system, payload)


def decide_next(user, verdicts: dict[str, str]):
    """Claim the next task and decide it as ``verdicts[external_id]`` says."""
    task = task_claim_next(user=user)
    verdict = verdicts.get(task.case.external_id, "agree")
    decision = (
        DecisionInput(
            verdict="override", outcome="approve", reason_code="CO-50", rationale="Covered."
        )
        if verdict == "override"
        else DecisionInput(verdict="agree")
    )
    decision_record(
        task_id=task.pk,
        user=user,
        fencing_token=task.fencing_token,
        decision=decision,
        idempotency_key=uuid.uuid4().hex,
    )
    return task.case


def appeal(case, appeal_user, outcome, *, filed, decided):
    with time_machine.travel(filed, tick=False):
        appeal_file(
            case=case, statement="Please look again.", evidence=[], idempotency_key=uuid.uuid4().hex
        )
    with time_machine.travel(decided, tick=False):
        task = task_claim_next(user=appeal_user)
        appeal_statement_open(task_id=task.pk, user=appeal_user, fencing_token=task.fencing_token)
        appeal_decide(
            task_id=task.pk,
            user=appeal_user,
            fencing_token=task.fencing_token,
            outcome=outcome,
            final_outcome="approve" if outcome != "upheld" else "",
            reason_code="",
            reasons="We looked again.",
            idempotency_key=uuid.uuid4().hex,
        )


def build_world():
    """On 10 Nov 2026: 10 denials (1-5 north, 6-10 south) go to a person, who
    decides them 2 h later and overrides 3 (1, 2, 6); 4 approvals stay with
    the AI (2 north, 2 south). On 11 Nov two denials are appealed: case 3
    (north) is overturned after 3 h, case 7 (south) upheld after 1 h. A
    15th denial (north) waits past its deadline (one breach)."""
    system = factories.system_with_policy(POLICY)
    factories.reason_code(system)
    alice = factories.UserFactory(username="rev.alice", role="reviewer")
    carol = factories.UserFactory(username="appeal.carol", role="appeal_reviewer")
    north, south = {"region": "north"}, {"region": "south"}
    cases = {}
    with time_machine.travel(T0, tick=False):
        for n in range(1, 11):
            cases[n] = denial(system, n, north if n <= 5 else south)
        for i, n in enumerate(not_sampled(4)):
            approval(system, n, north if i < 2 else south)
    overrides = {f"CLM-2026-{n:06d}": "override" for n in (1, 2, 6)}
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        for _ in range(10):
            decide_next(alice, overrides)
    day2 = T0 + timedelta(days=1)
    appeal(cases[3], carol, "overturned", filed=day2, decided=day2 + timedelta(hours=3))
    appeal(cases[7], carol, "upheld", filed=day2, decided=day2 + timedelta(hours=1))
    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        denial(system, 15, north)
    with time_machine.travel(T0 + timedelta(days=6), tick=False):
        tasks_escalate_overdue()
    return system, alice, carol


def snapshot() -> tuple[list, list]:
    daily = [
        {k: v for k, v in row.items() if k != "id"}
        for row in DailyRollup.objects.order_by("day", "system", "model_version").values()
    ]
    segments = [
        {k: v for k, v in row.items() if k != "id"}
        for row in SegmentRollup.objects.order_by("day", "system", "segment", "value").values()
    ]
    return daily, segments
