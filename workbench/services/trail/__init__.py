"""The decision trail: one global, append-only, hash-chained log (DESIGN §6).

- ``append``: events recorded in the transaction of the change they record;
- ``sequencer``: pending events moved into the chain after their commit;
- ``verify``: the whole chain recomputed;
- ``checkpoints``: the head and the Merkle tree signed;
- ``keys``: the signing key and the keys checkpoints may carry.

Callers import from ``workbench.services`` (or this package), never a module.
"""

from .append import (
    GENESIS_HASH,
    Actor,
    PreparedEntry,
    TrailEntry,
    canonical_json,
    event_hash,
    format_at,
    trail_append,
    trail_append_many,
    trail_prepare,
)
from .checkpoints import checkpoint_message, trail_checkpoint, tree_message
from .keys import (
    key_id,
    trail_key_id,
    trail_public_key,
    trail_public_key_pem,
    trail_public_keys,
    trail_signing_key,
)
from .sequencer import (
    Integration,
    trail_integrate,
    trail_merge_delay,
    trail_sequencer_run,
)
from .verify import TrailVerification, trail_verify

__all__ = [
    "GENESIS_HASH",
    "Integration",
    "Actor",
    "PreparedEntry",
    "TrailEntry",
    "TrailVerification",
    "canonical_json",
    "checkpoint_message",
    "event_hash",
    "format_at",
    "key_id",
    "trail_append",
    "trail_append_many",
    "trail_checkpoint",
    "trail_integrate",
    "trail_key_id",
    "trail_merge_delay",
    "trail_prepare",
    "trail_public_key",
    "trail_public_key_pem",
    "trail_public_keys",
    "trail_sequencer_run",
    "trail_signing_key",
    "trail_verify",
    "tree_message",
]
