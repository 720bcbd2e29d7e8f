"""Webhook topics beyond the final outcome: subscribed per system, off by
default, queued in the change's transaction, and shaped as the OpenAPI
document declares them."""

import json
import uuid
from datetime import timedelta

import jsonschema_rs
import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from escalations.services import appeal_file, tasks_escalate_overdue
from reviews.schemas import CaseIn
from reviews.services import case_contest, case_ingest_batch
from reviews.services.assignment import task_claim_next
from reviews.services.decisions import DecisionInput, decision_record
from tests import factories
from workbench.models import OutboxMessage
from workbench.services import Actor, ai_system_update
from workbench.services.webhooks import ALWAYS_TOPICS, OPTIONAL_TOPICS


@pytest.fixture
def document(db):
    return Client().get("/api/v1/openapi.json").json()


def subscribe(system, receiver, topics=OPTIONAL_TOPICS):
    return ai_system_update(
        system=system,
        actor=factories.ACTOR,
        callback_url=receiver.url,
        webhook_topics=list(topics),
    )


def messages(topic):
    return list(OutboxMessage.objects.filter(channel="webhook", topic=topic).order_by("pk"))


def conforms(document, topic, payload):
    """``payload`` is valid against the document's declaration of ``topic``, and
    has exactly the properties declared (no undeclared key slips out)."""
    ref = document["webhooks"][topic]["post"]["requestBody"]["content"]["application/json"]
    name = ref["schema"]["$ref"].rsplit("/", 1)[1]
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    jsonschema_rs.validator_for(schema).validate(payload)
    assert set(payload) == set(document["components"]["schemas"][name]["properties"])
    return True


def batch(system, payloads):
    return case_ingest_batch(system=system, items=[CaseIn.model_validate(p) for p in payloads])


def test_no_optional_topic_is_sent_unless_the_system_asked_for_it(system, receiver, alice):
    system = ai_system_update(system=system, actor=factories.ACTOR, callback_url=receiver.url)
    assert system.webhook_topics == []
    case = factories.ingest(system, factories.claim_payload(1))
    task = task_claim_next(user=alice)
    decision_record(
        task_id=task.pk,
        user=alice,
        fencing_token=task.fencing_token,
        decision=DecisionInput(verdict="escalate", rationale="Needs a supervisor"),
        idempotency_key=uuid.uuid4().hex,
    )
    case_contest(system=system, reference=case.reference, reason="x", actor=Actor.system("c"))
    assert not OutboxMessage.objects.exists()


def test_case_routed_for_a_batch_is_one_insert_whatever_its_size(system, receiver, document):
    system = subscribe(system, receiver, ["case.routed"])
    counts = []
    for start, size in ((1, 2), (100, 40)):
        payloads = [factories.claim_payload(n) for n in range(start, start + size)]
        with CaptureQueriesContext(connection) as queries:
            batch(system, payloads)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    routed = messages("case.routed")
    assert len(routed) == 42
    payload = routed[0].payload
    assert payload["route"]["queue"] == "claims-review" and payload["status"] == "pending_review"
    assert conforms(document, "case.routed", payload)


def test_case_routed_tells_an_auto_finalized_outcome(system, receiver, document):
    system = subscribe(system, receiver)
    payload = factories.claim_payload(
        3, confidence=0.97, output={"outcome": "approve", "summary": "ok", "reasons": []}
    )
    [result] = batch(system, [payload])
    assert result.case.status == "finalized"  # (not drawn for the QA sample: deterministic)
    [message] = messages("case.routed")
    assert (message.payload["status"], message.payload["outcome"]) == ("finalized", "approve")
    assert message.payload["decided_by"] == "ai"
    assert conforms(document, "case.routed", message.payload)


