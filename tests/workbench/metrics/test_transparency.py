"""The transparency report (workbench.metrics.transparency)."""

from datetime import timedelta

import pytest

from tests.workbench.metrics.world import DAY, build_world
from workbench.metrics import (
    transparency_report,
    transparency_rows,
)


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
