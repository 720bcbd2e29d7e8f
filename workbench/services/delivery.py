"""Sending one outbox message, once: a signed webhook POST to a public
address checked again at every try (``workbench.services.webhooks``), or an
email. The outbox (``workbench.services.outbox``) decides when, and records
what came of it."""

import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from workbench.models import AISystem, OutboxMessage
from workbench.services.webhooks import (
    CallbackRefused,
    PublicOnlyAdapter,
    callback_url_problem,
    webhook_body,
    webhook_headers,
)

WEBHOOK_TIMEOUT = 10  # seconds, to connect and between bytes of the answer
ERROR_CHARS = 500
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class SendResult:
    """What one try of one message came to."""

    ok: bool
    status_code: int | None
    error: str
    seconds: float
    excerpt: str = ""


def secrets_honoured(system: AISystem, now: datetime) -> list[str]:
    """The current secret, then the rotated one while its grace period lasts."""
    honoured = [system.callback_secret]
    if (
        system.previous_callback_secret
        and system.previous_secret_until is not None
        and system.previous_secret_until > now
    ):
        honoured.append(system.previous_callback_secret)
    return honoured


def webhook_send(message: OutboxMessage) -> SendResult:
    """POST the signed webhook to its destination, checked again first; never raises."""
    started = time.monotonic()
    # Checked again at every try: the name may resolve elsewhere by now, or
    # the setting may have changed. A refused destination is not sent to.
    problem = callback_url_problem(message.destination)
    if problem:
        return SendResult(
            ok=False,
            status_code=None,
            error=f"not sent: {problem[1]}"[:ERROR_CHARS],
            seconds=time.monotonic() - started,
        )
    body = webhook_body(message.payload)
    now = timezone.now()
    system = message.system
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Workbench-Webhooks/1",
        **webhook_headers(
            secrets_honoured=secrets_honoured(system, now),
            message_id=str(message.delivery_id),
            timestamp=int(now.timestamp()),
            body=body,
        ),
        "X-Workbench-Delivery": str(message.delivery_id),
        "X-Workbench-Topic": message.topic,
        "X-Workbench-Attempt": str(message.attempts),
    }
    try:
        with requests.Session() as session:
            # No proxies, .netrc credentials or CA bundles from the environment:
            # the body goes only where configured, to a peer checked on connect.
            session.trust_env = False
            session.mount("http://", PublicOnlyAdapter())
            session.mount("https://", PublicOnlyAdapter())
            # No redirects: a 3xx is a failure, the body goes only where configured.
            with session.post(
                message.destination,
                data=body,
                headers=headers,
                timeout=WEBHOOK_TIMEOUT,
                allow_redirects=False,
                stream=True,
            ) as response:
                # Read at most a little of the answer, for the record.
                answer = response.raw.read(ERROR_CHARS, decode_content=True) or b""
    except CallbackRefused as exc:
        return SendResult(
            ok=False,
            status_code=None,
            error=f"not sent: {exc}"[:ERROR_CHARS],
            seconds=time.monotonic() - started,
        )
    except (requests.RequestException, OSError) as exc:
        return SendResult(
            ok=False,
            status_code=None,
            error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS],
            seconds=time.monotonic() - started,
        )
    seconds = time.monotonic() - started
    text = answer.decode("utf-8", "replace").strip()
    excerpt = text[:EXCERPT_CHARS]
    if 200 <= response.status_code < 300:
        return SendResult(
            ok=True, status_code=response.status_code, error="", seconds=seconds, excerpt=excerpt
        )
    return SendResult(
        ok=False,
        status_code=response.status_code,
        error=f"HTTP {response.status_code}: {text}"[:ERROR_CHARS],
        seconds=seconds,
        excerpt=excerpt,
    )


def email_send(message: OutboxMessage) -> SendResult:
    """Send the email through Django's mail backend; a mail error is a result."""
    # A Message-ID made from the delivery id: a resent email is recognisable
    # as the same one, as a webhook is by its header.
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "workbench"
    email = EmailMessage(
        subject=message.payload["subject"],
        body=message.payload["body"],
        to=[message.destination],
        headers={
            "Message-ID": f"<{message.delivery_id}@{domain}>",
            "X-Workbench-Delivery": str(message.delivery_id),
            "X-Workbench-Topic": message.topic,
        },
    )
    started = time.monotonic()
    try:
        email.send()
    except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors
        return SendResult(
            ok=False,
            status_code=None,
            error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS],
            seconds=time.monotonic() - started,
        )
    return SendResult(ok=True, status_code=None, error="", seconds=time.monotonic() - started)
