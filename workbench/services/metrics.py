"""Compliance metrics (issue #5): rollups kept up to date from the trail, and
the reports read from them.

The rollups
-----------
The dashboard never scans cases or the trail: it sums a few hundred rows of
``DailyRollup`` (one per UTC day x AI system x model version) and
``SegmentRollup`` (day x system x fairness segment value). They are kept up
to date incrementally by ``metrics_rollup_update``:

- it reads the trail *after* a stored cursor (``MetricsCursor.seq``), in
  ranges of ``BATCH`` sequence numbers up to the chain head it saw when it
  started (``seq`` has no gaps and the head moves in the transaction that
  appends, so every event up to the head it read is committed);
- per batch it looks up, by the trail's indexed ``case`` column, the
  ``case.received`` and ``case.routed`` events of the cases the batch names
  (a case's model version, creation time, route, fairness segments) and,
  when the batch decides appeals, their ``appeal.filed`` events (one query);
  it adds the batch's counts to the rows it touches (one read, one bulk
  update, one bulk insert per table) and moves the cursor, all in one
  transaction;
- the cursor row is locked (``SELECT ... FOR UPDATE``) for that transaction,
  so two updates at once queue up and the second starts where the first
  ended: no event is counted twice, none is missed. (On SQLite the
  ``IMMEDIATE`` transaction already holds the database's write lock.)

Durations go into fixed log-scale buckets (``duration_bucket``): four per
doubling, so a median or p90 read from the buckets (``hist_quantile``, the
bucket's geometric middle) is within 9% of the true value, and buckets of
any set of days simply add up.

Beat runs the update every minute (``workbench.tasks.metrics_rollup``); the
dashboard also runs it when it is behind by at most ``LAZY_MAX_EVENTS``
events, which keeps the embedded (eager, beat-less) mode fresh without ever
making a page view pay for a large backlog.

What is counted
---------------
- volumes: ``case.received``; routed to a person (and by which rule, or the
  QA sample, or the kill switch) or finalized by the AI: ``case.routed``;
- human decisions, agreements, overrides: ``case.decided`` (a first review of
  two, ``case.reviewed``, is not a decision yet); time to human decision:
  from the case's creation to its ``case.decided``;
- QA sample: ``case.decided`` of a case routed with reason ``qa_sample``; an
  ``override`` is an error of the AI;
- appeals: ``appeal.filed`` / ``appeal.decided``, by the outcome appealed
  (its "basis"); time to appeal decision: from filing to decision;
  "changed on appeal" (the overturn rate) counts ``overturned`` and
  ``modified``, both shown apart as well;
- deadline breaches: ``case.overdue`` (a task not decided by its due time);
- fairness: per value of each field named in the case's policy
  ``fairness_segments`` (e.g. ``metadata.region``; the values are in
  ``case.routed``), the first final outcome (``case.routed`` finalized by the
  AI, or ``case.decided``) and whether it is adverse (the events' ``adverse``:
  the policy's ``adverse_outcomes`` when it was recorded), overrides, and
  appeals decided and changed.

Events are counted on the UTC day they happened.

Everything here is read from the trail (DESIGN §2: compliance metrics read
from the trail), never from the tables of ``reviews`` or ``escalations``:
what the figures say can be checked against an exported bundle.
"""

import csv
import io
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from workbench.models import (
    AISystem,
    DailyRollup,
    MetricsCursor,
    SegmentRollup,
    TrailEvent,
    TrailHead,
)
from workbench.services.trail import format_at, trail_integrate

BATCH = 2_000
LAZY_MAX_EVENTS = 2_000
Z95 = 1.959963984540054  # the 97.5% point of the standard normal

COUNTED = (
    "case.received",
    "case.routed",
    "case.decided",
    "case.escalated",
    "case.overdue",
    "appeal.filed",
    "appeal.decided",
)
DAILY_COUNTERS = (
    "received",
    "routed_human",
    "auto_finalized",
    "auto_adverse",
    "human_decided",
    "human_adverse",
    "agreed",
    "overridden",
    "escalated",
    "qa_reviewed",
    "qa_errors",
    "appeals_filed",
    "appeals_decided",
    "appeals_upheld",
    "appeals_overturned",
    "appeals_modified",
    "overdue",
)
DAILY_MAPS = ("routed_by", "appeals_by_basis", "decide_hist", "appeal_hist")
SEGMENT_COUNTERS = (
    "finalized",
    "adverse",
    "human_decided",
    "overridden",
    "appeals_decided",
    "appeals_changed",
)
NO_VALUE = "(none)"


