"""Demo work on top of the demo cases (``reviews.demo``): the reviewers have
decided some claims and chats, a few customers have appealed and the appeal
reviewer has decided some of their appeals (others wait in the appeal
queues), the AI systems have contested a few cases that a person then took
up, and customers have opened their notices and some answered the two
questions about how they were treated (issue 16), so that the justice audit
has data in every line from the first minute.

Everything goes through the services, as a person working the queues would.
One thing is not real: the time a person spent. The decision services
measure it from the lease (``claimed_at``), and the demo decides in
milliseconds, so each task's lease is dated back by a few minutes, fixed by
the case's number (``_spent``), before the decision. The trail's own clocks
are left alone: the times between its events are the real, short ones.
"""

import random
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import F

from escalations.models import Appeal
from escalations.services import appeal_decide, appeal_file, appeal_statement_open
from reviews.demo import CLAIMS, SUPPORT
from reviews.models import Case, Feedback, ReviewTask
from reviews.selectors import policy_active
from reviews.services import feedback_record
from reviews.services.assignment import task_claim_next, task_release
from reviews.services.contests import case_contest
from reviews.services.decisions import DecisionInput, decision_record
from reviews.services.notices import notice_open, notice_url
from workbench.models import AISystem, User
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
    "My physiotherapist says the sessions were part of the treatment plan my surgeon "
    "approved. I can send the plan if you need it.",
    "I called before the appointment and was told no approval was needed. I wrote down "
    "the date and the name of the person I spoke to.",
]
CHAT_STATEMENTS = [
    "I only wanted to change my delivery address before the parcel leaves. I am the "
    "account holder and can prove it.",
    "The chat would not give me my refund, but the item arrived broken. I sent photos "
    "the same day.",
    "I have been trying to close my account for a week. Nobody lets me do it.",
]
RATIONALE = "Checked the claim lines against the plan and the reason code; the denial applies."
# What the appeal reviewer wrote to the customer, by system and outcome.
APPEAL_REASONS = {
    CLAIMS.slug: {
        Appeal.Outcome.UPHELD: "We looked at your claim again, with your statement. Your "
        "plan's rule applies to this service, so the decision stands. You can ask for an "
        "external review (see below).",
        Appeal.Outcome.OVERTURNED: "We looked at your claim again. What you told us shows "
        "the service was covered when it was given, so your claim will be paid in full.",
        Appeal.Outcome.MODIFIED: "We looked at your claim again. The main service is "
        "covered and will be paid; the other lines are still not covered by your plan.",
    },
    SUPPORT.slug: {
        Appeal.Outcome.UPHELD: "We checked again: changes to your account or payment "
        "details need an identity check, which the chat cannot do. Please sign in to your "
        "account page or call us.",
        Appeal.Outcome.MODIFIED: "We checked again: a member of our support team will "
        "contact you, check that it is really you and make the change you asked for.",
    },
}
# What the AI systems relayed when their customers disputed a decision
# (``case_contest``), with what the reviewer who took it up decided.
CONTESTS = {
    CLAIMS.slug: [
        "The member called: the deductible was taken from this claim, but they say they "
        "met this year's deductible in March.",
        "The member wrote in: they do not think they owe a share of this bill and ask "
        "for a person to check it.",
    ],
    SUPPORT.slug: [
        "The customer wrote back: the answer did not help, the problem is still there "
        "and they want to talk to a person.",
    ],
}
CONTEST_DECISIONS = {
    CLAIMS.slug: DecisionInput(
        verdict="agree",
        rationale="Checked the member's share against the plan year's deductible and "
        "co-pay; the amounts stand.",
    ),
    SUPPORT.slug: DecisionInput(
        verdict="override",
        outcome="handoff",
        reason_code="escalate-to-specialist",
        rationale="The answer was right as far as it went; the customer needs our team.",
    ),
}
# What the appeal reviewer finds, the first time a system's outcome is
# appealed (after that she upholds): outcome appealed -> (outcome, new outcome).
CHANGES = {
    CLAIMS.slug: {
        "deny": (Appeal.Outcome.MODIFIED, "partial"),
        "partial": (Appeal.Outcome.OVERTURNED, "approve"),
    },
    SUPPORT.slug: {"refused": (Appeal.Outcome.MODIFIED, "handoff")},
}
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
# Seconds a person spends on a task: a review, and an appeal (with its statement).
REVIEW_SECONDS = (40, 300)
APPEAL_SECONDS = (240, 900)


