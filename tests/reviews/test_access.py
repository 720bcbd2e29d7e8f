"""Who works which queue and opens which case (reviews.access, DESIGN §3)."""

import pytest

from escalations.services.appeals import appeal_file
from reviews.access import case_access, cases_openable
from reviews.models import Case, Queue, ReviewTask
from reviews.selectors import queues_overview
from reviews.services.assignment import task_claim_next
from reviews.services.queue_members import queue_members_set
from tests import factories
from tests.factories import client_for
from workbench.errors import Invalid, NotFound
from workbench.models import TrailEvent
from workbench.selectors import user_roles
from workbench.services import Actor

ACTOR = Actor.workbench("tests")


def case_url(case) -> str:
    return f"/cases/{case.reference}/"


@pytest.fixture
def team(system):
    """claims-review lists mia; nick is a reviewer too, not a member."""
    mia = factories.UserFactory(username="rev.mia", role="reviewer")
    nick = factories.UserFactory(username="rev.nick", role="reviewer")
    queue = Queue.objects.get(system=system, slug="claims-review")
    queue_members_set(queue=queue, users=[mia], actor=ACTOR)
    return mia, nick, queue


def test_only_members_claim_see_the_counts_and_open_the_cases(system, team):
    mia, nick, queue = team
    case = factories.ingest(system, factories.claim_payload(1))
    assert task_claim_next(user=nick) is None
    assert queue.pk not in {q.pk for q in queues_overview(roles={"reviewer"}, user=nick)}
    assert queue.pk in {q.pk for q in queues_overview(roles={"reviewer"}, user=mia)}
    assert client_for(nick).get(case_url(case)).status_code == 404
    task = task_claim_next(user=mia)
    assert task.case == case
    assert client_for(mia).get(case_url(case)).status_code == 200
    # Not his queue's: the same 404 as for no case, naming nothing.
    missing = client_for(nick).get("/cases/WB-NONE-NONE/")
    refused = client_for(nick).get(case_url(case))
    assert refused.status_code == missing.status_code == 404
    assert case.reference.encode() not in refused.content


def test_a_queue_without_members_is_everyones_with_the_role(system):
    case = factories.ingest(system, factories.claim_payload(1))
    anyone = factories.UserFactory(role="reviewer")
    assert task_claim_next(user=anyone).case == case


def test_the_claim_counts_and_pages_agree_after_membership_is_cleared(system, team):
    mia, nick, queue = team
    factories.ingest(system, factories.claim_payload(1))
    queue_members_set(queue=queue, users=[], actor=ACTOR)
    assert task_claim_next(user=nick) is not None
    events = TrailEvent.objects.filter(action="queue.members_changed").count()
    assert events == 2  # set, then cleared


def test_an_inactive_or_roleless_member_is_refused_and_nothing_written(system, team):
    mia, nick, queue = team
    gone = factories.UserFactory(username="rev.gone", role="reviewer", is_active=False)
    boss = factories.UserFactory(username="sup.x", role="supervisor")
    before = TrailEvent.objects.count()
    for people, what in (([mia, gone], "not active"), ([boss], "does not have the reviewer role")):
        with pytest.raises(Invalid) as refused:
            queue_members_set(queue=queue, users=people, actor=ACTOR)
        assert refused.value.code == "bad_member"
        assert what in refused.value.message
    assert list(queue.members.all()) == [mia]
    assert TrailEvent.objects.count() == before


def test_a_reviewer_opens_a_case_they_acted_on_after_leaving_the_team(system, team):
    mia, nick, queue = team
    case = factories.decided_case(system, mia)
    queue_members_set(queue=queue, users=[nick], actor=ACTOR)
    mia.groups.clear()  # not even the role now
    assert client_for(mia).get(case_url(case)).status_code == 200


def test_a_supervisor_of_another_system_sees_neither_its_board_nor_its_cases(
    system, chat_system, sam
):
    from escalations.services.supervision import task_release_by_supervisor
    from workbench.errors import NotFound

    olga = factories.UserFactory(username="sup.olga", role="supervisor")
    for one, who in ((system, sam), (chat_system, olga)):
        for queue in Queue.objects.filter(system=one, role="supervisor"):
            queue_members_set(queue=queue, users=[who], actor=ACTOR)
    case = factories.ingest(system, factories.claim_payload(1))
    task = task_claim_next(user=factories.UserFactory(role="reviewer"))
    assert client_for(sam).get(case_url(case)).status_code == 200
    assert client_for(olga).get(case_url(case)).status_code == 404
    board = client_for(olga).get("/supervisor/").content.decode()
    assert case.reference not in board
    with pytest.raises(NotFound):
        task_release_by_supervisor(task_id=task.pk, by=olga)
    assert ReviewTask.objects.get(pk=task.pk).status == "claimed"
    assert client_for(olga).post(f"/supervisor/tasks/{task.pk}/release/").status_code == 404
    assert client_for(sam).post(f"/supervisor/tasks/{task.pk}/release/").status_code == 302


