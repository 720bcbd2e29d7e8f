"""A Celery worker killed with SIGKILL mid webhook delivery and mid
checkpoint: the task comes back (acks_late; task_reject_on_worker_lost), the
webhook goes out again with the same delivery id, and the checkpoint is
signed once."""

import os
import signal
import time

import pytest
from django.db import connection
from django.utils import timezone

from tests import factories
from tests.faults.conftest import (
    VISIBILITY_TIMEOUT,
    decide_next,
    fill_trail_to,
    other_connection,
    wait_for,
)
from workbench.models import Checkpoint, OutboxMessage
from workbench.services import trail_verify
from workbench.services.outbox import ABANDONED, IN_FLIGHT

pytestmark = [pytest.mark.postgres, pytest.mark.services]


def blocked_checkpoint_insert() -> int | None:
    """The database session of a checkpoint task waiting for its insert."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO \"workbench_checkpoint\"%%'"
        )
        row = cursor.fetchone()
    return row[0] if row else None


def session_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def test_a_worker_killed_mid_delivery_and_mid_checkpoint_loses_nothing(
    broker, processes, holding_receiver
):
    system = factories.system_with_policy()
    system.callback_url = holding_receiver.url
    system.save(update_fields=["callback_url"])
    reviewer = factories.UserFactory(role="reviewer")
    factories.ingest(system, factories.claim_payload(1))

    # --- Killed while the receiver holds the webhook: the whole worker, at once.
    first = processes.worker(broker.url)
    decide_next(reviewer)
    message = OutboxMessage.objects.get(channel="webhook")  # beside the customer's email
    wait_for(holding_receiver.arrived.is_set, timeout=30, what="the webhook to be in flight")
    first.kill()
    killed_at = time.monotonic()
    holding_receiver.released.set()  # the first try arrives; its answer finds no one
    wait_for(lambda: holding_receiver.received, timeout=10, what="the first try to be read")

    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxMessage.Status.PENDING, 1)
    assert list(message.tries.values_list("error", flat=True)) == [IN_FLIGHT]
    # The claim's lease (two minutes) keeps other workers off a message its
    # worker may still be sending. The two minutes pass:
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    # Redis hands the unacknowledged task to the next worker once it has been
    # out VISIBILITY_TIMEOUT seconds; nothing else enqueues it (no beat here).
    time.sleep(max(0.0, killed_at + VISIBILITY_TIMEOUT + 0.5 - time.monotonic()))
    second = processes.worker(broker.url)
    wait_for(
        lambda: OutboxMessage.objects.get(pk=message.pk).status == OutboxMessage.Status.SENT,
        timeout=30,
        what="the redelivered task to send the webhook",
    )

    first_try, second_try = holding_receiver.received
    for header in ("X-Workbench-Delivery", "X-Workbench-Signature", "X-Workbench-Topic"):
        assert first_try.headers[header] == second_try.headers[header], header
    assert first_try.headers["X-Workbench-Delivery"] == str(message.delivery_id)
    assert first_try.body == second_try.body
    assert [
        first_try.headers["X-Workbench-Attempt"],
        second_try.headers["X-Workbench-Attempt"],
    ] == [
        "1",
        "2",
    ]
    message.refresh_from_db()
    assert list(message.tries.order_by("pk").values_list("error", "status_code")) == [
        (ABANDONED, None),
        ("", 200),
    ]

    # --- Killed while signing a checkpoint: its pool process, held at the
    # insert by a lock on the checkpoint table, after it has signed.
    assert not Checkpoint.objects.exists()
    with other_connection() as locker:
        locker.execute("LOCK TABLE workbench_checkpoint IN EXCLUSIVE MODE")
        fill_trail_to(1000)  # enqueues the checkpoint task after the commit
        session = wait_for(blocked_checkpoint_insert, timeout=30, what="the checkpoint insert")
        [pool_process] = second.pool_processes()
        os.kill(pool_process, signal.SIGKILL)
        wait_for(
            lambda: second.pool_processes() not in ([], [pool_process]),
            timeout=30,
            what="the worker to replace its pool process",
        )
        locker.rollback()
    # The killed task's session wakes up, finds its client gone, rolls back.
    wait_for(lambda: not session_alive(session), timeout=30, what="the killed session to end")
    wait_for(Checkpoint.objects.exists, timeout=30, what="the requeued task to sign the checkpoint")
    second.stop()  # warm shutdown: nothing is left running
    assert list(Checkpoint.objects.values_list("seq", flat=True)) == [1000]
    assert "WorkerLostError" in second.output()
    assert trail_verify().ok
