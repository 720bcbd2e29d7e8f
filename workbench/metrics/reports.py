"""The compliance figures read from the rollups: per AI system and in
total over a range of UTC days, and the fairness gaps between segments."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from workbench.metrics.rollup import DAILY_COUNTERS, DAILY_MAPS, SEGMENT_COUNTERS
from workbench.metrics.stats import Rate, counts_add, hist_add, hist_quantile, newcombe_interval
from workbench.models import (
    AISystem,
    DailyRollup,
    SegmentRollup,
)


@dataclass
class SystemMetrics:
    """The figures of one AI system and model version (``model_version``
    empty: all versions of the system) over a range of days."""

    system: str
    model_version: str
    name: str = ""
    counts: dict = field(default_factory=lambda: dict.fromkeys(DAILY_COUNTERS, 0))
    routed_by: dict = field(default_factory=dict)
    appeals_by_basis: dict = field(default_factory=dict)
    decide_hist: dict = field(default_factory=dict)
    appeal_hist: dict = field(default_factory=dict)
    # The hybrid figures' maps (workbench.metrics.hybrid).
    verdicts_by_queue: dict = field(default_factory=dict)
    reviewers: dict = field(default_factory=dict)
    rework_by: dict = field(default_factory=dict)

    def add(self, counts: dict, *maps: dict):
        """Add one row's ``counts`` and its maps, in ``DAILY_MAPS`` order."""
        for name, value in counts.items():
            self.counts[name] += value
        routed_by, by_basis, decide, appeal, by_queue, reviewers, rework_by = maps
        counts_add(self.routed_by, routed_by)
        counts_add(self.appeals_by_basis, by_basis)
        hist_add(self.decide_hist, decide)
        hist_add(self.appeal_hist, appeal)
        counts_add(self.verdicts_by_queue, by_queue)
        counts_add(self.reviewers, reviewers)
        counts_add(self.rework_by, rework_by)

    def merge(self, other: "SystemMetrics") -> None:
        self.add(other.counts, *(getattr(other, name) for name in DAILY_MAPS))

    @property
    def routed(self) -> int:
        return self.counts["routed_human"] + self.counts["auto_finalized"]

    @property
    def human_share(self) -> Rate:
        return Rate(self.counts["routed_human"], self.routed)

    @property
    def override_rate(self) -> Rate:
        return Rate(self.counts["overridden"], self.counts["human_decided"])

    @property
    def finalized(self) -> int:
        return self.counts["auto_finalized"] + self.counts["human_decided"]

    @property
    def appeal_rate(self) -> Rate:
        """Appeals filed per final decision in the same days."""
        return Rate(min(self.counts["appeals_filed"], self.finalized), self.finalized)

    @property
    def appeals_changed(self) -> int:
        return self.counts["appeals_overturned"] + self.counts["appeals_modified"]

    @property
    def overturn_rate(self) -> Rate:
        return Rate(self.appeals_changed, self.counts["appeals_decided"])

    @property
    def qa_error_rate(self) -> Rate:
        return Rate(self.counts["qa_errors"], self.counts["qa_reviewed"])

    @property
    def automated_share(self) -> Rate:
        return Rate(self.counts["auto_finalized"], self.finalized)

    @property
    def decide_median(self) -> float | None:
        return hist_quantile(self.decide_hist, 0.5)

    @property
    def decide_p90(self) -> float | None:
        return hist_quantile(self.decide_hist, 0.9)

    @property
    def appeal_median(self) -> float | None:
        return hist_quantile(self.appeal_hist, 0.5)

    @property
    def appeal_p90(self) -> float | None:
        return hist_quantile(self.appeal_hist, 0.9)

    @property
    def routed_reasons(self) -> list[tuple[str, int, float]]:
        """(rule or reason, count, share of the cases routed to a person), largest first."""
        total = self.counts["routed_human"] or 1
        return [
            (key, count, count / total)
            for key, count in sorted(self.routed_by.items(), key=lambda kv: (-kv[1], kv[0]))
        ]


@dataclass
class MetricsReport:
    start: date
    end: date
    systems: list[SystemMetrics]  # per system: the total, then each model version
    versions: dict[str, list[SystemMetrics]]
    daily: list[tuple[date, int, int]]  # (day, finalized by the AI, routed to a person)
    total: SystemMetrics
    names: dict[str, str]  # every AI system's name by slug


