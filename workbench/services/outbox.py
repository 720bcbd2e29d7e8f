"""The transactional outbox: webhooks to AI systems (DESIGN §5) and emails.

A message is written in the transaction of the change it announces, so it
exists if and only if that change committed. After the commit a Celery task
delivers it; a sweep every 30 s (beat) re-enqueues whatever is due, which is
both the retry schedule and the safety net for a task that was lost (Redis
down at commit, a worker killed). Delivery is at least once: a worker that
dies between sending and recording makes the message go out again, with the
same ``X-Workbench-Delivery`` id (and ``webhook-id``), by which the receiver
drops the duplicate. Sending one try: ``workbench.services.delivery``; signatures
and destinations: ``workbench.services.webhooks``.

Retry schedule: 30 s after the first failure, then doubling (1, 2, 4, 8, 16,
32 min) up to one hour between tries, each ±10 % so that retries of many
messages spread out; a failure 25 hours or more after the message was
created makes it ``failed`` (about 32 tries). An admin can retry it then.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from workbench.errors import Invalid, NotFound, WorkbenchError
from workbench.models import AISystem, DeliveryAttempt, OutboxMessage
from workbench.services.delivery import SendResult, email_send, webhook_send
from workbench.services.webhooks import (
    webhook_body,
    webhook_wanted,
)
from workbench.services.webhooks import webhook_signature as webhook_signature  # re-exported

BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
BACKOFF_JITTER = 0.1
RETRY_WINDOW = timedelta(hours=25)  # DESIGN: "at least 24 hours"
# How long a claimed message is left to the worker that claimed it. Longer
# than the delivery task's hard time limit (workbench.tasks), so that no other
# worker can claim it while the first may still be sending.
CLAIM_LEASE = timedelta(minutes=2)
IN_FLIGHT = "in flight: no result recorded yet"
ABANDONED = "no result recorded: the worker stopped mid-delivery (the message may have arrived)"
TEST_TOPIC = "webhook.test"


def outbox_backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try, before jitter."""
    # Capped exponent: 2**40 would overflow timedelta long before it matters.
    return min(BACKOFF_FIRST * 2 ** min(attempts - 1, 20), BACKOFF_MAX)


def _validate(
    *, channel: str, topic: str, destination: str, payload: Any, system: AISystem | None
) -> None:
    if channel not in OutboxMessage.Channel.values:
        raise Invalid(f"unknown channel {channel!r}", "bad_channel")
    if not topic or len(topic) > OutboxMessage._meta.get_field("topic").max_length:
        raise Invalid("a topic of 1 to 64 characters is required", "bad_topic")
    if len(destination) > OutboxMessage._meta.get_field("destination").max_length:
        raise Invalid("the destination is too long", "bad_destination")
    if not isinstance(payload, dict):
        raise Invalid("the payload must be a JSON object", "bad_payload")
    try:
        webhook_body(payload)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"the payload is not JSON: {exc}", "bad_payload") from None
    try:
        if channel == OutboxMessage.Channel.WEBHOOK:
            URLValidator(schemes=["http", "https"])(destination)
        else:
            validate_email(destination)
    except ValidationError:
        raise Invalid(f"not a {channel} destination: {destination!r}", "bad_destination") from None
    if channel == OutboxMessage.Channel.WEBHOOK and system is None:
        raise Invalid("a webhook needs the AI system whose secret signs it", "webhook_needs_system")
    if channel == OutboxMessage.Channel.EMAIL and not (
        isinstance(payload.get("subject"), str)
        and isinstance(payload.get("body"), str)
        and "\n" not in payload["subject"]
        and "\r" not in payload["subject"]
    ):
        raise Invalid("an email needs a one-line subject and a body", "bad_payload")


