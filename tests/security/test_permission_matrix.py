"""Who may do what: every URL of the project, for every kind of asker.

``ROWS`` is the matrix: a URL name, what its kwargs point at, the method, and
the answer each role gets. An answer is a status code, or ``LOGIN`` /
``ADMIN_LOGIN`` (a redirect to that login page). As designed:

- anonymous askers on staff screens are sent to the login page; API keys and
  the customer's notice link are no login there;
- a screen or an object the asker may not see is 404, never 403, so that
  references do not leak (the compliance and supervisor screens included);
- the API answers 401 to anything but a live key of the right scope, and
  404 for another system's case.

Queues are gated by role (DESIGN §3, ``Queue.role``) and, when a queue lists
members, by membership: in this world no queue lists any, so a reviewer sees
every case with a task in a reviewer queue, of every system, and can act only
on the task they hold. A supervisor opens every case of the systems on their
board, read-only; a compliance officer is sent to give a purpose first.
``ACCESS_ROWS`` below adds the askers that membership, the reporting line
and a supervisor of another system make: members and non-members, a
skip-level manager, a supervisor of another queue, compliance with and
without a purpose.

``test_every_url_has_a_row`` walks the URL resolver and the API's routers:
a URL added without a row here fails it. The admin's URLs are generated from
the resolver (one gate, ``AdminSite.admin_view``, for all of them), so a
model added to the admin is covered at once.
"""

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from reviews.models import Case
from reviews.services.notices import notice_token
from tests import factories
from tests.security.conftest import ROLES, World
from workbench.api import api

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

