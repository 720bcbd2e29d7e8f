"""The compliance dashboard and its reports."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse


@login_required
def dashboard(request):
    return HttpResponse("compliance dashboard: coming")
