"""Several processes ingest at once on PostgreSQL: the trail-head lock must
leave no gap or fork in the chain and no duplicate case."""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from reviews.models import Case
from tests import factories
from workbench.models import TrailEvent
from workbench.services import trail_verify

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def run_together(calls: list[Callable[[], None]], timeout: float = 300) -> list[BaseException]:
    """Run each call in a thread of its own, all starting at once; return
    what they raised. Each thread closes its database connection."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(calls))

    def run(call):
        try:
            start.wait()
            call()
        except BaseException as exc:  # reported to the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return errors


def review(user, claims: list, *, queue_slug: str = "claims-review", until: float | None = None):
    """Claim the next task and agree with the AI, again and again, through
    the services; record each claim in ``claims`` as (task, user). Stops when
    the queue is empty or, given ``until`` (a ``time.monotonic()``), at that time."""
    from reviews.services.assignment import task_claim_next
    from reviews.services.decisions import DecisionInput, decision_record

    while until is None or time.monotonic() < until:
        task = task_claim_next(user=user, queue_slug=queue_slug)
        if task is None:
            if until is None:
                return
            time.sleep(0.05)  # more may come in
            continue
        claims.append((task.pk, user.pk))
        decision_record(
            task_id=task.pk,
            user=user,
            fencing_token=task.fencing_token,
            decision=DecisionInput("agree"),
            idempotency_key=uuid.uuid4().hex,
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_ingesting_processes_keep_one_unbroken_chain():
    factories.system_with_policy()
    before = TrailEvent.objects.count()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "workbench.settings.test",
    }
    # Four workers of 60 cases each; neighbours overlap by 20 external ids,
    # so the same case is submitted by two processes at the same time.
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.reviews.ingest_worker", "claims-ai", str(w * 40), "60"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    statuses = {201: 0, 200: 0}
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        for status, count in json.loads(out.strip().splitlines()[-1]).items():
            statuses[int(status)] += count

    distinct = 3 * 40 + 60  # ids 0..179
    assert Case.objects.count() == distinct
    assert statuses == {201: distinct, 200: 240 - distinct}
    seqs = list(TrailEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) - before == 2 * distinct
    assert trail_verify().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_reviewers_never_share_a_task():
    from collections import Counter
    from functools import partial

    from reviews.models import Decision, ReviewTask
    from reviews.schemas import CaseIn
    from reviews.services import case_ingest_batch

    system = factories.system_with_policy()
    items = [CaseIn.model_validate(factories.claim_payload(n)) for n in range(200)]
    case_ingest_batch(system=system, items=items)
    total = ReviewTask.objects.filter(queue__slug="claims-review").count()
    reviewers = [factories.UserFactory(role="reviewer") for _ in range(16)]
    claims: list[tuple[int, int]] = []

    assert run_together([partial(review, user, claims) for user in reviewers]) == []
    per_task = Counter(task for task, _ in claims)
    assert len(per_task) == total and set(per_task.values()) == {1}  # no double assignment
    assert Decision.objects.count() == total
    assert len({user for _, user in claims}) > 1  # the work really was shared
    assert trail_verify().ok
