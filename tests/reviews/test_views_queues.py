"""The reviewer's way in and out through the Django test client: logging in,
the lockout, logging out, My queues, claiming the next case, the hold limit,
renewing and recusing, and the queries the screens run. Plain requests (no
JavaScript) and htmx requests (``HX-Request: true``)."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from reviews.models import Queue, ReviewTask
from reviews.services.assignment import task_claim_next, task_release
from reviews.services.decisions import DecisionInput, decision_record
from tests import factories
from tests.factories import client_for, queue_id
from tests.reviews.screens import (
    HTMX,
    case_url,
    decide,
    deny_case,
    large_case,
    messages_of,
)
from workbench.models import TrailEvent
from workbench.services import trail_integrate

# --- Login, lockout, logout ------------------------------------------------------------------


def test_anonymous_users_are_sent_to_the_login_page(db):
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"

    page = Client().get("/accounts/login/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="username"' in html and 'name="password"' in html
    assert '<label for="id_username">Username</label>' in html


def test_logging_in_leads_to_my_queues_and_logging_out_is_a_post(alice):
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "rev.alice", "password": "pw-for-tests"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200 and "My queues" in page.content.decode()
    assert 'action="/accounts/logout/"' in page.content.decode()

    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302


def test_five_failed_logins_lock_the_username_from_that_address(alice):
    client = Client()
    for _ in range(4):
        response = client.post("/accounts/login/", {"username": "rev.alice", "password": "nope"})
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()

    response = client.post("/accounts/login/", {"username": "rev.alice", "password": "nope"})
    assert response.status_code == 429
    assert "Too many failed attempts" in response.content.decode()
    assert "15 minutes" in response.content.decode()

    # Locked: even the right password is refused now ...
    response = client.post(
        "/accounts/login/", {"username": "rev.alice", "password": "pw-for-tests"}
    )
    assert response.status_code == 429
    assert client.get("/").status_code == 302
    # ... but the same address may still log in as someone else.
    factories.UserFactory(username="rev.carl", role="reviewer")
    response = client.post("/accounts/login/", {"username": "rev.carl", "password": "pw-for-tests"})
    assert response.status_code == 302

    # After the cool-off the right password works again.
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        response = Client().post(
            "/accounts/login/", {"username": "rev.alice", "password": "pw-for-tests"}
        )
    assert response.status_code == 302


# --- My queues ------------------------------------------------------------------------------


def test_my_queues_counts_open_and_claimed_with_the_oldest_due_time(system, alice, bob):
    for n in range(1, 4):
        deny_case(system, n)
    large_case(system, 10)
    task_claim_next(user=bob, queue_slug="claims-review")

    response = client_for(alice).get("/")

    assert response.status_code == 200
    rows = {queue.slug: queue for queue in response.context["queues"]}
    # A reviewer sees the reviewer queues, not the supervisors'.
    assert set(rows) == {"claims-review", "senior-review"}
    assert (rows["claims-review"].open_count, rows["claims-review"].claimed_count) == (2, 1)
    assert (rows["senior-review"].open_count, rows["senior-review"].claimed_count) == (1, 0)
    oldest = ReviewTask.objects.filter(queue__slug="claims-review").order_by("due_at")[0].due_at
    assert rows["claims-review"].oldest_due == oldest
    html = response.content.decode()
    assert html.count(">Claim next</button>") == 3  # one per queue and one overall
    assert 'data-shortcut="n"' in html
    assert "overdue" not in html

    # Past the due time, the date is marked overdue.
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        late = client_for(alice).get("/").content.decode()
    assert 'class="overdue"' in late and ">overdue<" in late


def test_my_queues_with_nothing_waiting_says_so(system, alice):
    html = client_for(alice).get("/").content.decode()
    assert "Nothing waiting for you in your queues" in html


def test_my_queues_table_is_its_own_fragment_for_htmx(system, alice):
    deny_case(system)
    response = client_for(alice).get("/", headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="queue-table"')
    assert "<html" not in html and "Claims review" in html


def test_a_user_without_queues_sees_no_queue(system):
    officer = factories.UserFactory(role="compliance")
    html = client_for(officer).get("/").content.decode()
    assert "no review role" in html


# --- Claiming -----------------------------------------------------------------------------


def test_claim_next_opens_the_case_page(system, alice):
    case = deny_case(system)
    client = client_for(alice)

    response = client.post("/queues/claim/")

    assert response.status_code == 302 and response["Location"] == case_url(case)
    task = ReviewTask.objects.get()
    assert (task.status, task.assignee) == ("claimed", alice)
    page = client.get(case_url(case))
    assert ">Agree</button>" in page.content.decode()


def test_claim_next_in_one_queue_with_htmx_redirects_the_browser(system, alice):
    deny_case(system, 1)
    large = large_case(system, 2)
    response = client_for(alice).post(
        "/queues/claim/", {"queue": queue_id(system, "senior-review")}, headers=HTMX
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == case_url(large)


def test_claim_next_with_nothing_left_goes_back_with_a_message(system, alice):
    claims_review = queue_id(system, "claims-review")
    response = client_for(alice).post("/queues/claim/", {"queue": claims_review})
    assert response.status_code == 302 and response["Location"] == "/"
    assert messages_of(response) == ["Nothing left for you to claim in Claims review."]
    assert client_for(alice).get("/queues/claim/").status_code == 405


# --- The reviewer's own workflow: hold limit, renew, recuse -------------------------------------


def test_at_the_hold_limit_claim_next_opens_the_held_case_and_says_why(system, alice):
    held = deny_case(system, 1)
    deny_case(system, 2)
    client = client_for(alice)
    assert client.post("/queues/claim/")["Location"] == case_url(held)
    again = client.post("/queues/claim/", follow=True)
    assert again.redirect_chain[-1][0] == case_url(held)
    page = again.content.decode()
    assert "You already hold a task" in page
    assert ">Agree</button>" in page and ">Release</button>" in page
    assert ReviewTask.objects.filter(assignee=alice).count() == 1
    htmx = client.post("/queues/claim/", headers=HTMX)
    assert htmx["HX-Redirect"] == case_url(held)


def test_the_lease_is_renewed_from_the_page(system, alice):
    case = deny_case(system, 1)
    client = client_for(alice)
    client.post("/queues/claim/")
    page = client.get(case_url(case)).content.decode()
    assert 'data-lease-expires="' in page and "data-lease-warning" in page
    assert 'value="renew"' in page and 'data-shortcut="r"' in page
    with time_machine.travel(timezone.now() + timedelta(minutes=12)):
        renewed = decide(client, case, "renew")
        assert renewed.status_code == 302 and renewed["Location"] == case_url(case)
        task = ReviewTask.objects.get(case=case)
        assert task.lease_expires_at > timezone.now() + timedelta(minutes=14)
    assert TrailEvent.objects.filter(action="case.lease_renewed").count() == 1


def test_recusing_from_the_page_needs_a_reason(system, alice):
    case = deny_case(system, 1)
    client = client_for(alice)
    client.post("/queues/claim/")
    refused = decide(client, case, "recuse", recusal_reason="")
    assert refused.status_code == 422
    assert "say why you recuse yourself" in refused.content.decode()
    assert not TrailEvent.objects.filter(action="case.recused").exists()
    done = decide(client, case, "recuse", recusal_reason="I know the member.")
    assert done.status_code == 302
    task = ReviewTask.objects.get(case=case)
    assert task.status == "open" and alice in task.excluded.all()
    assert TrailEvent.objects.filter(action="case.recused").count() == 1


# --- Queries --------------------------------------------------------------------------------


def _busy(system, reviewers, cases):
    for n in range(1, cases + 1):
        deny_case(system, n) if n % 2 else large_case(system, n)
    for reviewer in reviewers:
        task_claim_next(user=reviewer)


@pytest.mark.parametrize("cases", [4, 12])
def test_my_queues_runs_a_fixed_number_of_queries(
    system, alice, bob, cases, django_assert_num_queries
):
    Queue.objects.filter(system=system).update(hold_limit=2)
    _busy(system, [alice, bob], cases)
    task_claim_next(user=alice)  # alice holds two
    client = client_for(alice)
    # session, user, groups, queues with their counts, the tasks alice holds
    with django_assert_num_queries(5):
        response = client.get("/")
    assert response.status_code == 200


@pytest.mark.parametrize("events", [1, 6])
def test_the_case_page_runs_a_fixed_number_of_queries(
    system, alice, bob, catalog, events, django_assert_num_queries
):
    Queue.objects.filter(system=system).update(release_cooldown_minutes=0)  # claimed back
    _busy(system, [bob], 6)
    case = deny_case(system, 99)
    ReviewTask.objects.filter(case=case).update(priority=50)
    task = task_claim_next(user=alice)
    assert task.case == case
    for _ in range(events - 1):  # more trail events: release and claim again
        task_release(task_id=task.pk, user=alice, fencing_token=task.fencing_token)
        task = task_claim_next(user=alice)
    client = client_for(alice)
    trail_integrate()  # PostgreSQL: the sequencer has caught up
    # session, user, groups, case (+system, policy, subject), its tasks (+queue,
    # assignee), whether a queue of alice's holds it (members), reason codes,
    # trail events, decisions (+reviewer, queue); the trail wait (once)
    with django_assert_num_queries(9 + factories.trail_wait_queries()):
        response = client.get(case_url(case))
    assert response.status_code == 200
    assert len(response.context["timeline"]) >= 2 + events


def test_decision_service_and_screen_agree_on_the_trail(system, alice):
    """A decision made on the screen is the same trail event as one made
    through the service: the view adds nothing of its own."""
    case = deny_case(system)
    client = client_for(alice)
    client.post("/queues/claim/")
    decide(client, case, "agree", outcome="deny")
    body = json.loads(TrailEvent.objects.filter(action="case.decided").get().body)
    assert body["actor"] == {"type": "user", "id": "rev.alice"}
    assert body["data"]["verdict"] == "agree" and body["data"]["ai_visible"] is True
    # The service alone, for comparison.
    other = deny_case(system, 2)
    task = task_claim_next(user=alice)
    assert task.case == other
    decision_record(
        task_id=task.pk,
        user=alice,
        fencing_token=task.fencing_token,
        decision=DecisionInput(verdict="agree"),
        idempotency_key="k-service",
    )
    events = TrailEvent.objects.filter(action="case.decided").order_by("seq")
    assert [set(json.loads(e.body)["data"]) for e in events][0] == set(
        json.loads(events[1].body)["data"]
    )
