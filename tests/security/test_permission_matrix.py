"""Who may do what: every URL of the project, for every kind of asker.

``ROWS`` is the matrix, gathered from the row modules next to this one
(``rows_workbench``, ``rows_reviews``, ``rows_escalations``, ``rows_admin``;
the ``Row`` and its builders are in ``matrix``): a URL name, what its kwargs
point at, the method, and the answer each role gets. An answer is a status
code, or ``LOGIN`` / ``ADMIN_LOGIN`` (a redirect to that login page). As
designed:

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
``ACCESS_ROWS`` (test_access_matrix.py) adds the askers that membership,
the reporting line and a supervisor of another system make: members and
non-members, a skip-level manager, a supervisor of another queue,
compliance with and without a purpose.

``test_every_url_has_a_row`` walks the URL resolver and the API's routers:
a URL added without a row fails it. The admin's URLs are generated from
the resolver (one gate, ``AdminSite.admin_view``, for all of them), so a
model added to the admin is covered at once.
"""

import json

import pytest
from django.db import transaction
from django.urls import get_resolver, reverse

from tests.security.conftest import ROLES, World
from tests.security.matrix import ADMIN_LOGIN, LOGIN, Row, _walk, answer
from tests.security.rows_admin import _admin_rows
from tests.security.rows_escalations import ESCALATIONS_ROWS
from tests.security.rows_reviews import REVIEWS_ROWS
from tests.security.rows_workbench import ACCOUNT_ROWS, API_ROWS
from workbench.api import api

ROWS = ACCOUNT_ROWS + REVIEWS_ROWS + ESCALATIONS_ROWS + API_ROWS
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
