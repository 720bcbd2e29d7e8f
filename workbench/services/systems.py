"""AI systems and their API keys (DESIGN §5a)."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from workbench.errors import Conflict, Invalid, NotFound, WorkbenchError
from workbench.models import AISystem, APIKey
from workbench.services.trail import Actor, trail_append


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
) -> AISystem:
    if kind not in AISystem.Kind.values:
        raise Invalid(
            f"unknown kind {kind!r}; use one of {', '.join(AISystem.Kind.values)}", "bad_kind"
        )
    if AISystem.objects.filter(slug=slug).exists():
        raise Conflict(f"an AI system {slug!r} exists already", "system_exists")
    system = AISystem.objects.create(
        slug=slug,
        name=name,
        kind=kind,
        intended_purpose=intended_purpose,
        callback_url=callback_url,
        callback_secret=callback_secret or secrets.token_urlsafe(32),
    )
    trail_append(
        action="system.created",
        actor=actor,
        system=slug,
        data={"name": name, "kind": kind, "callback_url": callback_url},
    )
    return system


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
    """The kill switch: a stopped system's outputs all go to a person."""
    if not reason.strip():
        raise Invalid("give a reason for stopping or restarting the system", "reason_required")
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    if system.stopped != stopped:
        system.stopped = stopped
        system.save(update_fields=["stopped"])
        trail_append(
            action="system.stopped" if stopped else "system.restarted",
            actor=actor,
            system=system.slug,
            data={"reason_sha256": hashlib.sha256(reason.encode()).hexdigest()},
        )
    return system
