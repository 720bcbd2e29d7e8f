"""Demo work on top of the demo cases (``reviews.demo``): the reviewers have
decided some claims and a few customers have appealed, so that the appeals
queue has work and the customer pages have something to show."""

import uuid
from dataclasses import dataclass, field

from escalations.services import appeal_file
from reviews.demo import CLAIMS
from reviews.models import Case
from reviews.services.assignment import task_claim_next, task_release
from reviews.services.decisions import DecisionInput, decision_record
from reviews.services.notices import notice_url
from workbench.models import User

# What customers wrote, in their own words (written for the demo).
STATEMENTS = [
    "My doctor ordered this test because of my family history. I have attached nothing "
    "yet, but her office can confirm the referral. Please look at it again.",
    "The visit was an emergency: I could not wait for a referral. I was told at the front "
    "desk that it would be covered.",
    "This was billed twice by mistake. The second line is the same service on the same "
    "day, and the clinic has agreed to correct it.",
    "I changed plans in January and the new plan covers this. I think the old plan's "
    "rules were applied to my claim.",
]
RATIONALE = "Checked the claim lines against the plan and the reason code; the denial applies."


@dataclass
class DemoWork:
    decided: list[str] = field(default_factory=list)  # case references
    appealed: list[str] = field(default_factory=list)

    def notice_links(self) -> list[tuple[str, str]]:
        """A few customer links worth opening: appealed, decided, decided by the AI."""
        links = [(ref, "appealed") for ref in self.appealed[:2]]
        links += [(ref, "decided by a person") for ref in self.decided if ref not in self.appealed][
            :1
        ]
        by_ai = (
            Case.objects.filter(system__slug=CLAIMS.slug, decided_by=Case.DecidedBy.AI)
            .order_by("created_at")
            .values_list("reference", flat=True)
            .first()
        )
        if by_ai:
            links.append((by_ai, "decided by the AI alone"))
        cases = Case.objects.in_bulk([ref for ref, _ in links], field_name="reference")
        return [(notice_url(cases[ref]), what) for ref, what in links]


def demo_work_load(*, appeals: int = len(STATEMENTS), tries: int = 40) -> DemoWork:
    """The demo reviewers take claims in turn and agree with the AI; customers
    appeal the first adverse ones. A case that is not adverse is agreed with
    too, as a reviewer would."""
    work = DemoWork()
    reviewers = list(User.objects.filter(username__in=["rev.alice", "rev.bob"]).order_by("pk"))
    if not reviewers:
        return work
    for n in range(tries):
        if len(work.appealed) >= appeals:
            break
        reviewer = reviewers[n % len(reviewers)]
        task = task_claim_next(user=reviewer, queue_slug="claims-review")
        if task is None:
            break
        case = task.case
        if case.kind != "claim_decision":
            task_release(task_id=task.pk, user=reviewer, fencing_token=task.fencing_token)
            break
        decision_record(
            task_id=task.pk,
            user=reviewer,
            fencing_token=task.fencing_token,
            decision=DecisionInput(verdict="agree", rationale=RATIONALE),
            idempotency_key=f"demo-decision-{n}",
        )
        work.decided.append(case.reference)
        case = Case.objects.select_related("policy").get(pk=case.pk)
        if case.final_outcome in case.policy.document.get("adverse_outcomes", []):
            appeal_file(
                case=case,
                statement=STATEMENTS[len(work.appealed) % len(STATEMENTS)],
                evidence=[],
                idempotency_key=uuid.uuid5(uuid.NAMESPACE_URL, case.reference).hex,
            )
            work.appealed.append(case.reference)
    return work