def outbox_enqueue(
    *,
    channel: str,
    topic: str,
    destination: str,
    payload: dict[str, Any],
    system: AISystem | None = None,
) -> OutboxMessage:
    """Record a message in the caller's transaction; it is delivered after the
    commit, and never if the transaction rolls back.

    ``payload`` is the webhook's JSON body, or ``{"subject", "body"}`` of an
    email. Outside a transaction this refuses (``outbox_outside_transaction``):
    the message must commit or roll back with the change it announces.
    """
    if not connection.in_atomic_block:
        raise WorkbenchError(
            "outbox messages must be written inside the transaction of the change",
            "outbox_outside_transaction",
        )
    _validate(channel=channel, topic=topic, destination=destination, payload=payload, system=system)
    message = OutboxMessage.objects.create(
        channel=channel,
        topic=topic,
        destination=destination,
        payload=payload,
        system=system,
        next_attempt_at=timezone.now(),
    )
    _enqueue_delivery_on_commit(message.pk)
    return message


def webhook_enqueue(
    *, system: AISystem, topic: str, payload: dict[str, Any]
) -> OutboxMessage | None:
    """Queue a webhook to ``system``'s callback URL, in the caller's transaction.

    A system without a callback URL has asked for no webhooks, and one that
    did not subscribe to an optional topic (``AISystem.webhook_topics``) for
    none of that topic: nothing is recorded and this returns None. The body
    is signed at delivery time with the system's secrets as they are then,
    so that a rotated secret applies to retries too.
    """
    if not webhook_wanted(system, topic):
        return None
    return outbox_enqueue(
        channel=OutboxMessage.Channel.WEBHOOK,
        topic=topic,
        destination=system.callback_url,
        payload=payload,
        system=system,
    )


def webhook_enqueue_many(
    *, system: AISystem, topic: str, payloads: list[dict[str, Any]]
) -> list[OutboxMessage]:
    """Queue one webhook of ``topic`` per payload to ``system``, in the caller's
    transaction, with one INSERT and one task enqueued after the commit (a
    batch of intake, the deadline sweep): never a query per message. Nothing
    when the system does not want the topic (see ``webhook_enqueue``)."""
    if not payloads or not webhook_wanted(system, topic):
        return []
    if not connection.in_atomic_block:
        raise WorkbenchError(
            "outbox messages must be written inside the transaction of the change",
            "outbox_outside_transaction",
        )
    now = timezone.now()
    messages = []
    for payload in payloads:
        _validate(
            channel=OutboxMessage.Channel.WEBHOOK,
            topic=topic,
            destination=system.callback_url,
            payload=payload,
            system=system,
        )
        messages.append(
            OutboxMessage(
                channel=OutboxMessage.Channel.WEBHOOK,
                topic=topic,
                destination=system.callback_url,
                payload=payload,
                system=system,
                next_attempt_at=now,
            )
        )
    messages = OutboxMessage.objects.bulk_create(messages, batch_size=500)
    ids = [message.pk for message in messages]

    def enqueue_fan_out() -> None:
        from workbench.tasks import outbox_deliver_many  # the task module imports this one

        outbox_deliver_many.apply_async((ids,))

    # Robust, as for one message: the sweep catches up if the broker is down.
    transaction.on_commit(enqueue_fan_out, robust=True)
    return messages


def outbox_fan_out(*, message_ids: list[int]) -> int:
    """Enqueue one delivery task per message (in a worker, so that a batch's
    request pushed one task to the broker, not one per message)."""
    for message_id in message_ids:
        _enqueue_delivery(message_id)
    return len(message_ids)


def _enqueue_delivery_on_commit(message_id: int) -> None:
    # Robust: the change has committed by then; a broker that is down must not
    # turn that into an error for the caller. The sweep sends the message later.
    # A named function, not a functools.partial: Django logs a failed robust
    # callback by its __qualname__, and a partial has none (the AttributeError
    # would reach the caller after all).
    def enqueue_delivery() -> None:
        _enqueue_delivery(message_id)

    transaction.on_commit(enqueue_delivery, robust=True)


def _enqueue_delivery(message_id: int, **options) -> None:
    from workbench.tasks import outbox_deliver  # the task module imports this one

    outbox_deliver.apply_async((message_id,), **options)


