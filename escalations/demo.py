"""Demo work on top of the demo cases (``reviews.demo``): the reviewers have
decided some claims and a few customers have appealed, so that the appeals
queue has work and the customer pages have something to show; customers have
opened their notices and some answered the two questions about how they were
treated (issue 16), so that the justice audit has data from the first minute."""

import random
import uuid
from dataclasses import dataclass, field

from escalations.services import appeal_file
from reviews.demo import CLAIMS
from reviews.models import Case, Feedback, ReviewTask
from reviews.services import feedback_record
from reviews.services.assignment import task_claim_next, task_release
from reviews.services.decisions import DecisionInput, decision_record
from reviews.services.notices import notice_open, notice_url
from workbench.models import User
from workbench.services import Actor

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
# What a few customers added to their answers (written for the demo), by language.
COMMENTS = {
    "en": [
        "The letter explained the rule, but nobody asked about my situation.",
        "Clear and quick, thank you.",
        "I still do not understand why the second line was not paid.",
        "The person who called me back was kind and took the time to explain.",
    ],
    "es": [
        "La explicación fue clara, gracias.",
        "Nadie me preguntó por mi situación antes de decidir.",
        "No entiendo por qué no se pagó la segunda línea.",
    ],
}


@dataclass
class DemoWork:
    decided: list[str] = field(default_factory=list)  # case references
    appealed: list[str] = field(default_factory=list)
    opened: int = 0  # notices their customers opened
    answered: dict[str, int] = field(default_factory=dict)  # "ai"/"human" -> answers

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


def demo_work_load(*, appeals: int = len(STATEMENTS), tries: int = 40, more: int = 8) -> DemoWork:
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
    # A few more decided by people, claims and chats, so that the customers'
    # answers after a person's decision have something to rate.
    _decide_more(work, ["rev.alice", "rev.bob"], "claims-review", more)
    _decide_more(work, ["rev.chen", "rev.dora"], "chat-escalations", more)
    demo_feedback_load(work)
    return work


def _decide_more(work: DemoWork, usernames: list[str], queue_slug: str, count: int) -> None:
    reviewers = list(User.objects.filter(username__in=usernames).order_by("pk"))
    # Never more than a third of what waits: the queues keep work to show.
    waiting = ReviewTask.objects.filter(queue__slug=queue_slug, status=ReviewTask.Status.OPEN)
    count = min(count, waiting.count() // 3) if reviewers else 0
    for n in range(count):
        reviewer = reviewers[n % len(reviewers)]
        task = task_claim_next(user=reviewer, queue_slug=queue_slug)
        if task is None:
            return
        decision_record(
            task_id=task.pk,
            user=reviewer,
            fencing_token=task.fencing_token,
            decision=DecisionInput(verdict="agree", rationale="Checked; the answer stands."),
            idempotency_key=f"demo-more-{queue_slug}-{n}",
        )
        work.decided.append(task.case.reference)


def demo_feedback_load(work: DemoWork, *, seed: int = 16) -> DemoWork:
    """Customers open their notices (``notice.opened``) and some answer the
    two questions, through the services: most of those a person decided and
    about a third of the AI's own decisions, adverse or not, in English and
    Spanish, with a few comments. People decided by a person feel a little
    more listened to: the audit's "ratings after human vs AI decisions" has
    something to compare."""
    rng = random.Random(seed)
    final = Case.objects.filter(status=Case.Status.FINALIZED).select_related(
        "subject", "system", "policy"
    )
    human = [case for case in final if case.decided_by == Case.DecidedBy.HUMAN]
    ai = [case for case in final.order_by("created_at") if case.decided_by == Case.DecidedBy.AI]
    appealed = Case.objects.filter(reference__in=work.appealed).select_related(
        "subject", "system", "policy"
    )
    opened = [c for c in human if rng.random() < 0.85] + [c for c in ai if rng.random() < 0.35]
    opened += list(appealed)  # whoever appeals has read the notice
    for case in opened:
        work.opened += notice_open(case=case)
    for case in opened:
        if case.status != Case.Status.FINALIZED or rng.random() < 0.35:
            continue
        adverse = case.policy.is_adverse(case.final_outcome)
        lift = 1 if case.decided_by == Case.DecidedBy.HUMAN else 0
        low, high = (1, 4) if adverse else (3, 5)
        language = "es" if case.subject.locale.startswith("es") else "en"
        comment = rng.choice(COMMENTS[language]) if rng.random() < 0.2 else None
        feedback_record(
            case=case,
            listened=min(5, rng.randint(low, high) + lift),
            explained=rng.randint(low, high),
            comment=comment,
            source=Feedback.Source.NOTICE,
            actor=Actor.customer(case.subject.reference),
        )
        work.answered[case.decided_by] = work.answered.get(case.decided_by, 0) + 1
    return work
