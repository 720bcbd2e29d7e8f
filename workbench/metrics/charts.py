"""The compliance dashboard: its figures (read from the rollups) and its
charts.

Charts are drawn on the server as inline SVG: no script, no CDN, no inline
style. Here they are only geometry (numbers in a fixed viewBox) and a text
alternative; the templates draw them with classes styled in workbench.css.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from workbench.metrics.hybrid import Hybrid, hybrid_figures
from workbench.metrics.reports import (
    FAIRNESS_METRICS,
    MetricsReport,
    SegmentReport,
    SystemMetrics,
    fairness_report,
    metrics_report,
)
from workbench.metrics.rollup import LAZY_MAX_EVENTS, metrics_rollup_update
from workbench.metrics.stats import Rate, bucket_bounds

DEFAULT_DAYS = 30


def default_range(today: date | None = None) -> tuple[date, date]:
    """The last 30 UTC days, today included."""
    today = today or timezone.now().date()
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def duration_text(seconds: float | None) -> str:
    """A duration for people: ``45 s``, ``12 min``, ``3.4 h``, ``2.1 d``."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def rate_text(rate: Rate) -> str:
    """``30.0% (10.8–60.3%, 3 of 10)``; ``—`` without cases."""
    if not rate.n:
        return "—"
    return f"{percent(rate.value)} ({percent(rate.low)}–{percent(rate.high)}, {rate.x} of {rate.n})"


# --- Charts ------------------------------------------------------------------------------


@dataclass
class Chart:
    """An SVG chart: ``width`` x ``height`` viewBox, its parts, and the text
    alternative (``title`` and ``summary``, read by screen readers and shown
    as the figure's caption)."""

    id: str
    title: str
    summary: str
    width: int = 640
    height: int = 180
    bars: list[dict] = field(default_factory=list)
    whiskers: list[dict] = field(default_factory=list)
    labels: list[dict] = field(default_factory=list)
    gridlines: list[dict] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.bars

    @property
    def svg(self) -> SafeString:
        """The chart as SVG markup. Built here rather than in a template: a
        year of daily bars is thousands of elements, which the template
        engine would take most of the page's time to render."""
        e = escape
        parts = [
            f'<svg class="chart-svg" viewBox="0 0 {self.width} {self.height}" role="img" '
            f'aria-labelledby="{self.id}-title {self.id}-desc" '
            'preserveAspectRatio="xMinYMin meet" focusable="false">'
            f'<title id="{self.id}-title">{e(self.title)}</title>'
            f'<desc id="{self.id}-desc">{e(self.summary)}</desc>'
        ]
        parts += [
            f'<line class="chart-grid" x1="{g["x1"]}" x2="{g["x2"]}" '
            f'y1="{g["y1"]}" y2="{g["y2"]}"/>'
            for g in self.gridlines
        ]
        parts += [
            f'<rect class="{b["cls"]}" x="{b["x"]}" y="{b["y"]}" width="{b["width"]}" '
            f'height="{b["height"]}"><title>{e(b["label"])}</title></rect>'
            for b in self.bars
        ]
        for w in self.whiskers:
            x1, x2, y = w["x1"], w["x2"], w["y"]
            parts.append(
                f'<line class="chart-whisker" x1="{x1}" x2="{x2}" y1="{y}" y2="{y}"/>'
                f'<line class="chart-whisker" x1="{x1}" x2="{x1}" y1="{y - 4}" y2="{y + 4}"/>'
                f'<line class="chart-whisker" x1="{x2}" x2="{x2}" y1="{y - 4}" y2="{y + 4}"/>'
            )
        parts += [
            f'<text class="chart-label {t["cls"]}" x="{t["x"]}" y="{t["y"]}">{e(t["text"])}</text>'
            for t in self.labels
        ]
        parts.append("</svg>")
        return mark_safe("".join(parts))  # noqa: S308 (every text part is escaped above)


