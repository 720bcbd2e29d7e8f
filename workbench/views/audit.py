"""The justice audit scorecard of one AI system (role ``compliance``,
read-only): the page (also its htmx fragment, ``#scorecard``), printable,
its CSV download, and the list of the cases behind a line."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from workbench.errors import NotFound
from workbench.metrics.connection import WEIGHTS
from workbench.metrics.scorecard import justice_scorecard_for, scorecard_csv
from workbench.models import Role
from workbench.views.compliance import RangeForm
from workbench.web import role_required

CASES_PER_PAGE = 50


class AuditForm(RangeForm):
    version = forms.CharField(required=False, max_length=100, label="Model version")
    format = forms.ChoiceField(choices=[("", "page"), ("csv", "CSV")], required=False)


def _scorecard(request, slug):
    form = AuditForm(request.GET)
    start, end = form.range()
    version = (form.cleaned_data.get("version") if form.is_valid() else "") or ""
    try:
        card = justice_scorecard_for(slug=slug, start=start, end=end, model_version=version)
    except NotFound as exc:
        raise Http404(str(exc)) from None
    return form, card


@login_required
@require_GET
@role_required(Role.COMPLIANCE)
def scorecard(request, slug):
    form, card = _scorecard(request, slug)
    if form.is_valid() and form.cleaned_data.get("format") == "csv":
        response = HttpResponse(scorecard_csv(card), content_type="text/csv; charset=utf-8")
        version = f"-{card.model_version}" if card.model_version else ""
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True,
            filename=f"justice-audit-{card.system}{version}-{card.start}-{card.end}.csv",
        )
        return response
    context = {"form": form, "card": card, "weights": WEIGHTS}
    template = (
        "workbench/compliance_audit.html#scorecard"
        if request.htmx
        else "workbench/compliance_audit.html"
    )
    return render(request, template, context)


@login_required
@require_GET
@role_required(Role.COMPLIANCE)
def scorecard_cases(request, slug, line):
    """The cases behind one line of the scorecard, 50 a page, each linking
    to the compliance case view (which asks for a purpose first)."""
    form, card = _scorecard(request, slug)
    found = card.line(line)
    if found is None:
        raise Http404(f"no line {line!r}")
    page = Paginator(found.cases, CASES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"form": form, "card": card, "line": found, "page": page}
    return render(request, "workbench/compliance_audit_cases.html", context)
