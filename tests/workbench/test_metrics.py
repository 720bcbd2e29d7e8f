"""The compliance rollups and the reports read from them (workbench.services.metrics)."""

import copy
import math
import threading
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.template.loader import render_to_string

from escalations.services import appeal_decide, appeal_file, appeal_statement_open
from escalations.services.deadlines import tasks_escalate_overdue
from reviews.models import Case, Policy
from reviews.routing import qa_sampled
from reviews.selectors import AI_VIEW
from reviews.services.decisions import DecisionInput, decision_record
from reviews.services.tasks import task_claim_next
from tests import factories
from workbench.models import DailyRollup, MetricsCursor, SegmentRollup, TrailHead
from workbench.services.metrics import (
    AI_VIEW_PARTS,
    Rate,
    automation_bias_report,
    duration_bucket,
    fairness_report,
    hist_quantile,
    metrics_report,
    metrics_rollup_reset,
    metrics_rollup_update,
    newcombe_interval,
    transparency_report,
    transparency_rows,
    wilson_interval,
)
from workbench.services.trail import Actor, trail_append

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


# --- Intervals and buckets -------------------------------------------------------------------


def test_wilson_interval_matches_the_hand_computation():
    # 3 of 10, z = 1.96: centre (0.3 + 1.92/10) / 1.384 = 0.3555, half-width
    # 1.96 / 1.384 * sqrt(0.021 + 0.0096) = 0.2477.
    low, high = wilson_interval(3, 10)
    assert (round(low, 4), round(high, 4)) == (0.1078, 0.6032)
    # No errors in 40 still has an upper bound (3.84 / 43.84), and the bounds stay in [0, 1].
    assert wilson_interval(0, 40) == (0.0, pytest.approx(0.0876, abs=1e-4))
    assert wilson_interval(5, 5)[1] == 1.0


def test_newcombe_interval_of_a_difference_is_built_from_the_two_wilson_intervals():
    a, b = Rate(4, 7), Rate(3, 7)
    (l1, u1), (l2, u2) = (0.2505, 0.8418), (0.1582, 0.7495)  # Wilson, by hand
    d = 4 / 7 - 3 / 7
    expected = (
        d - math.sqrt((4 / 7 - l1) ** 2 + (u2 - 3 / 7) ** 2),
        d + math.sqrt((u1 - 4 / 7) ** 2 + (3 / 7 - l2) ** 2),
    )
    low, high = newcombe_interval(a, b)
    assert low == pytest.approx(expected[0], abs=2e-4) == pytest.approx(-0.3111, abs=1e-4)
    assert high == pytest.approx(expected[1], abs=2e-4) == pytest.approx(0.5252, abs=1e-4)


def test_durations_fall_in_fixed_log_buckets_and_quantiles_come_within_9_percent():
    assert duration_bucket(0.2) == duration_bucket(1) == 0
    assert duration_bucket(7200) == 52  # 2^(51/4) = 6889 < 7200 <= 2^13 = 8192
    assert duration_bucket(8192) == 52 and duration_bucket(8193) == 53
    assert duration_bucket(10**12) == 108  # the last bucket takes everything longer
    values = [30, 45, 60, 90, 120, 600, 3600, 7200, 86400, 172800]
    hist: dict = {}
    for value in values:
        key = str(duration_bucket(value))
        hist[key] = hist.get(key, 0) + 1
    assert hist_quantile(hist, 0.5) == pytest.approx(120, rel=0.09)  # the 5th of 10
    assert hist_quantile(hist, 0.9) == pytest.approx(86400, rel=0.09)  # the 9th of 10
    assert hist_quantile({}, 0.5) is None


# --- The rollup update -----------------------------------------------------------------------