def test_the_supervisor_opens_a_case_read_only_and_acts_from_it(system, sam):
    case = factories.ingest(system, factories.claim_payload(1))
    bob = factories.UserFactory(username="rev.bob", role="reviewer")
    task = task_claim_next(user=factories.UserFactory(username="rev.al", role="reviewer"))
    client = client_for(sam)
    page = client.get(case_url(case)).content.decode()
    assert ">Agree</button>" not in page and "You read this case" in page
    assert ">Reassign</button>" in page and "rev.bob" in page
    decide = {"task": task.pk, "fencing_token": task.fencing_token, "action": "agree"}
    assert client.post(case_url(case), {**decide, "idempotency_key": "x"}).status_code == 404
    moved = client.post(
        f"/supervisor/tasks/{task.pk}/reassign/", {"to_user": bob.pk, "back": "case"}
    )
    assert moved.status_code == 302 and moved["Location"] == case_url(case)
    assert ReviewTask.objects.get(pk=task.pk).assignee == bob
    released = client.post(f"/supervisor/tasks/{task.pk}/release/", {"back": "case"})
    assert released["Location"] == case_url(case)
    assert ReviewTask.objects.get(pk=task.pk).status == "open"


def test_the_supervisor_edits_the_members_on_the_board(system, sam):
    mia = factories.UserFactory(username="rev.mia", role="reviewer")
    gone = factories.UserFactory(username="rev.gone", role="reviewer", is_active=False)
    queue = Queue.objects.get(system=system, slug="claims-review")
    client = client_for(sam)
    url = f"/supervisor/queues/{queue.pk}/members/"
    assert "rev.gone (inactive)" in client.get(url).content.decode()
    refused = client.post(url, {"members": [mia.pk, gone.pk]})
    assert refused.status_code == 422
    assert "not active" in refused.content.decode()
    assert not queue.members.exists()
    assert client.post(url, {"members": [mia.pk]}).status_code == 302
    assert list(queue.members.all()) == [mia]
    assert "rev.mia" in client.get("/supervisor/").content.decode()


def test_a_compliance_officer_gives_a_purpose_then_reads(system):
    dana = factories.UserFactory(username="comp.dana", role="compliance")
    case = factories.ingest(system, factories.claim_payload(1))
    client = client_for(dana)
    asked = client.get(case_url(case))
    assert asked.status_code == 302 and asked["Location"] == f"/cases/{case.reference}/view/"
    form = client.get(asked["Location"]).content.decode()
    assert "Purpose" in form and case.external_id not in form
    refused = client.post(asked["Location"], {"purpose": ""})
    assert refused.status_code == 422
    assert not TrailEvent.objects.filter(action="case.viewed").exists()
    page = client.post(asked["Location"], {"purpose": "Audit AUD-3"}).content.decode()
    assert case.reference in page and ">Agree</button>" not in page
    assert TrailEvent.objects.filter(action="case.viewed", case=case.reference).count() == 1
    # Each view is its own record.
    client.post(asked["Location"], {"purpose": "Audit AUD-3, again"})
    assert TrailEvent.objects.filter(action="case.viewed").count() == 2
    # A view is no part in the case: it does not open it without a purpose.
    assert client.get(case_url(case)).status_code == 302


def test_cases_openable_agrees_with_case_access_for_every_person_and_case(system, team, sam):
    """The staff search's bulk reading (``cases_openable``) lets each person
    open exactly the cases the case page lets them open (``case_access``)."""
    mia, nick, _ = team
    carol = factories.UserFactory(username="appeal.carol", role="appeal_reviewer")
    tom = factories.UserFactory(username="sup.tom", role="supervisor")
    supervisors = Queue.objects.get(system=system, slug="supervisor")
    queue_members_set(queue=supervisors, users=[sam], actor=ACTOR)
    decided = factories.decided_case(system, mia)
    appeal_file(case=decided, statement="Never told why.", evidence=[], idempotency_key="k1")
    factories.ingest(system, factories.claim_payload(2))
    factories.ingest(system, factories.claim_payload(3, metadata={"amount": 9000}))
    cases = list(Case.objects.all())
    assert len(cases) == 3

    for person in (mia, nick, carol, sam, tom):
        roles = user_roles(user=person)
        expected = set()
        for case in cases:
            tasks = list(case.tasks.select_related("queue").order_by("created_at", "id"))
            try:
                case_access(case=case, tasks=tasks, user=person, roles=roles)
            except NotFound:
                continue
            expected.add(case.pk)
        assert cases_openable(cases=cases, user=person, roles=roles) == expected, person
    # Each way in is exercised: the member, the non-member, the appeal, the boards.
    assert len(cases_openable(cases=cases, user=mia, roles={"reviewer"})) == 3
    assert decided.pk not in cases_openable(cases=cases, user=nick, roles={"reviewer"})
    assert cases_openable(cases=cases, user=carol, roles={"appeal_reviewer"}) == {decided.pk}
    assert len(cases_openable(cases=cases, user=sam, roles={"supervisor"})) == 3
    assert not cases_openable(cases=cases, user=tom, roles={"supervisor"})
