"""The permission matrix's vocabulary (tests/security/test_permission_matrix.py):
a ``Row`` of the matrix, the answers a role may get, the builders of its
kwargs and forms, and the walk over every URL pattern."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver

from reviews.services.notices import notice_token
from tests.security.conftest import ROLES, World

LOGIN = "login"  # 302 to /accounts/login/?next=...
ADMIN_LOGIN = "admin-login"  # 302 to /admin/login/?next=...

PEOPLE = ("reviewer", "reviewer_b", "appeal_reviewer", "supervisor", "compliance", "admin")
NO_SESSION = ("anon", "key_a", "key_compliance", "key_compliance_own", "key_revoked", "customer_b")
assert set(PEOPLE + NO_SESSION) == set(ROLES)


def web(anon, staff, **people) -> dict:
    """A screen behind the login: ``anon`` for everyone without a session,
    ``staff`` for every person unless named."""
    return dict.fromkeys(NO_SESSION, anon) | dict.fromkeys(PEOPLE, staff) | people


def api_expect(default, **roles) -> dict:
    return dict.fromkeys(ROLES, default) | roles


def everyone(answer) -> dict:
    return dict.fromkeys(ROLES, answer)


@dataclass(frozen=True)
class Row:
    name: str  # the URL name; the route for a pattern without one
    about: str  # what the kwargs point at
    method: str
    expect: dict
    kwargs: Callable[[World], dict] = lambda w: {}
    data: Callable[[World], dict] | None = None
    meta: dict = field(default_factory=dict)
    url: Callable[[World], str] | None = None  # for patterns reverse() cannot build

    @property
    def id(self) -> str:
        return f"{self.name}[{self.about}]-{self.method}"


def ref(case: str):
    return lambda w: {"reference": getattr(w, case).reference}


def token(case: str):
    return lambda w: {"token": notice_token(getattr(w, case).reference)}


def decision(case: str, action: str = "release"):
    """The decision form for the live task of ``case``."""

    def build(w: World) -> dict:
        task = w.task(getattr(w, case))
        return {
            "task": task.pk,
            "fencing_token": task.fencing_token,
            "idempotency_key": uuid.uuid4().hex,
            "action": action,
            "rationale": "Checked the claim lines.",
        }

    return build


def appeal_action(action: str):
    def build(w: World) -> dict:
        task = w.appeal.task
        return {
            "task": task.pk,
            "fencing_token": task.fencing_token,
            "idempotency_key": uuid.uuid4().hex,
            "action": action,
        }

    return build


def task_of(case: str):
    return lambda w: {"task_id": w.task(getattr(w, case)).pk}


def export(which: str):
    return lambda w: {"export_id": getattr(w, which).pk}


def appeal_statement(w: World) -> dict:
    return {"statement": "I was never told why.", "idempotency_key": uuid.uuid4().hex}


COMPLIANCE_ONLY = web(LOGIN, 404, compliance=200)
SUPERVISOR_ONLY = web(LOGIN, 404, supervisor=302)


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    """Every URL pattern: (route, name with its namespaces or None, pattern)."""
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern, prefix + str(pattern.pattern), inner)
        else:
            assert isinstance(pattern, URLPattern)
            name = f"{namespace}{pattern.name}" if pattern.name else None
            yield prefix + str(pattern.pattern), name, pattern


def answer(response) -> int | str:
    location = response.get("Location", "")
    if response.status_code == 302 and location.startswith("/accounts/login/?next="):
        return LOGIN
    if response.status_code == 302 and location.startswith("/admin/login/?next="):
        return ADMIN_LOGIN
    return response.status_code
