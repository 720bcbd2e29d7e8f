"""Webhooks by the Standard Webhooks scheme, checked with the receiver's own
library (``standardwebhooks``); secrets, rotation, and where webhooks may go."""

import base64
import hashlib
import hmac
import logging
from datetime import timedelta

import pytest
import requests
import time_machine
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests import factories
from workbench.errors import Invalid
from workbench.models import AISystem, OutboxMessage
from workbench.services import (
    ai_system_create,
    ai_system_secret_rotate,
    ai_system_update,
    outbox_deliver,
    webhook_enqueue,
    webhook_test_send,
)
from workbench.services.webhooks import (
    CallbackRefused,
    PublicOnlyAdapter,
    address_problem,
    callback_url_check,
    callback_url_problem,
    standard_key,
    webhook_secret_check,
    webhook_secret_new,
)

PAYLOAD = {
    "reference": "WB-7KQ2-M9TX",
    "external_id": "CLM-2026-000123",
    "outcome": "approve",
    "decided_by": "human",
    "verdict": "override",
    "reasons": [{"code": "CO-50", "text": "Medically necessary after review: é ✓"}],
    "appeal": None,
}


@pytest.fixture
def hooked(system, receiver):
    system.callback_url = receiver.url
    system.save(update_fields=["callback_url"])
    return system


@pytest.fixture
def strict(settings):
    """Production's rule: https to public addresses only."""
    settings.WEBHOOK_ALLOW_PRIVATE = False
    return settings


def deliver(system, payload=PAYLOAD, topic="case.finalized") -> OutboxMessage:
    with transaction.atomic():
        message = webhook_enqueue(system=system, topic=topic, payload=payload)
    return outbox_deliver(message_id=message.pk)


# --- Secrets ------------------------------------------------------------------------------


def test_a_new_secret_is_whsec_and_32_random_bytes(db):
    secret = webhook_secret_new()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert secret != webhook_secret_new()
    system = ai_system_create(slug="bot", name="Bot", kind="generic", actor=factories.ACTOR)
    assert system.callback_secret.startswith("whsec_")


@pytest.mark.parametrize(
    "secret", ["", "   ", "whsec_not base64!", "whsec_", " padded ", "tab\there", "x" * 129]
)
def test_a_secret_that_cannot_sign_is_refused(secret):
    with pytest.raises(Invalid) as refused:
        webhook_secret_check(secret)
    assert refused.value.code == "bad_callback_secret"


def test_the_standard_key_is_the_decoded_whsec_part_else_the_utf8_bytes():
    raw = b"\x00\x01" * 16
    assert standard_key("whsec_" + base64.b64encode(raw).decode()) == raw
    assert standard_key("s3cret-é") == "s3cret-é".encode()


# --- Signatures, as a receiver checks them ----------------------------------------------------


def test_a_standard_webhooks_receiver_verifies_a_delivery(hooked, receiver):
    message = deliver(hooked)
    assert message.status == OutboxMessage.Status.SENT
    [request] = receiver.received

    # The receiver's library, given the secret exactly as create_ai_system printed it.
    assert Webhook(hooked.callback_secret).verify(request.body, request.headers) == PAYLOAD
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["webhook-id"] == str(message.delivery_id) == headers["x-workbench-delivery"]
    assert abs(int(headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
    assert len(headers["webhook-signature"].split(" ")) == 1
    # The contract's signature: hex HMAC of the body, keyed with the secret's UTF-8 bytes.
    expected = hmac.new(hooked.callback_secret.encode(), request.body, hashlib.sha256)
    assert headers["x-workbench-signature"] == "sha256=" + expected.hexdigest()


def test_the_receiver_refuses_a_replay_older_than_5_minutes(hooked, receiver):
    deliver(hooked)
    [request] = receiver.received
    receiving = Webhook(hooked.callback_secret)
    with time_machine.travel(timezone.now() + timedelta(minutes=4), tick=False):
        receiving.verify(request.body, request.headers)  # a late arrival: still fine
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=6), tick=False),
        pytest.raises(WebhookVerificationError, match="too old"),
    ):
        receiving.verify(request.body, request.headers)
    # A fresh timestamp or another id on the captured body: the signature no longer fits.
    for header, value in (
        ("webhook-timestamp", str(int(timezone.now().timestamp()) + 1)),
        ("webhook-id", "another-id"),
    ):
        forged = {**request.headers, header: value}
        with pytest.raises(WebhookVerificationError, match="No matching signature"):
            receiving.verify(request.body, forged)


