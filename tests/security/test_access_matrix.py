"""Who may open a case and act on it when queues list members: members and
non-members, a skip-level manager, a supervisor of another queue, compliance
with and without a purpose (the askers that membership, the reporting line
and a supervisor of another system add to the permission matrix's world)."""

import json

import pytest
from django.db import transaction
from django.urls import reverse

from tests import factories
from tests.security.conftest import World
from tests.security.matrix import Row, answer, ref, task_of

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