def outbox_deliver(*, message_id: int) -> OutboxMessage:
    """Try to deliver one message if it is pending and due; record the attempt.

    Three steps, so that no row lock is held while a slow receiver is waited
    for (up to the timeout, per try, for every message in flight):

    1. claim, in a short transaction: lock the row (SKIP LOCKED: a worker that
       finds it locked leaves it to the other), check that it is still pending
       and due, count the attempt and push ``next_attempt_at`` out by
       ``CLAIM_LEASE``, which keeps every other worker and the sweep away from
       it while this one sends; and write the attempt row, marked in flight;
    2. send, outside any transaction;
    3. record, in another short transaction: the attempt's result, and the
       message's new state (sent, next try, or failed).

    A worker killed between 1 and 3 leaves the message pending and its
    attempt "in flight": when the lease runs out the sweep enqueues it again,
    the next claim marks the old attempt abandoned, and it is sent again with
    the same delivery id. Whether the first one arrived cannot be known from
    here; the receiver can tell, which is what the stable id is for.
    """
    claimed = _claim(message_id)
    if claimed is None:
        message = OutboxMessage.objects.filter(pk=message_id).first()
        if message is None:
            raise NotFound(f"no outbox message {message_id}", "outbox_message_not_found")
        return message  # not due, not pending, or another worker has it
    message, attempt = claimed
    if message.channel == OutboxMessage.Channel.WEBHOOK:
        result = webhook_send(message)
    else:
        result = email_send(message)
    return _record(message_id=message_id, attempt=attempt, number=message.attempts, result=result)


def _claim(message_id: int) -> tuple[OutboxMessage, DeliveryAttempt] | None:
    with transaction.atomic():
        # On SQLite select_for_update is a no-op; the IMMEDIATE transaction
        # holds the database's write lock instead (settings.base).
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True).filter(pk=message_id).first()
        )
        now = timezone.now()
        if (
            message is None
            or message.status != OutboxMessage.Status.PENDING
            or message.next_attempt_at > now
        ):
            return None
        # The lease of an earlier claim ran out without a result: its worker died.
        message.tries.filter(error=IN_FLIGHT).update(error=ABANDONED)
        message.attempts += 1
        message.next_attempt_at = now + CLAIM_LEASE
        message.save(update_fields=["attempts", "next_attempt_at"])
        attempt = DeliveryAttempt.objects.create(message=message, error=IN_FLIGHT, seconds=0)
    return message, attempt


def _record(
    *,
    message_id: int,
    attempt: DeliveryAttempt,
    number: int,
    result: SendResult,
    retry: bool = True,
) -> OutboxMessage:
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().get(pk=message_id)
        DeliveryAttempt.objects.filter(pk=attempt.pk).update(
            status_code=result.status_code,
            error=result.error,
            seconds=result.seconds,
            response_excerpt=result.excerpt,
        )
        now = timezone.now()
        if result.ok:
            # Delivered is delivered, even if this worker outlived its lease.
            if message.status != OutboxMessage.Status.SENT:
                message.status = OutboxMessage.Status.SENT
                message.sent_at = now
                message.last_error = ""
        elif message.status == OutboxMessage.Status.PENDING and message.attempts == number:
            # Only the latest claim schedules: a worker that outlived its lease
            # must not move a newer claim's next try.
            message.last_error = result.error
            if not retry or now - message.created_at >= RETRY_WINDOW:
                message.status = OutboxMessage.Status.FAILED
            else:
                message.next_attempt_at = now + _jittered(outbox_backoff(message.attempts))
        message.save(update_fields=["status", "sent_at", "last_error", "next_attempt_at"])
    return message


def _jittered(delay: timedelta) -> timedelta:
    return delay * random.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)


def outbox_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of pending messages whose next try is due, the longest waiting first."""
    return list(
        OutboxMessage.objects.filter(
            status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now or timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def outbox_sweep(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Enqueue delivery of every due message (beat, every 30 s): the retry
    schedule, and the catch-up for a message whose task was lost. Returns
    the ids enqueued."""
    ids = outbox_due(now=now, limit=limit)
    for message_id in ids:
        # A task still queued after the next sweep is redundant: let it expire
        # rather than pile up behind a slow receiver.
        _enqueue_delivery(message_id, expires=60)
    return ids