ROWS = [
    # --- health and metrics: no credentials, the scraper's address only for /metrics ----
    Row("healthz", "-", "GET", everyone(200)),
    Row("readyz", "-", "GET", everyone(200)),
    Row("metrics", "from 127.0.0.1", "GET", everyone(200)),
    Row("metrics", "from elsewhere", "GET", everyone(404), meta={"REMOTE_ADDR": "203.0.113.9"}),
    # --- login and passwords (Django's views) -----------------------------------------------
    Row("login", "-", "GET", everyone(200)),
    Row(
        "login",
        "wrong password",
        "POST",
        everyone(200),
        data=lambda w: {"username": "rev.alice", "password": "wrong"},
    ),
    Row("logout", "-", "GET", everyone(405)),
    Row("logout", "-", "POST", everyone(302)),
    Row("password_change", "-", "GET", web(LOGIN, 200)),
    Row(
        "password_change",
        "wrong old password",
        "POST",
        web(LOGIN, 200),
        data=lambda w: {"old_password": "x", "new_password1": "y", "new_password2": "y"},
    ),
    Row("password_change_done", "-", "GET", web(LOGIN, 200)),
    Row("password_reset", "-", "GET", everyone(200)),
    Row(
        "password_reset",
        "unknown address",
        "POST",
        everyone(302),
        data=lambda w: {"email": "nobody@example.org"},
    ),
    Row("password_reset_done", "-", "GET", everyone(200)),
    Row(
        "password_reset_confirm",
        "forged link",
        "GET",
        everyone(200),  # "the link was invalid"
        kwargs=lambda w: {"uidb64": "MQ", "token": "set-password"},
    ),
    Row("password_reset_complete", "-", "GET", everyone(200)),
    # --- the reviewer's screens ---------------------------------------------------------------
    # An admin without a queue role is sent on to the admin.
    Row("reviews:queues", "-", "GET", web(LOGIN, 200, admin=302)),
    Row("reviews:claim", "-", "GET", web(LOGIN, 405)),
    Row("reviews:claim", "next in my queues", "POST", web(LOGIN, 302)),
    Row(
        "reviews:claim",
        "a queue of another role",
        "POST",
        web(LOGIN, 302),  # "nothing left for you to claim in supervisor"
        data=lambda w: {"queue": factories.queue_id(w.system_a, "supervisor")},
    ),
    Row(
        "reviews:case",
        "case_a",
        "GET",
        web(LOGIN, 404, reviewer=200, reviewer_b=200, supervisor=200, compliance=302),
        kwargs=ref("case_a"),
    ),
    Row(
        "reviews:case",
        "case_b of system B",
        "GET",
        web(LOGIN, 404, reviewer=200, reviewer_b=200, supervisor=200, compliance=302),
        kwargs=ref("case_b"),
    ),
    Row(
        "reviews:case",
        "case_appealed",
        "GET",
        # The appeal reviewer sees it through the appeal page only.
        web(
            LOGIN,
            404,
            reviewer=200,
            reviewer_b=200,
            appeal_reviewer=302,
            supervisor=200,
            compliance=302,
        ),
        kwargs=ref("case_appealed"),
    ),
    Row(
        "reviews:case",
        "unknown",
        "GET",
        # Compliance is asked for a purpose first, for any reference: nothing leaks.
        web(LOGIN, 404, compliance=302),
        kwargs=lambda w: {"reference": "WB-NONE-NONE"},
    ),
    Row(
        "reviews:case",
        "case_a, release its task",
        "POST",
        # Only the holder; another reviewer is told the task is not theirs.
        web(LOGIN, 404, reviewer=302, reviewer_b=409),
        kwargs=ref("case_a"),
        data=decision("case_a"),
    ),
    Row(
        "reviews:case",
        "case_a, with the task of case_b",
        "POST",
        web(LOGIN, 404),
        kwargs=ref("case_a"),
        data=decision("case_b"),
    ),
    Row(
        "reviews:case",
        "case_b, escalate its task",
        "POST",
        web(LOGIN, 404, reviewer=409, reviewer_b=302),
        kwargs=ref("case_b"),
        data=decision("case_b", "escalate"),
    ),
    # --- a compliance officer's read-only view of a case, with a purpose ----------------------
    Row("reviews:case-view", "case_a", "GET", COMPLIANCE_ONLY, kwargs=ref("case_a")),
    Row(
        "reviews:case-view",
        "case_a, with a purpose",
        "POST",
        COMPLIANCE_ONLY,
        kwargs=ref("case_a"),
        data=lambda w: {"purpose": "Audit of claim denials, ticket AUD-7"},
    ),
    Row(
        "reviews:case-view",
        "case_a, without a purpose",
        "POST",
        web(LOGIN, 404, compliance=422),
        kwargs=ref("case_a"),
        data=lambda w: {"purpose": "   "},
    ),
    Row(
        "reviews:case-view",
        "unknown, with a purpose",
        "POST",
        web(LOGIN, 404),
        kwargs=lambda w: {"reference": "WB-NONE-NONE"},
        data=lambda w: {"purpose": "Audit"},
    ),
    # --- the supervisor's screen --------------------------------------------------------------
    Row("escalations:supervisor", "-", "GET", web(LOGIN, 404, supervisor=200)),
    Row(
        "escalations:queue-members",
        "claims-review",
        "GET",
        web(LOGIN, 404, supervisor=200),
        kwargs=lambda w: {"queue_id": factories.queue_id(w.system_a, "claims-review")},
    ),
    Row(
        "escalations:queue-members",
        "claims-review, rev.alice only",
        "POST",
        SUPERVISOR_ONLY,
        kwargs=lambda w: {"queue_id": factories.queue_id(w.system_a, "claims-review")},
        data=lambda w: {"members": [w.users["reviewer"].pk]},
    ),
    Row(
        "escalations:task-reassign",
        "task of case_a to rev.bob",
        "POST",
        SUPERVISOR_ONLY,
        kwargs=task_of("case_a"),
        data=lambda w: {"to_user": w.users["reviewer_b"].pk},
    ),
    Row(
        "escalations:task-release",
        "task of case_a",
        "POST",
        SUPERVISOR_ONLY,
        kwargs=task_of("case_a"),
    ),
    Row(
        "escalations:system-switch",
        "stop system A",
        "POST",
        SUPERVISOR_ONLY,
        kwargs=lambda w: {"slug": w.system_a.slug},
        data=lambda w: {"stopped": "1", "reason": "drift in the denials"},
    ),
    Row(
        "escalations:system-switch",
        "unknown system",
        "POST",
        web(LOGIN, 404),
        kwargs=lambda w: {"slug": "no-such-system"},
        data=lambda w: {"stopped": "1", "reason": "drift"},
    ),
    # --- the customer's notice: the link is the key, whoever holds it --------------------
    Row("escalations:notice", "case_appealed", "GET", everyone(200), kwargs=token("case_appealed")),
    Row(
        "escalations:notice",
        "forged token",
        "GET",
        everyone(404),
        kwargs=lambda w: {"token": notice_token("WB-NONE-NONE")},
    ),
    Row(
        "escalations:notice",
        "case_decided, file an appeal",
        "POST",
        everyone(302),
        kwargs=token("case_decided"),
        data=appeal_statement,
    ),
    Row(
        "escalations:notice",
        "case_b, not final yet",
        "POST",
        everyone(409),
        kwargs=token("case_b"),
        data=appeal_statement,
    ),
    Row(
        "escalations:notice",
        "forged token",
        "POST",
        everyone(404),
        kwargs=lambda w: {"token": notice_token("WB-NONE-NONE")},
        data=appeal_statement,
    ),
    # --- the appeal reviewer's page and the evidence --------------------------------------
    Row(
        "escalations:appeal",
        "case_appealed",
        "GET",
        web(LOGIN, 404, appeal_reviewer=200),
        kwargs=ref("case_appealed"),
    ),
    Row(
        "escalations:appeal",
        "case_a, not appealed",
        "GET",
        web(LOGIN, 404),
        kwargs=ref("case_a"),
    ),
    Row(
        "escalations:appeal",
        "case_appealed, open the statement",
        "POST",
        web(LOGIN, 404, appeal_reviewer=302),
        kwargs=ref("case_appealed"),
        data=appeal_action("open"),
    ),
    Row(
        "escalations:evidence",
        "case_appealed's file",
        "GET",
        web(LOGIN, 404, appeal_reviewer=200),
        kwargs=lambda w: {"reference": w.case_appealed.reference, "evidence_id": w.evidence.pk},
    ),
    Row(
        "escalations:evidence",
        "case_appealed's file under case_a",
        "GET",
        web(LOGIN, 404),
        kwargs=lambda w: {"reference": w.case_a.reference, "evidence_id": w.evidence.pk},
    ),
    Row(
        "escalations:evidence",
        "unknown file",
        "GET",
        web(LOGIN, 404),
        kwargs=lambda w: {"reference": w.case_appealed.reference, "evidence_id": uuid.uuid4()},
    ),
    # --- compliance ------------------------------------------------------------------------
    Row("escalations:subject-access", "-", "GET", COMPLIANCE_ONLY),
    Row(
        "escalations:subject-access",
        "case_a's subject",
        "POST",
        COMPLIANCE_ONLY,
        data=lambda w: {"reference": w.case_a.subject.reference, "system": w.system_a.slug},
    ),
    Row("compliance:dashboard", "-", "GET", COMPLIANCE_ONLY),
    Row("compliance:reviewers", "-", "GET", COMPLIANCE_ONLY),
    Row("compliance:transparency", "-", "GET", COMPLIANCE_ONLY),
    Row("compliance:export", "-", "GET", COMPLIANCE_ONLY),
    Row(
        "compliance:export",
        "all events as JSON lines",
        "POST",
        COMPLIANCE_ONLY,
        data=lambda w: {"format": "jsonl"},
    ),
    Row("compliance:export-detail", "own", "GET", COMPLIANCE_ONLY, kwargs=export("export_own")),
    Row(
        "compliance:export-detail",
        "another officer's",
        "GET",
        web(LOGIN, 404),
        kwargs=export("export_other"),
    ),
    Row("compliance:export-download", "own", "GET", COMPLIANCE_ONLY, kwargs=export("export_own")),
    Row(
        "compliance:export-download",
        "another officer's",
        "GET",
        web(LOGIN, 404),
        kwargs=export("export_other"),
    ),
    # --- the API: a live key of the right scope, and only its own system's cases -----------
    Row("api:api-root", "-", "GET", everyone(404)),
    Row("api:openapi-json", "-", "GET", everyone(200)),
    Row("api:openapi-view", "-", "GET", everyone(200)),
    Row("api:trail_public_key", "-", "GET", everyone(200)),
    # The whole chain, or (key_compliance_own) claims-ai's events with their proofs:
    # tests/security/test_idor.py checks what each reads.
    Row(
        "api:trail_list",
        "-",
        "GET",
        api_expect(401, key_compliance=200, key_compliance_own=200, compliance=200),
    ),
    Row(
        "api:trail_head_get",
        "-",
        "GET",
        api_expect(401, key_compliance=200, key_compliance_own=200, compliance=200),
    ),
    Row(
        "api:case_create",
        "a claim",
        "POST",
        api_expect(401, key_a=201),
        data=lambda w: factories.claim_payload(50),
    ),
    Row(
        "api:case_create_batch",
        "one claim",
        "POST",
        api_expect(401, key_a=200),
        data=lambda w: {"cases": [factories.claim_payload(51)]},
    ),
    Row("api:case_feed_list", "-", "GET", api_expect(401, key_a=200)),
    Row("api:case_detail", "case_a", "GET", api_expect(401, key_a=200), kwargs=ref("case_a")),
    Row(
        "api:case_detail",
        "case_b of system B",
        "GET",
        api_expect(401, key_a=404),
        kwargs=ref("case_b"),
    ),
    Row(
        "api:case_detail",
        "unknown",
        "GET",
        api_expect(401, key_a=404),
        kwargs=lambda w: {"reference": "WB-NONE-NONE"},
    ),
    Row(
        "api:case_contest_create",
        "case_decided",
        "POST",
        api_expect(401, key_a=200),
        kwargs=ref("case_decided"),
        data=lambda w: {"reason": "The member called to dispute it."},
    ),
    Row(
        "api:case_contest_create",
        "case_b of system B",
        "POST",
        api_expect(401, key_a=404),
        kwargs=ref("case_b"),
        data=lambda w: {"reason": "The member called to dispute it."},
    ),
]


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


