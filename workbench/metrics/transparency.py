"""The transparency report (DSA Article 24), as rows, CSV or an HTML page."""

import csv
import io
from dataclasses import dataclass
from datetime import date

from django.template.loader import render_to_string
from django.utils import timezone

from workbench.metrics.reports import SystemMetrics, metrics_report
from workbench.metrics.rollup import LAZY_MAX_EVENTS, metrics_rollup_update


@dataclass
class TransparencyReport:
    start: date
    end: date
    systems: list[SystemMetrics]
    total: SystemMetrics


def transparency_report(*, start: date, end: date, refresh: bool = True) -> TransparencyReport:
    """The figures DSA Article 24 asks of a transparency report, per AI
    system and in total, over the UTC days ``start``..``end``: decisions,
    the share taken by automated means alone, complaints (appeals) by their
    basis (the outcome appealed) and their outcomes, median time to decide
    (first decision and appeal), and reversals. ``refresh`` first brings the
    rollups up to date (whatever the backlog)."""
    if refresh:
        metrics_rollup_update()
    report = metrics_report(start=start, end=end)
    return TransparencyReport(start=start, end=end, systems=report.systems, total=report.total)


def transparency_rows(report: TransparencyReport) -> list[list]:
    """The report as rows ``[system, figure, basis, value]``, header first."""

    def seconds(value):
        return "" if value is None else round(value)

    rows: list[list] = [["system", "figure", "basis", "value"]]
    for metrics in [*report.systems, report.total]:
        slug = metrics.system or "all"
        c = metrics.counts
        share = metrics.automated_share.value
        rows += [
            [slug, "decisions", "", metrics.finalized],
            [slug, "decisions_automated", "", c["auto_finalized"]],
            [slug, "decisions_by_a_person", "", c["human_decided"]],
            [slug, "share_automated", "", "" if share is None else f"{share:.4f}"],
            [slug, "human_overrides_of_ai", "", c["overridden"]],
            [slug, "median_seconds_to_human_decision", "", seconds(metrics.decide_median)],
            [slug, "complaints_received", "", c["appeals_filed"]],
            [slug, "complaints_decided", "", c["appeals_decided"]],
        ]
        for basis, counts in sorted(metrics.appeals_by_basis.items()):
            rows.append([slug, "complaints_received", basis, counts.get("filed", 0)])
            for outcome in ("upheld", "overturned", "modified"):
                rows.append([slug, f"complaints_{outcome}", basis, counts.get(outcome, 0)])
        rows += [
            [slug, "complaints_upheld", "", c["appeals_upheld"]],
            [slug, "complaints_overturned", "", c["appeals_overturned"]],
            [slug, "complaints_modified", "", c["appeals_modified"]],
            [slug, "reversals", "", metrics.appeals_changed],
            [slug, "median_seconds_to_complaint_decision", "", seconds(metrics.appeal_median)],
            [slug, "deadline_breaches", "", c["overdue"]],
        ]
    return rows


def transparency_render(*, start: date, end: date, fmt: str = "csv", lazy: bool = False) -> str:
    """The transparency report as CSV or as a readable HTML page. The rollups
    are brought up to date first: fully (the command), or ``lazy`` as the
    dashboard does (a download never waits on a large backlog)."""
    if lazy:
        metrics_rollup_update(max_events=LAZY_MAX_EVENTS, wait=False)
    report = transparency_report(start=start, end=end, refresh=not lazy)
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(transparency_rows(report))
        return out.getvalue()
    if fmt == "html":
        return render_to_string(
            "workbench/compliance_transparency.html",
            {"report": report, "generated_at": timezone.now()},
        )
    raise ValueError(f"unknown format {fmt!r}")
