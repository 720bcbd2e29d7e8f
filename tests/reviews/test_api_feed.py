"""Keeping in step: GET /api/v1/cases?updated_after=<cursor>&limit=<n>, the
cases of the key's system changed since a cursor, so that a system whose
webhooks were lost can reconcile."""

import socket
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reviews.models import Case
from reviews.services import case_contest
from reviews.services.assignment import task_claim_next
from reviews.services.decisions import DecisionInput, decision_record
from tests import factories
from workbench.models import OutboxMessage, TrailHead
from workbench.services import Actor, ai_system_update, outbox_deliver, trail_integrate
from workbench.services.webhooks import OPTIONAL_TOPICS


def feed(client, after=0, limit=None, expect=200):
    query = f"?updated_after={after}" + (f"&limit={limit}" if limit else "")
    response = client.get(f"/api/v1/cases{query}")
    assert response.status_code == expect, response.content.decode()
    return response.json()


def read_all(client, after=0, limit=2) -> tuple[dict[str, dict], int, int]:
    """Every page from ``after``: the latest item per reference, the cursor, pages."""
    seen, pages = {}, 0
    while True:
        page = feed(client, after, limit)
        pages += 1
        seqs = [item["seq"] for item in page["cases"]]
        assert seqs == sorted(seqs) and all(seq > after for seq in seqs)
        assert len(page["cases"]) <= limit
        for item in page["cases"]:
            seen[item["reference"]] = item
        assert page["next_updated_after"] >= after
        after = page["next_updated_after"]
        if not page["has_more"]:
            return seen, after, pages


def decide(user, verdict="agree", **fields):
    task = task_claim_next(user=user)
    decision_record(
        task_id=task.pk,
        user=user,
        fencing_token=task.fencing_token,
        decision=DecisionInput(verdict=verdict, **fields),
        idempotency_key=uuid.uuid4().hex,
    )
    return Case.objects.get(pk=task.case_id)


def test_the_feed_lists_every_case_once_in_pages_with_the_next_cursor(system, api_client):
    cases = [factories.ingest(system, factories.claim_payload(n)) for n in range(1, 6)]
    page = feed(api_client, 0, 2)
    assert [item["reference"] for item in page["cases"]] == [c.reference for c in cases[:2]]
    assert page["has_more"] is True
    item = page["cases"][0]
    assert set(item) == {
        "reference",
        "external_id",
        "status",
        "outcome",
        "decided_by",
        "appeal",
        "seq",
        "changed_at",
    }
    assert (item["external_id"], item["status"], item["outcome"]) == (
        "CLM-2026-000001",
        "pending_review",
        None,
    )

    seen, cursor, pages = read_all(api_client)
    assert set(seen) == {c.reference for c in cases} and pages == 3
    # Caught up: nothing more, and the cursor stays where it is.
    caught_up = {"cases": [], "next_updated_after": cursor, "has_more": False}
    assert feed(api_client, cursor) == caught_up


def test_a_case_that_changes_again_comes_back_with_its_later_seq(system, api_client, alice):
    first = factories.ingest(system, factories.claim_payload(1))
    factories.ingest(system, factories.claim_payload(2))
    seen, cursor, _ = read_all(api_client)
    before = seen[first.reference]["seq"]

    decided = decide(alice)  # the first case, the earliest due
    assert decided == first
    page = feed(api_client, cursor)
    [item] = page["cases"]
    assert item["reference"] == first.reference and item["seq"] > before
    assert (item["status"], item["outcome"], item["decided_by"]) == ("finalized", "deny", "human")


def test_the_appeal_state_is_in_the_feed(system, api_client, alice):
    from escalations.services import appeal_file

    case = factories.decided_case(system, alice)
    appeal_file(case=case, statement="Please look again.", evidence=[], idempotency_key="k")
    [item] = feed(api_client)["cases"]
    assert item["status"] == "under_appeal"
    assert item["appeal"]["status"] == "received" and item["appeal"]["number"] == 1


def test_another_systems_cases_are_not_in_the_feed(system, chat_system, api_client):
    factories.ingest(chat_system, factories.chat_payload(1))
    mine = factories.ingest(system, factories.claim_payload(1))
    assert [item["reference"] for item in feed(api_client)["cases"]] == [mine.reference]
    other = factories.api_client(chat_system)
    assert mine.reference not in {item["reference"] for item in feed(other)["cases"]}