@transaction.atomic
def outbox_retry(*, message_ids: list[int]) -> list[int]:
    """Make pending or failed messages due now and enqueue their delivery
    (the admin's "Retry now"). A failed message gets one more try; if that
    fails it is failed again. Sent messages, and messages a worker is sending
    right now, are left alone. Returns the ids scheduled."""
    now = timezone.now()
    scheduled = []
    messages = OutboxMessage.objects.select_for_update().filter(
        pk__in=message_ids,
        status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.FAILED],
    )
    for message in messages.order_by("pk"):
        in_flight = message.tries.filter(error=IN_FLIGHT).exists()
        if in_flight and message.next_attempt_at > now:
            continue  # within its lease: making it due could send it twice at once
        message.status = OutboxMessage.Status.PENDING
        message.next_attempt_at = now
        message.save(update_fields=["status", "next_attempt_at"])
        _enqueue_delivery_on_commit(message.pk)
        scheduled.append(message.pk)
    return scheduled


@dataclass(frozen=True)
class WebhookTestResult:
    message: OutboxMessage
    attempt: DeliveryAttempt

    @property
    def ok(self) -> bool:
        return self.message.status == OutboxMessage.Status.SENT


def webhook_test_send(*, system: AISystem) -> WebhookTestResult:
    """Send a signed ``webhook.test`` delivery to ``system``'s callback URL now,
    in this process, and return the receiver's answer (the admin's "Send
    test delivery"). It goes through the outbox like any webhook, so the
    attempt is recorded, but it is tried once: a test is not retried."""
    system = AISystem.objects.get(pk=system.pk)
    if not system.callback_url:
        raise Invalid("this AI system has no callback URL to send to", "no_callback_url")
    now = timezone.now()
    payload = {
        "test": True,
        "system": system.slug,
        "sent_at": now.isoformat(),
        "message": "A test delivery from Workbench; no case changed.",
    }
    _validate(
        channel=OutboxMessage.Channel.WEBHOOK,
        topic=TEST_TOPIC,
        destination=system.callback_url,
        payload=payload,
        system=system,
    )
    # Created already claimed, in one transaction: neither a worker nor the
    # sweep takes it while it is being sent from here.
    with transaction.atomic():
        message = OutboxMessage.objects.create(
            channel=OutboxMessage.Channel.WEBHOOK,
            topic=TEST_TOPIC,
            destination=system.callback_url,
            payload=payload,
            system=system,
            attempts=1,
            next_attempt_at=now + CLAIM_LEASE,
        )
        attempt = DeliveryAttempt.objects.create(message=message, error=IN_FLIGHT, seconds=0)
    result = webhook_send(message)
    message = _record(message_id=message.pk, attempt=attempt, number=1, result=result, retry=False)
    attempt.refresh_from_db()
    return WebhookTestResult(message=message, attempt=attempt)


ERASED = "not sent: the recipient's personal data was erased"


@transaction.atomic
def outbox_erase(*, about: str, destination: str | None = None) -> int:
    """Forget the emails to a person whose data is erased (DESIGN §7): those
    whose payload says ``"about": about`` and any sent to ``destination``.
    Their address, subject line and body go, and the errors of their tries
    (which may name the address); a message not sent yet never will be.
    Returns how many messages were emptied."""
    emails = OutboxMessage.objects.filter(channel=OutboxMessage.Channel.EMAIL)
    wanted = Q(payload__about=about)
    if destination:
        wanted |= Q(destination=destination)
    ids = list(emails.filter(wanted).values_list("pk", flat=True))
    if not ids:
        return 0
    DeliveryAttempt.objects.filter(message_id__in=ids).exclude(error="").update(error=ERASED)
    OutboxMessage.objects.filter(pk__in=ids, status=OutboxMessage.Status.PENDING).update(
        status=OutboxMessage.Status.FAILED, last_error=ERASED
    )
    OutboxMessage.objects.filter(pk__in=ids).exclude(last_error="").update(last_error=ERASED)
    OutboxMessage.objects.filter(pk__in=ids).update(destination="", payload={"erased": True})
    return len(ids)
