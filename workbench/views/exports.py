"""The trail export: a bundle, JSONL or CSV, streamed or made in Celery."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse


@login_required
def export_create(request):
    return HttpResponse("export: coming")


@login_required
def export_detail(request, export_id):
    return HttpResponse("export: coming")


@login_required
def export_download(request, export_id):
    return HttpResponse("export: coming")