ROWS += _admin_rows()


# --- The test -------------------------------------------------------------------------------


def asked(world: World, role: str, row: Row):
    """One request of ``row`` by ``role``, in a savepoint rolled back after
    it; the response and its whole body."""
    with transaction.atomic():
        client = world.client(role)
        url = row.url(world) if row.url else reverse(row.name, kwargs=row.kwargs(world))
        data = row.data(world) if row.data else {}
        if row.method == "GET":
            response = client.get(url, **row.meta)
        elif row.name.startswith("api:"):
            response = client.post(
                url, json.dumps(data), content_type="application/json", **row.meta
            )
        else:
            response = client.post(url, data, **row.meta)
        # Read to the end: the test client closes the response then (calling
        # close() again here would close the database connection too).
        body = b"".join(response.streaming_content) if response.streaming else response.content
        transaction.set_rollback(True)
    return response, body


def answer(response) -> int | str:
    location = response.get("Location", "")
    if response.status_code == 302 and location.startswith("/accounts/login/?next="):
        return LOGIN
    if response.status_code == 302 and location.startswith("/admin/login/?next="):
        return ADMIN_LOGIN
    return response.status_code


@pytest.mark.django_db
@pytest.mark.parametrize("row", [pytest.param(row, id=row.id) for row in ROWS])
def test_permission_matrix(shared_world, row):
    answers, problems = {}, []
    for role in ROLES:
        response, body = asked(shared_world, role, row)
        answers[role] = answer(response)
        if b"Traceback" in body:
            problems.append(f"{role}: a traceback in the body")
        if response.status_code in (401, 404) or answers[role] in (LOGIN, ADMIN_LOGIN):
            # A refusal says nothing of the cases: not their systems' ids, not whose they are.
            for case in shared_world.cases:
                for secret in (case.external_id, case.subject.reference):
                    if secret.encode() in body:
                        problems.append(f"{role}: the refusal names {secret}")

    assert answers == row.expect
    assert problems == []


