"""Checking a routing policy (DESIGN §4): ``policy_validate`` returns the
document normalized, with its defaults, or raises ``PolicyInvalid`` listing
every problem."""

import math
import re
from functools import lru_cache
from typing import Any

import re2

from reviews.wording import RULE_TEXTS, policy_wording_problems, wording_split
from workbench.errors import Invalid
from workbench.metrics.thresholds import audit_thresholds_resolve
from workbench.models import Role

MIN_APPEAL_WINDOW_DAYS = 184  # six months at their longest (DSA) and >= 180 days (ERISA)
MAX_PATTERN_LENGTH = 500
MAX_MATCHED_TEXT = 20_000
FIELD_ROOTS = {"input", "output", "metadata", "model", "confidence", "kind", "explanation"}
FIELD_OPS = {"eq", "ne", "gt", "ge", "lt", "le", "in", "contains", "exists"}
NUMERIC_OPS = {"gt", "ge", "lt", "le"}
COMBINATORS = {"all", "any", "not"}
LEAVES = {
    "outcome_in",
    "confidence_below",
    "confidence_at_least",
    "sentiment_below",
    "text_matches",
}
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")
QUEUE_FIELDS = {
    "slug",
    "name",
    "role",
    "sla_hours",
    "reviews_required",
    "blind",
    "lease_minutes",
    "hold_limit",
    "release_cooldown_minutes",
}
POLICY_FIELDS = {
    "system",
    "outcomes",
    "adverse_outcomes",
    "appeal_window_days",
    "appeal_deadline_days",
    "appeal_urgent_hours",
    "appeals_allowed",
    "appeal_queue",
    "outcome_wording",
    "qa_sample_rate",
    "default_queue",
    "escalation_queue",
    "fairness_segments",
    "reason_codes",
    "external_review",
    "default_locale",
    "feedback_invite",
    "rules",
    "queues",
    "audit",  # the justice audit's thresholds (workbench.metrics.thresholds)
}


class PolicyInvalid(Invalid):
    code = "policy_invalid"

    def __init__(self, problems: list[str]):
        super().__init__("the policy is invalid:\n- " + "\n- ".join(problems))
        self.problems = problems


