"""Views of the core: the answer to a locked-out login. (The role guard of
every app's screens is ``workbench.web.role_required``.)"""

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render


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
