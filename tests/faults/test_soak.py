"""Soak: 16 reviewers claim and decide while 4 clients ingest over HTTP, for
``WORKBENCH_SOAK_SECONDS`` (default 60), with a worker sending webhooks and
signing checkpoints. The clients go in pairs that submit the same cases at
about the same time, about subjects that all four share. No task is held by
two reviewers, no case or event is lost or stored twice, no request answers
5xx, the chain has no gap or fork, and no webhook goes out twice."""

import os
import time
from collections import Counter
from functools import partial
from itertools import count

import pytest
import requests
from django.db.models import Count

from reviews.models import Case, Decision, Subject
from tests import factories
from tests.reviews.test_concurrency import review, run_together
from workbench.models import OutboxMessage, TrailEvent
from workbench.services import api_key_create, trail_verify

pytestmark = [pytest.mark.postgres, pytest.mark.services]

SECONDS = float(os.environ.get("WORKBENCH_SOAK_SECONDS", "60"))
SUBJECTS = 211  # subject references shared by every client's cases


def soak_payload(n: int) -> dict:
    body = factories.claim_payload(n)
    body["subject"]["reference"] = f"MBR-SOAK-{n % SUBJECTS:03d}"
    return body


def ingest(url: str, key: str, first: int, answers: list, until: float) -> None:
    """Submit new cases until ``until``: one at a time and in batches of
    five, and every tenth time the last one again (which must answer 200).
    Two clients given the same ``first`` submit the same cases: whichever
    comes first gets 201, the other 200."""
    numbers = count(first)
    last = first
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {key}"
        for round_ in count():
            if time.monotonic() >= until:
                return
            if round_ % 10 == 9:
                body = soak_payload(last)
                response = http.post(f"{url}/api/v1/cases", json=body, timeout=60)
                answers.append(("again", response.status_code, response.json(), last))
            elif round_ % 2:
                numbers_ = [next(numbers) for _ in range(5)]
                batch = [soak_payload(n) for n in numbers_]
                response = http.post(f"{url}/api/v1/cases/batch", json={"cases": batch}, timeout=60)
                assert response.status_code == 200, response.text
                results = response.json()["results"]
                answers.extend(
                    ("new", item["status"], item, n)
                    for item, n in zip(results, numbers_, strict=True)
                )
            else:
                last = next(numbers)
                body = soak_payload(last)
                response = http.post(f"{url}/api/v1/cases", json=body, timeout=60)
                answers.append(("new", response.status_code, response.json(), last))


def test_sixteen_reviewers_and_four_ingesters_lose_nothing(broker, processes, receiver):
    system = factories.system_with_policy()
    system.callback_url = receiver.url
    system.save(update_fields=["callback_url"])
    key = api_key_create(system=system, scope="ingest", actor=factories.ACTOR).plaintext
    reviewers = [factories.UserFactory(role="reviewer") for _ in range(16)]
    web = processes.web(broker.url)
    worker = processes.worker(broker.url)  # sends the webhooks, signs checkpoints
    claims: list[tuple[int, int]] = []
    answers: list[tuple[str, int, dict, int]] = []

    until = time.monotonic() + SECONDS
    errors = run_together(
        [partial(review, user, claims, until=until) for user in reviewers]
        # Two pairs of clients, each pair submitting the same cases.
        + [partial(ingest, web.url, key, n // 2 * 1_000_000, answers, until) for n in range(4)],
        timeout=SECONDS + 120,
    )
    assert errors == []

    # Every case answered 201 is stored, once, with its two intake events;
    # the same case submitted again, by its client or the other of the pair,
    # answered 200 with the same reference; nothing else was answered.
    new = [(status, body, n) for kind, status, body, n in answers if kind == "new"]
    assert {status for status, _, _ in new} <= {201, 200}
    assert {status for kind, status, _, _ in answers if kind == "again"} <= {200}
    created = [body["reference"] for status, body, _ in new if status == 201]
    assert created  # the soak did real work
    assert sorted(Case.objects.values_list("reference", flat=True)) == sorted(created)
    first = {n: body["reference"] for status, body, n in new if status == 201}
    assert len(first) == len(created)  # one 201 per case
    assert all(body["reference"] == first[n] for _, body, n in new)
    assert all(body["reference"] == first[n] for kind, _, body, n in answers if kind == "again")
    for action in ("case.received", "case.routed"):
        events = TrailEvent.objects.filter(action=action).values_list("case", flat=True)
        assert sorted(events) == sorted(created), action
    assert Subject.objects.count() <= SUBJECTS

    # No task was claimed twice, and each claimed task was decided once.
    assert claims
    assert set(Counter(task for task, _ in claims).values()) == {1}
    assert len({user for _, user in claims}) > 1
    per_task = Decision.objects.values("task").annotate(n=Count("id"))
    assert sorted(row["task"] for row in per_task) == sorted(task for task, _ in claims)
    assert {row["n"] for row in per_task} == {1}
    assert TrailEvent.objects.filter(action="case.claimed").count() == len(claims)
    assert TrailEvent.objects.filter(action="case.decided").count() == len(claims)

    # One webhook per decision, written with it; those the worker has sent
    # so far (it is left behind by the soak) each went out once. (And one
    # email per decision to the customer.)
    messages = OutboxMessage.objects.filter(channel="webhook")
    assert messages.count() == len(claims)
    assert OutboxMessage.objects.filter(channel="email").count() == len(claims)
    worker.stop()
    delivered = Counter(r.headers["X-Workbench-Delivery"] for r in receiver.received)
    assert delivered and set(delivered.values()) == {1}
    sent = messages.filter(status=OutboxMessage.Status.SENT).values_list("delivery_id", flat=True)
    assert sorted(delivered) == sorted(str(delivery_id) for delivery_id in sent)

    # No gap or fork: seq contiguous, each prev_hash the hash before.
    seqs = list(TrailEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert trail_verify().ok
