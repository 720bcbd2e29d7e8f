"""Webhooks to AI systems: their secrets, signatures, topics and where they
may go (DESIGN §5; the outbox delivers them).

Signatures. Every delivery carries the contract's
``X-Workbench-Signature: sha256=<hex HMAC-SHA256 of the body>``, keyed with
the secret exactly as printed (its UTF-8 bytes), and the Standard Webhooks
headers (standardwebhooks.com): ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``,
keyed with the base64-decoded part of a ``whsec_`` secret (else the same
UTF-8 bytes), one ``v1,`` entry per secret honoured: after a rotation the
one it replaced signs too, until its grace period ends.

Destinations. A callback URL must be ``https`` and its host must resolve to
public addresses only, unless ``WEBHOOK_ALLOW_PRIVATE`` is on (the embedded
default, the demo and the tests). It is checked when the URL is set, again
before each delivery (the name may resolve elsewhere by then), and the
connection itself refuses a peer address that is not public, so a name that
changes its answer between the check and the connect gets nowhere.
"""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from workbench.errors import Invalid

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32

# Always sent: what the contract promises (a final outcome, an appeal's outcome)
# and the admin's test delivery.
ALWAYS_TOPICS = ("case.finalized", "case.appeal_decided", "webhook.test")
# Sent only to a system that asked for them (AISystem.webhook_topics).
OPTIONAL_TOPICS = (
    "case.routed",
    "case.escalated",
    "case.overdue",
    "case.contested",
    "appeal.filed",
)
TOPIC_DESCRIPTIONS = {
    "case.routed": "a case was received and routed: to a person, or finalized by the policy",
    "case.escalated": "a reviewer escalated a case, or two reviews disagreed",
    "case.overdue": "a task was not decided by its due time and went to the supervisors",
    "case.contested": "a case was contested and goes to a person",
    "appeal.filed": "the customer appealed the decision",
}


# --- Secrets -----------------------------------------------------------------------------


def webhook_secret_new() -> str:
    """A new callback secret, ``whsec_<base64 of 32 random bytes>``: the form
    Standard Webhooks libraries take as it is."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def webhook_secret_check(secret: str) -> None:
    """Refuse a secret that cannot sign: empty, too long, not printable, or a
    ``whsec_`` secret whose rest is not base64."""
    if not secret or not secret.strip():
        raise Invalid("the callback secret is empty", "bad_callback_secret")
    if len(secret) > 128:
        raise Invalid("the callback secret is longer than 128 characters", "bad_callback_secret")
    if not secret.isprintable() or secret != secret.strip():
        raise Invalid(
            "the callback secret holds spaces at its ends or characters that are not printable",
            "bad_callback_secret",
        )
    if secret.startswith(SECRET_PREFIX) and not _whsec_key(secret):
        raise Invalid(
            "a callback secret that starts with whsec_ must go on with base64 "
            "(e.g. whsec_ and 32 random bytes in base64)",
            "bad_callback_secret",
        )


def _whsec_key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return b""


def standard_key(secret: str) -> bytes:
    """The key of ``webhook-signature``: the base64-decoded part of a
    ``whsec_`` secret, else the secret's UTF-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        key = _whsec_key(secret)
        if key:
            return key
    return secret.encode()


def webhook_body(payload: dict) -> bytes:
    """The payload as sent and signed: one deterministic serialization, so
    that every retry carries the same bytes."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def webhook_signature(secret: str, body: bytes) -> str:
    """The ``X-Workbench-Signature`` value: ``sha256=<hex HMAC-SHA256 of body>``,
    keyed with the secret exactly as printed."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``webhook-signature`` entry: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(
    *, secrets_honoured: list[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The signature headers of one delivery. ``secrets_honoured`` is the
    current secret first, then any rotated one still in its grace period:
    each signs ``webhook-signature``; only the current one signs
    ``X-Workbench-Signature`` (the contract's single signature)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            standard_signature(secret, message_id=message_id, timestamp=timestamp, body=body)
            for secret in secrets_honoured
        ),
        "X-Workbench-Signature": webhook_signature(secrets_honoured[0], body),
    }


# --- Topics ------------------------------------------------------------------------------


