"""The justice audit scorecard (issue #16): per AI system and model version,
over a range of UTC days, from the trail only (``casefile``). Three kinds of
justice, each a few lines with a value, an interval where one exists, the
policy's threshold (``audit:``, ``thresholds.AUDIT_THRESHOLDS``), a status
(``thresholds.line_status``: holds / watch / fails / no data) and the cases
behind it.

Distributive (is the outcome fair?)
- adverse-outcome rate by fairness segment: per value of each field in the
  policy's ``fairness_segments``, the first final outcomes in the range that
  are adverse (Wilson); the line is the largest gap between two values, with
  its Newcombe interval (``reports.largest_gap``, as the dashboard);
- overturn rate on appeal: appeals decided in the range that changed the
  decision (overturned or modified) / appeals decided;
- AI error rate on the QA sample: QA re-checks (decisions on cases routed as
  ``qa_sample``) that overrode the AI / QA re-checks.

Procedural (transparent rules, a real appeal)
- notice opened: adverse first decisions in the range whose customer opened
  the notice (``notice.opened``, by the end of the range) / adverse decisions;
- appeal rate: appeals filed in the range / first decisions in the range;
- time to an appeal decision, median and p90 (days, exact), from its
  ``appeal.filed`` to its ``appeal.decided`` (decided in the range);
- deadline breaches: ``case.overdue`` in the range;
- independence violations: appeals decided in the range by a person named
  in the filing's ``excluded``, who acted on the case before the filing, or
  who is above or below such a person in the reporting line (``user.created``
  / ``user.changed`` in the trail). Must be 0: the limit is fixed;
- share of first decisions a person made.

Interactional (treated with respect?)
- the connection index (``connection``), with its parts beside it; judged
  only when parts of at least half its weight have data (else **watch**);
- time to a human for distressed customers (p90, minutes);
- mean rating after human decisions and after AI decisions (each answer's
  mean of its two questions, t-interval).

Each line lists its cases: the references it counts, each marked when it
counts toward the figure (e.g. the appeals that changed the decision).
"""

from dataclasses import dataclass, field
from datetime import date

from workbench.metrics.casefile import CaseFile, SystemTrail, system_trail
from workbench.metrics.connection import (
    ConnectionReport,
    connection_report,
    final_decisions,
    first_decisions,
)
from workbench.metrics.reports import largest_gap
from workbench.metrics.stats import Mean, Rate, median, percentile
from workbench.metrics.thresholds import (
    AT_MOST,
    AUDIT_THRESHOLDS,
    WATCH,
    line_status,
)
from workbench.models import AISystem

DISTRIBUTIVE, PROCEDURAL, INTERACTIONAL = "distributive", "procedural", "interactional"
SECTIONS = (
    (DISTRIBUTIVE, "Distributive justice: is the outcome fair?"),
    (PROCEDURAL, "Procedural justice: transparent rules, a real appeal"),
    (INTERACTIONAL, "Interactional justice: was the person treated with respect?"),
)
DAY_SECONDS = 86_400
# The connection index is judged only with at least half its weight behind it
# (e.g. both feedback questions); with less, its status is "watch".
MIN_INDEX_WEIGHT = 50


@dataclass
class Line:
    key: str  # stable: the CSV's and the case list's name of the line
    section: str
    label: str
    value: float | None
    unit: str  # rate, count, days, minutes, index, rating
    interval: tuple[float, float] | None = None
    threshold: float | None = None
    direction: str = AT_MOST
    status: str = ""
    n: int = 0  # how many cases or events the figure counts
    detail: str = ""
    cases: list[tuple[str, bool]] = field(default_factory=list)  # (reference, counts)
    extra: list = field(default_factory=list)  # the segment values, for the page


@dataclass
class Scorecard:
    system: str
    name: str
    start: date
    end: date
    model_version: str
    versions: list[str]
    policy_version: int | None
    lines: list[Line]
    connection: ConnectionReport
    thresholds: dict[str, float]

    def section(self, key: str) -> list[Line]:
        return [line for line in self.lines if line.section == key]

    def line(self, key: str) -> Line | None:
        return next((line for line in self.lines if line.key == key), None)

    @property
    def sections(self) -> list[tuple[str, str, list[Line]]]:
        return [(key, title, self.section(key)) for key, title in SECTIONS]


