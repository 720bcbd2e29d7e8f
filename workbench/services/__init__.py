from .systems import (
    AuthenticationFailed,
    IssuedKey,
    ai_system_create,
    ai_system_set_stopped,
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
)
from .trail import (
    Actor,
    TrailEntry,
    TrailVerification,
    trail_append,
    trail_append_many,
    trail_checkpoint,
    trail_lock,
    trail_public_key_pem,
    trail_verify,
)
from .users import user_create

__all__ = [
    "Actor",
    "AuthenticationFailed",
    "IssuedKey",
    "TrailEntry",
    "TrailVerification",
    "ai_system_create",
    "ai_system_set_stopped",
    "api_key_authenticate",
    "api_key_create",
    "api_key_revoke",
    "trail_append",
    "trail_append_many",
    "trail_checkpoint",
    "trail_lock",
    "trail_public_key_pem",
    "trail_verify",
    "user_create",
]