def policy_validate(document: Any, *, existing_queues: dict[str, str], roles: set[str]) -> dict:
    """Check a policy document (section 4 plus ``queues:``); return it
    normalized, every optional key filled with its default (docs/policy.md).

    ``existing_queues`` maps the slugs of the system's queues to their role:
    with the queues the policy declares, they are the queues it may name.
    """
    problems: list[str] = []
    if not isinstance(document, dict):
        raise PolicyInvalid(["the policy must be a mapping (YAML or JSON object)"])
    for unknown in sorted(set(document) - POLICY_FIELDS, key=str):
        problems.append(f"unknown top-level field {unknown!r}")

    system = document.get("system")
    if not isinstance(system, str) or not system:
        problems.append("system: name the AI system's slug")

    # Without an ``outcomes`` list any outcome string is accepted; with one,
    # every outcome the policy names must be in it.
    outcomes = document.get("outcomes")
    if outcomes is not None and (not _is_str_list(outcomes) or not outcomes):
        problems.append("outcomes: when given, a non-empty list of the outcome values")
        outcomes = None
    known_outcomes = set(outcomes) if outcomes is not None else None
    adverse = document.get("adverse_outcomes", [])
    if not _is_str_list(adverse):
        problems.append("adverse_outcomes: must be a list of outcome values")
        adverse = []
    _check_outcomes("adverse_outcomes", adverse, known_outcomes, problems)

    window = document.get("appeal_window_days", MIN_APPEAL_WINDOW_DAYS)
    if not _is_int(window) or window < MIN_APPEAL_WINDOW_DAYS:
        problems.append(
            f"appeal_window_days: must be a whole number of at least {MIN_APPEAL_WINDOW_DAYS} "
            f"(six months); got {window!r}"
        )
    deadline = document.get("appeal_deadline_days", 30)
    if not _is_int(deadline) or not 1 <= deadline <= 365:
        problems.append(f"appeal_deadline_days: must be 1 to 365; got {deadline!r}")
    urgent_hours = document.get("appeal_urgent_hours", 72)
    if not _is_int(urgent_hours) or not 1 <= urgent_hours <= 24 * 365:
        problems.append(f"appeal_urgent_hours: must be 1 to 8760; got {urgent_hours!r}")
    appeals_allowed = document.get("appeals_allowed", 1)
    if not _is_int(appeals_allowed) or not 1 <= appeals_allowed <= 10:
        problems.append(
            "appeals_allowed: how many times one case may be appealed, 1 to 10; "
            f"got {appeals_allowed!r}"
        )
    wording = document.get("outcome_wording", {})
    if not isinstance(wording, dict) or not all(
        isinstance(v, str | dict) for v in wording.values()
    ):
        problems.append("outcome_wording: must map outcomes to the sentence a customer reads")
        wording = {}
    _check_outcomes("outcome_wording", list(wording), known_outcomes, problems)
    rate = document.get("qa_sample_rate", 0)
    if not is_number(rate) or not 0 <= rate <= 1:
        problems.append(f"qa_sample_rate: must be a number from 0 to 1; got {rate!r}")
    segments = document.get("fairness_segments", [])
    if not _is_str_list(segments):
        problems.append("fairness_segments: must be a list of field paths")
    external_review = document.get("external_review", "")
    if not isinstance(external_review, str | dict):
        problems.append("external_review: must be text")
    if not isinstance(document.get("feedback_invite", False), bool):
        problems.append("feedback_invite: must be true or false")
    reason_codes = _validate_reason_codes(document.get("reason_codes"), problems)
    audit = audit_thresholds_resolve(document.get("audit"), problems)
    problems += policy_wording_problems(document)  # customer texts, per locale (reviews.wording)

    queues = document.get("queues", [])
    declared = _validate_queues(queues, roles, problems)
    known = {**existing_queues, **declared}

    rules = document.get("rules", [])
    if not isinstance(rules, list):
        problems.append("rules: must be a list")
        rules = []
    names: set[str] = set()
    for index, rule in enumerate(rules):
        where = f"rules[{index}]"
        if not isinstance(rule, dict):
            problems.append(f"{where}: must be a mapping with name, when and queue")
            continue
        name = rule.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.name: required")
        elif name in names:
            problems.append(f"{where}.name: {name!r} is used twice")
        else:
            names.add(name)
            where = f"rules[{index}] ({name})"
        allowed = {"name", "when", "queue", "priority", *RULE_TEXTS}
        for unknown in sorted(set(rule) - allowed, key=str):
            problems.append(f"{where}: unknown field {unknown!r}")
        if not isinstance(rule.get("queue"), str) or rule["queue"] not in known:
            problems.append(f"{where}.queue: unknown queue {rule.get('queue')!r}")
        if not _is_int(rule.get("priority", 0)):
            problems.append(f"{where}.priority: must be a whole number")
        if "when" not in rule:
            problems.append(f"{where}.when: required")
        else:
            _validate_condition(rule["when"], f"{where}.when", known_outcomes, problems, depth=0)

    first_rule_queue = next(
        (r["queue"] for r in rules if isinstance(r, dict) and r.get("queue") in known), None
    )
    first_of = {role: _first_queue(declared, existing_queues, role) for role in roles}
    defaults = {
        # Where QA samples, contests and a stopped system's cases go.
        "default_queue": first_rule_queue or first_of.get(Role.REVIEWER),
        "appeal_queue": first_of.get(Role.APPEAL_REVIEWER),
        "escalation_queue": first_of.get(Role.SUPERVISOR),
    }
    for name, default in defaults.items():
        slug = document.get(name, default)
        if name == "default_queue" and slug is None:
            problems.append(
                "default_queue: the policy has no rule and declares no reviewer queue; "
                "name the queue for QA samples, contests and a stopped system"
            )
        elif slug is not None and (not isinstance(slug, str) or slug not in known):
            problems.append(f"{name}: unknown queue {slug!r}")
        defaults[name] = slug

    if problems:
        raise PolicyInvalid(problems)
    normalized = dict(document)
    normalized.update(defaults)
    normalized.setdefault("outcomes", None)
    normalized.setdefault("adverse_outcomes", [])
    normalized.setdefault("appeal_window_days", MIN_APPEAL_WINDOW_DAYS)
    normalized.setdefault("appeal_deadline_days", 30)
    normalized.setdefault("appeal_urgent_hours", 72)
    normalized.setdefault("appeals_allowed", 1)
    normalized.setdefault("outcome_wording", {})
    normalized.setdefault("qa_sample_rate", 0)
    normalized.setdefault("fairness_segments", [])
    normalized.setdefault("external_review", "")
    normalized.setdefault("default_locale", "en")
    # Ask the customer, by email, to rate a final decision (reviews.services.feedback).
    normalized.setdefault("feedback_invite", False)
    normalized.setdefault("rules", [])
    normalized.setdefault("queues", [])
    normalized["audit"] = audit
    if reason_codes is not None:
        normalized["reason_codes"] = reason_codes
    return normalized