def justice_scorecard(
    *, system: AISystem, start: date, end: date, model_version: str = ""
) -> Scorecard:
    """The scorecard of ``system`` (one model version, or all) over the UTC
    days ``start``..``end``, both included."""
    trail = system_trail(system=system.slug, start=start, end=end)
    cases = [
        c for c in trail.cases.values() if not model_version or c.model_version == model_version
    ]
    connection = connection_report(trail, model_version=model_version)
    lines = [
        *_distributive(trail, cases),
        *_procedural(trail, cases),
        *_interactional(trail, cases, connection),
    ]
    for line in lines:
        if line.key.startswith("adverse_gap"):
            name = "adverse_gap"
        elif line.key.startswith("rating_"):
            name = "rating"
        elif line.key == "time_to_human":
            name = "time_to_human_minutes"
        else:
            name = line.key
        if name in AUDIT_THRESHOLDS:
            line.threshold = trail.thresholds[name]
            line.direction = AUDIT_THRESHOLDS[name].direction
        line.status = line_status(line.value, line.threshold, line.direction, line.interval)
    index = next(line for line in lines if line.key == "connection_index")
    if index.value is not None and connection.total.weight_used < MIN_INDEX_WEIGHT:
        index.status = WATCH  # too little behind it to hold or to fail
    return Scorecard(
        system=system.slug,
        name=system.name,
        start=start,
        end=end,
        model_version=model_version,
        versions=trail.versions(),
        policy_version=trail.policy_version,
        lines=lines,
        connection=connection,
        thresholds=trail.thresholds,
    )


def _rate_line(key, section, label, rate: Rate, cases, detail="") -> Line:
    return Line(
        key=key,
        section=section,
        label=label,
        value=rate.value,
        unit="rate",
        interval=rate.interval,
        n=rate.n,
        detail=detail or (f"{rate.x} of {rate.n}" if rate.n else "no data"),
        cases=cases,
    )


def _first_outcomes(trail: SystemTrail, cases: list[CaseFile]) -> list[tuple[CaseFile, bool]]:
    """Each case's first final outcome in the range and whether it is adverse."""
    found = []
    for case in cases:
        decided = first_decisions(trail, case)
        if decided:
            found.append((case, bool(decided[0].data.get("adverse"))))
    return found


def _distributive(trail: SystemTrail, cases: list[CaseFile]) -> list[Line]:
    outcomes = _first_outcomes(trail, cases)
    lines = []
    for segment in trail.segments_named:
        per_value: dict[str, list[tuple[str, bool]]] = {}
        for case, adverse in outcomes:
            value = (case.route.get("segments") or {}).get(segment, None)
            per_value.setdefault("(none)" if value is None else value, []).append(
                (case.reference, adverse)
            )
        rates = [
            (value, Rate(sum(a for _, a in rows), len(rows)))
            for value, rows in sorted(per_value.items())
        ]
        gap = largest_gap("adverse", rates)
        line = Line(
            key=f"adverse_gap:{segment}",
            section=DISTRIBUTIVE,
            label=f"Adverse-outcome gap by {segment}",
            value=gap.difference if gap else None,
            unit="rate",
            interval=gap.interval if gap else None,
            n=len(outcomes),
            detail=f"{gap.high} over {gap.low}" if gap else "fewer than two values with outcomes",
            cases=[row for rows in per_value.values() for row in rows],
            extra=rates,
        )
        lines.append(line)
    if not lines:
        lines.append(
            Line(
                key="adverse_gap",
                section=DISTRIBUTIVE,
                label="Adverse-outcome gap by fairness segment",
                value=None,
                unit="rate",
                detail="the policy names no fairness segments",
            )
        )
    appeals = [
        (c.reference, e) for c in cases for e in c.of("appeal.decided") if trail.in_range(e.at)
    ]
    changed = [(ref, e.data.get("outcome") in ("overturned", "modified")) for ref, e in appeals]
    lines.append(
        _rate_line(
            "overturn_rate",
            DISTRIBUTIVE,
            "Overturn rate on appeal",
            Rate(sum(c for _, c in changed), len(changed)),
            changed,
        )
    )
    qa = [
        (c.reference, e.data.get("verdict") == "override")
        for c in cases
        if c.route.get("reason") == "qa_sample"
        for e in c.of("case.decided")
        if trail.in_range(e.at)
    ]
    lines.append(
        _rate_line(
            "qa_error_rate",
            DISTRIBUTIVE,
            "AI error rate on the QA sample",
            Rate(sum(e for _, e in qa), len(qa)),
            qa,
        )
    )
    return lines


