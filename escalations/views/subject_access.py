"""Data-subject access (compliance): everything about one subject as one zip."""

from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods

from escalations.forms import (
    SubjectAccessForm,
)
from escalations.services.access import subject_access_export
from workbench.errors import WorkbenchError
from workbench.models import Role
from workbench.services import Actor
from workbench.web import role_required

# --- Data-subject access (compliance) ------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
@role_required(Role.COMPLIANCE)
def subject_access(request):
    """Everything about one subject as one zip, for an access request."""
    form = SubjectAccessForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        reference = form.cleaned_data["reference"]
        try:
            chunks = subject_access_export(
                reference=reference,
                system=form.cleaned_data["system"] or None,
                by=Actor.user(request.user),
            )
        except WorkbenchError as error:
            form.add_error("reference", error.message)
        else:
            response = StreamingHttpResponse(chunks, content_type="application/zip")
            response["Content-Disposition"] = content_disposition_header(
                True, f"subject-{reference}.zip"
            )
            response["Cache-Control"] = "private, no-store"
            return response
    status = 422 if request.method == "POST" else 200
    return render(request, "escalations/subject_access.html", {"form": form}, status=status)