# --- Histogram buckets -------------------------------------------------------------------

BUCKETS_PER_DOUBLING = 4
MAX_BUCKET = 27 * BUCKETS_PER_DOUBLING  # 2^27 s, about 4 years


def duration_bucket(seconds: float) -> int:
    """The bucket of a duration: 0 holds up to 1 s, bucket ``i`` the durations
    in (2^((i-1)/4), 2^(i/4)] seconds. Fixed for ever: changing it means
    rebuilding the rollups (``metrics_rollup_reset``)."""
    if seconds <= 1:
        return 0
    index = math.ceil(BUCKETS_PER_DOUBLING * math.log2(seconds) - 1e-9)
    return min(max(index, 1), MAX_BUCKET)


def bucket_bounds(index: int) -> tuple[float, float]:
    if index == 0:
        return 0.0, 1.0
    return 2 ** ((index - 1) / BUCKETS_PER_DOUBLING), 2 ** (index / BUCKETS_PER_DOUBLING)


def hist_quantile(hist: dict, q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) of a bucket histogram: the geometric
    middle of the bucket that holds the ceil(q * n)-th smallest duration."""
    counts = sorted((int(index), count) for index, count in hist.items() if count)
    total = sum(count for _, count in counts)
    if not total:
        return None
    rank = max(1, math.ceil(q * total - 1e-9))
    seen = 0
    for index, count in counts:
        seen += count
        if seen >= rank:
            low, high = bucket_bounds(index)
            return high if index == 0 else math.sqrt(low * high)
    raise AssertionError("unreachable")


def hist_add(into: dict, other: dict) -> dict:
    get = into.get
    for index, count in other.items():
        into[index] = get(index, 0) + count
    return into


# --- Proportions and their intervals -----------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """``x`` of ``n``, with its 95% Wilson score interval."""

    x: int
    n: int

    @property
    def value(self) -> float | None:
        return self.x / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.x, self.n) if self.n else None

    @property
    def low(self) -> float | None:
        return self.interval[0] if self.n else None

    @property
    def high(self) -> float | None:
        return self.interval[1] if self.n else None


def wilson_interval(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``x`` successes in ``n`` trials: unlike
    the textbook p ± z·se, it stays inside [0, 1] and holds up for small
    ``n`` and for rates near 0 or 1 (an error rate of 0 of 40 still gets an
    upper bound)."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = x / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(a: Rate, b: Rate) -> tuple[float, float]:
    """95% interval of ``a.value - b.value`` by Newcombe's hybrid score method
    (1998, method 10), built from the two Wilson intervals: it keeps Wilson's
    good coverage for small groups and rates near 0 or 1, where the Wald
    interval of a difference is far too narrow."""
    p1, p2 = a.value, b.value
    l1, u1 = a.interval
    l2, u2 = b.interval
    d = p1 - p2
    return (
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


# --- The rollup update -------------------------------------------------------------------


@dataclass
class RollupRun:
    events: int = 0  # events read (all actions)
    counted: int = 0  # events that changed a rollup
    batches: int = 0
    cursor: int = 0  # the cursor afterwards
    skipped: bool = False  # another update held the cursor (lazy mode only)


def _empty_daily() -> dict:
    return {**dict.fromkeys(DAILY_COUNTERS, 0), **{name: {} for name in DAILY_MAPS}}


@dataclass
class _Batch:
    daily: dict = field(default_factory=lambda: defaultdict(_empty_daily))
    segments: dict = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(SEGMENT_COUNTERS, 0))
    )


def metrics_rollup_update(
    *, max_events: int | None = None, wait: bool = True, batch: int = BATCH
) -> RollupRun:
    """Count the trail events after the cursor into the rollups, batch by
    batch, each batch in its own transaction under the cursor's row lock.

    ``max_events``: do nothing (return at once) when more events than this
    are waiting; the dashboard's lazy mode. ``wait=False``: when another
    update holds the cursor, skip instead of queuing behind it (PostgreSQL;
    SQLite serializes writers anyway). Idempotent: running it again with no
    new events reads nothing."""
    trail_integrate()  # count every committed event
    run = RollupRun()
    head = TrailHead.objects.filter(id=1).values_list("seq", flat=True).first() or 0
    cursor = MetricsCursor.objects.filter(id=1).values_list("seq", flat=True).first()
    if cursor is None:
        MetricsCursor.objects.bulk_create([MetricsCursor(id=1)], ignore_conflicts=True)
        cursor = 0
    run.cursor = cursor
    if cursor >= head:
        return run  # up to date: two reads, no lock
    if max_events is not None and head - cursor > max_events:
        run.skipped = True
        return run
    while True:
        with transaction.atomic():
            locked = MetricsCursor.objects.select_for_update(skip_locked=not wait).filter(id=1)
            cursor = locked.first()
            if cursor is None:  # held by another update
                run.skipped = True
                return run
            run.cursor = cursor.seq
            if cursor.seq >= head:
                return run
            upto = min(cursor.seq + batch, head)
            run.counted += _count_range(cursor.seq, upto)
            run.events += upto - cursor.seq
            run.batches += 1
            cursor.seq = run.cursor = upto
            cursor.updated_at = timezone.now()
            cursor.save(update_fields=["seq", "updated_at"])


@transaction.atomic
def metrics_rollup_reset() -> None:
    """Empty the rollups and rewind the cursor: the next update recounts the
    whole trail (after a change to what is counted or to the buckets)."""
    cursor, _ = MetricsCursor.objects.select_for_update().get_or_create(id=1)
    DailyRollup.objects.all().delete()
    SegmentRollup.objects.all().delete()
    cursor.seq = 0
    cursor.updated_at = timezone.now()
    cursor.save(update_fields=["seq", "updated_at"])


def _count_range(after: int, upto: int) -> int:
    events = list(
        TrailEvent.objects.filter(seq__gt=after, seq__lte=upto, action__in=COUNTED)
        .order_by("seq")
        .values_list("at", "action", "case", "system", "body")
    )
    if not events:
        return 0
    cases = _cases_from_trail({event[2] for event in events if event[2]}, upto)
    # The filing time of each appeal decided in this batch (filed, perhaps, in
    # an earlier one), from its appeal.filed event.
    appealed = {event[2] for event in events if event[1] == "appeal.decided"}
    filed = {}
    if appealed:
        for reference, at, body in TrailEvent.objects.filter(
            case__in=appealed, action="appeal.filed", seq__lte=upto
        ).values_list("case", "at", "body"):
            number = json.loads(body)["data"].get("appeal")
            filed[(reference, number)] = _moment(at)

    batch = _Batch()
    counted = 0
    for at, action, reference, system, body in events:
        case = cases.get(reference)
        if not system or case is None:
            continue  # not about one case of one system
        _count(batch, action, json.loads(body)["data"], _moment(at), system, case, filed)
        counted += 1
    _save(batch)
    return counted


@dataclass
class _CaseFacts:
    """What the metrics need of a case, from its case.received and case.routed."""

    reference: str
    model_version: str = ""
    created_at: datetime | None = None
    route_reason: str = ""
    adverse: bool = False  # the AI's outcome
    segments: dict = field(default_factory=dict)


def _cases_from_trail(references: set[str], upto: int) -> dict[str, _CaseFacts]:
    cases: dict[str, _CaseFacts] = {}
    if not references:
        return cases
    for reference, action, at, body in TrailEvent.objects.filter(
        case__in=references, action__in=("case.received", "case.routed"), seq__lte=upto
    ).values_list("case", "action", "at", "body"):
        data = json.loads(body)["data"]
        case = cases.setdefault(reference, _CaseFacts(reference))
        if action == "case.received":
            case.model_version = (data.get("model") or {}).get("version") or ""
            case.created_at = _moment(at)
        elif not case.route_reason:  # the first route
            case.route_reason = data.get("reason") or ""
            case.adverse = bool(data.get("adverse"))
            case.segments = data.get("segments") or {}
    return {reference: case for reference, case in cases.items() if case.created_at}


def _moment(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def _count(batch: _Batch, action, data, moment, system, case: _CaseFacts, filed) -> None:
    day = moment.date()
    row = batch.daily[(day, system, case.model_version)]
    segments = [
        batch.segments[(day, system, segment, NO_VALUE if value is None else value)]
        for segment, value in case.segments.items()
    ]

    def bump(name: str, by: int = 1) -> None:
        for seg in segments:
            seg[name] += by

    if action == "case.received":
        row["received"] += 1
    elif action == "case.routed":
        if data.get("status") == "finalized":
            row["auto_finalized"] += 1
            is_adverse = bool(data.get("adverse"))
            row["auto_adverse"] += is_adverse
            bump("finalized")
            bump("adverse", is_adverse)
        else:
            row["routed_human"] += 1
            reason = data.get("reason") or "rule"
            key = f"rule:{data.get('rule')}" if reason == "rule" else reason
            row["routed_by"][key] = row["routed_by"].get(key, 0) + 1
    elif action == "case.decided":
        verdict = data.get("verdict")
        is_adverse = bool(data.get("adverse"))
        row["human_decided"] += 1
        row["human_adverse"] += is_adverse
        row["agreed"] += verdict == "agree"
        row["overridden"] += verdict == "override"
        bucket = str(duration_bucket((moment - case.created_at).total_seconds()))
        row["decide_hist"][bucket] = row["decide_hist"].get(bucket, 0) + 1
        if case.route_reason == "qa_sample":
            row["qa_reviewed"] += 1
            row["qa_errors"] += verdict == "override"
        bump("finalized")
        bump("adverse", is_adverse)
        bump("human_decided")
        bump("overridden", verdict == "override")
    elif action == "case.escalated":
        row["escalated"] += 1
    elif action == "case.overdue":
        row["overdue"] += 1
    elif action == "appeal.filed":
        row["appeals_filed"] += 1
        basis = row["appeals_by_basis"].setdefault(data.get("outcome_appealed") or "", {})
        basis["filed"] = basis.get("filed", 0) + 1
    elif action == "appeal.decided":
        outcome = data.get("outcome")
        row["appeals_decided"] += 1
        if outcome in ("upheld", "overturned", "modified"):
            row[f"appeals_{outcome}"] += 1
        basis = row["appeals_by_basis"].setdefault(data.get("outcome_appealed") or "", {})
        basis[outcome] = basis.get(outcome, 0) + 1
        filed_at = filed.get((case.reference, data.get("appeal")))
        if filed_at is not None:
            bucket = str(duration_bucket((moment - filed_at).total_seconds()))
            row["appeal_hist"][bucket] = row["appeal_hist"].get(bucket, 0) + 1
        bump("appeals_decided")
        bump("appeals_changed", outcome in ("overturned", "modified"))


def _merge_map(into: dict, other: dict) -> dict:
    for key, value in other.items():
        if isinstance(value, dict):
            _merge_map(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value
    return into


def _save(batch: _Batch) -> None:
    # The rows of the batch's days, read once; the cursor lock keeps any other
    # writer out until this transaction ends.
    if batch.daily:
        days = {key[0] for key in batch.daily}
        existing = {
            (row.day, row.system, row.model_version): row
            for row in DailyRollup.objects.filter(day__in=days)
        }
        new, changed = [], []
        for key, counts in batch.daily.items():
            row = existing.get(key)
            if row is None:
                row = DailyRollup(day=key[0], system=key[1], model_version=key[2])
                new.append(row)
            else:
                changed.append(row)
            for name in DAILY_COUNTERS:
                setattr(row, name, getattr(row, name) + counts[name])
            for name in DAILY_MAPS:
                setattr(row, name, _merge_map(dict(getattr(row, name) or {}), counts[name]))
        DailyRollup.objects.bulk_create(new, batch_size=500)
        DailyRollup.objects.bulk_update(changed, [*DAILY_COUNTERS, *DAILY_MAPS], batch_size=500)
    if batch.segments:
        days = {key[0] for key in batch.segments}
        existing = {
            (row.day, row.system, row.segment, row.value): row
            for row in SegmentRollup.objects.filter(day__in=days)
        }
        new, changed = [], []
        for key, counts in batch.segments.items():
            row = existing.get(key)
            if row is None:
                row = SegmentRollup(day=key[0], system=key[1], segment=key[2], value=key[3])
                new.append(row)
            else:
                changed.append(row)
            for name in SEGMENT_COUNTERS:
                setattr(row, name, getattr(row, name) + counts[name])
        SegmentRollup.objects.bulk_create(new, batch_size=500)
        SegmentRollup.objects.bulk_update(changed, list(SEGMENT_COUNTERS), batch_size=500)


# --- Reports read from the rollups -------------------------------------------------------


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

    def add(self, counts: dict, routed_by: dict, by_basis: dict, decide: dict, appeal: dict):
        for name, value in counts.items():
            self.counts[name] += value
        _merge_map(self.routed_by, routed_by)
        _merge_map(self.appeals_by_basis, by_basis)
        hist_add(self.decide_hist, decide)
        hist_add(self.appeal_hist, appeal)

    def merge(self, other: "SystemMetrics") -> None:
        self.add(
            other.counts,
            other.routed_by,
            other.appeals_by_basis,
            other.decide_hist,
            other.appeal_hist,
        )

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
            rated = [v for v in values if getattr(v, metric).n >= max(min_cases, 1)]
            if len(rated) < 2:
                continue
            high = max(rated, key=lambda v: (getattr(v, metric).value, v.value))
            low = min(rated, key=lambda v: (getattr(v, metric).value, v.value))
            a, b = getattr(high, metric), getattr(low, metric)
            gaps.append(
                Gap(metric, high.value, low.value, a.value - b.value, newcombe_interval(a, b))
            )
        reports.append(SegmentReport(system, names.get(system, system), segment, values, gaps))
    return reports


# --- Automation bias ---------------------------------------------------------------------


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


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


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
    trail_integrate()
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
        median = _median(person["adverse"])
        flagged = (
            person["n"] >= rules.min_cases
            and median is not None
            and median < rules.median_seconds
            and person["agreed"] / person["n"] > rules.agreement
        )
        reviewers.append(
            ReviewerWeek(
                username=username,
                decisions=person["n"],
                agreed=person["agreed"],
                adverse=len(person["adverse"]),
                adverse_median=median,
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


# --- The transparency report (DSA Article 24) --------------------------------------------


@dataclass
class TransparencyReport:
    start: date
    end: date
    systems: list[SystemMetrics]
    total: SystemMetrics


def transparency_report(*, start: date, end: date, refresh: bool = True) -> TransparencyReport:
    """The figures DSA Article 24 asks of a transparency report, per AI
    system and in total, over the UTC days ``start``..``end``: decisions,
    the share taken by automated means alone, complaints (appeals) by their
    basis (the outcome appealed) and their outcomes, median time to decide
    (first decision and appeal), and reversals. ``refresh`` first brings the
    rollups up to date (whatever the backlog)."""
    if refresh:
        metrics_rollup_update()
    report = metrics_report(start=start, end=end)
    return TransparencyReport(start=start, end=end, systems=report.systems, total=report.total)


def transparency_rows(report: TransparencyReport) -> list[list]:
    """The report as rows ``[system, figure, basis, value]``, header first."""

    def seconds(value):
        return "" if value is None else round(value)

    rows: list[list] = [["system", "figure", "basis", "value"]]
    for metrics in [*report.systems, report.total]:
        slug = metrics.system or "all"
        c = metrics.counts
        share = metrics.automated_share.value
        rows += [
            [slug, "decisions", "", metrics.finalized],
            [slug, "decisions_automated", "", c["auto_finalized"]],
            [slug, "decisions_by_a_person", "", c["human_decided"]],
            [slug, "share_automated", "", "" if share is None else f"{share:.4f}"],
            [slug, "human_overrides_of_ai", "", c["overridden"]],
            [slug, "median_seconds_to_human_decision", "", seconds(metrics.decide_median)],
            [slug, "complaints_received", "", c["appeals_filed"]],
            [slug, "complaints_decided", "", c["appeals_decided"]],
        ]
        for basis, counts in sorted(metrics.appeals_by_basis.items()):
            rows.append([slug, "complaints_received", basis, counts.get("filed", 0)])
            for outcome in ("upheld", "overturned", "modified"):
                rows.append([slug, f"complaints_{outcome}", basis, counts.get(outcome, 0)])
        rows += [
            [slug, "complaints_upheld", "", c["appeals_upheld"]],
            [slug, "complaints_overturned", "", c["appeals_overturned"]],
            [slug, "complaints_modified", "", c["appeals_modified"]],
            [slug, "reversals", "", metrics.appeals_changed],
            [slug, "median_seconds_to_complaint_decision", "", seconds(metrics.appeal_median)],
            [slug, "deadline_breaches", "", c["overdue"]],
        ]
    return rows


def transparency_render(*, start: date, end: date, fmt: str = "csv", lazy: bool = False) -> str:
    """The transparency report as CSV or as a readable HTML page. The rollups
    are brought up to date first: fully (the command), or ``lazy`` as the
    dashboard does (a download never waits on a large backlog)."""
    if lazy:
        metrics_rollup_update(max_events=LAZY_MAX_EVENTS, wait=False)
    report = transparency_report(start=start, end=end, refresh=not lazy)
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(transparency_rows(report))
        return out.getvalue()
    if fmt == "html":
        return render_to_string(
            "workbench/compliance_transparency.html",
            {"report": report, "generated_at": timezone.now()},
        )
    raise ValueError(f"unknown format {fmt!r}")