def _procedural(trail: SystemTrail, cases: list[CaseFile]) -> list[Line]:
    outcomes = _first_outcomes(trail, cases)
    adverse = [(c.reference, bool(c.of("notice.opened"))) for c, bad in outcomes if bad]
    decisions = [(c, e) for c in cases for e in first_decisions(trail, c)]
    filed = [(c.reference, e) for c in cases for e in c.of("appeal.filed") if trail.in_range(e.at)]
    appealed = {ref for ref, _ in filed}
    human = [(c.reference, e.action == "case.decided") for c, e in decisions]
    timings = _appeal_timings(trail, cases)
    days = [seconds / DAY_SECONDS for _, seconds in timings]
    overdue = [
        (c.reference, True) for c in cases for e in c.of("case.overdue") if trail.in_range(e.at)
    ]
    violations = _independence(trail, cases)
    middle, p90 = median(days), percentile(days, 0.9)
    limit = trail.thresholds["appeal_p90_days"]
    return [
        _rate_line(
            "notice_opened",
            PROCEDURAL,
            "Adverse decisions whose notice the customer opened",
            Rate(sum(o for _, o in adverse), len(adverse)),
            adverse,
        ),
        _rate_line(
            "appeal_rate",
            PROCEDURAL,
            "Appeal rate (appeals filed per decision)",
            Rate(min(len(filed), len(decisions)), len(decisions)),
            [(c.reference, c.reference in appealed) for c, _ in decisions],
            detail=f"{len(filed)} filed, {len(decisions)} decisions" if decisions else "no data",
        ),
        Line(
            key="appeal_median_days",
            section=PROCEDURAL,
            label="Time to an appeal decision, median (days)",
            value=middle,
            unit="days",
            n=len(days),
            detail=f"{len(days)} appeals decided" if days else "no data",
            cases=[(ref, True) for ref, _ in timings],
        ),
        Line(
            key="appeal_p90_days",
            section=PROCEDURAL,
            label="Time to an appeal decision, p90 (days)",
            value=p90,
            unit="days",
            n=len(days),
            detail=f"{len(days)} appeals decided" if days else "no data",
            cases=[(ref, seconds / DAY_SECONDS > limit) for ref, seconds in timings],
        ),
        Line(
            key="deadline_breaches",
            section=PROCEDURAL,
            label="Deadline breaches",
            value=len(overdue),
            unit="count",
            n=len(overdue),
            detail=f"{len(overdue)} tasks past their due time",
            cases=overdue,
        ),
        Line(
            key="independence_violations",
            section=PROCEDURAL,
            label="Independence violations on appeal (must be 0)",
            value=sum(v for _, v in violations) if violations else None,
            unit="count",
            threshold=0,
            direction=AT_MOST,
            n=len(violations),
            detail=f"{len(violations)} appeals decided" if violations else "no appeals decided",
            cases=violations,
        ),
        _rate_line(
            "human_share",
            PROCEDURAL,
            "Share of decisions a person made",
            Rate(sum(h for _, h in human), len(human)),
            human,
        ),
    ]


def _appeals_decided(trail: SystemTrail, case: CaseFile):
    """Each appeal of ``case`` decided in the range: (its filing event or
    None, its decision event)."""
    filed = {}
    for event in case.events:
        if event.action == "appeal.filed":
            filed[event.data.get("appeal")] = event
        elif event.action == "appeal.decided" and trail.in_range(event.at):
            yield filed.get(event.data.get("appeal")), event


