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

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from workbench.metrics.hybrid import HANDLINGS, QUEUE_MOVES, hybrid_count
from workbench.metrics.stats import counts_add, duration_bucket
from workbench.models import (
    DailyRollup,
    MetricsCursor,
    SegmentRollup,
    TrailEvent,
    TrailHead,
)
from workbench.services.trail import trail_integrate

BATCH = 2_000
LAZY_MAX_EVENTS = 2_000

COUNTED = (
    "case.received",
    "case.routed",
    "case.reviewed",
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
    "reviewer_seconds",
    "touched",
    "reworked",
)
DAILY_MAPS = (
    "routed_by",
    "appeals_by_basis",
    "decide_hist",
    "appeal_hist",
    "verdicts_by_queue",
    "reviewers",
    "rework_by",
)
SEGMENT_COUNTERS = (
    "finalized",
    "adverse",
    "human_decided",
    "overridden",
    "appeals_decided",
    "appeals_changed",
)
NO_VALUE = "(none)"


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
        .values_list("seq", "at", "action", "case", "system", "body")
    )
    if not events:
        return 0
    cases = _cases_from_trail({event[3] for event in events if event[3]}, upto)
    # The filing time of each appeal decided in this batch (filed, perhaps, in
    # an earlier one), from its appeal.filed event.
    appealed = {event[3] for event in events if event[2] == "appeal.decided"}
    filed = {}
    if appealed:
        for reference, at, body in TrailEvent.objects.filter(
            case__in=appealed, action="appeal.filed", seq__lte=upto
        ).values_list("case", "at", "body"):
            number = json.loads(body)["data"].get("appeal")
            filed[(reference, number)] = _moment(at)

    batch = _Batch()
    counted = 0
    for seq, at, action, reference, system, body in events:
        case = cases.get(reference)
        if not system or case is None:
            continue  # not about one case of one system
        event = json.loads(body)
        _count(batch, action, event["data"], _moment(at), system, case, filed)
        hybrid_count(
            batch.daily[(_moment(at).date(), system, case.model_version)],
            batch.daily[(case.created_at.date(), system, case.model_version)],
            action=action,
            data=event["data"],
            actor=event.get("actor") or {},
            seq=seq,
            handlings=case.handlings,
            moves=case.moves,
        )
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
    # For the hybrid figures: a person's handlings (seq, action) and the
    # case's moves between queues (seq, queue), up to the batch's end.
    handlings: list = field(default_factory=list)
    moves: list = field(default_factory=list)


def _cases_from_trail(references: set[str], upto: int) -> dict[str, _CaseFacts]:
    cases: dict[str, _CaseFacts] = {}
    if not references:
        return cases
    actions = {"case.received", "case.routed", *HANDLINGS, *QUEUE_MOVES}
    for seq, reference, action, at, body in (
        TrailEvent.objects.filter(case__in=references, action__in=actions, seq__lte=upto)
        .order_by("seq")
        .values_list("seq", "case", "action", "at", "body")
    ):
        event = json.loads(body)
        data = event["data"]
        case = cases.setdefault(reference, _CaseFacts(reference))
        if action in HANDLINGS and (event.get("actor") or {}).get("type") == "user":
            case.handlings.append((seq, action))
        if action in QUEUE_MOVES:
            case.moves.append((seq, data.get(QUEUE_MOVES[action])))
        if action == "case.received":
            case.model_version = (data.get("model") or {}).get("version") or ""
            case.created_at = _moment(at)
        elif action == "case.routed" and not case.route_reason:  # the first route
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
                setattr(row, name, counts_add(dict(getattr(row, name) or {}), counts[name]))
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