@dataclass
class DemoWork:
    decided: list[str] = field(default_factory=list)  # case references
    appealed: list[str] = field(default_factory=list)
    appeals_decided: dict[str, str] = field(default_factory=dict)  # reference -> outcome
    contested: list[str] = field(default_factory=list)
    opened: int = 0  # notices their customers opened
    answered: dict[str, int] = field(default_factory=dict)  # "ai"/"human" -> answers

    @property
    def appeals_open(self) -> list[str]:
        return [ref for ref in self.appealed if ref not in self.appeals_decided]

    def notice_links(self) -> list[tuple[str, str]]:
        """A few customer links worth opening: an appeal waiting, an appeal
        decided, decided by a person, decided by the AI."""
        links = [(ref, "appealed, waiting") for ref in self.appeals_open[:1]]
        links += [(ref, "appeal decided") for ref in self.appeals_decided][:1]
        links += [(ref, "decided by a person") for ref in self.decided if ref not in self.appealed][
            :1
        ]
        by_ai = (
            Case.objects.filter(system__slug=CLAIMS.slug, decided_by=Case.DecidedBy.AI)
            .order_by("external_id")
            .values_list("reference", flat=True)
            .first()
        )
        if by_ai:
            links.append((by_ai, "decided by the AI alone"))
        cases = Case.objects.in_bulk([ref for ref, _ in links], field_name="reference")
        return [(notice_url(cases[ref]), what) for ref, what in links]


def demo_work_load(
    *,
    appeals: int = len(STATEMENTS),
    tries: int = 40,
    more: int = 8,
    chat_more: int = 10,
    left_open: int = 2,
    chats_left_open: int = 1,
) -> DemoWork:
    """The demo reviewers take claims in turn and agree with the AI; customers
    appeal the first adverse ones. A case that is not adverse is agreed with
    too, as a reviewer would. Then more claims and chats are decided, the
    customers whose chat a person refused appeal, each AI system contests a
    case or two, and appeal.carol decides all appeals but the last
    ``left_open`` claims and ``chats_left_open`` chats, which wait for her."""
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
        _decide(
            task,
            reviewer,
            DecisionInput(verdict="agree", rationale=RATIONALE),
            f"demo-decision-{n}",
        )
        work.decided.append(case.reference)
        case = Case.objects.select_related("policy").get(pk=case.pk)
        if case.final_outcome in case.policy.document.get("adverse_outcomes", []):
            _appeal(work, case, STATEMENTS[len(work.appealed) % len(STATEMENTS)])
    # A few more decided by people, claims and chats, so that the customers'
    # answers after a person's decision have something to rate.
    _decide_more(work, ["rev.alice", "rev.bob"], "claims-review", more)
    _decide_more(work, ["rev.chen", "rev.dora"], "chat-escalations", chat_more)
    _chat_appeals_file(work)
    demo_contests_load(work)
    _appeals_decide(work, CLAIMS.slug, "appeals", left_open)
    _appeals_decide(work, SUPPORT.slug, "chat-appeals", chats_left_open)
    demo_feedback_load(work)
    return work


def _number(case: Case) -> int:
    """The case's number in the demo (``CLM-2026-000042``: 42)."""
    tail = case.external_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else case.pk


def _spent(task: ReviewTask, case: Case, span: tuple[int, int], turn: int = 0) -> None:
    """Date the lease of ``task`` back, so that the decision service records
    a person's time on it (``span`` seconds, fixed by the case's number and
    the ``turn`` of a person on it) rather than the demo's milliseconds."""
    low, high = span
    seconds = low + (_number(case) * 7919 + turn * 104_729) % (high - low + 1)
    ReviewTask.objects.filter(pk=task.pk).update(
        claimed_at=F("claimed_at") - timedelta(seconds=seconds)
    )


def _decide(
    task: ReviewTask, reviewer: User, decision: DecisionInput, key: str, turn: int = 0
) -> None:
    _spent(task, task.case, REVIEW_SECONDS, turn)
    decision_record(
        task_id=task.pk,
        user=reviewer,
        fencing_token=task.fencing_token,
        decision=decision,
        idempotency_key=key,
    )


def _appeal(work: DemoWork, case: Case, statement: str) -> None:
    appeal_file(
        case=case,
        statement=statement,
        evidence=[],
        idempotency_key=uuid.uuid5(uuid.NAMESPACE_URL, case.reference).hex,
    )
    work.appealed.append(case.reference)


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
        _decide(
            task,
            reviewer,
            DecisionInput(verdict="agree", rationale="Checked; the answer stands."),
            f"demo-more-{queue_slug}-{n}",
        )
        work.decided.append(task.case.reference)


def _chat_appeals_file(work: DemoWork) -> None:
    """The customers whose request a person refused (agreeing with the
    assistant) appeal, up to one per statement."""
    refused = Case.objects.filter(
        system__slug=SUPPORT.slug,
        reference__in=work.decided,
        status=Case.Status.FINALIZED,
        final_outcome="refused",
    ).order_by("external_id")
    for n, case in enumerate(refused[: len(CHAT_STATEMENTS)]):
        _appeal(work, case, CHAT_STATEMENTS[n])


