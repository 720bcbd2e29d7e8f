"""Hybrid AI-human figures (issue #16 item 4), measured where the AI and the
people meet, counted into the daily rollups (``rollup``) and read with the
dashboard's other figures (no query of their own):

- **automation rate**: final decisions the AI made alone (finalized at
  intake) / final decisions (those and people's decisions), by event day;
- **human-touch rate**: of the cases received in the range, those a person
  handled at least once (a verdict — ``case.decided``, ``case.reviewed``,
  ``case.escalated`` — or an appeal decision), so far: a cohort by day of
  receipt, updated as its cases are handled (a QA re-check or an appeal of
  an AI decision is a touch too);
- **reviewer minutes per 100 cases**: the seconds people recorded on their
  verdicts and appeal decisions in the range, in minutes per 100 final
  decisions in the range;
- **agreement with the AI by queue**: agree / (agree + override) of the
  verdicts made in each queue (the queue the case was in at the verdict);
- **rework**: of the cases received in the range that a person handled,
  those handled more than once, with the later handlings by cause: after an
  escalation, a second review (two reviews required), an appeal, or again
  (e.g. after a contest);
- **cost of rubber-stamping**, beside it: the fast agreements (under
  ``RubberStampRules.fast_seconds``) of the reviewers whose agreement over the
  range exceeds ``RubberStampRules.agreement`` across at least ``min_cases``
  verdicts (bias.py's rules, over the range instead of a week): how many,
  their share of all verdicts, and the reviewer minutes they took.
"""

from dataclasses import dataclass

from workbench.metrics.bias import RubberStampRules
from workbench.metrics.stats import Rate

HANDLINGS = ("case.reviewed", "case.decided", "case.escalated", "appeal.decided")
VERDICTS = ("case.reviewed", "case.decided", "case.escalated")
# Events that move a case to another queue, and the field naming it.
QUEUE_MOVES = {
    "case.routed": "queue",
    "case.escalated": "queue",
    "case.overdue": "to",
    "case.contested": "queue",
    "appeal.filed": "queue",
}
FAST_SECONDS = RubberStampRules().fast_seconds
REWORK_CAUSES = {
    "escalation": "after an escalation",
    "second_review": "second review",
    "appeal": "appeal",
    "again": "again",
}


def queue_before(moves: list[tuple[int, str]], seq: int) -> str:
    """The queue the case was in just before event ``seq``."""
    queue = ""
    for at_seq, slug in moves:
        if at_seq >= seq:
            break
        queue = slug or queue
    return queue


def rework_cause(previous: str, action: str) -> str:
    if action == "appeal.decided":
        return "appeal"
    return {"case.reviewed": "second_review", "case.escalated": "escalation"}.get(previous, "again")


def hybrid_count(row: dict, cohort: dict, *, action, data, actor, seq, handlings, moves) -> None:
    """Count one event into the rollup rows: ``row`` of its day, ``cohort``
    of the day its case was received. ``handlings`` are the case's handling
    events ``(seq, action)`` up to the batch's end, ``moves`` its queue moves."""
    if action not in HANDLINGS or actor.get("type") != "user":
        return
    seconds = data.get("seconds") or 0
    row["reviewer_seconds"] += round(seconds)
    before = [act for at_seq, act in handlings if at_seq < seq]
    if not before:
        cohort["touched"] += 1
    else:
        if len(before) == 1:
            cohort["reworked"] += 1
        cause = rework_cause(before[-1], action)
        cohort["rework_by"][cause] = cohort["rework_by"].get(cause, 0) + 1
    verdict = data.get("verdict")
    if action not in VERDICTS or verdict not in ("agree", "override"):
        return
    queue = queue_before(moves, seq) or "(none)"
    by_queue = row["verdicts_by_queue"].setdefault(queue, {})
    by_queue[verdict] = by_queue.get(verdict, 0) + 1
    person = row["reviewers"].setdefault(
        actor.get("id") or "", {"verdicts": 0, "agreed": 0, "fast_agreed": 0, "fast_seconds": 0}
    )
    person["verdicts"] += 1
    if verdict == "agree":
        person["agreed"] += 1
        if seconds < FAST_SECONDS:
            person["fast_agreed"] += 1
            person["fast_seconds"] += round(seconds)


@dataclass
class Hybrid:
    automation: Rate
    human_touch: Rate
    minutes_per_100: float | None
    reviewer_minutes: float
    agreement: list[tuple[str, Rate]]  # by queue
    rework: Rate  # reworked / touched
    rework_by: dict[str, int]
    stamp_decisions: int  # fast agreements of high-agreement reviewers
    stamp_share: Rate  # of all verdicts
    stamp_minutes: float
    stamp_reviewers: list[str]
    rules: RubberStampRules

    @property
    def rework_causes(self) -> list[tuple[str, int]]:
        return [(REWORK_CAUSES.get(k, k), n) for k, n in self.rework_by.items()]


def hybrid_figures(metrics, rules: RubberStampRules | None = None) -> Hybrid:
    """The hybrid figures of one ``reports.SystemMetrics`` (a system, a model
    version or all systems) over its range."""
    rules = rules or RubberStampRules()
    c = metrics.counts
    finalized = metrics.finalized
    minutes = c["reviewer_seconds"] / 60
    flagged = sorted(
        name
        for name, p in metrics.reviewers.items()
        if p["verdicts"] >= rules.min_cases and p["agreed"] / p["verdicts"] > rules.agreement
    )
    verdicts = sum(p["verdicts"] for p in metrics.reviewers.values())
    stamped = sum(metrics.reviewers[name]["fast_agreed"] for name in flagged)
    return Hybrid(
        automation=metrics.automated_share,
        human_touch=Rate(min(c["touched"], c["received"]), c["received"]),
        minutes_per_100=100 * minutes / finalized if finalized else None,
        reviewer_minutes=minutes,
        agreement=[
            (queue, Rate(v.get("agree", 0), v.get("agree", 0) + v.get("override", 0)))
            for queue, v in sorted(metrics.verdicts_by_queue.items())
        ],
        rework=Rate(min(c["reworked"], c["touched"]), c["touched"]),
        rework_by=dict(sorted(metrics.rework_by.items())),
        stamp_decisions=stamped,
        stamp_share=Rate(stamped, verdicts),
        stamp_minutes=sum(metrics.reviewers[name]["fast_seconds"] for name in flagged) / 60,
        stamp_reviewers=flagged,
        rules=rules,
    )
