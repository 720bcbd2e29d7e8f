"""Reads for intake and review."""

from reviews.models import Case, Policy, ReasonCode
from workbench.errors import NotFound, Unavailable
from workbench.models import AISystem, TrailEvent


def policy_active(*, system: AISystem) -> Policy:
    """The policy version in force: the latest published."""
    policy = Policy.objects.filter(system=system).order_by("-version").first()
    if policy is None:
        raise Unavailable(
            f"the AI system {system.slug!r} has no routing policy yet; "
            "publish one with load_policy",
            "no_policy",
        )
    return policy


def case_get_for_system(*, system: AISystem, reference: str) -> Case:
    """A case of ``system`` by reference; another system's case is not found."""
    case = Case.objects.filter(system=system, reference=reference).first()
    if case is None:
        raise NotFound(f"no case {reference!r}", "case_not_found")
    return case


def case_trail(*, case: Case) -> list[TrailEvent]:
    return list(TrailEvent.objects.filter(case=case.reference).order_by("seq"))


def reason_codes_for(*, system: AISystem) -> list[ReasonCode]:
    """The codes a reviewer of ``system`` may pick from: the active ones, by code."""
    return list(ReasonCode.objects.filter(system=system, active=True).order_by("code"))