def test_every_role_has_an_answer_in_every_row():
    for row in ROWS:
        assert set(row.expect) == set(ROLES), row.id


def test_every_url_has_a_row():
    """A URL or API operation added without a row in the matrix fails here."""
    names = {name or route for route, name, _ in _walk(get_resolver())}
    assert names - {row.name for row in ROWS} == set()
    # Each method of each API operation.
    operations = {
        (f"api:{getattr(op, 'url_name', '') or op.view_func.__name__}", method)
        for _, router in api._routers
        for view in router.path_operations.values()
        for op in view.operations
        for method in op.methods
    }
    assert operations - {(row.name, row.method) for row in ROWS} == set()


# --- Membership, the reporting line, supervisors of other systems, compliance ---------------

# The askers this section adds to the world (``access_world``):
ACCESS_ASKERS = (
    "member",  # rev.mia: a member of claims-ai's claims-review, which lists members
    "non_member",  # rev.nick: a reviewer, not a member
    "skip_manager",  # appeal.top: an appeal reviewer, the manager of rev.alice's manager
    "appeal_reviewer",  # appeal.carol: independent, holds the appeal of case_appealed
    "supervisor",  # sup.sam: the one member of claims-ai's supervisors' queue
    "supervisor_other",  # sup.olga: the one member of support-bot's supervisors' queue
    "compliance",  # comp.dana
)


