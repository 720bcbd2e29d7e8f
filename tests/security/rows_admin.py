"""Rows of the permission matrix for the admin, generated from the resolver."""

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.urls import get_resolver

from reviews.models import Case
from tests.security.conftest import World
from tests.security.matrix import ADMIN_LOGIN, Row, _walk, everyone

# --- The admin: one gate for every URL it has ----------------------------------------------

# What the superuser may do there. Everything else is read-only: changes go
# through services, so that they land in the trail (workbench/admin.py).
# Users and reason codes are added and changed (each change recorded), never
# deleted; policies are uploaded (a dry run, then published).
ADMIN_ADD = {"workbench.user", "reviews.reasoncode"}
ADMIN_DELETE = {
    "axes.accessattempt",
    "axes.accesslog",
    "axes.accessfailurelog",
}
# Per view of a model: the superuser's answer.
ADMIN_MODEL_VIEWS = {
    "changelist": lambda label: 200,
    "add": lambda label: 200 if label in ADMIN_ADD else 403,
    "history": lambda label: 200,
    "delete": lambda label: 200 if label in ADMIN_DELETE else 403,
    "change": lambda label: 200,
    "view": lambda label: 302,  # <pk>/ redirects to <pk>/change/
    "upload": lambda label: 200,  # a policy's upload form
    # An AI system's own pages (each calls one service; the admin role for secrets).
    "switch": lambda label: 200,
    "rotate_secret": lambda label: 200,
    "new_key": lambda label: 200,
    "test_delivery": lambda label: 200,
}
ADMIN_SITE_VIEWS = {
    "admin:index": 200,
    "admin:password_change": 200,
    "admin:password_change_done": 200,
    "admin:autocomplete": 403,  # without its query
    "admin:jsi18n": 200,
    "admin:view_on_site": 404,  # no model here has a public URL
    "admin:app_list": 200,
    "admin:auth_user_password_change": 200,
    "admin catch-all": 404,
}


def _admin_url(route: str, w: World) -> str:
    """The URL of an admin route, with a real object of its model."""
    parts = route.split("/")
    if route.endswith("(?P<url>.*)$"):
        return "/admin/no-such-page/"
    if "(?P<app_label>" in route:
        return "/admin/reviews/"
    if route.startswith("admin/r/"):
        case = ContentType.objects.get_for_model(Case)
        return f"/admin/r/{case.pk}/{w.case_a.pk}/"
    if "<" not in route:
        return f"/{route}"
    model = apps.get_model(parts[1], parts[2])
    pk = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
    assert pk is not None, f"no {model._meta.label} for {route}"
    return "/" + route.replace("<path:object_id>", str(pk)).replace("<id>", str(pk))


def _admin_rows() -> list[Row]:
    rows = []
    for route, name, pattern in _walk(get_resolver()):
        if not route.startswith("admin/"):
            continue
        if name == "admin:login":
            rows.append(Row(name, "-", "GET", everyone(200) | {"admin": 302}))
            continue
        if name == "admin:logout":  # sends anyone but staff to the admin's index
            rows.append(Row(name, "-", "GET", everyone(302) | {"admin": 405}))
            continue
        parts = route.split("/")
        if name in ADMIN_SITE_VIEWS:
            staff = ADMIN_SITE_VIEWS[name]
        elif name is None and "(?P<url>" in route:
            staff = ADMIN_SITE_VIEWS["admin catch-all"]
        else:
            view = pattern.callback.__name__.removesuffix("_view")
            staff = ADMIN_MODEL_VIEWS[view](f"{parts[1]}.{parts[2]}")
        rows.append(
            Row(
                name or route,
                "-",
                "GET",
                everyone(ADMIN_LOGIN) | {"admin": staff},
                url=lambda w, route=route: _admin_url(route, w),
            )
        )
    return rows
