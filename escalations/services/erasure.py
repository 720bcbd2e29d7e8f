"""Erasure and legal holds (DESIGN §7).

Erasing a subject destroys their key: contact details, what they wrote (chat
turns, contest reasons, appeal statements, feedback) and evidence files, all
sealed with it, become unreadable at once; the sealed values are emptied too,
the files deleted, and every copy made for sending (the emails in the outbox,
with their delivery errors) or by their name (evidence file names) is cleared.
The trail holds only digests and pseudonymous references, so it still
verifies. What the AI system wrote about the case stays.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from escalations.models import Appeal, Evidence, LegalHold
from escalations.selectors import appeal_window, subject_by_reference, subject_holds
from escalations.services.evidence import evidence_discard
from reviews.models import Case, Subject, SubjectText
from reviews.services.subjects import contact_open, conversation_split
from workbench.errors import Conflict, Invalid
from workbench.services.outbox import outbox_erase
from workbench.services.trail import Actor, trail_append

_DATE = "%d %B %Y"


class ErasureRefused(Conflict):
    """The subject's data must be kept for now; the message says why."""


@dataclass
class Erased:
    subject: Subject
    cases: int
    appeals: int
    files: int
    already: bool = False
    texts: int = 0  # what the customer wrote besides appeals: chat turns, contests, feedback
    emails: int = 0


def _locked(reference: str, system: str | None) -> Subject:
    found = subject_by_reference(reference=reference, system=system)
    return Subject.objects.select_for_update().get(pk=found.pk)


@transaction.atomic
def subject_erase(*, reference: str, system: str | None = None, by: Actor) -> Erased:
    """Destroy the subject's key after checking that nothing needs the data:
    no legal hold, no case still being decided, no appeal window open."""
    subject = Subject.objects.select_for_update().get(
        pk=subject_by_reference(reference=reference, system=system).pk
    )
    cases = list(Case.objects.select_related("policy").filter(subject=subject))
    if subject.erased_at is not None:
        return Erased(subject, len(cases), 0, 0, already=True)
    holds = subject_holds(subject_id=subject.pk)
    if holds:
        raise ErasureRefused(
            f"a legal hold is in place since {holds[0].placed_at:{_DATE}}: {holds[0].reason}",
            "legal_hold",
        )
    now = timezone.now()
    for case in cases:
        appeals = list(case.appeals.order_by("number"))
        window = appeal_window(case=case, appeals=appeals, now=now)
        if window.code in ("not_final", "appeal_open"):
            raise ErasureRefused(
                f"case {case.reference} is still being decided ({case.get_status_display()})",
                "case_open",
            )
        if window.open:
            raise ErasureRefused(
                f"case {case.reference} can be appealed until {window.closes_at:{_DATE}}",
                "appeal_window_open",
            )
    email = (contact_open(subject) or {}).get("email")
    evidence = Evidence.objects.filter(appeal__case__subject=subject)
    files = list(evidence.exclude(stored_as="").values_list("stored_as", flat=True))
    evidence.update(stored_as="", name="")  # the name is the customer's too
    appeals = Appeal.objects.filter(case__subject=subject).update(statement=None)
    texts = SubjectText.objects.filter(subject=subject).update(sealed=None)
    _unsealed_turns_clear(cases)
    emails = outbox_erase(about=f"subject:{subject.pk}", destination=email)
    subject.key = None
    subject.contact = None
    subject.erased_at = now
    subject.save(update_fields=["key", "contact", "erased_at"])
    trail_append(
        action="subject.erased",
        actor=by,
        system=subject.system.slug,
        data={
            "subject": subject.reference,
            "cases": len(cases),
            "appeals": appeals,
            "evidence_files": len(files),
            "texts": texts,
            "emails": emails,
        },
    )
    # The files go once the erasure is committed; the key is gone already.
    transaction.on_commit(lambda: evidence_discard(files))
    return Erased(subject, len(cases), appeals, len(files), texts=texts, emails=emails)


def _unsealed_turns_clear(cases: list[Case]) -> None:
    """Cases stored before chat turns were sealed (or loaded around intake)
    hold the customer's turns in their input: their text goes."""
    for case in cases:
        kept, words = conversation_split(case.input)
        if words:
            case.input = kept
            case.save(update_fields=["input"])


@transaction.atomic
def legal_hold_place(
    *, reference: str, system: str | None = None, reason: str, by: Actor
) -> LegalHold:
    """Keep the subject's data whatever else asks for its erasure."""
    if not reason.strip():
        raise Invalid("give the reason for the hold", "reason_required")
    subject = Subject.objects.select_for_update().get(
        pk=subject_by_reference(reference=reference, system=system).pk
    )
    if subject_holds(subject_id=subject.pk):
        raise Conflict(f"subject {reference!r} is already on hold", "already_held")
    hold = LegalHold.objects.create(
        subject=subject, reason=reason.strip(), placed_at=timezone.now(), placed_by=by.id
    )
    trail_append(
        action="subject.hold_placed",
        actor=by,
        system=subject.system.slug,
        data={"subject": subject.reference, "hold": hold.pk},
    )
    return hold


@transaction.atomic
def legal_hold_lift(*, reference: str, system: str | None = None, by: Actor) -> LegalHold:
    subject = Subject.objects.select_for_update().get(
        pk=subject_by_reference(reference=reference, system=system).pk
    )
    hold = LegalHold.objects.filter(subject=subject, lifted_at=None).first()
    if hold is None:
        raise Conflict(f"subject {reference!r} is not on hold", "not_held")
    hold.lifted_at = timezone.now()
    hold.lifted_by = by.id
    hold.save(update_fields=["lifted_at", "lifted_by"])
    trail_append(
        action="subject.hold_lifted",
        actor=by,
        system=subject.system.slug,
        data={"subject": subject.reference, "hold": hold.pk},
    )
    return hold
