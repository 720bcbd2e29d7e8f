"""AI systems and their API keys (DESIGN §5a)."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from workbench.errors import Conflict, Invalid, NotFound, WorkbenchError
from workbench.models import AISystem, APIKey, SystemSwitch
from workbench.services.trail import Actor, format_at, trail_append
from workbench.services.webhooks import (
    callback_url_check,
    webhook_secret_check,
    webhook_secret_new,
    webhook_topics_check,
)


class AuthenticationFailed(WorkbenchError):
    code = "unauthenticated"
    status = 401


@dataclass(frozen=True)
class IssuedKey:
    key: APIKey
    plaintext: str  # shown once, never stored


KEY_PREFIX = re.compile(r"[0-9a-f]{12}")  # secrets.token_hex(6), as api_key_create makes it


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def ai_system_create(
    *,
    slug: str,
    name: str,
    kind: str,
    actor: Actor,
    callback_url: str = "",
    callback_secret: str = "",
    intended_purpose: str = "",
    webhook_topics: list[str] | None = None,
) -> AISystem:
    """Create an AI system. Without ``callback_secret`` one is made
    (``whsec_<base64 of 32 random bytes>``); ``webhook_topics`` are the
    optional topics it wants (none by default)."""
    if kind not in AISystem.Kind.values:
        raise Invalid(
            f"unknown kind {kind!r}; use one of {', '.join(AISystem.Kind.values)}", "bad_kind"
        )
    if AISystem.objects.filter(slug=slug).exists():
        raise Conflict(f"an AI system {slug!r} exists already", "system_exists")
    callback_url_check(callback_url)
    if callback_secret:
        webhook_secret_check(callback_secret)
    topics = webhook_topics_check(webhook_topics or [])
    system = AISystem.objects.create(
        slug=slug,
        name=name,
        kind=kind,
        intended_purpose=intended_purpose,
        callback_url=callback_url,
        callback_secret=callback_secret or webhook_secret_new(),
        webhook_topics=topics,
    )
    data = {"name": name, "kind": kind, "callback_url": callback_url}
    if topics:
        data["webhook_topics"] = topics
    trail_append(action="system.created", actor=actor, system=slug, data=data)
    return system


# What ai_system_update may change; the secret has its own service (rotation).
EDITABLE = ("name", "intended_purpose", "callback_url", "webhook_topics")


@transaction.atomic
def ai_system_update(
    *,
    system: AISystem,
    actor: Actor,
    name: str | None = None,
    intended_purpose: str | None = None,
    callback_url: str | None = None,
    webhook_topics: list[str] | None = None,
) -> AISystem:
    """Change an AI system's name, intended purpose, callback URL or webhook
    topics (None leaves a field as it is). One ``system.changed`` event names
    the fields changed and their new values (the purpose by its digest);
    nothing changed, no event."""
    given = {
        "name": name,
        "intended_purpose": intended_purpose,
        "callback_url": callback_url,
        "webhook_topics": webhook_topics,
    }
    given = {field: value for field, value in given.items() if value is not None}
    if "name" in given:
        given["name"] = given["name"].strip()
        if not given["name"] or len(given["name"]) > 200:
            raise Invalid(
                "the name is 1 to 200 characters",
                "bad_name",
                fields=[{"path": "name", "message": "1 to 200 characters"}],
            )
    if "callback_url" in given:
        given["callback_url"] = given["callback_url"].strip()
        callback_url_check(given["callback_url"])
    if "webhook_topics" in given:
        given["webhook_topics"] = webhook_topics_check(given["webhook_topics"])
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    changed = sorted(field for field, value in given.items() if getattr(system, field) != value)
    if not changed:
        return system
    data: dict = {"changed": changed}
    for field in changed:
        setattr(system, field, given[field])
        if field == "intended_purpose":
            data["intended_purpose_sha256"] = hashlib.sha256(
                system.intended_purpose.encode()
            ).hexdigest()
        else:
            data[field] = given[field]
    system.save(update_fields=changed)
    trail_append(action="system.changed", actor=actor, system=system.slug, data=data)
    return system


@dataclass(frozen=True)
class RotatedSecret:
    system: AISystem
    secret: str  # shown once, to whoever rotated it
    previous_until: datetime | None  # the old secret signs too until then


@transaction.atomic
def ai_system_secret_rotate(*, system: AISystem, actor: Actor) -> RotatedSecret:
    """Give ``system`` a new callback secret. The one it replaces still signs
    ``webhook-signature`` (beside the new one) for ``WEBHOOK_SECRET_GRACE_HOURS``,
    so that receivers can switch without losing a delivery; a secret rotated
    out before that is dropped at once. The trail records the rotation and
    the end of the grace period, never a secret."""
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    grace = timedelta(hours=settings.WEBHOOK_SECRET_GRACE_HOURS)
    secret = webhook_secret_new()
    if system.callback_secret and grace > timedelta(0):
        system.previous_callback_secret = system.callback_secret
        system.previous_secret_until = timezone.now() + grace
    else:
        system.previous_callback_secret = ""
        system.previous_secret_until = None
    system.callback_secret = secret
    system.save(
        update_fields=["callback_secret", "previous_callback_secret", "previous_secret_until"]
    )
    until = system.previous_secret_until
    trail_append(
        action="system.secret_rotated",
        actor=actor,
        system=system.slug,
        data={"previous_honoured_until": format_at(until) if until else None},
    )
    return RotatedSecret(system=system, secret=secret, previous_until=until)


@transaction.atomic
def api_key_create(
    *,
    system: AISystem,
    actor: Actor,
    scope: str = APIKey.Scope.INGEST,
    only_system: bool = False,
) -> IssuedKey:
    """Issue a key for ``system``. The plaintext is returned once and never
    stored. A compliance key reads the whole chain unless ``only_system``
    limits it to the system's own events (DESIGN §5)."""
    if scope not in APIKey.Scope.values:
        raise Invalid(f"unknown scope {scope!r}; use ingest or compliance", "bad_scope")
    if only_system and scope != APIKey.Scope.COMPLIANCE:
        raise Invalid("only a compliance key can be limited to its system", "bad_scope")
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    key = APIKey.objects.create(
        system=system,
        prefix=prefix,
        secret_hash=_hash_secret(secret),
        scope=scope,
        only_system=only_system,
    )
    data = {"prefix": prefix, "scope": scope}
    if only_system:
        data["only_system"] = True
    trail_append(action="system.key_created", actor=actor, system=system.slug, data=data)
    return IssuedKey(key=key, plaintext=f"wb_{prefix}_{secret}")


