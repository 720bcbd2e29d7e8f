"""The checkpoint signing key and the keys checkpoints may be signed with."""

import hashlib
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from django.conf import settings

from workbench.errors import WorkbenchError


@lru_cache(maxsize=4)
def _load_signing_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise WorkbenchError("TRAIL_SIGNING_KEY is not an Ed25519 private key", "bad_signing_key")
    return key


def trail_signing_key() -> Ed25519PrivateKey:
    """The checkpoint key: ``TRAIL_SIGNING_KEY``, or in development a key file made once."""
    pem = settings.TRAIL_SIGNING_KEY
    if not pem:
        path = settings.TRAIL_SIGNING_KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            new = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            path.write_bytes(new)
            path.chmod(0o600)
        pem = path.read_text()
    return _load_signing_key(pem)


def trail_public_key() -> Ed25519PublicKey:
    return trail_signing_key().public_key()


def trail_public_key_pem() -> str:
    return (
        trail_public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def trail_key_id() -> str:
    """Names the key a checkpoint used (``key_id``)."""
    return key_id(trail_public_key())


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def trail_public_keys() -> dict[str, Ed25519PublicKey]:
    """The keys checkpoints may be signed with, by ``key_id``: the current
    one and the retired ones (``TRAIL_RETIRED_PUBLIC_KEY_FILES``)."""
    keys = {trail_key_id(): trail_public_key()}
    for path in settings.TRAIL_RETIRED_PUBLIC_KEY_FILES:
        try:
            key = serialization.load_pem_public_key(Path(path).read_bytes())
        except (OSError, ValueError) as error:
            raise WorkbenchError(
                f"TRAIL_RETIRED_PUBLIC_KEY_FILES: cannot load {path} ({error})", "bad_retired_key"
            ) from None
        if not isinstance(key, Ed25519PublicKey):
            raise WorkbenchError(
                f"TRAIL_RETIRED_PUBLIC_KEY_FILES: {path} is not an Ed25519 public key",
                "bad_retired_key",
            )
        keys.setdefault(key_id(key), key)
    return keys
