"""The figures read from the rollups (workbench.metrics.reports): fairness."""

from datetime import timedelta

import pytest

from reviews.models import Case, Policy
from tests.workbench.metrics.world import DAY, POLICY, build_world
from workbench.metrics import (
    Rate,
    fairness_report,
    metrics_rollup_update,
)


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