@transaction.atomic
def api_key_revoke(*, key_id: int, actor: Actor) -> APIKey:
    key = APIKey.objects.select_for_update().select_related("system").filter(pk=key_id).first()
    if key is None:
        raise NotFound("no such API key")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        trail_append(
            action="system.key_revoked",
            actor=actor,
            system=key.system.slug,
            data={"prefix": key.prefix},
        )
    return key


def api_key_authenticate(*, plaintext: str, scope: str) -> APIKey:
    """The live key for ``plaintext`` with ``scope``, or ``AuthenticationFailed``."""
    try:
        marker, prefix, secret = plaintext.split("_", 2)
    except ValueError:
        raise AuthenticationFailed("malformed API key") from None
    if not KEY_PREFIX.fullmatch(prefix):
        # Not ours, and not to be looked up: PostgreSQL refuses a NUL in it.
        raise AuthenticationFailed("malformed API key")
    key = (
        APIKey.objects.select_related("system")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .first()
    )
    if (
        marker != "wb"
        or key is None
        or not hmac.compare_digest(key.secret_hash, _hash_secret(secret))
    ):
        raise AuthenticationFailed("unknown or revoked API key")
    if key.scope != scope:
        raise AuthenticationFailed(f"this API key has the {key.scope} scope, not {scope}")
    return key


@transaction.atomic
def ai_system_set_stopped(
    *, system: AISystem, stopped: bool, reason: str, actor: Actor
) -> AISystem:
    """The kill switch: a stopped system's outputs all go to a person.

    The reason is kept as written (``SystemSwitch``, and the system's latest
    ``switch_reason``) for supervisors and compliance to read; the trail
    event holds its digest. Switching to the state the system is in already
    changes nothing and records nothing."""
    reason = reason.strip()
    if not reason:
        raise Invalid("give a reason for stopping or restarting the system", "reason_required")
    if len(reason) > 2000:
        raise Invalid("the reason is longer than 2,000 characters", "reason_too_long")
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    if system.stopped != stopped:
        switch = SystemSwitch.objects.create(
            system=system,
            stopped=stopped,
            reason=reason,
            actor_type=actor.type,
            actor_id=actor.id,
        )
        system.stopped = stopped
        system.switched_at = switch.at
        system.switched_by = actor.id
        system.switch_reason = reason
        system.save(update_fields=["stopped", "switched_at", "switched_by", "switch_reason"])
        trail_append(
            action="system.stopped" if stopped else "system.restarted",
            actor=actor,
            system=system.slug,
            data={"reason_sha256": hashlib.sha256(reason.encode()).hexdigest()},
        )
    return system
