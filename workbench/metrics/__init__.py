"""Compliance metrics, read from the trail (DESIGN §2), never from the tables
of ``reviews`` or ``escalations``:

- ``stats``: duration histograms and proportions with their intervals;
- ``rollup``: the one writer, keeping the daily rollups up to date;
- ``reports``: the figures read from the rollups, fairness gaps included;
- ``bias``: the weekly rubber-stamp report;
- ``transparency``: the DSA Article 24 report, as CSV or HTML;
- ``charts``: the dashboard's figures and its server-drawn charts;
- ``hybrid``: the hybrid AI-human figures, counted into the rollups;
- the justice audit (issue #16), read from the trail itself: ``casefile``
  (one system's cases over a range), ``connection`` (the connection index),
  ``justice`` (the scorecard), ``thresholds`` (the policy's ``audit:`` and
  the status rule), ``scorecard`` (rows, CSV, the printable page).
"""

from workbench.metrics.bias import (
    AI_VIEW_PARTS,
    AutomationBiasReport,
    RubberStampRules,
    automation_bias_report,
)
from workbench.metrics.charts import Dashboard, compliance_dashboard, default_range
from workbench.metrics.reports import (
    FAIRNESS_METRICS,
    MetricsReport,
    SegmentReport,
    SystemMetrics,
    fairness_report,
    metrics_report,
)
from workbench.metrics.rollup import (
    LAZY_MAX_EVENTS,
    RollupRun,
    metrics_rollup_reset,
    metrics_rollup_update,
)
from workbench.metrics.stats import (
    Rate,
    duration_bucket,
    hist_quantile,
    newcombe_interval,
    wilson_interval,
)
from workbench.metrics.transparency import (
    TransparencyReport,
    transparency_render,
    transparency_report,
    transparency_rows,
)

__all__ = [
    "AI_VIEW_PARTS",
    "FAIRNESS_METRICS",
    "LAZY_MAX_EVENTS",
    "AutomationBiasReport",
    "Dashboard",
    "MetricsReport",
    "Rate",
    "RollupRun",
    "RubberStampRules",
    "SegmentReport",
    "SystemMetrics",
    "TransparencyReport",
    "automation_bias_report",
    "compliance_dashboard",
    "default_range",
    "duration_bucket",
    "fairness_report",
    "hist_quantile",
    "metrics_report",
    "metrics_rollup_reset",
    "metrics_rollup_update",
    "newcombe_interval",
    "transparency_render",
    "transparency_report",
    "transparency_rows",
    "wilson_interval",
]
