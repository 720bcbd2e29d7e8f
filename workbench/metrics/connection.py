"""The connection index (issue #16): whether customers felt heard, beside
efficiency. Per AI system, model version and queue, over a range of UTC
days, from the trail only (``casefile``).

The parts
---------
- **Listened** and **Explained**: the mean answer (1–5) to "Did we listen
  to you?" and "Was the decision explained fairly?" (``case.feedback``, the
  latest answer of each case), over the cases with a final decision in the
  range (finalized by the AI, decided by a person, or an appeal decided);
  each with its 95% Student t-interval (``stats.Mean``). The response rate
  is the cases answered over those cases, with its Wilson interval.
- **Sentiment**: the mean VADER compound (-1 to +1) of the customer's latest
  turn at intake (``case.received``'s ``sentiment``, chatbot cases received
  in the range), also per ISO week (the trend).
- **Time to a human** for distressed customers: cases routed to a person by
  a rule that reads the customer's words (``case.routed``'s ``distressed``:
  ``sentiment_below`` or ``text_matches``) from their receipt, and contested
  cases from the contest, to the first action of a person on the case (the
  first event with actor type ``user``; a compliance reading does not
  count): median and p90, and the share reached within the policy's
  ``audit.time_to_human_minutes`` (a case still waiting counts against it
  once it has waited that long; before, it is not counted yet).
- **Came back**: the share of the cases received in the range whose subject
  had an earlier case of the same system in the 30 days before.
- **Contests and appeals per 100 decisions**: ``case.contested`` and
  ``appeal.filed`` in the range per 100 first decisions (finalized by the
  AI or decided by a person) in the range.

The index
---------
Each part is rescaled to 0–100:

    listened  = 100 · (mean − 1) / 4          weight 25
    explained = 100 · (mean − 1) / 4          weight 25
    sentiment = 100 · (mean + 1) / 2          weight 10
    time to a human = 100 · share within target   weight 20
    came back = 100 · (1 − share that came back)   weight 10
    contests and appeals = max(0, 100 − per 100 decisions)   weight 10

    index = Σ weight · part / Σ weight, over the parts that have data

so a range without feedback still has an index from its other parts, and
says how many of the six it used. It is always shown with its parts.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from workbench.metrics.casefile import REPEAT_DAYS, CaseFile, SystemTrail
from workbench.metrics.stats import Mean, Rate, median, percentile

WEIGHTS = {
    "listened": 25,
    "explained": 25,
    "sentiment": 10,
    "time_to_human": 20,
    "came_back": 10,
    "contests_appeals": 10,
}
LABELS = {
    "listened": "Did we listen to you? (1–5)",
    "explained": "Was the decision explained fairly? (1–5)",
    "sentiment": "Customer sentiment at intake (VADER, −1 to +1)",
    "time_to_human": "Distressed customers reaching a person in time",
    "came_back": "Customers who came back within 30 days",
    "contests_appeals": "Contests and appeals per 100 decisions",
}
FINAL_ACTIONS = ("case.decided", "appeal.decided")
FIRST_DECISIONS = ("case.decided",)


@dataclass
class Part:
    key: str
    weight: int
    score: float | None  # 0–100, None: no data
    text: str  # the figure behind it, for people

    @property
    def label(self) -> str:
        return LABELS[self.key]


@dataclass
class Distressed:
    reference: str
    since: datetime
    seconds: float | None  # None: still waiting at the end of the range


@dataclass
class Connection:
    label: str
    listened: Mean
    explained: Mean
    response: Rate
    sentiment: Mean
    weekly: list[tuple[str, Mean]]  # ISO week ("2026-W46"), mean compound
    distressed: list[Distressed]
    within_target: Rate
    time_median: float | None
    time_p90: float | None
    came_back: Rate
    contests: int
    appeals: int
    decisions: int
    parts: list[Part] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # references with feedback
    cohort: list[str] = field(default_factory=list)  # references with a final decision

    @property
    def per_100(self) -> float | None:
        return 100 * (self.contests + self.appeals) / self.decisions if self.decisions else None

    @property
    def weight_used(self) -> int:
        """The weight of the parts with data, of 100."""
        return sum(part.weight for part in self.parts if part.score is not None)

    @property
    def parts_used(self) -> int:
        return sum(part.score is not None for part in self.parts)

    @property
    def index(self) -> float | None:
        used = [part for part in self.parts if part.score is not None]
        if not used:
            return None
        return sum(p.weight * p.score for p in used) / sum(p.weight for p in used)


def final_decisions(trail: SystemTrail, case: CaseFile) -> list:
    """The case's final decisions in the range: finalized by the AI at
    intake, decided by a person, an appeal decided."""
    found = [e for e in case.of(*FINAL_ACTIONS) if trail.in_range(e.at)]
    routed = case.of("case.routed")
    if routed and routed[0].data.get("status") == "finalized" and trail.in_range(routed[0].at):
        found.insert(0, routed[0])
    return found


def first_decisions(trail: SystemTrail, case: CaseFile) -> list:
    """Decisions of the first instance in the range (not appeals)."""
    return [e for e in final_decisions(trail, case) if e.action != "appeal.decided"]


def distressed_episodes(trail: SystemTrail, cases: list[CaseFile]) -> list[Distressed]:
    """Each distressed customer once: routed for their words at intake (clock
    from the receipt), or else contested in the range (clock from the contest)."""
    episodes = []
    for case in cases:
        if case.route.get("distressed") and trail.in_range(case.received_at):
            since = case.received_at
        else:
            contests = [e for e in case.of("case.contested") if trail.in_range(e.at)]
            if not contests:
                continue
            since = contests[0].at
        first = case.first_human_after(since)
        seconds = (first.at - since).total_seconds() if first else None
        episodes.append(Distressed(case.reference, since, seconds))
    return episodes


def came_back(trail: SystemTrail, cases: list[CaseFile]) -> tuple[Rate, list[str]]:
    """Cases received in the range whose subject had a case of the same
    system in the 30 days before; the system's every case counts as the
    earlier one, whatever the group."""
    seen = [
        (c.received_at, c.subject, c.reference)
        for c in trail.cases.values()
        if c.received_at is not None
    ]
    by_subject: dict[str, list[datetime]] = {}
    for at, subject, _ in [*trail.earlier_received, *seen]:
        by_subject.setdefault(subject, []).append(at)
    received = [c for c in cases if trail.in_range(c.received_at)]
    window = timedelta(days=REPEAT_DAYS)
    back = [
        c.reference
        for c in received
        if c.subject
        and any(c.received_at - window <= at < c.received_at for at in by_subject[c.subject])
    ]
    return Rate(len(back), len(received)), back


def connection_measure(trail: SystemTrail, cases: list[CaseFile], *, label: str = "") -> Connection:
    """The connection index and its parts over ``cases`` (a group of the
    trail's: all, one model version, one queue)."""
    target = trail.thresholds["time_to_human_minutes"] * 60
    cohort = [c for c in cases if final_decisions(trail, c)]
    answers = [(c.reference, c.latest_feedback()) for c in cohort]
    answers = [(ref, e.data) for ref, e in answers if e is not None]
    scores = {
        key: Mean(tuple(d[key] for _, d in answers if isinstance(d.get(key), int)), (1, 5))
        for key in ("listened", "explained")
    }
    received = [c for c in cases if trail.in_range(c.received_at) and c.sentiment is not None]
    weeks: dict[str, list[float]] = {}
    for c in sorted(received, key=lambda c: c.received_at):
        year, week, _ = c.received_at.isocalendar()
        weeks.setdefault(f"{year}-W{week:02d}", []).append(c.sentiment)
    episodes = distressed_episodes(trail, cases)
    reached = [e.seconds for e in episodes if e.seconds is not None]
    counted = [
        e
        for e in episodes
        if e.seconds is not None or (trail.end - e.since).total_seconds() >= target
    ]
    within = Rate(sum(e.seconds is not None and e.seconds <= target for e in counted), len(counted))
    back, _ = came_back(trail, cases)
    decisions = sum(len(first_decisions(trail, c)) for c in cases)
    contests = sum(1 for c in cases for e in c.of("case.contested") if trail.in_range(e.at))
    appeals = sum(1 for c in cases for e in c.of("appeal.filed") if trail.in_range(e.at))
    result = Connection(
        label=label,
        listened=scores["listened"],
        explained=scores["explained"],
        response=Rate(len(answers), len(cohort)),
        sentiment=Mean(tuple(c.sentiment for c in received), (-1, 1)),
        weekly=[(week, Mean(tuple(values), (-1, 1))) for week, values in weeks.items()],
        distressed=episodes,
        within_target=within,
        time_median=median(reached),
        time_p90=percentile(reached, 0.9),
        came_back=back,
        contests=contests,
        appeals=appeals,
        decisions=decisions,
        answered=[ref for ref, _ in answers],
        cohort=[c.reference for c in cohort],
    )
    result.parts = _parts(result)
    return result


def _parts(m: Connection) -> list[Part]:
    def score_1_5(mean: Mean) -> float | None:
        return None if mean.value is None else 100 * (mean.value - 1) / 4

    def of(rate: Rate) -> str:
        return "no data" if not rate.n else f"{rate.x} of {rate.n}"

    per_100 = m.per_100
    return [
        Part("listened", WEIGHTS["listened"], score_1_5(m.listened), _mean_text(m.listened)),
        Part("explained", WEIGHTS["explained"], score_1_5(m.explained), _mean_text(m.explained)),
        Part(
            "sentiment",
            WEIGHTS["sentiment"],
            None if m.sentiment.value is None else 100 * (m.sentiment.value + 1) / 2,
            _mean_text(m.sentiment, digits=3),
        ),
        Part(
            "time_to_human",
            WEIGHTS["time_to_human"],
            None if m.within_target.value is None else 100 * m.within_target.value,
            of(m.within_target),
        ),
        Part(
            "came_back",
            WEIGHTS["came_back"],
            None if m.came_back.value is None else 100 * (1 - m.came_back.value),
            of(m.came_back),
        ),
        Part(
            "contests_appeals",
            WEIGHTS["contests_appeals"],
            None if per_100 is None else max(0.0, 100 - per_100),
            "no data"
            if per_100 is None
            else f"{per_100:.1f} ({m.contests} contests, {m.appeals} appeals, "
            f"{m.decisions} decisions)",
        ),
    ]


def _mean_text(mean: Mean, digits: int = 2) -> str:
    if mean.value is None:
        return "no data"
    if mean.interval is None:
        return f"{mean.value:.{digits}f} (n = 1)"
    low, high = f"{mean.low:.{digits}f}", f"{mean.high:.{digits}f}"
    return f"{mean.value:.{digits}f} ({low} to {high}, n = {mean.n})"


@dataclass
class ConnectionReport:
    total: Connection
    versions: list[Connection]
    queues: list[Connection]


def connection_report(trail: SystemTrail, *, model_version: str = "") -> ConnectionReport:
    """The index of the system (or of one model version), and by model
    version and by queue (the queue the case was first routed to; "—": the
    AI finalized it)."""
    cases = [
        c for c in trail.cases.values() if not model_version or c.model_version == model_version
    ]
    total = connection_measure(trail, cases, label=model_version or "all versions")
    versions = [
        connection_measure(trail, [c for c in cases if c.model_version == v], label=v)
        for v in sorted({c.model_version for c in cases})
    ]
    queues = [
        connection_measure(trail, [c for c in cases if c.queue == q], label=q or "—")
        for q in sorted({c.queue for c in cases})
    ]
    return ConnectionReport(total=total, versions=versions, queues=queues)
