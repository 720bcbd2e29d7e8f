"""Evidence files a customer sends with an appeal.

A file's type is what its content is, found by its magic bytes (``filetype``),
never what its name or the browser claims; the name's extension must agree
with the content, so that a script renamed ``.pdf`` is refused. Files are
encrypted with the subject's key and kept in the ``evidence`` storage, outside
the web root, under a random name.
"""

import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass

import filetype
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _

from escalations.models import Appeal, Evidence
from reviews.models import Subject
from reviews.services.subjects import subject_open, subject_seal
from workbench.errors import Invalid

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILES = 5
# What a customer may send, by the type found in the content: the
# extensions a file of that type may carry.
ACCEPTED = {
    "application/pdf": {"pdf"},
    "image/jpeg": {"jpg", "jpeg"},
    "image/png": {"png"},
}


@dataclass(frozen=True)
class CheckedFile:
    name: str
    content_type: str
    content: bytes
    sha256: str


def evidence_check(files: list[UploadedFile]) -> list[CheckedFile]:
    """Read and check the uploaded files; ``Invalid`` names every bad one, in
    the customer's language (the notice page activates it)."""
    problems = []
    if len(files) > MAX_FILES:
        problems.append(
            {
                "path": "evidence",
                "message": _("Send at most %(count)s files with one appeal.")
                % {"count": MAX_FILES},
            }
        )
        files = files[:MAX_FILES]
    checked = []
    for upload in files:
        name = clean_file_name(upload.name or "")
        problem = None
        if upload.size is None or upload.size > MAX_FILE_BYTES:
            problem = _("%(name)s is larger than %(mb)s MB.") % {
                "name": name,
                "mb": MAX_FILE_BYTES // (1024 * 1024),
            }
        elif upload.size == 0:
            problem = _("%(name)s is empty.") % {"name": name}
        else:
            content = upload.read(MAX_FILE_BYTES + 1)
            found = filetype.guess(content)
            extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            if found is None or found.mime not in ACCEPTED:
                problem = _("%(name)s is not a PDF, JPEG or PNG file.") % {"name": name}
            elif extension not in ACCEPTED[found.mime]:
                problem = _("%(name)s: its content is %(type)s, which does not match its name.") % {
                    "name": name,
                    "type": found.extension.upper(),
                }
            else:
                checked.append(
                    CheckedFile(name, found.mime, content, hashlib.sha256(content).hexdigest())
                )
        if problem:
            problems.append({"path": "evidence", "message": problem})
    if problems:
        raise Invalid("the evidence cannot be accepted", "bad_evidence", fields=problems)
    return checked


def clean_file_name(name: str) -> str:
    """A file name safe to show and to send back in a header: no directories,
    no control or unusual characters, at most 100 characters."""
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\- ()]+", "_", name).strip(" .") or "file"
    if len(name) > 100:
        stem, dot, extension = name.rpartition(".")
        name = (stem[: 99 - len(extension)] + dot + extension) if dot else name[:100]
    return name


def evidence_store(*, subject: Subject, appeal: Appeal, file: CheckedFile) -> Evidence:
    """Encrypt and keep one checked file; the caller's transaction records it."""
    sealed = subject_seal(subject, file.content, purpose=_purpose(appeal, file.sha256))
    stored_as = storages["evidence"].save(f"{uuid.uuid4().hex}.bin", ContentFile(sealed))
    return Evidence.objects.create(
        appeal=appeal,
        name=file.name,
        content_type=file.content_type,
        size=len(file.content),
        sha256=file.sha256,
        stored_as=stored_as,
    )


def evidence_read(evidence: Evidence) -> bytes | None:
    """The file's content, or None once the subject's data was erased."""
    if not evidence.stored_as:
        return None
    subject = evidence.appeal.case.subject
    with storages["evidence"].open(evidence.stored_as) as handle:
        sealed = handle.read()
    return subject_open(subject, sealed, purpose=_purpose(evidence.appeal, evidence.sha256))


def evidence_discard(stored_as: list[str]) -> None:
    """Delete stored files (erasure, or an appeal whose transaction failed)."""
    storage = storages["evidence"]
    for name in stored_as:
        if name:
            storage.delete(name)


def _purpose(appeal: Appeal, sha256: str) -> str:
    return f"evidence:{appeal.case.reference}:{appeal.number}:{sha256}"
