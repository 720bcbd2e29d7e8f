"""The trail export (DESIGN §6): a verifiable bundle, or the events as JSON
lines or CSV. Up to ``EXPORT_STREAM_MAX_EVENTS`` events stream straight to
the browser; more are written by Celery while the page shows the progress
(htmx polls the same URL), then offers the file.

Compliance officers only; anyone else gets 404, and the attempt is logged.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods

from workbench.forms import ExportForm
from workbench.models import Role, TrailExport
from workbench.services import Actor
from workbench.services.export import (
    export_file_name,
    export_path,
    export_plan,
    export_record,
    export_start,
    export_stream,
)
from workbench.web import role_required

CONTENT_TYPES = {"bundle": "application/zip", "jsonl": "application/x-ndjson", "csv": "text/csv"}


@login_required
@require_http_methods(["GET", "POST"])
@role_required(Role.COMPLIANCE)
def export_create(request):
    form = ExportForm(request.POST or None)
    if request.method == "GET" or not form.is_valid():
        status = 422 if request.method == "POST" else 200
        return render(request, "workbench/export.html", {"form": form}, status=status)
    fmt = form.cleaned_data["format"]
    plan = export_plan(form.filters())
    if plan.count > settings.EXPORT_STREAM_MAX_EVENTS:
        export = export_start(
            filters=form.filters(), fmt=fmt, user=request.user, actor=Actor.user(request.user)
        )
        return redirect("compliance:export-detail", export.id)
    export_record(plan=plan, fmt=fmt, actor=Actor.user(request.user))
    response = StreamingHttpResponse(export_stream(plan, fmt), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = content_disposition_header(True, export_file_name(plan, fmt))
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
@role_required(Role.COMPLIANCE)
def export_detail(request, export_id):
    export = get_object_or_404(TrailExport, pk=export_id, requested_by=request.user)
    template = "workbench/export_detail.html"
    if request.htmx:
        template += "#progress"
    return render(request, template, _detail(export))


def _detail(export: TrailExport) -> dict:
    if export.status in (TrailExport.Status.DONE, TrailExport.Status.EXPIRED):
        percent = 100
    else:
        percent = int(100 * export.done / export.total) if export.total else 0
    return {
        "export": export,
        "percent": percent,
        "retention_days": settings.EXPORT_RETENTION_DAYS,
    }


@login_required
@require_GET
@role_required(Role.COMPLIANCE)
def export_download(request, export_id):
    export = get_object_or_404(TrailExport, pk=export_id, requested_by=request.user)
    if export.status == TrailExport.Status.EXPIRED:
        return render(request, "workbench/export_detail.html", _detail(export), status=410)
    path = export_path(export)
    if export.status != TrailExport.Status.DONE or not path.exists():
        raise Http404("the export is not ready")
    response = FileResponse(
        open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=export.file_name,
        content_type=CONTENT_TYPES[export.format],
    )
    response["Cache-Control"] = "private, no-store"
    return response
