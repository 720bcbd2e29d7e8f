"""Reads of cases: the active policy, a system's case, its trail and its
changes since a cursor, its decisions, what its customer wrote."""

import json
from dataclasses import dataclass
from datetime import datetime

from reviews.models import (
    Case,
    Decision,
    Policy,
    ReasonCode,
    SubjectText,
)
from workbench.errors import Invalid, NotFound, Unavailable
from workbench.models import AISystem, TrailEvent, TrailHead
from workbench.services import trail_integrate


def policy_active(*, system: AISystem) -> Policy:
    """The policy version in force: the latest published."""
    policy = Policy.objects.filter(system=system).order_by("-version").first()
    if policy is None:
        raise Unavailable(
            f"the AI system {system.slug!r} has no routing policy yet; "
            "publish one with load_policy",
            "no_policy",
        )
    return policy


def case_get_for_system(*, system: AISystem, reference: str) -> Case:
    """A case of ``system`` by reference; another system's case is not found."""
    case = Case.objects.filter(system=system, reference=reference).first()
    if case is None:
        raise NotFound(f"no case {reference!r}", "case_not_found")
    return case


def case_trail(*, case: Case) -> list[TrailEvent]:
    trail_integrate()  # read your writes (DESIGN §6)
    return list(TrailEvent.objects.filter(case=case.reference).order_by("seq"))


# --- Keeping in step: the cases changed since a cursor (GET /api/v1/cases) ---------------

FEED_SCAN = 2000  # trail events read per step
FEED_SCAN_MAX = 50_000  # and at most per page: a page always moves the cursor on


@dataclass
class CaseChange:
    case: Case
    seq: int  # the latest change of the case up to the page's cursor
    at: str
    appeal_events: list[dict]  # the case's appeal.* events, as exported, oldest first


@dataclass
class CaseFeedPage:
    changes: list[CaseChange]  # by seq
    next_after: int  # the cursor for the next page (the given one when nothing changed)
    has_more: bool


def case_feed(*, system: AISystem, after: int, limit: int) -> CaseFeedPage:
    """The cases of ``system`` that changed after the trail's ``seq``
    ``after``, each once, at its latest change up to the returned cursor.

    Every change of a case writes a trail event, so the trail is the feed:
    its events are read in ``seq`` order and the cursor is the ``seq`` of
    the last one consumed. A case that changes again later comes back on a
    later page, with its later ``seq``; the case's state is read as it is
    now (it may be newer than its ``seq``, never older). Because an event
    is visible only with every lower ``seq`` (the chain is integrated in
    order), a cursor never skips a change that committed late, as a time
    would. The one place the feed reads the trail: whatever changes in how
    events get their ``seq`` has to keep that promise here. A cursor past
    the chain's head is refused (``bad_cursor``)."""
    trail_integrate()  # read your writes (DESIGN §6)
    head = TrailHead.objects.filter(id=1).values_list("seq", flat=True).first() or 0
    if after > head:
        raise Invalid(
            "the cursor is past the end of the trail",
            "bad_cursor",
            fields=[
                {
                    "path": "updated_after",
                    "message": f"{after} is after the trail's last seq ({head}); "
                    "use a next_updated_after this API returned, or 0",
                }
            ],
        )
    latest: dict[str, tuple[int, str]] = {}
    cursor, scanned, more = after, 0, False
    while not more:
        rows = list(
            TrailEvent.objects.filter(system=system.slug, case__isnull=False, seq__gt=cursor)
            .order_by("seq")
            .values_list("seq", "case", "at")[:FEED_SCAN]
        )
        for seq, reference, at in rows:
            if reference not in latest and len(latest) == limit:
                more = True
                break
            latest[reference] = (seq, at)
            cursor = seq
        scanned += len(rows)
        if len(rows) < FEED_SCAN:
            break
        if scanned >= FEED_SCAN_MAX:
            more = True
    cases = {
        case.reference: case
        for case in Case.objects.filter(system=system, reference__in=list(latest))
    }
    appeals: dict[str, list[dict]] = {}
    events = TrailEvent.objects.filter(case__in=list(cases), action__startswith="appeal.").order_by(
        "seq"
    )
    for event in events:
        appeals.setdefault(event.case, []).append(
            {**json.loads(event.body), "prev_hash": event.prev_hash, "hash": event.hash}
        )
    changes = [
        CaseChange(case=cases[reference], seq=seq, at=at, appeal_events=appeals.get(reference, []))
        for reference, (seq, at) in sorted(latest.items(), key=lambda item: item[1][0])
        if reference in cases
    ]
    return CaseFeedPage(changes=changes, next_after=cursor, has_more=more)