def test_each_retry_is_signed_with_its_own_timestamp_and_the_same_id(hooked, receiver):
    receiver.status = 500
    message = deliver(hooked)
    receiver.status = 200
    with time_machine.travel(message.next_attempt_at + timedelta(seconds=1), tick=False):
        outbox_deliver(message_id=message.pk)
        first, second = receiver.received
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
        Webhook(hooked.callback_secret).verify(second.body, second.headers)


def test_a_secret_not_in_whsec_form_signs_with_its_utf8_bytes(system, receiver):
    system.callback_url = receiver.url
    system.callback_secret = "a-secret-of-my-own"
    system.save()
    deliver(system)
    [request] = receiver.received
    Webhook(b"a-secret-of-my-own").verify(request.body, request.headers)
    expected = hmac.new(b"a-secret-of-my-own", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Workbench-Signature"] == f"sha256={expected}"


def test_after_a_rotation_both_secrets_verify_until_the_grace_period_ends(
    hooked, receiver, settings
):
    settings.WEBHOOK_SECRET_GRACE_HOURS = 24
    old = hooked.callback_secret
    rotated = ai_system_secret_rotate(system=hooked, actor=factories.ACTOR)
    assert rotated.secret != old and rotated.secret.startswith("whsec_")
    assert rotated.previous_until == pytest.approx(
        timezone.now() + timedelta(hours=24), abs=timedelta(minutes=1)
    )

    deliver(hooked)
    request = receiver.received[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(request.body, request.headers)  # a receiver not switched yet
    Webhook(rotated.secret).verify(request.body, request.headers)  # one switched already
    # The contract's header: one signature, with the new secret.
    assert request.headers["X-Workbench-Signature"] == "sha256=" + (
        hmac.new(rotated.secret.encode(), request.body, hashlib.sha256).hexdigest()
    )

    with time_machine.travel(rotated.previous_until + timedelta(seconds=1), tick=False):
        deliver(hooked)
        request = receiver.received[-1]
        assert len(request.headers["webhook-signature"].split(" ")) == 1
        Webhook(rotated.secret).verify(request.body, request.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(request.body, request.headers)


def test_rotating_again_drops_the_secret_before_and_the_event_names_no_secret(hooked):
    first = ai_system_secret_rotate(system=hooked, actor=factories.ACTOR)
    second = ai_system_secret_rotate(system=hooked, actor=factories.ACTOR)
    hooked.refresh_from_db()
    assert (hooked.callback_secret, hooked.previous_callback_secret) == (
        second.secret,
        first.secret,
    )
    from workbench.models import TrailEvent

    events = TrailEvent.objects.filter(action="system.secret_rotated")
    assert events.count() == 2
    assert all(first.secret not in e.body and second.secret not in e.body for e in events)


# --- Where webhooks may go --------------------------------------------------------------------

REFUSED = [
    ("https://127.0.0.1/hook", "loopback"),
    ("https://10.1.2.3/hook", "private"),
    ("https://192.168.0.10/hook", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://[::1]:8443/hook", "loopback"),
    ("https://[fd12:3456::1]/hook", "private"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://[::ffff:10.0.0.1]/hook", "private"),
    ("https://224.0.0.1/hook", "multicast"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://240.0.0.1/hook", "reserved"),
    ("https://100.64.0.1/hook", "not a public address"),
    ("https://localhost:8443/hook", "loopback"),
]


@pytest.mark.parametrize(("url", "problem"), REFUSED)
def test_a_callback_url_to_a_private_address_is_refused_naming_the_problem(strict, url, problem):
    with pytest.raises(Invalid) as refused:
        callback_url_check(url)
    assert refused.value.code == "callback_url_private"
    assert problem in refused.value.message and "WEBHOOK_ALLOW_PRIVATE" in refused.value.message
    assert refused.value.fields[0]["path"] == "callback_url"


def test_a_name_that_resolves_to_loopback_is_named_with_its_address(strict):
    code, message = callback_url_problem("https://localhost/hook")
    assert code == "callback_url_private"
    assert "localhost resolves to" in message and "loopback" in message


def test_http_is_refused_and_a_public_https_address_is_fine(strict):
    with pytest.raises(Invalid) as refused:
        callback_url_check("http://93.184.215.14/hook")
    assert refused.value.code == "callback_url_not_https"
    callback_url_check("https://93.184.215.14/hook")  # a literal address: nothing resolved
    callback_url_check("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/hook")
    callback_url_check("")  # no webhooks at all


@pytest.mark.parametrize(
    "url", ["ftp://example.org/x", "not a url", "https://user:pw@example.org/hook"]
)
def test_a_malformed_callback_url_is_refused_whatever_the_setting(url):
    with pytest.raises(Invalid) as refused:
        callback_url_check(url)
    assert refused.value.code == "bad_callback_url"


def test_ipv4_in_ipv6_forms_are_judged_as_the_ipv4_address():
    import ipaddress

    for text in ("::ffff:127.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1"):
        assert address_problem(ipaddress.ip_address(text)), text
    assert address_problem(ipaddress.ip_address("::ffff:93.184.215.14")) is None


def test_the_private_rule_is_lifted_by_the_setting(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    callback_url_check("http://127.0.0.1:8000/hook")
    callback_url_check("http://localhost/hook")


def test_setting_a_private_callback_url_is_refused_by_the_service_and_nothing_changes(
    system, strict
):
    with pytest.raises(Invalid) as refused:
        ai_system_update(system=system, actor=factories.ACTOR, callback_url="https://10.0.0.5/hook")
    assert refused.value.code == "callback_url_private"
    assert AISystem.objects.get(pk=system.pk).callback_url == ""
    with pytest.raises(Invalid):
        ai_system_create(
            slug="other",
            name="Other",
            kind="generic",
            callback_url="https://[::1]/hook",
            actor=factories.ACTOR,
        )
    assert not AISystem.objects.filter(slug="other").exists()


@pytest.mark.parametrize(
    ("scheme", "why"), [("https", "127.0.0.1 is a loopback address"), ("http", "must use https")]
)
def test_a_delivery_to_a_private_address_is_not_sent_and_the_attempt_says_why(
    hooked, receiver, settings, scheme, why
):
    hooked.callback_url = receiver.url.replace("http:", f"{scheme}:")
    hooked.save(update_fields=["callback_url"])
    with transaction.atomic():
        message = webhook_enqueue(system=hooked, topic="case.finalized", payload=PAYLOAD)
    settings.WEBHOOK_ALLOW_PRIVATE = False  # e.g. a deployment that turned it off since
    message = outbox_deliver(message_id=message.pk)

    assert receiver.received == []
    [attempt] = message.tries.all()
    assert attempt.status_code is None
    assert attempt.error.startswith("not sent: ") and why in attempt.error
    assert message.status == OutboxMessage.Status.PENDING  # retried: the setting may change


def test_the_connection_itself_refuses_a_private_peer(receiver, settings):
    # What a name that resolves to a public address at the check and to a
    # private one at the connect (DNS rebinding) would meet.
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with requests.Session() as session:
        session.mount("http://", PublicOnlyAdapter())
        with pytest.raises(CallbackRefused, match="127.0.0.1, a loopback address"):
            session.post(receiver.url, data=b"{}", timeout=5)
    assert receiver.received == []


# --- A test delivery --------------------------------------------------------------------------


def test_a_test_delivery_is_sent_now_signed_and_recorded(hooked, receiver):
    result = webhook_test_send(system=hooked)
    assert result.ok
    assert (result.attempt.status_code, result.attempt.response_excerpt) == (200, "thanks")
    [request] = receiver.received
    assert request.headers["X-Workbench-Topic"] == "webhook.test"
    body = Webhook(hooked.callback_secret).verify(request.body, request.headers)
    assert body["test"] is True and body["system"] == hooked.slug
    assert result.message.topic == "webhook.test" and result.message.tries.count() == 1


def test_a_failed_test_delivery_shows_the_answer_and_is_not_retried(hooked, receiver):
    receiver.status = 503
    result = webhook_test_send(system=hooked)
    assert not result.ok
    assert result.attempt.status_code == 503
    assert result.attempt.response_excerpt == "receiver says no"
    assert result.message.status == OutboxMessage.Status.FAILED


def test_a_test_delivery_without_a_callback_url_is_refused(system):
    with pytest.raises(Invalid) as refused:
        webhook_test_send(system=system)
    assert refused.value.code == "no_callback_url"
    assert not OutboxMessage.objects.exists()


def test_no_secret_reaches_the_logs_of_a_delivery(hooked, receiver, caplog):
    with caplog.at_level(logging.DEBUG):
        deliver(hooked)
        webhook_test_send(system=hooked)
    assert hooked.callback_secret not in caplog.text
