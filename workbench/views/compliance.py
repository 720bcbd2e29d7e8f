"""The compliance dashboard and its reports (role ``compliance``, read-only).

Anyone else gets 404, and the attempt is logged as a warning. Each view
validates its query string, calls one selector or service, and renders; the
dashboard's figures region is also its htmx fragment (``#metrics``).
"""

from datetime import date, timedelta

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from workbench.forms import DayField, ExportForm
from workbench.metrics import (
    FAIRNESS_METRICS,
    automation_bias_report,
    compliance_dashboard,
    default_range,
    transparency_render,
)
from workbench.views import require_compliance

MAX_DAYS = 3 * 366


class RangeForm(forms.Form):
    """The dashboard's date range: UTC days, both included."""

    start = DayField(required=False, label="From")
    end = DayField(required=False, label="To")

    def range(self) -> tuple[date, date]:
        start, end = default_range()
        data = self.cleaned_data if self.is_valid() else {}
        end = data.get("end") or end
        start = data.get("start") or end - timedelta(days=29)
        if start > end:
            start, end = end, start
        return max(start, end - timedelta(days=MAX_DAYS)), end


class TransparencyForm(RangeForm):
    format = forms.ChoiceField(choices=[("csv", "CSV"), ("html", "HTML")], required=False)


class WeekForm(forms.Form):
    week = DayField(required=False, label="Week of")

    def monday(self) -> date:
        day = (self.cleaned_data.get("week") if self.is_valid() else None) or (
            timezone.now().date() - timedelta(days=7)
        )
        return day - timedelta(days=day.weekday())


@login_required
@require_GET
def dashboard(request):
    require_compliance(request)
    form = RangeForm(request.GET)
    start, end = form.range()
    context = {
        "form": form,
        "board": compliance_dashboard(start=start, end=end),
        "export_form": ExportForm(initial={"date_from": start, "date_to": end}),
        "fairness_metrics": FAIRNESS_METRICS,
        "fragment": bool(request.htmx),
    }
    template = "workbench/compliance.html#metrics" if request.htmx else "workbench/compliance.html"
    return render(request, template, context)


@login_required
@require_GET
def reviewers(request):
    """The automation-bias (rubber-stamp) report of one week."""
    require_compliance(request)
    form = WeekForm(request.GET)
    report = automation_bias_report(week_start=form.monday())
    context = {
        "form": form,
        "report": report,
        "previous": report.start.date() - timedelta(days=7),
        "next": report.start.date() + timedelta(days=7),
    }
    template = (
        "workbench/compliance_reviewers.html#report"
        if request.htmx
        else "workbench/compliance_reviewers.html"
    )
    return render(request, template, context)


@login_required
@require_GET
def transparency(request):
    """The transparency report (DSA Art. 24) of a date range, as a download."""
    require_compliance(request)
    form = TransparencyForm(request.GET)
    start, end = form.range()
    fmt = (form.cleaned_data.get("format") if form.is_valid() else "") or "csv"
    body = transparency_render(start=start, end=end, fmt=fmt, lazy=True)
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "text/html; charset=utf-8"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=fmt == "csv", filename=f"transparency-{start}-{end}.{fmt}"
    )
    return response
