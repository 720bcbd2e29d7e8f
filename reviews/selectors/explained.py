"""The case for people: why its route sent it to a person, and its trail
as a history, blind or not."""

import json
from dataclasses import dataclass, field
from datetime import datetime

from reviews.models import (
    Case,
)
from reviews.selectors.blind import (
    BLIND_HIDDEN_FIELD_PARTS,
    BLIND_NOTE,
    BLIND_SHOWN_FIELD_ROOTS,
    BLIND_SHOWN_LEAVES,
    BLIND_TRAIL,
    BLIND_TRAIL_ROUTE,
)
from reviews.selectors.cases import case_trail

# --- The route, explained ---------------------------------------------------------------

FIELD_OPS_SHOWN = {
    "eq": "=",
    "ne": "≠",
    "gt": ">",
    "ge": "≥",
    "lt": "<",
    "le": "≤",
    "in": "in",
    "contains": "contains",
    "exists": "exists",
}


@dataclass
class ConditionNode:
    label: str
    result: bool
    blind_ok: bool = True  # a blind reviewer may see it (and every part of it)
    score: float | None = None  # sentiment leaves: the customer's VADER score
    children: list["ConditionNode"] = field(default_factory=list)


@dataclass
class RuleResult:
    rule: str
    matched: bool
    fired: bool  # the rule that routed the case
    tree: ConditionNode


@dataclass
class RouteView:
    """The route as the page shows it. Blind, a rule that tests the AI's
    outcome or confidence is withheld whole (its name may tell the outcome:
    ``adverse-needs-human``), and so is anything that would tell its result:
    which rule routed the case when one such rule comes before it, and a QA
    sample or no match at all, which say that every rule failed."""

    reason: str  # "rule", "qa_sample", "system_stopped", "default"; "" when withheld
    rule: str | None  # the rule that routed the case, when shown
    queue: str | None
    policy_version: int | None
    rules: list[RuleResult]  # the rules shown, in policy order
    withheld: int = 0  # rules withheld from a blind reviewer

    @property
    def disclosed(self) -> bool:
        return bool(self.reason)


def route_explained(*, route: dict, blind: bool) -> RouteView:
    """Every rule of the route with its result and its condition tree, and
    why the case came to a person; ``blind``: only what BLIND_* allows."""
    rules: list[RuleResult] = []
    withheld = 0
    fired_shown = False  # the rule that routed the case is shown, and none withheld before it
    for entry in route.get("conditions") or []:
        tree = _condition_node(entry.get("when") or {})
        fired = route.get("reason") == "rule" and entry.get("rule") == route.get("rule")
        if blind and not tree.blind_ok:
            withheld += 1
            continue
        if fired and not withheld:
            fired_shown = True
        rules.append(RuleResult(str(entry.get("rule")), bool(entry.get("matched")), fired, tree))
    reason = str(route.get("reason") or "")
    # With a rule withheld, a QA sample or no match says "none matched", and
    # the rule that routed the case says that those before it did not.
    telling = reason != "system_stopped" and not (reason == "rule" and fired_shown)
    if blind and withheld and telling:
        reason = ""
        for rule in rules:
            rule.fired = False
    return RouteView(
        reason=reason,
        rule=route.get("rule") if reason else None,
        queue=route.get("queue"),
        policy_version=route.get("policy_version"),
        rules=rules,
        withheld=withheld,
    )