def access_world(w: World) -> dict:
    """Turn the shared world into one where queues list members (inside the
    test's savepoint): the askers' users, by name."""
    from reviews.models import Queue
    from workbench.models import Role

    make = factories.UserFactory
    people = {
        "member": make(username="rev.mia", role=Role.REVIEWER),
        "non_member": make(username="rev.nick", role=Role.REVIEWER),
        "skip_manager": make(username="appeal.top", role=Role.APPEAL_REVIEWER),
        "supervisor_other": make(username="sup.olga", role=Role.SUPERVISOR),
    }
    middle = make(username="mgr.mid", role=Role.SUPERVISOR, manager=people["skip_manager"])
    alice = w.users["reviewer"]
    alice.manager = middle
    alice.save(update_fields=["manager"])
    Queue.objects.get(system=w.system_a, slug="claims-review").members.set(
        [alice, people["member"]]
    )
    # Each system's supervisors: sup.sam claims-ai's, sup.olga support-bot's.
    for system, supervisor in (
        (w.system_a, w.users["supervisor"]),
        (w.system_b, people["supervisor_other"]),
    ):
        Queue.objects.get_or_create(
            system=system,
            role=Role.SUPERVISOR,
            defaults={"slug": "supervisor", "name": "Supervisors"},
        )
        for queue in Queue.objects.filter(system=system, role=Role.SUPERVISOR):
            queue.members.set([supervisor])
    for role in ("appeal_reviewer", "supervisor", "compliance"):
        people[role] = w.users[role]
    return people


def asks(everyone_else, **askers) -> dict:
    return dict.fromkeys(ACCESS_ASKERS, everyone_else) | askers


def appealed_task(w: World) -> dict:
    return {"task_id": w.appeal.task.pk}


