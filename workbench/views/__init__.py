"""Views of the core: the answer to a locked-out login, and the one guard of
the compliance screens."""

import logging

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import prefetch_related_objects
from django.http import Http404
from django.shortcuts import render

from workbench.models import Role

compliance_log = logging.getLogger("workbench.compliance")


def require_compliance(request) -> None:
    """404 for anyone but a compliance officer, with a warning in the log.
    The user's groups are read once, for this and the navigation bar."""
    prefetch_related_objects([request.user], "groups")
    if not request.user.has_role(Role.COMPLIANCE):
        compliance_log.warning(
            "refused %s %s to %s: not a compliance officer",
            request.method,
            request.path,
            request.user.get_username(),
        )
        raise Http404("no such page")


def login_locked_out(request, original_response=None, credentials=None):
    """django-axes calls this (``AXES_LOCKOUT_CALLABLE``) when a username and
    address pair has failed too often: the login page again, saying so, with
    429 Too Many Requests."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    return render(
        request,
        "registration/login.html",
        {
            "form": form,
            "locked_out": True,
            "locked_username": username,
            "cooloff_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
            "next": request.POST.get("next", ""),
        },
        status=429,
    )