@pytest.mark.parametrize(
    "query",
    [
        "updated_after=abc",
        "updated_after=-1",
        "updated_after=1.5",
        "limit=0",
        "limit=1001",
        "limit=ten",
        "updated_after=99999999999999999999999999",
    ],
)
def test_a_bad_cursor_or_limit_is_a_422_naming_it(system, api_client, query):
    response = api_client.get(f"/api/v1/cases?{query}")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["fields"][0]["path"] == query.split("=")[0]


def test_a_cursor_past_the_end_of_the_trail_is_refused(system, api_client):
    factories.ingest(system, factories.claim_payload(1))
    head = TrailHead.objects.get().seq
    assert feed(api_client, head)["cases"] == []
    response = api_client.get(f"/api/v1/cases?updated_after={head + 1}")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "bad_cursor"


def test_the_feed_needs_an_ingest_key(system):
    from django.test import Client

    assert Client().get("/api/v1/cases").status_code == 401
    compliance = factories.api_client(system, scope="compliance")
    assert compliance.get("/api/v1/cases").status_code == 401


def test_a_page_reads_a_fixed_number_of_queries(system, api_client):
    payloads = [factories.claim_payload(n) for n in range(1, 41)]
    from reviews.schemas import CaseIn
    from reviews.services import case_ingest_batch

    case_ingest_batch(system=system, items=[CaseIn.model_validate(p) for p in payloads])
    trail_integrate()  # PostgreSQL: the sequencer's work, so that both pages find it done
    counts = []
    for limit in (2, 40):
        with CaptureQueriesContext(connection) as queries:
            assert len(feed(api_client, 0, limit)["cases"]) == limit
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_system_whose_receiver_was_down_reconciles_from_the_feed(system, alice, sam):
    """The receiver is down through the whole retry window: the outbox gives up
    on every message. The client reads the feed from the cursor it last had and
    finds every case those messages were about, in its state now."""
    system = ai_system_update(
        system=system,
        actor=factories.ACTOR,
        callback_url=f"http://127.0.0.1:{closed_port()}/hooks",
        webhook_topics=list(OPTIONAL_TOPICS),
    )
    client = factories.api_client(system)
    factories.reason_code(system, "CO-50")
    factories.ingest(system, factories.claim_payload(1))
    _, cursor, _ = read_all(client)  # in step before the outage

    started = timezone.now()
    for n in range(2, 8):
        factories.ingest(system, factories.claim_payload(n))
    decide(alice)  # case 1: finalized by a person
    decide(alice, verdict="override", outcome="approve", reason_code="CO-50", rationale="ok")
    decide(alice, verdict="escalate", rationale="Needs a supervisor")
    contested = Case.objects.filter(system=system, status="pending_review").last()
    case_contest(system=system, reference=contested.reference, reason="x", actor=Actor.system("c"))

    lost = list(OutboxMessage.objects.filter(channel="webhook"))
    assert {m.topic for m in lost} >= {
        "case.routed",
        "case.finalized",
        "case.escalated",
        "case.contested",
    }
    for message in lost:
        outbox_deliver(message_id=message.pk)  # connection refused
    with time_machine.travel(started + timedelta(hours=25, minutes=1), tick=False):
        for message in lost:
            message.refresh_from_db()
            message.next_attempt_at = timezone.now()  # due now
            message.save(update_fields=["next_attempt_at"])
            outbox_deliver(message_id=message.pk)
    webhooks = OutboxMessage.objects.filter(channel="webhook")
    assert set(webhooks.values_list("status", flat=True)) == {"failed"}

    seen, _, _ = read_all(client, after=cursor, limit=3)
    assert {m.payload["reference"] for m in lost} <= set(seen)
    for case in Case.objects.filter(system=system):
        if case.reference in seen:
            item = seen[case.reference]
            assert (item["status"], item["outcome"] or "", item["decided_by"] or "") == (
                case.status,
                case.final_outcome,
                case.decided_by,
            )
    # Every case that changed during the outage, and only those.
    changed = set(Case.objects.filter(system=system).values_list("reference", flat=True))
    assert set(seen) == changed
