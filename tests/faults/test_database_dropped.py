"""The PostgreSQL connection is dropped while a decision is being recorded:
the decision is recorded completely or not at all, the error is a clean one,
and the reviewer's second submit of the same form records it once."""

import uuid
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection
from django.test import Client

from reviews.models import Case, Decision, ReviewTask
from reviews.services.assignment import task_claim_next
from reviews.services.decisions import DecisionInput, decision_record
from tests import factories
from tests.faults.conftest import other_connection
from workbench.models import OutboxMessage, TrailEvent
from workbench.services import trail_verify

pytestmark = [pytest.mark.postgres, pytest.mark.services]

# Statements of decision_record, in order; the connection is dropped just
# before the one named.
STATEMENTS = {
    "decision-insert": 'INSERT INTO "reviews_decision"',
    "trail-append": "INSERT INTO workbench_trailpending",
    # The last write: everything is written but the COMMIT.
    "outbox-insert": 'INSERT INTO "workbench_outboxmessage"',
    "commit": "COMMIT",
}


def terminate(pid: int) -> None:
    with other_connection() as admin:
        # With a timeout, the call returns once the session has ended.
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])


@contextmanager
def connection_dropped_before(statement: str):
    """Terminate this connection's server session, from another session, just
    before the first query containing ``statement`` is sent (or, for
    ``"COMMIT"``, before the commit). Yields a list that holds the
    terminated session's pid once it happened."""
    dropped: list[int] = []

    def drop(execute, sql, params, many, context):
        if statement in sql and not dropped:
            dropped.append(context["connection"].connection.info.backend_pid)
            terminate(dropped[-1])
        return execute(sql, params, many, context)

    def dropping_commit():
        dropped.append(connection.connection.info.backend_pid)
        terminate(dropped[-1])
        return commit()

    if statement != "COMMIT":
        with connection.execute_wrapper(drop):
            yield dropped
        return
    commit = connection._commit
    connection._commit = dropping_commit
    try:
        yield dropped
    finally:
        del connection._commit  # the method again


@pytest.fixture
def claimed(broker):
    """A claims case a reviewer holds, of a system that wants webhooks."""
    system = factories.system_with_policy()
    system.callback_url = "http://127.0.0.1:9/hooks"
    system.save(update_fields=["callback_url"])
    reviewer = factories.UserFactory(role="reviewer")
    factories.ingest(system, factories.claim_payload(1))
    task = task_claim_next(user=reviewer, queue_slug="claims-review")
    return reviewer, task


def assert_not_decided(task: ReviewTask) -> None:
    """Still held by its reviewer, as before the decision; nothing of it written."""
    assignee = task.assignee_id
    task.refresh_from_db()
    assert (task.status, task.assignee_id) == (ReviewTask.Status.CLAIMED, assignee)
    assert Case.objects.get(pk=task.case_id).status == Case.Status.IN_REVIEW
    assert not Decision.objects.exists()
    assert not TrailEvent.objects.filter(action="case.decided").exists()
    assert not OutboxMessage.objects.exists()
    assert trail_verify().ok


def assert_decided_once(task: ReviewTask) -> None:
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.DONE
    assert Case.objects.get(pk=task.case_id).status == Case.Status.FINALIZED
    assert Decision.objects.filter(task=task).count() == 1
    assert TrailEvent.objects.filter(action="case.decided").count() == 1
    # One webhook to the AI system, one email to the customer, written with it.
    assert OutboxMessage.objects.filter(channel="webhook").count() == 1
    assert OutboxMessage.objects.filter(channel="email", topic="case.decided").count() == 1
    assert trail_verify().ok


@pytest.mark.parametrize("statement", STATEMENTS.values(), ids=STATEMENTS.keys())
def test_a_connection_dropped_during_a_decision_records_all_or_nothing(claimed, statement):
    reviewer, task = claimed
    form_key = uuid.uuid4().hex

    def decide():
        return decision_record(
            task_id=task.pk,
            user=reviewer,
            fencing_token=task.fencing_token,
            decision=DecisionInput("agree"),
            idempotency_key=form_key,
        )

    with connection_dropped_before(statement) as dropped, pytest.raises(OperationalError):
        decide()
    assert dropped
    assert_not_decided(task)  # on a new connection

    decide()  # the reviewer submits the same form again
    decide()  # and once more: the same decision
    assert_decided_once(task)


def test_a_connection_dropped_while_the_reviewer_decides_shows_an_error_page(claimed):
    reviewer, task = claimed
    browser = Client(raise_request_exception=False)
    browser.force_login(reviewer)
    url = f"/cases/{task.case.reference}/"
    form = {
        "task": task.pk,
        "fencing_token": task.fencing_token,
        "idempotency_key": uuid.uuid4().hex,
        "action": "agree",
    }

    with connection_dropped_before(STATEMENTS["trail-append"]) as dropped:
        response = browser.post(url, form)
    assert dropped
    assert response.status_code == 500
    page = response.content.decode()
    assert "Traceback" not in page and "OperationalError" not in page
    assert_not_decided(task)

    response = browser.post(url, form)  # the reviewer sends the form again
    assert response.status_code == 302
    assert_decided_once(task)