def demo_contests_load(work: DemoWork) -> DemoWork:
    """Each AI system contests a decision it made alone, as its customer
    disputes it (``case_contest``), and a reviewer of the system's team takes
    the case up at once: the audit's "time to a human" and "contests per 100
    decisions" have something to count. The claims contested are approvals
    that left the member a share to pay; the chat, an answered refund question."""
    teams = {CLAIMS.slug: ["rev.alice", "rev.bob"], SUPPORT.slug: ["rev.chen", "rev.dora"]}
    for slug, reasons in CONTESTS.items():
        system = AISystem.objects.get(slug=slug)
        reviewers = list(User.objects.filter(username__in=teams[slug]).order_by("pk"))
        alone = Case.objects.filter(
            system=system, status=Case.Status.FINALIZED, decided_by=Case.DecidedBy.AI
        ).order_by("external_id")
        picked = [case for case in alone if _worth_contesting(slug, case)][: len(reasons)]
        for n, (case, reason) in enumerate(zip(picked, reasons, strict=False)):
            case = case_contest(
                system=system, reference=case.reference, reason=reason, actor=Actor.system(slug)
            )
            work.contested.append(case.reference)
            if not reviewers:
                continue
            reviewer = reviewers[n % len(reviewers)]
            # A contested case comes first in its queue (priority 20).
            queue = policy_active(system=system).document["default_queue"]
            task = task_claim_next(user=reviewer, queue_slug=queue)
            if task is None:
                continue
            if task.case_id != case.pk:  # not the contested case after all: left alone
                task_release(task_id=task.pk, user=reviewer, fencing_token=task.fencing_token)
                continue
            _decide(task, reviewer, CONTEST_DECISIONS[slug], f"demo-contest-{slug}-{n}", turn=1)
            work.decided.append(task.case.reference)
    return work


def _worth_contesting(slug: str, case: Case) -> bool:
    if slug == CLAIMS.slug:
        lines = (case.input or {}).get("lines", [])
        return any(code.startswith("PR-") for line in lines for code in line["reason_codes"])
    return "refund" in (case.metadata or {}).get("intent", "")


def _appeals_decide(work: DemoWork, slug: str, queue_slug: str, left_open: int) -> None:
    """appeal.carol, who had no part in the decisions appealed, decides the
    appeals of ``queue_slug`` in the order the queue gives them, all but the
    last ``left_open``: what she finds follows what was appealed (a denial is
    paid in part, a partial payment in full, a refused chat is handed to the
    support team) the first time, and the decision is upheld after that."""
    carol = User.objects.filter(username="appeal.carol").first()
    waiting = (
        Appeal.objects.filter(case__system__slug=slug).exclude(status=Appeal.Status.DECIDED).count()
    )
    if carol is None:
        return
    changed: set[str] = set()
    for n in range(max(0, waiting - left_open)):
        task = task_claim_next(user=carol, queue_slug=queue_slug)
        if task is None:
            return
        appeal = appeal_statement_open(
            task_id=task.pk, user=carol, fencing_token=task.fencing_token
        )
        outcome, final = Appeal.Outcome.UPHELD, ""
        found = CHANGES[slug].get(appeal.outcome_appealed)
        if found and appeal.outcome_appealed not in changed:
            changed.add(appeal.outcome_appealed)
            outcome, final = found
        _spent(task, appeal.case, APPEAL_SECONDS, turn=2)
        appeal_decide(
            task_id=task.pk,
            user=carol,
            fencing_token=task.fencing_token,
            outcome=outcome,
            final_outcome=final,
            reason_code=_appeal_reason_code(appeal.case, outcome),
            reasons=APPEAL_REASONS[slug][outcome],
            idempotency_key=f"demo-appeal-{slug}-{n}",
        )
        work.appeals_decided[appeal.case.reference] = outcome


def _appeal_reason_code(case: Case, outcome: str) -> str:
    """The reason the customer reads: the chat's identity check; for an upheld
    claim, the AI's own code (the decision stands on it)."""
    if case.system.slug == SUPPORT.slug:
        return "identity-check"
    if outcome != Appeal.Outcome.UPHELD:
        return ""
    reasons = (case.output or {}).get("reasons") or [{}]
    return reasons[0].get("code", "")


def demo_feedback_load(work: DemoWork, *, seed: int = 16) -> DemoWork:
    """Customers open their notices (``notice.opened``) and some answer the
    two questions, through the services: most of those a person decided and
    about a third of the AI's own decisions, adverse or not, in English and
    Spanish, with a few comments, and some of those whose appeal was decided.
    People decided by a person feel a little more listened to: the audit's
    "ratings after human vs AI decisions" has something to compare."""
    rng = random.Random(seed)
    # In the demo's own order (its external ids): the same answers every time.
    final = (
        Case.objects.filter(status=Case.Status.FINALIZED)
        .select_related("subject", "system", "policy")
        .order_by("external_id")
    )
    human = [case for case in final if case.decided_by == Case.DecidedBy.HUMAN]
    ai = [case for case in final if case.decided_by == Case.DecidedBy.AI]
    appealed = (
        Case.objects.filter(reference__in=work.appealed)
        .select_related("subject", "system", "policy")
        .order_by("external_id")
    )
    opened = [c for c in human if rng.random() < 0.85] + [c for c in ai if rng.random() < 0.35]
    opened += list(appealed)  # whoever appeals has read the notice
    for case in opened:
        work.opened += notice_open(case=case)
    rateable = (Case.Status.FINALIZED, Case.Status.APPEAL_DECIDED)
    for case in opened:
        if case.status not in rateable or rng.random() < 0.35:
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