def _condition_node(cond: dict) -> ConditionNode:
    result = bool(cond.get("result"))
    if "field" in cond:
        op, path = cond.get("op"), str(cond.get("field"))
        shown = f"{path} {FIELD_OPS_SHOWN.get(op, op)}"
        if op != "exists" or "value" in cond:
            shown += f" {json.dumps(cond.get('value'), ensure_ascii=False)}"
        parts = path.split(".")
        blind_ok = parts[0] in BLIND_SHOWN_FIELD_ROOTS and not (
            set(parts) & BLIND_HIDDEN_FIELD_PARTS
        )
        return ConditionNode(shown, result, blind_ok)
    for name in ("all", "any"):
        if name in cond:
            children = [_condition_node(part) for part in cond[name]]
            label = "all of these" if name == "all" else "any of these"
            ok = all(child.blind_ok for child in children)
            return ConditionNode(label, result, ok, None, children)
    if "not" in cond:
        child = _condition_node(cond["not"])
        return ConditionNode("not", result, child.blind_ok, None, [child])
    blind_ok = any(name in cond for name in BLIND_SHOWN_LEAVES)
    if "outcome_in" in cond:
        label = "AI outcome is one of " + ", ".join(map(str, cond["outcome_in"]))
    elif "confidence_below" in cond:
        label = f"confidence below {cond['confidence_below']}"
    elif "confidence_at_least" in cond:
        label = f"confidence at least {cond['confidence_at_least']}"
    elif "sentiment_below" in cond:
        score = cond.get("score")
        return ConditionNode(
            f"customer sentiment below {cond['sentiment_below']}",
            result,
            blind_ok,
            score=score if isinstance(score, int | float) else None,
        )
    elif "text_matches" in cond:
        label = f"customer's latest message matches {cond['text_matches']}"
    else:
        label = json.dumps({k: v for k, v in cond.items() if k != "result"}, ensure_ascii=False)
    return ConditionNode(label, result, blind_ok)


# --- The case's trail, for people ------------------------------------------------------

ACTION_LABELS = {
    "case.received": "Received from the AI system",
    "case.routed": "Routed",
    "case.claimed": "Claimed",
    "case.released": "Released",
    "case.reassigned": "Reassigned",
    "case.reviewed": "Review recorded",
    "case.decided": "Decided",
    "case.escalated": "Escalated",
    "case.contested": "Contested",
    "case.overdue": "Overdue: moved to the supervisors",
    "case.lease_renewed": "Lease renewed",
    "case.recused": "Recused (conflict of interest)",
    "case.viewed": "Read by a compliance officer",
    "appeal.filed": "Appeal filed by the customer",
    "appeal.statement_opened": "Customer's statement opened",
    "appeal.decided": "Appeal decided",
    "notice.opened": "Notice opened by the customer",
    "case.feedback": "The customer answered the notice's two questions",
}


@dataclass
class TimelineEntry:
    seq: int
    at: datetime
    action: str
    label: str
    actor: str
    details: list[tuple[str, str]]
    note: str = ""  # why details are hidden


def case_timeline(
    *, case: Case, hide_reviews: bool, blind: bool, route_disclosed: bool = False
) -> list[TimelineEntry]:
    """The case's trail events, oldest first, with actor and data read from
    the hashed body. ``hide_reviews`` keeps the data of a first review out of
    a second reviewer's sight; ``blind`` shows only the data ``BLIND_TRAIL``
    allows (and, when ``route_disclosed``, the rule that routed the case)."""
    entries = []
    for event in case_trail(case=case):
        body = json.loads(event.body)
        action = body.get("action", "")
        actor = body.get("actor") or {}
        data = body.get("data") or {}
        note = ""
        if hide_reviews and action == "case.reviewed":
            data = {}
            note = "The first of two reviews is recorded; it stays hidden until both are in."
        elif blind:
            allowed = BLIND_TRAIL.get(action, ())
            if action == "case.routed" and route_disclosed:
                allowed += BLIND_TRAIL_ROUTE
            shown = {key: value for key, value in data.items() if key in allowed}
            note = BLIND_NOTE if len(shown) < len(data) else ""
            data = shown
        entries.append(
            TimelineEntry(
                seq=event.seq,
                at=datetime.fromisoformat(body["at"]),
                action=action,
                label=ACTION_LABELS.get(action, action),
                actor=f"{actor.get('type', '?')} {actor.get('id', '?')}",
                details=[(key, _shown(value)) for key, value in data.items()],
                note=note,
            )
        )
    return entries


def _shown(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        # Digests are for verification, not for reading: their start is enough.
        if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            return value[:12] + "…"
        return value
    return json.dumps(value, ensure_ascii=False)