def webhook_topics_check(topics) -> list[str]:
    """The optional topics asked for, in their canonical order; an unknown one
    is refused, naming it."""
    if not isinstance(topics, list | tuple | set) or not all(isinstance(t, str) for t in topics):
        raise Invalid("webhook topics are a list of topic names", "bad_webhook_topics")
    unknown = sorted(set(topics) - set(OPTIONAL_TOPICS))
    if unknown:
        raise Invalid(
            f"unknown webhook topic {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(OPTIONAL_TOPICS)}",
            "bad_webhook_topics",
        )
    return [topic for topic in OPTIONAL_TOPICS if topic in topics]


def webhook_wanted(system, topic: str) -> bool:
    """Whether ``system`` gets webhooks of ``topic`` (it has a callback URL and,
    for an optional topic, asked for it)."""
    if not system.callback_url:
        return False
    return topic not in OPTIONAL_TOPICS or topic in (system.webhook_topics or [])


# --- Destinations -------------------------------------------------------------------------


class CallbackRefused(Exception):
    """A delivery not sent: the destination is not allowed (the message says why)."""


def allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE", False))


def address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``address`` is not a public one a webhook may go to, or None."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address dressed as IPv6 is judged as the IPv4 address it is.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in ipaddress.IPv6Network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)  # NAT64
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} (as {address})" if problem else None
    for test, name in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    ):
        if getattr(address, test):
            return name
    if not address.is_global:
        return "not a public address"
    return None


def _host_addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise CallbackRefused(f"the callback host {host} does not resolve ({exc})") from None
    # An IPv6 scope ("fe80::1%eth0") is no part of the address.
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


def callback_url_problem(url: str, *, resolve: bool = True) -> tuple[str, str] | None:
    """``(code, message)`` saying why ``url`` may not receive webhooks, or None.

    With ``WEBHOOK_ALLOW_PRIVATE`` on, any http or https URL will do; off,
    it must be https and its host must resolve (``resolve``) to public
    addresses only: not loopback, private, link-local, unique-local,
    multicast, reserved, unspecified, nor an IPv4-mapped form of these."""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        return "bad_callback_url", f"not an http(s) URL: {url!r}"
    parts = urlsplit(url)
    if parts.username or parts.password:
        return "bad_callback_url", "a callback URL carries no user name or password"
    if allow_private():
        return None
    if parts.scheme != "https":
        return (
            "callback_url_not_https",
            f"the callback URL must use https, not {parts.scheme} (WEBHOOK_ALLOW_PRIVATE is off)",
        )
    host = parts.hostname or ""
    try:
        port = parts.port or 443
    except ValueError:
        return "bad_callback_url", f"not a valid port in {url!r}"
    if not resolve:
        return None
    try:
        addresses = _host_addresses(host, port)
    except CallbackRefused as exc:
        return "callback_url_unresolvable", str(exc)
    for address in addresses:
        problem = address_problem(address)
        if problem:
            shown = host if host == str(address) else f"{host} resolves to {address}, which"
            return (
                "callback_url_private",
                f"the callback URL's host {shown} is {problem}: webhooks go only to "
                "public addresses (WEBHOOK_ALLOW_PRIVATE is off)",
            )
    return None


def callback_url_check(url: str) -> None:
    """Refuse (``Invalid``, with the problem's code) a callback URL that may
    not receive webhooks; an empty one means no webhooks, and is fine."""
    if not url:
        return
    problem = callback_url_problem(url)
    if problem:
        code, message = problem
        raise Invalid(message, code, fields=[{"path": "callback_url", "message": message}])


# The connection's own check: the address it actually connected to. A name
# checked a moment ago may resolve elsewhere now (DNS rebinding).
class _PublicPeerMixin:
    def _new_conn(self):
        sock = super()._new_conn()
        if not allow_private():
            peer = ipaddress.ip_address(sock.getpeername()[0].split("%")[0])
            problem = address_problem(peer)
            if problem:
                sock.close()
                raise CallbackRefused(
                    f"refused to send: the callback host connected to {peer}, {problem}"
                )
        return sock


class _PublicHTTPConnection(_PublicPeerMixin, HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicPeerMixin, HTTPSConnection):
    pass


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """A requests adapter whose connections refuse a peer that is not public
    (unless ``WEBHOOK_ALLOW_PRIVATE``)."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PublicHTTPPool,
            "https": _PublicHTTPSPool,
        }
