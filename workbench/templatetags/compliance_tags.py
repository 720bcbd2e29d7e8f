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