def metrics_report(*, start: date, end: date) -> MetricsReport:
    """Per AI system and model version, over the UTC days ``start``..``end``
    (inclusive): one query over the rollups, one for the systems' names."""
    # One pass over the rows, merging each into its (system, version) only:
    # the systems' and the grand totals are merged from those few afterwards.
    rows = DailyRollup.objects.filter(day__gte=start, day__lte=end).values_list(
        "day", "system", "model_version", *DAILY_COUNTERS, *DAILY_MAPS
    )
    names = dict(AISystem.objects.values_list("slug", "name"))
    versions: dict[str, dict[str, SystemMetrics]] = defaultdict(dict)
    per_day: dict[date, list[int]] = {}
    width = len(DAILY_COUNTERS)
    auto, human = DAILY_COUNTERS.index("auto_finalized"), DAILY_COUNTERS.index("routed_human")
    for day, system, version, *values in rows:
        counts = values[:width]
        metrics = versions[system].get(version)
        if metrics is None:
            metrics = SystemMetrics(system, version, names.get(system, system))
            versions[system][version] = metrics
        metrics.add(dict(zip(DAILY_COUNTERS, counts, strict=True)), *values[width:])
        totals_of_day = per_day.setdefault(day, [0, 0])
        totals_of_day[0] += counts[auto]
        totals_of_day[1] += counts[human]
    totals: dict[str, SystemMetrics] = {}
    everything = SystemMetrics(system="", model_version="", name="All systems")
    for system, by_version in versions.items():
        total = totals[system] = SystemMetrics(system, "", names.get(system, system))
        for metrics in by_version.values():
            total.merge(metrics)
        everything.merge(total)
    days = (end - start).days + 1
    daily = [(d, *per_day.get(d, [0, 0])) for d in (start + timedelta(days=i) for i in range(days))]
    return MetricsReport(
        start=start,
        end=end,
        systems=[totals[slug] for slug in sorted(totals)],
        versions={slug: [v[k] for k in sorted(v)] for slug, v in versions.items()},
        daily=daily,
        total=everything,
        names=names,
    )


@dataclass
class SegmentRates:
    value: str
    finalized: int
    adverse: Rate
    override: Rate
    overturn: Rate


@dataclass
class Gap:
    """The largest difference of one rate between two segment values, with
    its 95% Newcombe interval; ``significant`` when the interval excludes 0."""

    metric: str
    high: str
    low: str
    difference: float
    interval: tuple[float, float]

    @property
    def significant(self) -> bool:
        return self.interval[0] > 0 or self.interval[1] < 0


@dataclass
class SegmentReport:
    system: str
    name: str
    segment: str
    values: list[SegmentRates]
    gaps: list[Gap]


def largest_gap(metric: str, rates: list[tuple[str, Rate]], *, min_cases: int = 1) -> Gap | None:
    """The gap between the highest and the lowest rate among the values with
    at least ``min_cases`` cases, with Newcombe's interval of the
    difference; None with fewer than two such values."""
    rated = [(value, rate) for value, rate in rates if rate.n >= max(min_cases, 1)]
    if len(rated) < 2:
        return None
    high = max(rated, key=lambda vr: (vr[1].value, vr[0]))
    low = min(rated, key=lambda vr: (vr[1].value, vr[0]))
    a, b = high[1], low[1]
    return Gap(metric, high[0], low[0], a.value - b.value, newcombe_interval(a, b))


FAIRNESS_METRICS = (
    ("adverse", "Adverse outcome rate"),
    ("override", "Override rate"),
    ("overturn", "Changed on appeal"),
)


def fairness_report(
    *, start: date, end: date, min_cases: int = 1, names: dict[str, str] | None = None
) -> list[SegmentReport]:
    """Outcome, override and appeal overturn rates per value of each
    fairness segment, and per rate the largest gap between two values (the
    highest and lowest rate among values with at least ``min_cases``
    decisions behind it), with Newcombe's interval of the difference."""
    sums: dict[tuple[str, str], dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: dict.fromkeys(SEGMENT_COUNTERS, 0))
    )
    for row in SegmentRollup.objects.filter(day__gte=start, day__lte=end).values(
        "system", "segment", "value", *SEGMENT_COUNTERS
    ):
        counts = sums[(row["system"], row["segment"])][row["value"]]
        for name in SEGMENT_COUNTERS:
            counts[name] += row[name]
    if names is None:
        names = dict(AISystem.objects.values_list("slug", "name"))
    reports = []
    for (system, segment), per_value in sorted(sums.items()):
        values = [
            SegmentRates(
                value=value,
                finalized=c["finalized"],
                adverse=Rate(c["adverse"], c["finalized"]),
                override=Rate(c["overridden"], c["human_decided"]),
                overturn=Rate(c["appeals_changed"], c["appeals_decided"]),
            )
            for value, c in sorted(per_value.items())
        ]
        gaps = []
        for metric, _label in FAIRNESS_METRICS:
            gap = largest_gap(
                metric, [(v.value, getattr(v, metric)) for v in values], min_cases=min_cases
            )
            if gap is not None:
                gaps.append(gap)
        reports.append(SegmentReport(system, names.get(system, system), segment, values, gaps))
    return reports
