"""Automation bias: the weekly rubber-stamp report of reviewers who agree
with the AI quickly and almost always, and the agreement of blind reviews."""

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from workbench.metrics.stats import Rate, median
from workbench.models import (
    TrailEvent,
)
from workbench.services.trail import format_at, trail_integrate


@dataclass(frozen=True)
class RubberStampRules:
    median_seconds: float = 30.0  # median time on adverse decisions under this ...
    agreement: float = 0.98  # ... and agreement with the AI over this ...
    min_cases: int = 50  # ... across at least this many decisions in the week: a flag
    fast_seconds: float = 30.0  # "fast": a decision in under this many seconds


@dataclass
class ReviewerWeek:
    username: str
    decisions: int
    agreed: int
    adverse: int
    adverse_median: float | None
    fast: int
    flagged: bool

    @property
    def agreement(self) -> Rate:
        return Rate(self.agreed, self.decisions)

    @property
    def fast_share(self) -> Rate:
        return Rate(self.fast, self.decisions)


@dataclass
class BlindAgreement:
    system: str
    agreement: Rate  # verdicts made without seeing the AI that agreed with it
    # Verdicts recorded as blind (``ai_visible`` false) without the ``visible``
    # list: made before the blind page was built by allow-list, when it still
    # showed the adverse flag and the name of the outcome rule that routed the
    # case. Left out of ``agreement``, since the AI's outcome could be read.
    earlier: int = 0


# The parts of the case page that show the AI's view (``AI_VIEW`` of
# reviews.selectors, as recorded in the ``visible`` list of a verdict).
AI_VIEW_PARTS = frozenset(
    {
        "outcome",
        "confidence",
        "reasons",
        "summary",
        "answer",
        "explanation",
        "adverse",
        "rules_on_output",
    }
)


@dataclass
class AutomationBiasReport:
    start: datetime
    end: datetime
    rules: RubberStampRules
    reviewers: list[ReviewerWeek]
    blind: list[BlindAgreement]


def automation_bias_report(
    *, week_start: date, rules: RubberStampRules | None = None
) -> AutomationBiasReport:
    """The rubber-stamp report of one week (Monday ``week_start`` to the next
    Monday, UTC) per reviewer, and the blind-review agreement per AI system.

    Read from the trail's verdicts of that week, not from the rollups: it
    needs *exact* per-person medians over as few as 50 decisions (bucket
    medians are 9% off, enough to move someone across a 30 s line), per-person
    rows would multiply the rollup by the number of reviewers, and one week of
    decisions is bounded by what people can do in a week (tens of thousands
    at most). One query on the trail's indexed ``at`` range, one for those
    cases' routes (whether the AI's outcome was adverse); the median is taken
    in Python over that week only.

    A verdict is each review's: a final decision (``case.decided``), the
    first of two reviews (``case.reviewed``) or a second that disagreed
    (``case.escalated``). Agreement counts only agree / override, not
    escalations. Blind agreement is the same share over the verdicts made
    with the AI's recommendation hidden: it measures the AI's quality without
    the anchoring that a visible recommendation causes. A verdict is blind
    when its ``visible`` list names none of ``AI_VIEW_PARTS``; one recorded
    with ``ai_visible`` false but no such list is counted apart (``earlier``).
    """
    trail_integrate()  # every committed verdict
    rules = rules or RubberStampRules()
    start = datetime.combine(week_start, datetime.min.time(), tzinfo=UTC)
    end = start + timedelta(days=7)
    rows = []
    for reference, body in TrailEvent.objects.filter(
        at__gte=format_at(start),
        at__lt=format_at(end),
        action__in=("case.decided", "case.reviewed", "case.escalated"),
    ).values_list("case", "body"):
        event = json.loads(body)
        data = event["data"]
        if data.get("verdict") in ("agree", "override") and event["actor"]["type"] == "user":
            rows.append((event["actor"]["id"], data, reference, event["system"]))
    adverse = (
        {
            reference
            for reference, body in TrailEvent.objects.filter(
                case__in={row[2] for row in rows}, action="case.routed"
            ).values_list("case", "body")
            if json.loads(body)["data"].get("adverse")
        }
        if rows
        else set()
    )
    people: dict[str, dict] = defaultdict(lambda: {"n": 0, "agreed": 0, "fast": 0, "adverse": []})
    blind: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # agreed, blind, earlier
    for username, data, reference, system in rows:
        person = people[username]
        seconds, agreed = data.get("seconds") or 0, data["verdict"] == "agree"
        person["n"] += 1
        person["agreed"] += agreed
        person["fast"] += seconds < rules.fast_seconds
        if reference in adverse:
            person["adverse"].append(seconds)
        visible = data.get("visible")
        if isinstance(visible, list) and not AI_VIEW_PARTS.intersection(visible):
            blind[system][0] += agreed
            blind[system][1] += 1
        elif visible is None and data.get("ai_visible") is False:
            blind[system][2] += 1
    reviewers = []
    for username, person in people.items():
        middle = median(person["adverse"])
        flagged = (
            person["n"] >= rules.min_cases
            and middle is not None
            and middle < rules.median_seconds
            and person["agreed"] / person["n"] > rules.agreement
        )
        reviewers.append(
            ReviewerWeek(
                username=username,
                decisions=person["n"],
                agreed=person["agreed"],
                adverse=len(person["adverse"]),
                adverse_median=middle,
                fast=person["fast"],
                flagged=flagged,
            )
        )
    reviewers.sort(key=lambda r: (not r.flagged, -r.decisions, r.username))
    return AutomationBiasReport(
        start=start,
        end=end,
        rules=rules,
        reviewers=reviewers,
        blind=[
            BlindAgreement(system, Rate(agreed, n), earlier)
            for system, (agreed, n, earlier) in sorted(blind.items())
        ],
    )
