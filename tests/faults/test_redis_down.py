"""Redis (broker and cache) stops while cases are ingested and decided: the
API still answers 201, nothing is lost, and the webhooks whose tasks died
with Redis go out once it is back (the outbox sweep)."""

import re
import time

import pytest
import requests

from reviews.models import Case, Decision
from tests import factories
from tests.faults.conftest import decide_next, fill_trail_to, wait_for
from workbench.models import Checkpoint, OutboxMessage, TrailEvent, TrailHead
from workbench.services import api_key_create, trail_verify
from workbench.tasks import outbox_sweep, trail_checkpoint

pytestmark = [pytest.mark.postgres, pytest.mark.services]


def decide_in_the_browser(base: str, username: str, queue_id: int) -> None:
    """Log in, claim the next case and agree, as a reviewer's browser does."""
    with requests.Session() as browser:

        def post(path: str, data: dict) -> requests.Response:
            data = {**data, "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
            response = browser.post(f"{base}{path}", data, allow_redirects=False, timeout=30)
            assert response.status_code == 302, response.text
            return response

        browser.get(f"{base}/accounts/login/", timeout=30).raise_for_status()
        post("/accounts/login/", {"username": username, "password": "pw-for-tests"})
        case_url = post("/queues/claim/", {"queue": queue_id}).headers["Location"]
        page = browser.get(f"{base}{case_url}", timeout=30)
        page.raise_for_status()
        form = {
            name: re.search(rf'name="{name}" value="([^"]+)"', page.text)[1]
            for name in ("task", "fencing_token", "idempotency_key")
        }
        post(case_url, {**form, "action": "agree"})


def test_cases_ingested_while_redis_is_down_are_answered_and_nothing_is_lost(
    broker, processes, receiver
):
    system = factories.system_with_policy()
    system.callback_url = receiver.url
    system.save(update_fields=["callback_url"])
    key = api_key_create(system=system, scope="ingest", actor=factories.ACTOR).plaintext
    reviewer = factories.UserFactory(role="reviewer")
    web = processes.web(broker.url)  # its broker and cache: the Redis about to die
    answers: list[tuple[int, dict]] = []

    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {key}"

        def submit(numbers: list[int], batch: bool = False) -> None:
            if batch:
                body = {"cases": [factories.claim_payload(n) for n in numbers]}
                response = http.post(f"{web.url}/api/v1/cases/batch", json=body, timeout=30)
                if response.status_code != 200:
                    answers.extend((response.status_code, {}) for _ in numbers)
                    return
                answers.extend((item["status"], item) for item in response.json()["results"])
            else:
                for n in numbers:
                    response = http.post(
                        f"{web.url}/api/v1/cases", json=factories.claim_payload(n), timeout=30
                    )
                    ok = response.status_code in (200, 201)
                    answers.append((response.status_code, response.json() if ok else {}))

        submit(list(range(0, 5)))
        submit(list(range(5, 10)), batch=True)
        for _ in range(3):
            decide_next(reviewer)  # their delivery tasks wait in Redis: no worker yet
        # The next thousandth event falls among the cases sent while Redis is
        # down: their commit enqueues the checkpoint task on a dead broker.
        fill_trail_to(995)

        broker.kill()
        started = time.monotonic()
        submit(list(range(10, 20)))
        submit(list(range(20, 30)), batch=True)
        for _ in range(3):
            decide_next(reviewer)  # their delivery tasks cannot be enqueued
        decide_in_the_browser(
            web.url, reviewer.username, factories.queue_id(system, "claims-review")
        )
        outage = time.monotonic() - started
        assert TrailHead.objects.get(id=1).seq > 1000

    statuses = [status for status, _ in answers]
    assert statuses == [201] * 30, web.output()[-3000:]
    # Refused connections fail fast: the outage costs the clients little.
    assert outage < 30

    # Everything answered 201 is stored, with its two intake events.
    references = {body["reference"] for _, body in answers}
    assert set(Case.objects.values_list("reference", flat=True)) == references
    for action in ("case.received", "case.routed"):
        events = TrailEvent.objects.filter(action=action)
        assert sorted(events.values_list("case", flat=True)) == sorted(references)
    # One webhook per decision, written with it, though no task was queued
    # (and one email to the customer, the same way).
    messages = OutboxMessage.objects.filter(channel="webhook")
    assert messages.count() == Decision.objects.count() == 7
    assert OutboxMessage.objects.filter(channel="email").count() == 7
    assert set(messages.values_list("status", flat=True)) == {OutboxMessage.Status.PENDING}

    # Redis comes back empty (no persistence): the tasks queued before it
    # died are gone too. A worker starts; beat's sweep and checkpoint run.
    broker.start()
    worker = processes.worker(broker.url)
    outbox_sweep.delay()
    trail_checkpoint.delay()
    wait_for(
        lambda: (
            not messages.exclude(status=OutboxMessage.Status.SENT).exists()
            and Checkpoint.objects.filter(seq=1000).exists()
        ),
        timeout=60,
        what="the webhooks to go out and the checkpoint to be signed",
    )
    worker.stop()  # warm shutdown: whatever it was still doing is finished

    delivered = [r.headers["X-Workbench-Delivery"] for r in receiver.received]
    assert sorted(delivered) == sorted(str(m.delivery_id) for m in messages)  # each once
    assert sorted(r.headers["X-Workbench-Attempt"] for r in receiver.received) == ["1"] * 7
    assert trail_verify().ok
