"""The trail of one AI system's cases over a range, read once for the
connection index and the justice audit (``connection``, ``justice``).

Like the rubber-stamp report, these figures are read from the trail itself,
not from the rollups: they follow each case through its events (who acted
first, which appeal answered which filing, the latest feedback), which day
counters cannot. A scorecard reads, per system and range: the references of
the cases with an event in the range (one query on the trail's indexed
``system`` and ``at``), their events up to the end of the range (one query
per 500 cases, on the indexed ``case``), the system's ``case.received`` of
the 30 days before as well (repeat contact), the users' reporting lines and
the policy's thresholds as the trail recorded them. Nothing after the end of
the range is read: a scorecard of a past range stays what it was.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from workbench.metrics.thresholds import audit_defaults
from workbench.models import TrailEvent
from workbench.services.trail import format_at, trail_integrate

CHUNK = 500
REPEAT_DAYS = 30
# A compliance officer reading a case (case.viewed) is no part in it.
NOT_HUMAN_ACTIONS = frozenset({"case.viewed"})


@dataclass(frozen=True)
class Event:
    seq: int
    at: datetime
    action: str
    actor_type: str
    actor_id: str
    data: dict


@dataclass
class CaseFile:
    reference: str
    model_version: str = ""
    subject: str = ""
    received_at: datetime | None = None
    sentiment: float | None = None
    route: dict = field(default_factory=dict)  # the first case.routed's data
    events: list[Event] = field(default_factory=list)  # in trail order

    @property
    def queue(self) -> str:
        return self.route.get("queue") or ""

    def of(self, *actions: str) -> list[Event]:
        return [event for event in self.events if event.action in actions]

    def first_human_after(self, moment: datetime) -> Event | None:
        """The first action of a person (actor type user) at or after ``moment``."""
        for event in self.events:
            if (
                event.at >= moment
                and event.actor_type == "user"
                and event.action not in NOT_HUMAN_ACTIONS
            ):
                return event
        return None

    def latest_feedback(self) -> Event | None:
        """The answer in force: a changed answer supersedes the earlier one."""
        answers = self.of("case.feedback")
        return answers[-1] if answers else None


@dataclass
class SystemTrail:
    system: str
    start: datetime  # the range: start <= at < end
    end: datetime
    cases: dict[str, CaseFile]
    earlier_received: list[tuple[datetime, str, str]]  # (at, subject, reference), before start
    managers: dict[str, str | None]  # username -> manager, as of the end
    thresholds: dict[str, float]
    policy_version: int | None = None
    segments_named: list[str] = field(default_factory=list)

    def in_range(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end

    def versions(self) -> list[str]:
        return sorted({case.model_version for case in self.cases.values()})


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """UTC days ``start``..``end``, both included, as [from, until)."""
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def moment_of(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def system_trail(*, system: str, start: date, end: date) -> SystemTrail:
    """The trail of ``system``'s cases with an event in the UTC days
    ``start``..``end``, each with its events up to the end of the range."""
    trail_integrate()  # every committed event (DESIGN §6: read your writes)
    since, until = day_bounds(start, end)
    lo, hi = format_at(since), format_at(until)
    references = sorted(
        set(
            TrailEvent.objects.filter(system=system, at__gte=lo, at__lt=hi)
            .exclude(case=None)
            .values_list("case", flat=True)
        )
    )
    cases: dict[str, CaseFile] = {}
    for i in range(0, len(references), CHUNK):
        rows = (
            TrailEvent.objects.filter(case__in=references[i : i + CHUNK], at__lt=hi)
            .order_by("seq")
            .values_list("seq", "body")
        )
        for seq, body in rows:
            event = json.loads(body)
            reference = event["case"]
            case = cases.setdefault(reference, CaseFile(reference))
            data, action = event.get("data") or {}, event["action"]
            at = moment_of(event["at"])
            actor = event.get("actor") or {}
            case.events.append(Event(seq, at, action, actor.get("type"), actor.get("id"), data))
            if action == "case.received":
                case.model_version = (data.get("model") or {}).get("version") or ""
                case.subject = data.get("subject") or ""
                case.received_at = at
                case.sentiment = data.get("sentiment")
            elif action == "case.routed" and not case.route:
                case.route = data
    earlier = []
    for at, body in TrailEvent.objects.filter(
        system=system,
        action="case.received",
        at__gte=format_at(since - timedelta(days=REPEAT_DAYS)),
        at__lt=lo,
    ).values_list("at", "body"):
        event = json.loads(body)
        earlier.append((moment_of(at), event["data"].get("subject") or "", event["case"]))
    managers: dict[str, str | None] = {}
    for body in (
        TrailEvent.objects.filter(action__in=("user.created", "user.changed"), at__lt=hi)
        .order_by("seq")
        .values_list("body", flat=True)
    ):
        data = json.loads(body)["data"]
        if data.get("username"):
            managers[data["username"]] = data.get("manager")
    policy = (
        TrailEvent.objects.filter(system=system, action="policy.published", at__lt=hi)
        .order_by("-seq")
        .values_list("body", flat=True)
        .first()
    )
    thresholds, version = audit_defaults(), None
    if policy is not None:
        data = json.loads(policy)["data"]
        thresholds.update(data.get("audit") or {})  # published before #16: the defaults
        version = data.get("version")
    named = sorted({name for case in cases.values() for name in (case.route.get("segments") or {})})
    return SystemTrail(
        system=system,
        start=since,
        end=until,
        cases={ref: case for ref, case in cases.items() if case.received_at is not None},
        earlier_received=earlier,
        managers=managers,
        thresholds=thresholds,
        policy_version=version,
        segments_named=named,
    )
