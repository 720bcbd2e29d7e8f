"""Filters of the compliance screens: rates with their interval, durations."""

from django import template
from django.utils.html import format_html

from workbench.metrics.charts import duration_text, percent, rate_text

register = template.Library()


@register.filter
def duration(seconds):
    return duration_text(seconds)


@register.filter
def pct(value):
    return percent(value)


@register.filter
def rate(value):
    """A ``Rate`` as ``30.0% (10.8%–60.3%, 3 of 10)``: plain text."""
    return rate_text(value)


@register.filter
def rate_cell(value):
    """A ``Rate`` for a table cell: the rate, then its interval and counts in small print."""
    if not value.n:
        return "—"
    return format_html(
        '{} <span class="muted small ci">{}–{}, {} of {}</span>',
        percent(value.value),
        percent(value.low),
        percent(value.high),
        value.x,
        value.n,
    )


@register.filter
def signed_pct(value):
    return "—" if value is None else f"{100 * value:+.1f} pp"


@register.filter
def attr(obj, name):
    return getattr(obj, name)


def _figure(value, unit: str) -> str:
    if value is None:
        return "no data"
    if unit == "rate":
        return percent(value)
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "days":
        return f"{value:.1f} d"
    if unit == "minutes":
        return f"{value:.0f} min"
    if unit == "index":
        return f"{value:.1f}"
    return f"{value:.2f}"


@register.filter
def figure(line):
    """A scorecard line's value in its unit: ``12.5%``, ``3.2 d``, ``4.10``."""
    if line.key.startswith("adverse_gap") and line.value is not None:
        return f"{100 * line.value:+.1f} pp"
    return _figure(line.value, line.unit)


@register.filter
def figure_interval(line):
    if not line.interval:
        return "—"
    if line.key.startswith("adverse_gap"):
        low, high = line.interval
        return f"{100 * low:+.1f} to {100 * high:+.1f} pp"
    return f"{_figure(line.interval[0], line.unit)}–{_figure(line.interval[1], line.unit)}"


@register.filter
def figure_threshold(line):
    if line.threshold is None:
        return "—"
    sign = "≤" if line.direction == "at_most" else "≥"
    if line.key.startswith("adverse_gap"):
        return f"{sign} {100 * line.threshold:.1f} pp"
    return f"{sign} {_figure(line.threshold, line.unit)}"


@register.filter
def status_badge(status):
    css = {"holds": "ok", "watch": "warning", "fails": "danger"}.get(status, "")
    return format_html('<span class="badge status {}">{}</span>', css, status)