def test_the_rollup_counts_volumes_routing_overrides_appeals_and_breaches(db):
    build_world()
    run = metrics_rollup_update()
    assert run.cursor == TrailHead.objects.get().seq

    report = metrics_report(start=DAY, end=DAY + timedelta(days=6))
    (claims,) = report.systems
    (version,) = report.versions["claims-ai"]
    assert version.model_version == "2026.11.1"
    c = claims.counts
    assert (c["received"], c["routed_human"], c["auto_finalized"]) == (15, 11, 4)
    assert claims.routed_by == {"rule:adverse-needs-human": 11}
    assert (c["human_decided"], c["agreed"], c["overridden"]) == (10, 7, 3)
    assert claims.override_rate == Rate(3, 10)
    assert (round(claims.override_rate.low, 4), round(claims.override_rate.high, 4)) == (
        0.1078,
        0.6032,
    )
    assert claims.human_share == Rate(11, 15)
    assert claims.appeal_rate == Rate(2, 14)
    assert claims.overturn_rate == Rate(1, 2)
    assert (c["appeals_upheld"], c["appeals_overturned"], c["overdue"]) == (1, 1, 1)
    assert claims.appeals_by_basis == {"deny": {"filed": 2, "upheld": 1, "overturned": 1}}
    # Received at 9:00, decided at 11:00: 7200 s, read back as its bucket's middle.
    assert claims.decide_median == pytest.approx(7200, rel=0.09)
    assert claims.decide_p90 == pytest.approx(7200, rel=0.09)
    assert claims.appeal_median == pytest.approx(3600, rel=0.09)  # 1 h and 3 h
    assert claims.appeal_p90 == pytest.approx(3 * 3600, rel=0.09)
    # Per day: the 10 Nov has the volumes, the 11 Nov the appeals.
    (first,) = DailyRollup.objects.filter(day=DAY)
    assert (first.received, first.human_decided, first.appeals_filed) == (14, 10, 0)
    assert DailyRollup.objects.get(day=DAY + timedelta(days=1)).appeals_filed == 2
    assert report.daily[0] == (DAY, 4, 10)


def test_the_rollup_is_incremental_and_equals_a_recount_from_scratch(db):
    system = factories.system_with_policy(POLICY)
    alice = factories.UserFactory(role="reviewer")
    factories.reason_code(system)
    with time_machine.travel(T0, tick=False):
        for n in range(1, 4):
            denial(system, n, {"region": "east"})
    first = metrics_rollup_update()
    head = TrailHead.objects.get().seq
    assert (first.events, first.cursor) == (head, head)

    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        decide_next(alice, {})
        denial(system, 4, {})
    second = metrics_rollup_update()
    new_head = TrailHead.objects.get().seq
    # Only the events after the cursor are read.
    assert second.events == new_head - head
    assert second.counted == 3  # case.decided, case.received, case.routed
    assert metrics_rollup_update().events == 0  # nothing new: nothing read

    incremental = snapshot()
    metrics_rollup_reset()
    assert MetricsCursor.objects.get().seq == 0 and not DailyRollup.objects.exists()
    metrics_rollup_update(batch=3)  # small batches: the counts must not depend on them
    assert snapshot() == incremental
    (row,) = incremental[0]
    assert (row["received"], row["human_decided"], row["routed_human"]) == (4, 1, 4)


def test_a_larger_world_rolled_up_in_small_batches_equals_one_batch(db):
    build_world()
    metrics_rollup_update(batch=7)
    small = snapshot()
    metrics_rollup_reset()
    metrics_rollup_update()
    assert snapshot() == small


def test_the_lazy_update_waits_for_beat_when_far_behind(db):
    system = factories.system_with_policy(POLICY)
    for n in range(1, 4):
        denial(system, n, {})
    run = metrics_rollup_update(max_events=2)
    assert run.skipped and run.cursor == 0 and not DailyRollup.objects.exists()
    run = metrics_rollup_update(max_events=1000)
    assert not run.skipped and run.cursor == TrailHead.objects.get().seq


def test_qa_sample_overrides_are_the_ai_error_rate(db):
    policy = copy.deepcopy(POLICY)
    system = factories.system_with_policy(policy)
    factories.reason_code(system)
    alice = factories.UserFactory(role="reviewer")
    numbers = sampled(3)
    for n in numbers:
        case = approval(system, n, {})
        assert case.route["reason"] == "qa_sample"
    verdicts = {f"CLM-2026-{numbers[0]:06d}": "override"}
    for _ in numbers:
        decide_next_qa(alice, verdicts)
    metrics_rollup_update()
    (claims,) = metrics_report(start=date(2000, 1, 1), end=date(2100, 1, 1)).systems
    assert claims.routed_by == {"qa_sample": 3}
    assert claims.qa_error_rate == Rate(1, 3)
    assert (round(claims.qa_error_rate.low, 4), round(claims.qa_error_rate.high, 4)) == (
        0.0615,
        0.7923,
    )


