"""Subjects' personal data, sealed with a key of their own (DESIGN §7).

Contact details, and what the customer writes or sends (their chat turns, a
contest reason, an appeal's statement and evidence, feedback), are encrypted
with AES-GCM under the subject's key.
Erasure destroys the key: every sealed value becomes unreadable at once,
wherever it is kept, while the trail (which holds digests only) still verifies.
"""

import hashlib
import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reviews.models import Subject, SubjectText


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
        subject.key = subject_key_new()
    nonce = os.urandom(12)
    return nonce + AESGCM(bytes(subject.key)).encrypt(nonce, data, _aad(subject, purpose))


def subject_open(subject: Subject, blob: bytes | None, *, purpose: str) -> bytes | None:
    """The plaintext of ``blob``, or None when there is none or it was erased."""
    if subject.key is None or blob is None:
        return None
    blob = bytes(blob)
    return AESGCM(bytes(subject.key)).decrypt(blob[:12], blob[12:], _aad(subject, purpose))


def subject_key_new() -> bytes:
    """A new subject key: 256 random bits for AES-GCM."""
    return AESGCM.generate_key(bit_length=256)


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


def subject_key_ensure(subject: Subject) -> None:
    """Give ``subject`` (a saved row) a key if it has none, without ever
    replacing one that another writer has just made: the key is set only
    where the row still has none, then read back. Raises ``SubjectErased``
    for an erased subject."""
    if subject.erased_at is not None:
        raise SubjectErased(subject.reference)
    if subject.key is not None:
        return
    Subject.objects.filter(pk=subject.pk, key__isnull=True, erased_at__isnull=True).update(
        key=subject_key_new()
    )
    key, erased_at = Subject.objects.values_list("key", "erased_at").get(pk=subject.pk)
    if erased_at is not None or key is None:
        raise SubjectErased(subject.reference)
    subject.key = key


# --- What the customer wrote --------------------------------------------------------------
# Everything a customer writes is kept this way (DESIGN §7): chat turns, contest
# reasons, feedback. A new kind of customer text is a new SubjectText.Kind.


def subject_text_seal(*, subject: Subject, kind: str, value: str | dict, case=None) -> SubjectText:
    """A new, unsaved ``SubjectText`` holding ``value`` (text, or for a
    conversation ``{turn index: text}``) sealed with the subject's key and
    bound to the new row's id and kind, with its SHA-256 (of the text itself,
    or of the JSON of a mapping: the digest the trail may hold). The subject
    must have a key (``subject_key_ensure``, or ``subject_seal`` for a new one)."""
    if subject.key is None:
        raise ValueError("the subject has no key yet: subject_key_ensure() first")
    plaintext = (value if isinstance(value, str) else _canonical(value)).encode()
    text = SubjectText(subject=subject, case=case, kind=kind)
    text.sha256 = hashlib.sha256(plaintext).hexdigest()
    text.sealed = subject_seal(subject, plaintext, purpose=_text_purpose(text))
    return text


def subject_text_open(text: SubjectText, *, subject: Subject | None = None) -> str | dict | None:
    """What the customer wrote, or None once it was erased."""
    subject = subject or text.subject
    plaintext = subject_open(subject, text.sealed, purpose=_text_purpose(text))
    if plaintext is None:
        return None
    decoded = plaintext.decode()
    return decoded if text.kind != SubjectText.Kind.CONVERSATION else json.loads(decoded)


def _text_purpose(text: SubjectText) -> str:
    return f"text:{text.kind}:{text.pk}"


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def conversation_split(case_input) -> tuple[object, dict[str, str]]:
    """``case_input`` without the text of its customer turns, and those
    texts by turn index (as text keys). Any kind of case may carry a
    conversation (``input.conversation``, a list of turns); turns of other
    roles (the AI's, an agent's) stay as they are."""
    conversation = case_input.get("conversation") if isinstance(case_input, dict) else None
    if not isinstance(conversation, list):
        return case_input, {}
    words, turns = {}, []
    for index, turn in enumerate(conversation):
        if isinstance(turn, dict) and turn.get("role") == "customer" and "text" in turn:
            words[str(index)] = turn["text"]
            turn = {key: value for key, value in turn.items() if key != "text"}
        turns.append(turn)
    if not words:
        return case_input, {}
    return {**case_input, "conversation": turns}, words