def reason_codes_for(*, system: AISystem) -> list[ReasonCode]:
    """The codes a reviewer of ``system`` may pick from: the active ones, by code."""
    return list(ReasonCode.objects.filter(system=system, active=True).order_by("code"))


def case_decisions(*, case: Case) -> list[Decision]:
    """The people's decisions on the case, oldest first, with who made them."""
    return list(
        Decision.objects.filter(case=case)
        .select_related("reviewer", "task__queue")
        .order_by("created_at", "id")
    )


# --- What the customer wrote ----------------------------------------------------------------


def case_input_opened(*, case: Case):
    """The case's input as the AI system sent it, for people who may read it:
    the customer's turns of its conversation get their words back from where
    they are sealed (``SubjectText``). Once erased (or for a subject erased
    before the case came in) such a turn has ``"erased": true`` and no text."""
    data = case.input
    conversation = data.get("conversation") if isinstance(data, dict) else None
    if not isinstance(conversation, list):
        return data
    sealed = [
        index
        for index, turn in enumerate(conversation)
        if isinstance(turn, dict) and turn.get("role") == "customer" and "text" not in turn
    ]
    if not sealed:
        return data  # no customer turn, or a case stored before turns were sealed
    from reviews.services.subjects import subject_text_open  # services import selectors

    row = SubjectText.objects.filter(case=case, kind=SubjectText.Kind.CONVERSATION).first()
    words = (subject_text_open(row, subject=case.subject) if row else None) or {}
    turns = list(conversation)
    for index in sealed:
        text = words.get(str(index))
        turns[index] = {
            **turns[index],
            **({"text": text} if text is not None else {"erased": True}),
        }
    return {**data, "conversation": turns}


@dataclass
class Contest:
    at: datetime
    reason: str | None  # None once erased


def case_contests(*, case: Case) -> list[Contest]:
    """Why the case was contested, each time, oldest first: the customer's
    words, sealed, shown to whoever reviews the case."""
    from reviews.services.subjects import subject_text_open  # services import selectors

    rows = SubjectText.objects.filter(case=case, kind=SubjectText.Kind.CONTEST).order_by(
        "created_at", "pk"
    )
    return [Contest(row.created_at, subject_text_open(row, subject=case.subject)) for row in rows]


def case_appeal_state(trail: list[dict]) -> dict | None:
    """The latest appeal of a case, as its trail (``trail_event_as_dict``
    rows) tells it: appeals live in the escalations app, which this one does
    not import."""
    state = None
    for event in trail:
        data = event["data"]
        if event["action"] == "appeal.filed":
            state = {
                "number": data["appeal"],
                "status": "received",
                "filed_at": event["at"],
                "due_at": data["due_at"],
                "outcome": None,
                "final_outcome": None,
                "decided_at": None,
            }
        elif state and event["action"] == "appeal.statement_opened":
            state["status"] = "under_review"
        elif state and event["action"] == "appeal.decided":
            state.update(
                status="decided",
                outcome=data["outcome"],
                final_outcome=data["final_outcome"],
                decided_at=event["at"],
            )
    return state
