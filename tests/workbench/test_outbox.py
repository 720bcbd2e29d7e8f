import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from workbench import tasks
from workbench.celery import app
from workbench.errors import WorkbenchError
from workbench.models import AISystem, DeliveryAttempt, OutboxMessage
from workbench.services import outbox as outbox_module
from workbench.services import (
    outbox_deliver,
    outbox_due,
    outbox_enqueue,
    outbox_retry,
    webhook_enqueue,
    webhook_signature,
)

PAYLOAD = {
    "reference": "WB-7KQ2-M9TX",
    "external_id": "CLM-2026-000123",
    "outcome": "approve",
    "decided_by": "human",
    "reasons": [{"code": "CO-50", "text": "Medically necessary after review: é ✓"}],
    "appeal": None,
}


@pytest.fixture
def hooked(system, receiver):
    """The claims system, with the receiver as its callback URL."""
    system.callback_url = receiver.url
    system.save(update_fields=["callback_url"])
    return system


@pytest.fixture
def eager():
    """Run enqueued tasks in process, on the PostgreSQL + Redis run too, so that
    no test leaves tasks on the broker for the worker test to find."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def queue(system, payload=PAYLOAD, topic="case.finalized") -> OutboxMessage:
    # Inside the test's transaction, which never commits: no task is enqueued,
    # the test calls the service itself.
    with transaction.atomic():
        return webhook_enqueue(system=system, topic=topic, payload=payload)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_webhook_is_signed_with_the_systems_secret(hooked, receiver):
    message = queue(hooked)
    message = outbox_deliver(message_id=message.pk)

    assert message.status == OutboxMessage.Status.SENT and message.sent_at is not None
    [request] = receiver.received
    assert request.path == "/hooks/workbench"
    assert request.body == json.dumps(PAYLOAD, sort_keys=True, separators=(",", ":")).encode()
    expected = hmac.new(hooked.callback_secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Workbench-Signature"] == f"sha256={expected}"
    assert webhook_signature(hooked.callback_secret, request.body) == f"sha256={expected}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Workbench-Delivery"] == str(message.delivery_id)
    assert request.headers["X-Workbench-Topic"] == "case.finalized"
    assert request.headers["X-Workbench-Attempt"] == "1"
    [attempt] = message.tries.all()
    assert (attempt.status_code, attempt.error) == (200, "")


def test_the_delivery_id_is_stable_across_a_failed_and_a_successful_attempt(hooked, receiver):
    message = queue(hooked)
    receiver.status = 500
    message = outbox_deliver(message_id=message.pk)
    assert (message.status, message.attempts) == (OutboxMessage.Status.PENDING, 1)
    assert message.last_error == "HTTP 500: receiver says no"

    # Not due yet: a second task for it (a redelivery, the sweep) sends nothing.
    outbox_deliver(message_id=message.pk)
    assert len(receiver.received) == 1

    receiver.status = 204
    with time_machine.travel(message.next_attempt_at, tick=False):
        message = outbox_deliver(message_id=message.pk)
    assert (message.status, message.attempts, message.last_error) == ("sent", 2, "")
    first, second = receiver.received
    assert first.headers["X-Workbench-Delivery"] == second.headers["X-Workbench-Delivery"]
    assert first.headers["X-Workbench-Delivery"] == str(message.delivery_id)
    assert (first.headers["X-Workbench-Attempt"], second.headers["X-Workbench-Attempt"]) == (
        "1",
        "2",
    )
    assert first.body == second.body
    assert first.headers["X-Workbench-Signature"] == second.headers["X-Workbench-Signature"]
    assert list(message.tries.order_by("pk").values_list("status_code", flat=True)) == [500, 204]


def test_failures_back_off_up_to_an_hour_and_give_up_after_25_hours(hooked, receiver):
    receiver.status = 500
    with time_machine.travel(timezone.now(), tick=False) as clock:
        message = queue(hooked)
        created = message.created_at
        waits, tried_at = [], []
        while message.status == OutboxMessage.Status.PENDING:
            now = timezone.now()
            message = outbox_deliver(message_id=message.pk)
            tried_at.append(now)
            if message.status == OutboxMessage.Status.PENDING:
                waits.append(message.next_attempt_at - now)
                clock.move_to(message.next_attempt_at)

    for n, wait in enumerate(waits, start=1):
        expected = min(30 * 2 ** (n - 1), 3600)
        assert 0.9 * expected <= wait.total_seconds() <= 1.1 * expected, (n, wait)
    assert waits[0] < waits[1] < waits[2] < waits[6]
    assert message.status == OutboxMessage.Status.FAILED
    assert tried_at[-1] - created >= timedelta(hours=25) > tried_at[-2] - created
    assert 25 <= message.attempts == len(receiver.received) == message.tries.count() <= 40
    assert message.last_error == "HTTP 500: receiver says no"
    assert outbox_due(now=tried_at[-1] + timedelta(days=1)) == []


def test_a_refused_connection_is_a_failed_attempt_not_an_exception(hooked):
    hooked.callback_url = f"http://127.0.0.1:{closed_port()}/hooks"
    message = outbox_deliver(message_id=queue(hooked).pk)

    assert (message.status, message.attempts) == (OutboxMessage.Status.PENDING, 1)
    assert message.last_error.startswith("ConnectionError")
    [attempt] = message.tries.all()
    assert attempt.status_code is None and attempt.error.startswith("ConnectionError")
    assert message.next_attempt_at > timezone.now()


def test_a_message_goes_out_only_once_its_transaction_commits(
    hooked, receiver, eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            message = webhook_enqueue(system=hooked, topic="case.finalized", payload=PAYLOAD)
        assert receiver.received == []  # the test's own transaction has not committed
    assert len(callbacks) == 1
    [request] = receiver.received
    assert request.headers["X-Workbench-Delivery"] == str(message.delivery_id)
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT


def test_a_rolled_back_message_is_never_sent(
    hooked, receiver, eager, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        webhook_enqueue(system=hooked, topic="case.finalized", payload=PAYLOAD)
        raise RuntimeError("the change failed")
    assert callbacks == []
    assert not OutboxMessage.objects.exists()
    assert receiver.received == []


def test_outbox_enqueue_outside_a_transaction_is_refused():
    # No database fixture: the refusal comes before any query (and the test
    # needs no transactional database, which the append-only trail cannot flush).
    assert not connection.in_atomic_block
    system = AISystem(slug="claims-ai", callback_url="https://claims.example.org/hooks")
    with pytest.raises(WorkbenchError) as caught:
        webhook_enqueue(system=system, topic="case.finalized", payload=PAYLOAD)
    assert caught.value.code == "outbox_outside_transaction"
    with pytest.raises(WorkbenchError) as caught:
        outbox_enqueue(
            channel="email",
            topic="notice.ready",
            destination="ana@example.org",
            payload={"subject": "Your claim", "body": "was reviewed"},
        )
    assert caught.value.code == "outbox_outside_transaction"


def test_a_system_without_a_callback_url_gets_no_webhook(system):
    assert system.callback_url == ""
    assert queue(system) is None
    assert not OutboxMessage.objects.exists()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"channel": "pigeon"}, "bad_channel"),
        ({"topic": ""}, "bad_topic"),
        ({"destination": "ftp://example.org/hook"}, "bad_destination"),
        ({"payload": {"at": timezone.now()}}, "bad_payload"),
        ({"payload": ["not", "an", "object"]}, "bad_payload"),
        ({"system": None}, "webhook_needs_system"),
    ],
)
def test_a_bad_message_is_refused_with_a_code(system, changes, code):
    message = {
        "channel": "webhook",
        "topic": "case.finalized",
        "destination": "https://claims.example.org/hooks",
        "payload": PAYLOAD,
        "system": system,
    }
    with pytest.raises(WorkbenchError) as caught, transaction.atomic():
        outbox_enqueue(**(message | changes))
    assert caught.value.code == code
    assert not OutboxMessage.objects.exists()


def test_the_sweep_sends_due_messages_whose_task_was_lost(hooked, receiver, eager):
    # Three messages whose tasks never ran (the broker was down at commit).
    lost, later, done = queue(hooked), queue(hooked), queue(hooked)
    OutboxMessage.objects.filter(pk=later.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    OutboxMessage.objects.filter(pk=done.pk).update(status=OutboxMessage.Status.SENT)

    assert outbox_due() == [lost.pk]
    assert tasks.outbox_sweep.apply().get() == 1
    assert [r.headers["X-Workbench-Delivery"] for r in receiver.received] == [str(lost.delivery_id)]
    assert OutboxMessage.objects.get(pk=lost.pk).status == OutboxMessage.Status.SENT
    assert outbox_due(now=timezone.now() + timedelta(minutes=6)) == [later.pk]


def test_a_worker_killed_mid_delivery_loses_nothing(hooked, receiver, monkeypatch):
    message = queue(hooked)
    send = outbox_module.webhook_send

    def send_then_die(message):
        send(message)
        raise SystemExit("worker killed before it recorded the result")

    monkeypatch.setattr(outbox_module, "webhook_send", send_then_die)
    with pytest.raises(SystemExit):
        outbox_deliver(message_id=message.pk)
    monkeypatch.undo()

    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxMessage.Status.PENDING, 1)
    [attempt] = message.tries.all()
    assert attempt.error == outbox_module.IN_FLIGHT
    # acks_late hands the task to another worker at once: the claim's lease
    # keeps it from sending while the first might still be at it.
    outbox_deliver(message_id=message.pk)
    assert len(receiver.received) == 1 and outbox_due() == []

    with time_machine.travel(timezone.now() + outbox_module.CLAIM_LEASE, tick=False):
        assert outbox_due() == [message.pk]
        message = outbox_deliver(message_id=message.pk)
    assert (message.status, message.attempts) == (OutboxMessage.Status.SENT, 2)
    first, second = receiver.received
    assert first.headers["X-Workbench-Delivery"] == second.headers["X-Workbench-Delivery"]
    assert list(message.tries.order_by("pk").values_list("error", flat=True)) == [
        outbox_module.ABANDONED,
        "",
    ]


def test_an_email_goes_out_with_a_message_id_made_from_the_delivery_id(db, mailoutbox):
    with transaction.atomic():
        message = outbox_enqueue(
            channel="email",
            topic="notice.ready",
            destination="ana@example.org",
            payload={"subject": "Your claim was reviewed", "body": "A person reviewed it."},
        )
    message = outbox_deliver(message_id=message.pk)
    assert message.status == OutboxMessage.Status.SENT
    [email] = mailoutbox
    assert email.to == ["ana@example.org"] and email.subject == "Your claim was reviewed"
    assert email.extra_headers["Message-ID"] == f"<{message.delivery_id}@localhost>"
    assert email.extra_headers["X-Workbench-Delivery"] == str(message.delivery_id)


def test_the_admin_shows_attempts_and_retries_a_failed_message(
    hooked, receiver, eager, admin_client, django_capture_on_commit_callbacks
):
    failed, sent = queue(hooked), queue(hooked)
    receiver.status = 503
    outbox_deliver(message_id=failed.pk)
    OutboxMessage.objects.filter(pk=failed.pk).update(status=OutboxMessage.Status.FAILED)
    OutboxMessage.objects.filter(pk=sent.pk).update(status=OutboxMessage.Status.SENT)

    page = admin_client.get("/admin/workbench/outboxmessage/?status__exact=failed")
    assert page.status_code == 200 and receiver.url in page.content.decode()
    page = admin_client.get(f"/admin/workbench/outboxmessage/{failed.pk}/change/")
    assert page.status_code == 200
    assert "Delivery attempts" in page.content.decode()  # the inline, with its one row
    assert page.content.decode().count("HTTP 503: receiver says no") == 2  # and last_error

    receiver.status = 200
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/workbench/outboxmessage/",
            {"action": "retry_now", "_selected_action": [failed.pk, sent.pk]},
        )
    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (OutboxMessage.Status.SENT, 2)
    assert len(receiver.received) == 2  # the failed try and the retry; not the sent one
    assert DeliveryAttempt.objects.filter(message=sent).count() == 0


def test_retry_leaves_a_message_being_sent_alone(hooked):
    message = queue(hooked)
    claimed = outbox_module._claim(message.pk)
    assert claimed is not None
    assert outbox_retry(message_ids=[message.pk]) == []
    message.refresh_from_db()
    assert message.next_attempt_at > timezone.now()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_message_another_worker_holds_is_skipped_not_waited_for(hooked, receiver):
    message = OutboxMessage.objects.create(
        channel="webhook",
        topic="case.finalized",
        destination=receiver.url,
        payload=PAYLOAD,
        system=hooked,
        next_attempt_at=timezone.now(),
    )
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        with transaction.atomic():
            OutboxMessage.objects.select_for_update().get(pk=message.pk)
            locked.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        skipped = outbox_deliver(message_id=message.pk)
        assert time.monotonic() - started < 2
    finally:
        release.set()
        thread.join()
    assert (skipped.attempts, receiver.received) == (0, [])
    assert outbox_deliver(message_id=message.pk).status == OutboxMessage.Status.SENT


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_redis_delivers_the_webhook_once_signed(hooked, receiver):
    from celery.contrib.testing.worker import start_worker

    assert not settings.CELERY_TASK_ALWAYS_EAGER and settings.CELERY_BROKER_URL.startswith("redis")
    with start_worker(app, perform_ping_check=False, shutdown_timeout=30, loglevel="WARNING"):
        with transaction.atomic():
            message = webhook_enqueue(system=hooked, topic="case.finalized", payload=PAYLOAD)
            time.sleep(0.5)
            assert receiver.received == []  # not before the commit
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message.refresh_from_db()
            if message.status != OutboxMessage.Status.PENDING:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # time for a duplicate to show, if there were one
    assert message.status == OutboxMessage.Status.SENT
    [request] = receiver.received
    assert request.headers["X-Workbench-Delivery"] == str(message.delivery_id)
    assert request.headers["X-Workbench-Signature"] == webhook_signature(
        hooked.callback_secret, request.body
    )
    assert json.loads(request.body) == PAYLOAD
