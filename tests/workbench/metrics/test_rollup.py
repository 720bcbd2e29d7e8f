"""The rollup update (workbench.metrics.rollup): incremental, exact, safe at once."""

import copy
import threading
import uuid
from datetime import date, timedelta

import pytest
import time_machine
from django.db import connection

from reviews.services.assignment import task_claim_next
from reviews.services.decisions import DecisionInput, decision_record
from tests import factories
from tests.workbench.metrics.world import (
    DAY,
    POLICY,
    T0,
    approval,
    build_world,
    decide_next,
    denial,
    sampled,
    snapshot,
)
from workbench.metrics import (
    Rate,
    metrics_report,
    metrics_rollup_reset,
    metrics_rollup_update,
)
from workbench.models import DailyRollup, MetricsCursor, TrailHead


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
