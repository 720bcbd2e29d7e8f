"""What the views of every app share: the role guard, htmx-aware redirects,
and forms that show a service's errors and get a fresh idempotency key.

An app's views import these from here, never from another app's views or
forms (``tests/test_layers.py``).
"""

import logging
import uuid
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django_htmx.http import HttpResponseClientRedirect

from workbench.errors import WorkbenchError
from workbench.models import Role
from workbench.selectors import user_roles

# Who holds each role, for the log line of a refusal.
HOLDER = {
    Role.REVIEWER: "a reviewer",
    Role.APPEAL_REVIEWER: "an appeal reviewer",
    Role.SUPERVISOR: "a supervisor",
    Role.COMPLIANCE: "a compliance officer",
    Role.ADMIN: "an admin",
}


def role_required(*roles: str):
    """A view for signed-in users with one of ``roles``: anyone else signed in
    gets 404 (the page's existence is not confirmed), logged as a warning
    under ``workbench.<first role>``; anyone signed out goes to the login.
    The user's groups are read once, for this and the navigation bar."""
    if not roles:
        raise ValueError("role_required needs at least one role")
    log = logging.getLogger(f"workbench.{roles[0]}")

    def decorator(view):
        @login_required
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not user_roles(user=request.user) & set(roles):
                log.warning(
                    "refused %s %s to %s: not %s",
                    request.method,
                    request.path,
                    request.user.get_username(),
                    " or ".join(HOLDER.get(role, role) for role in roles),
                )
                raise Http404("no such page")
            return view(request, *args, **kwargs)

        return guarded

    return decorator


def redirect_to(request, url: str):
    """A redirect that htmx turns into a full navigation (a plain 302 would be
    followed inside the request and the next page swapped into the form)."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def form_with_fresh_key(form, held=None):
    """The form as the user sent it, with a new idempotency key (each render
    is its own decision) and, if they hold the task again (``held``), its
    new fencing token."""
    data = form.data.copy()
    data["idempotency_key"] = uuid.uuid4().hex
    if held is not None:
        data["fencing_token"] = str(held.fencing_token)
    form.data = data
    return form


class ServiceErrorsMixin:
    """A form that shows a service's ``WorkbenchError``: each problem next to
    the field its path names (``FIELD_OF_PATH``: service path -> form field),
    the rest on top."""

    FIELD_OF_PATH: dict[str, str] = {}

    def add_service_error(self, error: WorkbenchError) -> None:
        placed = False
        for problem in error.fields:
            name = self.FIELD_OF_PATH.get(problem.get("path", ""))
            self.add_error(name or None, problem.get("message", error.message))
            placed = True
        if not placed:
            self.add_error(None, error.message)