def _check_outcomes(where: str, values: list, outcomes: set | None, problems: list) -> None:
    if outcomes is None:
        return
    for value in values:
        if value not in outcomes:
            problems.append(f"{where}: {value!r} is not one of the outcomes")


def _first_queue(declared: dict[str, str], existing: dict[str, str], role: str) -> str | None:
    """The first queue of ``role`` the policy declares, else the system's
    first by slug: a policy never falls back on another system's queue."""
    for slug, queue_role in declared.items():
        if queue_role == role:
            return slug
    return min((slug for slug, queue_role in existing.items() if queue_role == role), default=None)


REASON_CODE_FIELDS = {"code", "description", "customer_text"}


def _validate_reason_codes(rows: Any, problems: list[str]) -> list[dict] | None:
    """The policy's own reason codes (``reason_codes:``), checked as the
    catalog checks a file's rows, each described by its customer wording
    when it has no description; None when the policy has none (the catalog
    is then left as it is)."""
    if rows is None:
        return None
    if not isinstance(rows, list) or not rows:
        problems.append("reason_codes: when given, a non-empty list of {code, customer_text}")
        return None
    # The catalog's own row checks (imported here: the services import this module).
    from reviews.services.reason_codes import reason_code_row_problems

    entries, seen = [], {}
    for index, row in enumerate(rows):
        where = f"reason_codes[{index}]"
        if not isinstance(row, dict):
            problems.append(f"{where}: must be a mapping with code, description, customer_text")
            continue
        if row.get("description") is None and isinstance(row.get("customer_text"), str | dict):
            # Described, for reviewers, by the customer's wording (its plain text).
            plain = wording_split(row["customer_text"])[0] if row["customer_text"] else ""
            row = {**row, "description": plain}
        entry, row_problems = reason_code_row_problems(row)
        for field_name, message in row_problems:
            problems.append(f"{where}.{field_name}: {message}")
        code = entry["code"]
        if code and code in seen:
            problems.append(
                f"{where}.code: {code!r} is listed already at reason_codes[{seen[code]}]"
            )
        elif code:
            seen[code] = index
        entries.append(row)  # as given: the catalog's loader trims and splits it
    return entries


def _validate_queues(queues: Any, roles: set[str], problems: list[str]) -> dict[str, str]:
    """The declared queues' slugs, in order, with their roles."""
    if not isinstance(queues, list):
        problems.append("queues: must be a list")
        return {}
    slugs: dict[str, str] = {}
    for index, queue in enumerate(queues):
        where = f"queues[{index}]"
        if not isinstance(queue, dict) or not isinstance(queue.get("slug"), str):
            problems.append(f"{where}: needs at least a slug")
            continue
        if queue["slug"] in slugs:
            problems.append(f"{where}.slug: {queue['slug']!r} is declared twice")
        elif not SLUG.fullmatch(queue["slug"]):
            problems.append(
                f"{where}.slug: letters, digits, - and _ only (64 at most); got {queue['slug']!r}"
            )
        slugs[queue["slug"]] = queue.get("role", Role.REVIEWER)
        for unknown in sorted(set(queue) - QUEUE_FIELDS):
            problems.append(f"{where}: unknown field {unknown!r}")
        if queue.get("role", "reviewer") not in roles:
            problems.append(f"{where}.role: unknown role {queue.get('role')!r}")
        if queue.get("reviews_required", 1) not in (1, 2):
            problems.append(f"{where}.reviews_required: must be 1 or 2")
        for number in ("sla_hours", "lease_minutes"):
            value = queue.get(number, 1)
            if not _is_int(value) or value < 1:
                problems.append(f"{where}.{number}: must be a positive whole number")
        hold = queue.get("hold_limit", 1)
        if not _is_int(hold) or not 1 <= hold <= 100:
            problems.append(f"{where}.hold_limit: must be a whole number from 1 to 100")
        cooldown = queue.get("release_cooldown_minutes", 0)
        if not _is_int(cooldown) or not 0 <= cooldown <= 1440:
            problems.append(
                f"{where}.release_cooldown_minutes: must be a whole number from 0 to 1440"
            )
        if not isinstance(queue.get("blind", False), bool):
            problems.append(f"{where}.blind: must be true or false")
    return slugs


