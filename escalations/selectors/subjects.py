"""Reads about one subject (a customer): by reference, and their legal holds."""

from escalations.models import LegalHold
from reviews.models import Subject
from workbench.errors import Invalid, NotFound


def subject_by_reference(*, reference: str, system: str | None = None) -> Subject:
    """The subject with this reference; ``system`` when several AI systems know it."""
    subjects = Subject.objects.select_related("system").filter(reference=reference)
    if system:
        subjects = subjects.filter(system__slug=system)
    found = list(subjects[:2])
    if not found:
        raise NotFound(f"no subject {reference!r}", "subject_not_found")
    if len(found) > 1:
        raise Invalid(
            f"subject {reference!r} is known to several AI systems; name the system",
            "ambiguous_subject",
        )
    return found[0]


def subject_holds(*, subject_id: int) -> list[LegalHold]:
    return list(LegalHold.objects.filter(subject_id=subject_id, lifted_at=None))