def chart_daily(daily: list[tuple[date, int, int]]) -> Chart:
    """Cases per day, stacked: finalized by the AI, routed to a person."""
    chart = Chart(
        id="chart-daily",
        title="Cases per day: finalized by the AI and routed to a person",
        summary="",
        height=200,
    )
    top = max((auto + human for _, auto, human in daily), default=0)
    total_auto = sum(auto for _, auto, _ in daily)
    total_human = sum(human for _, _, human in daily)
    busiest = max(daily, key=lambda d: d[1] + d[2], default=None)
    chart.summary = (
        f"{len(daily)} days; {total_auto:,} finalized by the AI, {total_human:,} routed "
        "to a person"
        + (
            f"; busiest day {busiest[0]:%d %b %Y} with {busiest[1] + busiest[2]:,} cases."
            if busiest and top
            else "."
        )
    )
    if not top:
        return chart
    left, bottom, plot_h = 40, chart.height - 20, chart.height - 30
    step = (chart.width - left - 4) / max(len(daily), 1)
    width = max(step * 0.8, 1)
    for i, (day, auto, human) in enumerate(daily):
        x = left + i * step
        h_auto = plot_h * auto / top
        h_human = plot_h * human / top
        label = f"{day:%d %b}: {auto} by the AI, {human} to a person"
        if auto:
            chart.bars.append(_bar(x, bottom - h_auto, width, h_auto, "bar-auto", label))
        if human:
            chart.bars.append(
                _bar(x, bottom - h_auto - h_human, width, h_human, "bar-human", label)
            )
    for value in (0, top // 2, top) if top > 1 else (0, top):
        y = bottom - plot_h * value / top
        chart.gridlines.append(
            {"x1": left, "x2": chart.width, "y1": round(y, 1), "y2": round(y, 1)}
        )
        chart.labels.append(
            {"x": left - 4, "y": round(y + 4, 1), "text": f"{value:,}", "cls": "axis-y"}
        )
    last = len(daily) - 1
    for i in sorted({0, len(daily) // 2, last}):
        chart.labels.append(
            {
                "x": round(left + i * step + (width if i == last and i else width / 2), 1),
                "y": chart.height - 4,
                "text": f"{daily[i][0]:%d %b}",
                "cls": "axis-x-end" if i == last and i else "axis-x",
            }
        )
    return chart


def chart_rates(chart_id: str, title: str, items: list[tuple[str, Rate]]) -> Chart:
    """Horizontal bars of rates (0–100%) with their 95% interval as a whisker."""
    items = [(label, rate) for label, rate in items if rate.n]
    row_h = 26
    chart = Chart(id=chart_id, title=title, summary="", height=max(row_h * len(items) + 24, 40))
    chart.summary = (
        "; ".join(f"{label}: {rate_text(rate)}" for label, rate in items) + "."
        if items
        else "No cases in this range."
    )
    left, right = 200, chart.width - 16
    span = right - left
    for i, (label, rate) in enumerate(items):
        y = 4 + i * row_h
        chart.labels.append({"x": left - 6, "y": y + 15, "text": label[:32], "cls": "axis-y"})
        chart.bars.append(
            _bar(
                left,
                y + 4,
                max(span * rate.value, 1),
                14,
                "bar-rate",
                f"{label}: {rate_text(rate)}",
            )
        )
        chart.whiskers.append(
            {
                "x1": round(left + span * rate.low, 1),
                "x2": round(left + span * rate.high, 1),
                "y": y + 11,
            }
        )
        chart.labels.append(
            {
                "x": round(min(left + span * rate.high + 4, right - 40), 1),
                "y": y + 15,
                "text": percent(rate.value),
                "cls": "value",
            }
        )
    bottom = 4 + len(items) * row_h
    for tick in (0, 0.5, 1):
        x = round(left + span * tick, 1)
        chart.gridlines.append({"x1": x, "x2": x, "y1": 0, "y2": bottom})
        chart.labels.append({"x": x, "y": bottom + 14, "text": f"{tick:.0%}", "cls": "axis-x"})
    return chart


def chart_durations(chart_id: str, title: str, hist: dict) -> Chart:
    """The histogram of durations over its log-scale buckets."""
    counts = {int(k): v for k, v in hist.items() if v}
    chart = Chart(id=chart_id, title=title, summary="", height=160)
    if not counts:
        chart.summary = "No decisions in this range."
        return chart
    # At least 8 doublings wide (e.g. 1 min to 4 h), so one busy bucket is a bar, not a wall.
    low, high = max(min(counts) - 1, 0), max(counts) + 1
    spare = max(0, 32 - (high - low + 1))
    low = max(low - spare // 2, 0)
    high = low + max(high - low, 31)
    top = max(counts.values())
    left, bottom, plot_h = 8, chart.height - 20, chart.height - 30
    step = (chart.width - 2 * left) / (high - low + 1)
    for index in range(low, high + 1):
        count = counts.get(index, 0)
        if count:
            h = plot_h * count / top
            lo, hi = bucket_bounds(index)
            chart.bars.append(
                _bar(
                    left + (index - low) * step,
                    bottom - h,
                    max(step - 1, 1),
                    h,
                    "bar-duration",
                    f"{duration_text(lo)}–{duration_text(hi)}: {count}",
                )
            )
    for seconds, text in ((60, "1 min"), (3600, "1 h"), (86400, "1 day"), (7 * 86400, "1 week")):
        index = next(i for i in range(200) if bucket_bounds(i)[1] >= seconds)
        if low <= index <= high:
            x = round(left + (index - low + 1) * step, 1)
            chart.gridlines.append({"x1": x, "x2": x, "y1": 0, "y2": bottom})
            chart.labels.append({"x": x, "y": chart.height - 4, "text": text, "cls": "axis-x"})
    modal = max(counts, key=counts.get)
    lo, hi = bucket_bounds(modal)
    chart.summary = (
        f"{sum(counts.values()):,} durations from {duration_text(bucket_bounds(min(counts))[0])} "
        f"to {duration_text(bucket_bounds(max(counts))[1])}; most between "
        f"{duration_text(lo)} and {duration_text(hi)}."
    )
    return chart


def _bar(x, y, width, height, cls, label) -> dict:
    return {
        "x": round(x, 1),
        "y": round(y, 1),
        "width": round(width, 1),
        "height": round(max(height, 0.5), 1),
        "cls": cls,
        "label": label,
    }


# --- The dashboard -----------------------------------------------------------------------


@dataclass
class Dashboard:
    start: date
    end: date
    report: MetricsReport
    fairness: list[SegmentReport]
    charts: dict[str, Chart]
    fairness_charts: list[tuple[SegmentReport, Chart]]
    rows: list[tuple[SystemMetrics, bool]]  # (figures, is the system's total), table order
    stale: bool  # the rollups are behind (beat will catch up); the page says so
    hybrid: Hybrid  # all systems
    hybrid_rows: list[tuple[SystemMetrics, Hybrid]]  # per system


def compliance_dashboard(*, start: date, end: date) -> Dashboard:
    """Everything the dashboard shows, from the rollups: a fixed number of
    queries whatever the number of cases. Brings the rollups up to date first
    when they are behind by at most ``LAZY_MAX_EVENTS`` events (skipping if
    another update holds them), so that the embedded mode, which has no beat,
    shows fresh figures."""
    run = metrics_rollup_update(max_events=LAZY_MAX_EVENTS, wait=False)
    report = metrics_report(start=start, end=end)
    fairness = fairness_report(start=start, end=end, names=report.names)
    rows = [
        (f"{m.name} {m.model_version}", m)
        for s in report.systems
        for m in report.versions[s.system]
    ]
    charts = {
        "daily": chart_daily(report.daily),
        "override": chart_rates(
            "chart-override",
            "Human override rate by AI system and model version, with 95% intervals",
            [(label, m.override_rate) for label, m in rows],
        ),
        "overturn": chart_rates(
            "chart-overturn",
            "Share of appeals that changed the decision, with 95% intervals",
            [(label, m.overturn_rate) for label, m in rows],
        ),
        "qa": chart_rates(
            "chart-qa",
            "AI error rate on the random QA sample, with 95% Wilson intervals",
            [(label, m.qa_error_rate) for label, m in rows],
        ),
        "decide": chart_durations(
            "chart-decide", "Time to human decision (log scale)", report.total.decide_hist
        ),
    }
    fairness_charts = [
        (
            segment,
            chart_rates(
                f"chart-fair-{i}",
                f"{segment.name}: adverse outcome rate by {segment.segment}, with 95% intervals",
                [(v.value, v.adverse) for v in segment.values],
            ),
        )
        for i, segment in enumerate(fairness)
    ]
    return Dashboard(
        start=start,
        end=end,
        report=report,
        fairness=fairness,
        charts=charts,
        fairness_charts=fairness_charts,
        rows=[
            (m, is_total)
            for s in report.systems
            for m, is_total in [(s, True), *((v, False) for v in report.versions[s.system])]
        ],
        stale=run.skipped,
        hybrid=hybrid_figures(report.total),
        hybrid_rows=[(s, hybrid_figures(s)) for s in report.systems],
    )


__all__ = ["FAIRNESS_METRICS", "compliance_dashboard", "default_range"]