def _validate_condition(
    cond: Any, where: str, outcomes: set | None, problems: list, depth: int
) -> None:
    if depth > 16:
        problems.append(f"{where}: conditions nest too deep (16 levels at most)")
        return
    if not isinstance(cond, dict) or not cond:
        problems.append(f"{where}: a condition must be a mapping")
        return
    keys = set(cond)
    if "field" in keys:
        _validate_field_condition(cond, where, problems)
        return
    if len(keys) != 1:
        problems.append(f"{where}: one test per condition; combine with all/any ({sorted(keys)})")
        return
    (name,) = keys
    arg = cond[name]
    if name in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            problems.append(f"{where}.{name}: must be a non-empty list of conditions")
            return
        for index, part in enumerate(arg):
            _validate_condition(part, f"{where}.{name}[{index}]", outcomes, problems, depth + 1)
    elif name == "not":
        _validate_condition(arg, f"{where}.not", outcomes, problems, depth + 1)
    elif name == "outcome_in":
        if not _is_str_list(arg) or not arg:
            problems.append(f"{where}.outcome_in: must be a non-empty list of outcomes")
            return
        _check_outcomes(f"{where}.outcome_in", arg, outcomes, problems)
    elif name in ("confidence_below", "confidence_at_least"):
        if not is_number(arg) or not 0 <= arg <= 1:
            problems.append(f"{where}.{name}: must be a number from 0 to 1")
    elif name == "sentiment_below":
        if not is_number(arg) or not -1 <= arg <= 1:
            problems.append(f"{where}.sentiment_below: must be a number from -1 to 1")
    elif name == "text_matches":
        problem = _pattern_problem(arg)
        if problem:
            problems.append(f"{where}.text_matches: {problem}")
    else:
        problems.append(
            f"{where}: unknown test {name!r}; use all, any, not, field, "
            + ", ".join(sorted(LEAVES))
        )


def _validate_field_condition(cond: dict, where: str, problems: list) -> None:
    for unknown in sorted(set(cond) - {"field", "op", "value"}):
        problems.append(f"{where}: unknown key {unknown!r} in a field test")
    path, op = cond.get("field"), cond.get("op")
    if not isinstance(path, str) or path.split(".")[0] not in FIELD_ROOTS:
        problems.append(
            f"{where}.field: a path starting with one of {', '.join(sorted(FIELD_ROOTS))}"
        )
    if op not in FIELD_OPS:
        problems.append(
            f"{where}.op: unknown operator {op!r}; use one of {' '.join(sorted(FIELD_OPS))}"
        )
        return
    value = cond.get("value")
    if op == "exists":
        if "value" in cond and not isinstance(value, bool):
            problems.append(f"{where}.value: exists takes true or false")
    elif "value" not in cond:
        problems.append(f"{where}.value: required for op {op}")
    elif op in NUMERIC_OPS and not is_number(value):
        problems.append(f"{where}.value: {op} compares numbers")
    elif op == "in" and not isinstance(value, list):
        problems.append(f"{where}.value: in takes a list")


def _pattern_problem(pattern: Any) -> str:
    if not isinstance(pattern, str) or not pattern:
        return "must be a regular expression"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"longer than {MAX_PATTERN_LENGTH} characters"
    try:
        pattern_compile(pattern)
    except re2.error as exc:
        return f"not a valid (RE2) regular expression: {exc}"
    return ""


@lru_cache(maxsize=256)
def pattern_compile(pattern: str):
    # RE2 runs in time linear in the text: no catastrophic backtracking.
    # It has no backreferences or lookaround; the validator says so.
    return re2.compile(pattern)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