def _appeal_timings(trail: SystemTrail, cases: list[CaseFile]) -> list[tuple[str, float]]:
    return [
        (case.reference, (decided.at - filing.at).total_seconds())
        for case in cases
        for filing, decided in _appeals_decided(trail, case)
        if filing is not None
    ]


def _line_of(managers: dict[str, str | None], username: str) -> set[str]:
    """Everyone above ``username`` in the reporting line, as the trail recorded it."""
    above, seen = set(), {username}
    boss = managers.get(username)
    while boss and boss not in seen:
        above.add(boss)
        seen.add(boss)
        boss = managers.get(boss)
    return above


def _independence(trail: SystemTrail, cases: list[CaseFile]) -> list[tuple[str, bool]]:
    """Each appeal decided in the range, and whether its decider was not
    independent (see the module docstring)."""
    found = []
    for case in cases:
        for filing, event in _appeals_decided(trail, case):
            decider = event.actor_id
            excluded = set((filing.data.get("excluded") or []) if filing else [])
            before = filing.at if filing else event.at
            actors = {
                e.actor_id
                for e in case.events
                if e.at < before and e.actor_type == "user" and e.action != "case.viewed"
            }
            above_decider = _line_of(trail.managers, decider)
            in_line = any(
                decider in _line_of(trail.managers, actor) or actor in above_decider
                for actor in actors
            )
            found.append((case.reference, decider in excluded | actors or in_line))
    return found


def _interactional(
    trail: SystemTrail, cases: list[CaseFile], connection: ConnectionReport
) -> list[Line]:
    total = connection.total
    index = total.index
    reached = [e for e in total.distressed if e.seconds is not None]
    minutes = [e.seconds / 60 for e in reached]
    target = trail.thresholds["time_to_human_minutes"]
    lines = [
        Line(
            key="connection_index",
            section=INTERACTIONAL,
            label="Connection index (0–100)",
            value=index,
            unit="index",
            n=total.parts_used,
            detail=f"from {total.parts_used} of {len(total.parts)} parts "
            f"(weight {total.weight_used} of 100)",
            cases=[(ref, ref in set(total.answered)) for ref in total.cohort],
        ),
        Line(
            key="time_to_human",
            section=INTERACTIONAL,
            label="Time to a human for distressed customers, p90 (minutes)",
            value=percentile(minutes, 0.9),
            unit="minutes",
            n=len(total.distressed),
            detail=(
                f"median {median(minutes):.1f} min; {len(reached)} reached a person, "
                f"{len(total.distressed) - len(reached)} still waiting"
                if reached
                else f"{len(total.distressed)} distressed, none reached a person yet"
                if total.distressed
                else "no data"
            ),
            cases=[
                (e.reference, e.seconds is not None and e.seconds <= target * 60)
                for e in total.distressed
            ],
        ),
    ]
    by_who: dict[str, list[tuple[str, float]]] = {"human": [], "ai": []}
    for case in cases:
        if not final_decisions(trail, case):
            continue
        answer = case.latest_feedback()
        if answer is None:
            continue
        data = answer.data
        scores = [data.get(k) for k in ("listened", "explained") if isinstance(data.get(k), int)]
        if scores and data.get("decided_by") in by_who:
            by_who[data["decided_by"]].append((case.reference, sum(scores) / len(scores)))
    for who, label in (("human", "after a person's decision"), ("ai", "after the AI's decision")):
        rows = by_who[who]
        mean = Mean(tuple(score for _, score in rows), (1, 5))
        lines.append(
            Line(
                key=f"rating_{who}",
                section=INTERACTIONAL,
                label=f"Mean rating {label} (1–5)",
                value=mean.value,
                unit="rating",
                interval=mean.interval,
                n=mean.n,
                detail=f"{mean.n} answers" if mean.n else "no data",
                cases=[(ref, True) for ref, _ in rows],
            )
        )
    return lines