def test_case_escalated_contested_overdue_and_appeal_filed(system, receiver, alice, sam, document):
    system = subscribe(system, receiver)
    first = factories.ingest(system, factories.claim_payload(1))
    task = task_claim_next(user=alice)
    decision_record(
        task_id=task.pk,
        user=alice,
        fencing_token=task.fencing_token,
        decision=DecisionInput(verdict="escalate", rationale="Needs a supervisor"),
        idempotency_key=uuid.uuid4().hex,
    )
    [escalated] = messages("case.escalated")
    assert escalated.payload["reference"] == first.reference
    assert escalated.payload["queue"] == "supervisor" and not escalated.payload["disagreement"]

    second = factories.ingest(system, factories.claim_payload(2))
    case_contest(
        system=system,
        reference=second.reference,
        reason="Member says it was pre-authorised",
        actor=Actor.system(system.slug),
    )
    [contested] = messages("case.contested")
    assert contested.payload["reference"] == second.reference
    assert "pre-authorised" not in str(contested.payload)  # what was said stays here

    due = second.tasks.get().due_at
    with time_machine.travel(due + timedelta(minutes=1)):
        assert tasks_escalate_overdue() >= 1
    overdue = messages("case.overdue")
    assert second.reference in {m.payload["reference"] for m in overdue}
    assert overdue[0].payload["queue"] == "supervisor"

    decided = factories.decided_case(system, alice, n=3)
    appeal_file(
        case=decided,
        statement="My doctor's letter says it was needed.",
        evidence=[],
        idempotency_key=uuid.uuid4().hex,
    )
    [filed] = messages("appeal.filed")
    assert filed.payload["appeal"]["number"] == 1
    assert filed.payload["status"] == "under_appeal"
    assert "doctor" not in str(filed.payload)

    for message in (escalated, contested, overdue[0], filed):
        assert conforms(document, message.topic, message.payload)


def test_the_final_outcomes_are_sent_as_declared(system, receiver, alice, carol, document):
    from escalations.services import appeal_decide, appeal_statement_open

    ai_system_update(system=system, actor=factories.ACTOR, callback_url=receiver.url)
    case = factories.decided_case(system, alice)
    [finalized] = messages("case.finalized")
    assert conforms(document, "case.finalized", finalized.payload)
    appeal = appeal_file(
        case=case, statement="Please look again.", evidence=[], idempotency_key="k1"
    )
    task = task_claim_next(user=carol)
    appeal_statement_open(task_id=task.pk, user=carol, fencing_token=task.fencing_token)
    appeal_decide(
        task_id=task.pk,
        user=carol,
        fencing_token=task.fencing_token,
        outcome="overturned",
        final_outcome="approve",
        reason_code="",
        reasons="The letter shows it was needed.",
        idempotency_key="k2",
    )
    assert appeal.pk
    [decided] = messages("case.appeal_decided")
    assert conforms(document, "case.appeal_decided", decided.payload)


def test_every_topic_is_declared_in_the_openapi_document_with_its_headers(document):
    assert document["openapi"].startswith("3.1")
    assert set(document["webhooks"]) == set(ALWAYS_TOPICS) | set(OPTIONAL_TOPICS)
    for topic, item in document["webhooks"].items():
        post = item["post"]
        headers = {p["name"] for p in post["parameters"] if p["in"] == "header"}
        assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= headers, topic
        assert "X-Workbench-Signature" in headers
        assert ("subscribed" in post["description"]) == (topic in OPTIONAL_TOPICS), topic


@pytest.mark.django_db(transaction=True)
def test_a_batch_s_webhooks_go_out_after_its_commit_through_one_fan_out_task(receiver):
    from workbench.celery import app

    system = factories.system_with_policy()
    system = subscribe(system, receiver, ["case.routed"])
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True  # in process, on the services run too
    try:
        results = batch(system, [factories.claim_payload(n) for n in range(1, 4)])
    finally:
        app.conf.task_always_eager = before
    assert sorted(r.headers["X-Workbench-Topic"] for r in receiver.received) == ["case.routed"] * 3
    references = {r.case.reference for r in results}
    assert {json.loads(r.body)["reference"] for r in receiver.received} == references
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}
