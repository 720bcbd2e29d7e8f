"""Running a validated policy over a case's facts (DESIGN §4): every rule is
evaluated (so the route records every condition's result), the first match
wins, and a case no rule catches is finalized automatically unless the QA
sample picks it."""

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from reviews.routing.validation import MAX_MATCHED_TEXT, is_number, pattern_compile


@lru_cache(maxsize=1)
def _sentiment_analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_score(text: str) -> float:
    """VADER compound score, -1 (most negative) to +1."""
    return _sentiment_analyzer().polarity_scores(text)["compound"]


def latest_customer_text(case_input: Any) -> str | None:
    conversation = case_input.get("conversation") if isinstance(case_input, dict) else None
    if not isinstance(conversation, list):
        return None
    for turn in reversed(conversation):
        if isinstance(turn, dict) and turn.get("role") == "customer":
            text = turn.get("text")
            return text if isinstance(text, str) else None
    return None


@dataclass
class Facts:
    """What the rules can see of one case."""

    kind: str
    input: Any
    output: dict
    confidence: float
    metadata: dict
    model: dict
    explanation: str = ""
    _sentiment: float | None = field(default=None, init=False)
    _sentiment_done: bool = field(default=False, init=False)

    @property
    def outcome(self) -> str:
        return self.output.get("outcome", "")

    @property
    def customer_text(self) -> str | None:
        return latest_customer_text(self.input)

    @property
    def sentiment(self) -> float | None:
        if not self._sentiment_done:
            text = self.customer_text
            self._sentiment = sentiment_score(text) if text else None
            self._sentiment_done = True
        return self._sentiment

    def lookup(self, path: str) -> tuple[bool, Any]:
        root, *rest = path.split(".")
        value: Any = getattr(self, root)
        for part in rest:
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return False, None
        return True, value


@dataclass
class Route:
    needs_human: bool
    reason: str  # "rule", "qa_sample", "system_stopped" or "default"
    rule: str | None
    queue: str | None
    task_kind: str | None
    priority: int
    policy_version: int
    conditions: list[dict]
    # What the compliance metrics need of the policy, recorded in case.routed:
    # whether the AI's outcome is adverse, and the case's fairness segments.
    adverse: bool = False
    segments: dict[str, str | None] = field(default_factory=dict)
    # For the connection index, recorded in the trail: the VADER compound of
    # the customer's latest turn (chatbot cases; None otherwise), and whether
    # the case went to a person because of the customer's words (the rule
    # that fired reads them: sentiment_below or text_matches).
    sentiment: float | None = None
    distressed: bool = False

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "queue": self.queue,
            "policy_version": self.policy_version,
            "reason": self.reason,
            "conditions": self.conditions,
        }


def qa_sampled(*, system: str, external_id: str, rate: float) -> bool:
    """Deterministic: the same case is always in or out of the sample."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{system}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def route_evaluate(
    policy: dict, *, version: int, facts: Facts, external_id: str, stopped: bool
) -> Route:
    """Evaluate every rule (first match wins) and decide where the case goes."""
    results = []
    winner = None
    for rule in policy["rules"]:
        matched, tree = _evaluate(rule["when"], facts)
        results.append({"rule": rule["name"], "matched": matched, "when": tree})
        if matched and winner is None:
            winner = rule

    def route(reason, rule, queue, kind, priority=0):
        return Route(
            needs_human=queue is not None,
            reason=reason,
            rule=rule,
            queue=queue,
            task_kind=kind,
            priority=priority,
            policy_version=version,
            conditions=results,
            adverse=facts.outcome in policy["adverse_outcomes"],
            segments=fairness_segments(policy, facts),
            # Computed once (Facts caches it): the rules' sentiment_below read the same.
            sentiment=facts.sentiment if facts.kind == "chatbot_answer" else None,
            distressed=reason == "rule" and reads_customer_words(winner["when"]),
        )

    if stopped:
        # The kill switch overrides every rule: a person sees everything.
        return route("system_stopped", "kill-switch", policy["default_queue"], "review", 10)
    if winner is not None:
        return route("rule", winner["name"], winner["queue"], "review", winner.get("priority", 0))
    if qa_sampled(system=policy["system"], external_id=external_id, rate=policy["qa_sample_rate"]):
        return route("qa_sample", "qa-sample", policy["default_queue"], "qa")
    return route("default", None, None, None)


CUSTOMER_WORD_TESTS = frozenset({"sentiment_below", "text_matches"})


def reads_customer_words(cond: dict) -> bool:
    """Whether a condition tree tests the customer's words anywhere in its
    all/any/not branches (a rule for distressed customers, DESIGN §4)."""
    if not isinstance(cond, dict) or "field" in cond:
        return False
    for name, arg in cond.items():
        if name in CUSTOMER_WORD_TESTS:
            return True
        if name in ("all", "any") and any(reads_customer_words(part) for part in arg):
            return True
        if name == "not" and reads_customer_words(arg):
            return True
    return False


def fairness_segments(policy: dict, facts: Facts) -> dict[str, str | None]:
    """The case's value of each field the policy names in ``fairness_segments``,
    as text of at most 100 characters (None: absent, or not a single value).
    Segments are coarse groups (a region, a channel), never identifiers: they
    are kept in the trail."""
    segments = {}
    for path in policy["fairness_segments"]:
        found, value = facts.lookup(path)
        plain = found and value is not None and not isinstance(value, dict | list)
        segments[path[:100]] = str(value)[:100] if plain else None
    return segments


def _evaluate(cond: dict, facts: Facts) -> tuple[bool, dict]:
    """Evaluate without short-circuit, returning the result and the annotated tree."""
    if "field" in cond:
        result = _field_test(cond, facts)
        return result, {**cond, "result": result}
    ((name, arg),) = cond.items()
    if name in ("all", "any"):
        parts = [_evaluate(part, facts) for part in arg]
        results = [ok for ok, _ in parts]
        result = all(results) if name == "all" else any(results)
        return result, {name: [tree for _, tree in parts], "result": result}
    if name == "not":
        ok, tree = _evaluate(arg, facts)
        return not ok, {"not": tree, "result": not ok}
    if name == "outcome_in":
        result = facts.outcome in arg
    elif name == "confidence_below":
        result = facts.confidence < arg
    elif name == "confidence_at_least":
        result = facts.confidence >= arg
    elif name == "sentiment_below":
        score = facts.sentiment
        result = score is not None and score < arg
        return result, {name: arg, "score": score, "result": result}
    else:  # text_matches
        text = facts.customer_text
        result = (
            text is not None and pattern_compile(arg).search(text[:MAX_MATCHED_TEXT]) is not None
        )
    return result, {name: arg, "result": result}


def _field_test(cond: dict, facts: Facts) -> bool:
    found, actual = facts.lookup(cond["field"])
    op, value = cond["op"], cond.get("value")
    if op == "exists":
        return found == (value if isinstance(value, bool) else True)
    if not found:
        return False
    if op == "eq":
        return actual == value
    if op == "ne":
        return actual != value
    if op == "in":
        return actual in value
    if op == "contains":
        if isinstance(actual, str) and isinstance(value, str):
            return value in actual
        return isinstance(actual, list) and value in actual
    if not is_number(actual):
        return False
    return {
        "gt": actual > value,
        "ge": actual >= value,
        "lt": actual < value,
        "le": actual <= value,
    }[op]
