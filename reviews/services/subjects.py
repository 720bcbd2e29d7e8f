"""Subjects' personal data, sealed with a key of their own (DESIGN §7).

Contact details, and what the customer writes or sends (an appeal's
statement and evidence), are encrypted with AES-GCM under the subject's key.
Erasure destroys the key: every sealed value becomes unreadable at once,
wherever it is kept, while the trail (which holds digests only) still verifies.
"""

import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reviews.models import Subject


class SubjectErased(Exception):
    """The subject's key was destroyed: their data can no longer be read or added."""


def subject_seal(subject: Subject, data: bytes, *, purpose: str) -> bytes:
    """``data`` encrypted under the subject's key, bound to ``purpose`` (what
    it is, e.g. ``contact`` or ``appeal:WB-…:1``) so that one sealed value
    cannot be passed off as another. Makes the key if the subject has none;
    the caller saves the subject."""
    if subject.erased_at is not None:
        raise SubjectErased(subject.reference)
    if subject.key is None:
        subject.key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    return nonce + AESGCM(bytes(subject.key)).encrypt(nonce, data, _aad(subject, purpose))


def subject_open(subject: Subject, blob: bytes | None, *, purpose: str) -> bytes | None:
    """The plaintext of ``blob``, or None when there is none or it was erased."""
    if subject.key is None or blob is None:
        return None
    blob = bytes(blob)
    return AESGCM(bytes(subject.key)).decrypt(blob[:12], blob[12:], _aad(subject, purpose))


def _aad(subject: Subject, purpose: str) -> bytes:
    # Contact details were sealed before purposes existed: their binding stays.
    suffix = "" if purpose == "contact" else f":{purpose}"
    return f"subject:{subject.system_id}:{subject.reference}{suffix}".encode()


def contact_seal(subject: Subject, contact: dict) -> None:
    """Encrypt ``contact`` (name, email) into the subject, making its key if needed."""
    plaintext = json.dumps(contact, sort_keys=True).encode()
    subject.contact = subject_seal(subject, plaintext, purpose="contact")


def contact_open(subject: Subject) -> dict | None:
    """The subject's contact details, or None when there are none or they were erased."""
    plaintext = subject_open(subject, subject.contact, purpose="contact")
    return None if plaintext is None else json.loads(plaintext)
