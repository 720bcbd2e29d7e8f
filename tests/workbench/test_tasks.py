import time

import pytest
from django.conf import settings
from django.db import transaction

from workbench.celery import app
from workbench.models import Checkpoint
from workbench.services import Actor, TrailEntry, trail_append_many, trail_integrate
from workbench.tasks import trail_checkpoint


def append_thousand():
    trail_append_many([TrailEntry("test.event", Actor.workbench("tests")) for _ in range(1000)])


def test_crossing_a_thousand_events_enqueues_the_checkpoint_task(
    db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        append_thousand()
        trail_integrate()  # PostgreSQL: the integration crosses it (SQLite: the append)
        trail_append_many([TrailEntry("test.event", Actor.workbench("tests"))])
        trail_integrate()
    callbacks = [c for c in callbacks if c.__name__ == "_enqueue_checkpoint"]
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
        trail_integrate()  # as a reader or the sequencer would: it enqueues the task
        deadline = time.monotonic() + 30
        while not Checkpoint.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    assert list(Checkpoint.objects.values_list("seq", flat=True)) == [1000]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_celery_beat_drives_the_outbox_sweep_through_a_real_worker(tmp_path, receiver):
    """Beat (its own process) schedules the sweep on Redis every 30 s and a
    worker runs it: a due message that no task was queued for gets delivered."""
    import os
    import subprocess
    import sys

    from celery.contrib.testing.worker import start_worker
    from django.utils import timezone

    from tests import factories
    from workbench.models import OutboxMessage

    system = factories.system_with_policy()
    # Written directly, as if its delivery task had been lost with Redis down.
    message = OutboxMessage.objects.create(
        channel=OutboxMessage.Channel.WEBHOOK,
        system=system,
        destination=receiver.url,
        topic="case.finalized",
        payload={"reference": "WB-TEST-0001"},
        next_attempt_at=timezone.now(),
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "workbench.settings.test"}
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workbench",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(tmp_path / "beat-schedule"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with start_worker(app, perform_ping_check=False, shutdown_timeout=30, loglevel="WARNING"):
            deadline = time.monotonic() + 75
            while not receiver.received and time.monotonic() < deadline:
                time.sleep(0.3)
            time.sleep(0.5)
    finally:
        beat.terminate()
        output, _ = beat.communicate(timeout=30)
    assert len(receiver.received) == 1, output
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT
