import time

import pytest
from django.conf import settings
from django.db import transaction

from workbench.celery import app
from workbench.models import Checkpoint
from workbench.services import Actor, TrailEntry, trail_append_many
from workbench.tasks import trail_checkpoint


def append_thousand():
    trail_append_many([TrailEntry("test.event", Actor.workbench("tests")) for _ in range(1000)])


def test_crossing_a_thousand_events_enqueues_the_checkpoint_task(
    db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        append_thousand()
        trail_append_many([TrailEntry("test.event", Actor.workbench("tests"))])
    assert len(callbacks) == 1  # once, when seq 1000 was crossed
    # The 1,000th event, and the head because nothing was signed in the last hour.
    assert trail_checkpoint.apply().get() == [1000, 1001]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_redis_signs_the_checkpoint():
    from celery.contrib.testing.worker import start_worker

    assert not settings.CELERY_TASK_ALWAYS_EAGER and settings.CELERY_BROKER_URL.startswith("redis")
    with start_worker(app, perform_ping_check=False, shutdown_timeout=30, loglevel="WARNING"):
        with transaction.atomic():
            append_thousand()
        deadline = time.monotonic() + 30
        while not Checkpoint.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    assert list(Checkpoint.objects.values_list("seq", flat=True)) == [1000]