def decide_next_qa(user, verdicts):
    task = task_claim_next(user=user)
    verdict = verdicts.get(task.case.external_id, "agree")
    decision = (
        DecisionInput(verdict="override", outcome="deny", reason_code="CO-50", rationale="No.")
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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_updates_at_once_count_every_event_once():
    build_world()
    connection.close()
    barrier = threading.Barrier(2)
    errors = []

    def run():
        from django.db import connection as conn

        try:
            barrier.wait()
            metrics_rollup_update(batch=5)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    together = snapshot()
    metrics_rollup_reset()
    metrics_rollup_update()
    assert snapshot() == together
    assert DailyRollup.objects.get(day=DAY).received == 14


# --- Reports -----------------------------------------------------------------------------------


def test_fairness_rates_per_region_and_the_largest_gap_with_its_interval(db):
    build_world()
    metrics_rollup_update()
    (report,) = fairness_report(start=DAY, end=DAY + timedelta(days=6))
    assert (report.system, report.segment) == ("claims-ai", "metadata.region")
    by_value = {v.value: v for v in report.values}
    assert set(by_value) == {"north", "south"}
    # North: denials 1-5 (1, 2 overridden to approve) + 2 approvals: 3 adverse of 7.
    # South: denials 6-10 (6 overridden) + 2 approvals: 4 adverse of 7.
    assert by_value["north"].adverse == Rate(3, 7)
    assert by_value["south"].adverse == Rate(4, 7)
    assert by_value["north"].override == Rate(2, 5)
    assert by_value["south"].override == Rate(1, 5)
    assert by_value["north"].overturn == Rate(1, 1)
    assert by_value["south"].overturn == Rate(0, 1)
    gaps = {gap.metric: gap for gap in report.gaps}
    adverse = gaps["adverse"]
    assert (adverse.high, adverse.low) == ("south", "north")
    assert adverse.difference == pytest.approx(1 / 7)
    assert adverse.interval == (
        pytest.approx(-0.3111, abs=1e-4),
        pytest.approx(0.5252, abs=1e-4),
    )
    assert not adverse.significant
    assert gaps["override"].difference == pytest.approx(0.2)


def test_segments_and_adverse_are_what_the_trail_recorded_when_it_happened(db):
    """The figures are read from the trail alone: a case's metadata edited, or
    a policy that calls other outcomes adverse, afterwards, changes nothing."""
    build_world()
    Case.objects.update(metadata={"region": "west"})
    Policy.objects.update(document={**POLICY, "adverse_outcomes": ["approve"]})
    metrics_rollup_update()
    (report,) = fairness_report(start=DAY, end=DAY + timedelta(days=6))
    by_value = {v.value: v for v in report.values}
    assert set(by_value) == {"north", "south"}
    assert by_value["north"].adverse == Rate(3, 7)


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


def test_the_transparency_report_has_the_article_24_figures(db):
    build_world()
    report = transparency_report(start=DAY, end=DAY + timedelta(days=6))  # refreshes the rollups
    rows = {(r[0], r[1], r[2]): r[3] for r in transparency_rows(report)[1:]}
    assert rows[("claims-ai", "decisions", "")] == 14
    assert rows[("claims-ai", "decisions_automated", "")] == 4
    assert rows[("claims-ai", "share_automated", "")] == f"{4 / 14:.4f}"
    assert rows[("claims-ai", "complaints_received", "deny")] == 2
    assert rows[("claims-ai", "complaints_overturned", "deny")] == 1
    assert rows[("claims-ai", "complaints_upheld", "deny")] == 1
    assert rows[("claims-ai", "reversals", "")] == 1
    assert rows[("claims-ai", "median_seconds_to_human_decision", "")] == pytest.approx(
        7200, rel=0.09
    )
    assert rows[("all", "decisions", "")] == 14


def test_beat_runs_the_rollup_every_minute(db):
    from workbench.celery import app
    from workbench.tasks import metrics_rollup

    entry = app.conf.beat_schedule["metrics-rollup"]
    assert (entry["task"], entry["schedule"]) == ("workbench.tasks.metrics_rollup", 60.0)
    system = factories.system_with_policy(POLICY)
    denial(system, 1, {})
    assert metrics_rollup() == TrailHead.objects.get().seq  # the task body, run here
    assert DailyRollup.objects.get().received == 1
    assert metrics_rollup() == 0
