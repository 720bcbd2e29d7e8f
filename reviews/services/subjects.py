"""Subjects' contact details, sealed with a key of their own (DESIGN §7)."""

import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reviews.models import Subject


def contact_seal(subject: Subject, contact: dict) -> None:
    """Encrypt ``contact`` (name, email) into the subject, making its key if needed."""
    if subject.key is None:
        subject.key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    plaintext = json.dumps(contact, sort_keys=True).encode()
    aad = f"subject:{subject.system_id}:{subject.reference}".encode()
    subject.contact = nonce + AESGCM(bytes(subject.key)).encrypt(nonce, plaintext, aad)


def contact_open(subject: Subject) -> dict | None:
    """The subject's contact details, or None when there are none or they were erased."""
    if subject.key is None or subject.contact is None:
        return None
    blob = bytes(subject.contact)
    aad = f"subject:{subject.system_id}:{subject.reference}".encode()
    return json.loads(AESGCM(bytes(subject.key)).decrypt(blob[:12], blob[12:], aad))
