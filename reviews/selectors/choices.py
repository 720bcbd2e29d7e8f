"""What the decision form offers: the Outcome and Reason choices of a case."""

from dataclasses import dataclass

from django.db.models import Q

from reviews.models import (
    Case,
    ReasonCode,
)

# --- What the decision form offers ---------------------------------------------------------
# One rule each for the Outcome and the Reason select, called by the form, the
# page and the services that check a decision, so that what is offered and
# what is accepted cannot drift apart.

OTHER_REASON = "other"
OTHER_REASON_LABEL = "Other (explained in the rationale)"


@dataclass
class ReasonChoices:
    """The reason codes a person may choose on one case, in the order offered."""

    options: list[tuple[str, str]]  # (code, label)
    catalog: dict[str, ReasonCode]  # the catalog's entry of each code the page may show

    @property
    def codes(self) -> set[str]:
        return {code for code, _ in self.options}


def case_ai_reason_codes(case: Case) -> dict[str, str]:
    """The reason codes the AI gave on ``case``, in order, each with the AI's
    text (``output.reasons``) or none (for claims, ``input.lines[].reason_codes``)."""
    given: dict[str, str] = {}
    output = case.output if isinstance(case.output, dict) else {}
    for reason in output.get("reasons") or []:
        if isinstance(reason, dict) and reason.get("code") not in (None, ""):
            given.setdefault(str(reason["code"]), str(reason.get("text") or ""))
    lines = case.input.get("lines") if isinstance(case.input, dict) else None
    for line in lines if isinstance(lines, list) else []:
        codes = line.get("reason_codes") if isinstance(line, dict) else None
        for code in codes if isinstance(codes, list) else []:
            if code not in (None, ""):
                given.setdefault(str(code), "")
    return given


def case_reason_choices(*, case: Case, blind: bool = False) -> ReasonChoices:
    """What the Reason select offers on ``case``, and all that a decision on
    it may carry: the system's active catalog (by code), then the codes the AI
    gave on this case (overriding never waits for a catalog), then
    ``OTHER_REASON``. ``blind`` (before a blind reviewer commits): the AI's
    codes are left out, since offering them would show them. One query."""
    given = {} if blind else case_ai_reason_codes(case)
    rows = ReasonCode.objects.filter(system_id=case.system_id).filter(
        Q(active=True) | Q(code__in=list(given))
    )
    catalog = {row.code: row for row in rows.order_by("code")}
    options = {
        code: f"{code} — {row.description[:90]}" for code, row in catalog.items() if row.active
    }
    for code, text in given.items():
        if code not in options:
            row = catalog.get(code)
            about = row.description if row is not None else text
            options[code] = (f"{code} — {about[:90]}" if about else code) + " (given by the AI)"
    options.setdefault(OTHER_REASON, OTHER_REASON_LABEL)
    return ReasonChoices(options=list(options.items()), catalog=catalog)


# The outcomes a kind of system usually gives, offered when the policy lists none.
KIND_OUTCOMES = {
    "claim_decision": ("approve", "partial", "deny"),
    "chatbot_answer": ("answered", "escalated", "refused"),
    "content_moderation": ("allow", "restrict", "remove"),
}
RECENT_CASES = 1_000  # how many of the system's latest cases name outcomes too


def case_outcome_choices(*, case: Case, blind: bool = False) -> list[str]:
    """What the Outcome select offers on ``case``: the policy's ``outcomes``
    when it lists them; otherwise (DESIGN §4) the outcomes the policy names
    (``adverse_outcomes``, ``outcome_in`` tests, ``outcome_wording``), those
    of the system's latest ``RECENT_CASES`` cases (one bounded query along
    ``case_system_recent``) and the kind's usual ones, sorted, so that a
    reviewer can always choose one other than the AI's. ``blind``: this case
    itself is left out, so that the list does not depend on its AI outcome."""
    document = case.policy.document
    if document.get("outcomes"):
        return [str(outcome) for outcome in document["outcomes"]]
    named = set(KIND_OUTCOMES.get(case.kind, ()))
    named.update(document.get("adverse_outcomes") or [])
    named.update(document.get("outcome_wording") or {})
    for rule in document.get("rules") or []:
        if isinstance(rule, dict):
            named.update(_outcomes_tested(rule.get("when")))
    recent = Case.objects.filter(system_id=case.system_id).order_by("-created_at")
    if blind:
        recent = recent.exclude(pk=case.pk)
    named.update(recent.values_list("output__outcome", flat=True)[:RECENT_CASES])
    if not blind:
        named.add(case.outcome)
    return sorted(outcome for outcome in named if isinstance(outcome, str) and outcome)


def _outcomes_tested(cond) -> set[str]:
    if not isinstance(cond, dict):
        return set()
    found = set(cond["outcome_in"]) if isinstance(cond.get("outcome_in"), list) else set()
    for name in ("all", "any"):
        for part in cond.get(name) if isinstance(cond.get(name), list) else []:
            found |= _outcomes_tested(part)
    return found | _outcomes_tested(cond.get("not"))