ACCESS_ROWS = [
    Row(
        "reviews:case",
        "case_a, in a queue with members",
        "GET",
        asks(404, member=200, supervisor=200, compliance=302),
        kwargs=ref("case_a"),
    ),
    Row(
        "reviews:case",
        "case_b, in support-bot's queue without members",
        "GET",
        asks(404, member=200, non_member=200, supervisor_other=200, compliance=302),
        kwargs=ref("case_b"),
    ),
    Row(
        "reviews:case",
        "case_appealed, decided by rev.alice",
        "GET",
        # It was in claims-review (mia's); the independent appeal reviewer is
        # sent to the appeal page; the skip-level manager is not let in at all.
        asks(404, member=200, appeal_reviewer=302, supervisor=200, compliance=302),
        kwargs=ref("case_appealed"),
    ),
    Row(
        "escalations:appeal",
        "case_appealed",
        "GET",
        asks(404, appeal_reviewer=200),
        kwargs=ref("case_appealed"),
    ),
    Row(
        "reviews:case-view",
        "case_a, with a purpose",
        "POST",
        asks(404, compliance=200),
        kwargs=ref("case_a"),
        data=lambda w: {"purpose": "Complaint C-19 about a denial"},
    ),
    Row(
        "reviews:case-view",
        "case_a, without a purpose",
        "POST",
        asks(404, compliance=422),
        kwargs=ref("case_a"),
        data=lambda w: {"purpose": ""},
    ),
    Row(
        "escalations:task-release",
        "task of case_a (claims-ai)",
        "POST",
        asks(404, supervisor=302),
        kwargs=task_of("case_a"),
    ),
    Row(
        "escalations:task-release",
        "task of case_b (support-bot)",
        "POST",
        asks(404, supervisor_other=302),
        kwargs=task_of("case_b"),
    ),
    Row(
        "escalations:queue-members",
        "claims-review",
        "GET",
        asks(404, supervisor=200),
        kwargs=lambda w: {"queue_id": factories.queue_id(w.system_a, "claims-review")},
    ),
    Row(
        "escalations:queue-members",
        "chat-escalations",
        "GET",
        asks(404, supervisor_other=200),
        kwargs=lambda w: {"queue_id": factories.queue_id(w.system_b, "chat-escalations")},
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize("row", [pytest.param(row, id=row.id) for row in ACCESS_ROWS])
def test_access_matrix(shared_world, row):
    people = access_world(shared_world)
    answers, problems = {}, []
    for asker in ACCESS_ASKERS:
        with transaction.atomic():
            client = factories.client_for(people[asker])
            url = reverse(row.name, kwargs=row.kwargs(shared_world))
            data = row.data(shared_world) if row.data else {}
            response = client.get(url) if row.method == "GET" else client.post(url, data)
            body = response.content
            transaction.set_rollback(True)
        answers[asker] = answer(response)
        if response.status_code == 404:
            for case in shared_world.cases:
                for secret in (case.reference, case.external_id, case.subject.reference):
                    if secret.encode() in body:
                        problems.append(f"{asker}: the refusal names {secret}")
    assert answers == row.expect
    assert problems == []


def test_a_compliance_view_is_recorded_with_its_purpose_digest_only(shared_world):
    import hashlib

    from reviews.models import CaseView
    from workbench.models import TrailEvent

    with transaction.atomic():
        client = factories.client_for(shared_world.users["compliance"])
        purpose = "Regulator request R-2"
        url = reverse("reviews:case-view", kwargs=ref("case_a")(shared_world))
        refused = client.post(url, {"purpose": " "})
        assert refused.status_code == 422
        assert not TrailEvent.objects.filter(action="case.viewed").exists()
        response = client.post(url, {"purpose": purpose})
        assert response.status_code == 200
        assert shared_world.case_a.reference.encode() in response.content
        event = TrailEvent.objects.filter(action="case.viewed").get()
        body = json.loads(event.body)
        assert body["actor"] == {"type": "user", "id": "comp.dana"}
        assert body["data"]["purpose_sha256"] == hashlib.sha256(purpose.encode()).hexdigest()
        assert purpose not in event.body  # the AI system reads its cases' trail
        assert CaseView.objects.get().purpose == purpose
        transaction.set_rollback(True)
