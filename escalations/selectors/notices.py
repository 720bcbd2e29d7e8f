"""The customer's notice: a statement of reasons built from the case and
its trail, in the customer's language."""

import json
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop, pgettext_lazy

from escalations.models import Appeal
from escalations.selectors.appeals import AppealRules, AppealWindow, appeal_window
from reviews.models import Case, ReasonCode, ReviewTask
from reviews.selectors import OTHER_REASON
from reviews.services.notices import notice_token_hash
from reviews.wording import wording_for
from workbench.errors import NotFound
from workbench.models import TrailEvent
from workbench.services.trail import trail_integrate

# --- The customer's notice --------------------------------------------------------------------


def case_for_notice(*, token: str) -> Case:
    """The case whose notice link carries ``token``; ``NotFound`` for any other
    token, without saying whether a case exists."""
    case = (
        Case.objects.select_related("system", "policy", "subject")
        .filter(notice_token_hash=notice_token_hash(token))
        .first()
    )
    if case is None:
        raise NotFound("no such notice", "notice_not_found")
    return case


@dataclass
class Reason:
    code: str
    text: str  # in the customer-facing wording of the code, in their language
    ground: str = ""  # the legal or contractual ground of the reason
    explanation: str = ""  # what the decision relied on, for this reason


@dataclass
class Notice:
    """A statement of reasons, built from the case and its trail (never typed
    by hand): what was decided, why, how, and how to appeal. Built from an
    explicit list of what the customer may read (STYLE 14): the texts the
    policy and the catalog wrote for customers, in their language, and never
    a rule's, a queue's or a person's name."""

    case: Case
    state: str  # under_review, decided, under_appeal, appeal_decided
    final: bool
    outcome: str
    outcome_sentence: str
    adverse: bool
    decided_by: str  # "ai" or "human"
    decided_at: datetime | None
    person_reviewed: bool
    person_changed: bool  # the decision in force is a person's, not what the AI proposed
    reasons: list[Reason]
    route_text: str  # why a person looked at the case, in plain words
    contested: bool
    policy_version: int | None
    route_reason: str
    window: AppealWindow
    appeals: list[Appeal]
    answer_by: datetime | None  # a person is deciding: the date we promised
    deadline_missed: datetime | None  # that date passed without a decision
    missed: str  # "review" or "appeal": what is late
    answer: str  # a chat's answer in force, when it is the automated system's
    relied_on: list[str]  # the main elements the automated system relied on
    grounds: list[str]  # the legal or contractual grounds
    external_review: str
    erased_at: datetime | None
    timeline: list[tuple[str, datetime]]

    @property
    def latest_appeal(self) -> Appeal | None:
        return self.appeals[-1] if self.appeals else None


# The outcome's name when the policy gives no wording for it: the usual ones
# have a translation (the English is the value itself).
OUTCOME_NAMES = {
    "approve": pgettext_lazy("outcome", "approve"),
    "deny": pgettext_lazy("outcome", "deny"),
    "partial": pgettext_lazy("outcome", "partial"),
    "answered": pgettext_lazy("outcome", "answered"),
    "refused": pgettext_lazy("outcome", "refused"),
    "handoff": pgettext_lazy("outcome", "handoff"),
    "escalated": pgettext_lazy("outcome", "escalated"),
}


def notice_build(*, case: Case, now: datetime | None = None, language: str | None = None) -> Notice:
    """The customer's notice of ``case``, in ``language`` (the active one)."""
    now = now or timezone.now()
    language = language or translation.get_language() or settings.LANGUAGE_CODE
    document = case.policy.document
    default_locale = document.get("default_locale", "en")

    def worded(value) -> str:
        return wording_for(value, language, default_locale)

    rules = AppealRules.of(case)
    appeals = list(case.appeals.select_related("task").order_by("number"))
    trail_integrate()  # the case's every committed event
    events = [
        json.loads(body)
        for body in TrailEvent.objects.filter(case=case.reference)
        .order_by("seq")
        .values_list("body", flat=True)
    ]
    final = case.status in (Case.Status.FINALIZED, Case.Status.APPEAL_DECIDED) or (
        case.status == Case.Status.UNDER_APPEAL and bool(case.final_outcome)
    )
    decided_at, person_reviewed, reason_codes, contested = None, False, [], False
    for event in events:
        data = event.get("data") or {}
        if event["action"] == "case.received":
            reason_codes = list(data.get("reason_codes") or [])
        elif event["action"] == "case.routed" and data.get("final_outcome"):
            decided_at = _parse(event["at"])
        elif event["action"] in ("case.decided", "appeal.decided"):
            decided_at = _parse(event["at"])
            person_reviewed = True
            # A person's own reason replaces the AI's (agreeing keeps the AI's).
            if data.get("reason_code") and data.get("verdict") != "agree":
                reason_codes = [data["reason_code"]]
        elif event["action"] in ("case.reviewed", "case.escalated"):
            person_reviewed = True
        elif event["action"] == "case.contested":
            contested = True
    outcome = case.final_outcome if final else case.outcome
    state = {
        Case.Status.UNDER_APPEAL: "under_appeal",
        Case.Status.APPEAL_DECIDED: "appeal_decided",
    }.get(case.status, "decided" if final else "under_review")

    live = [
        task
        for task in case.tasks.all()
        if task.status in (ReviewTask.Status.OPEN, ReviewTask.Status.CLAIMED)
    ]
    late = [task for task in live if task.due_at <= now]
    answer_by = None if late else max((task.due_at for task in live), default=None)
    missed = ""
    if late:
        missed = "appeal" if any(t.kind == ReviewTask.Kind.APPEAL for t in late) else "review"

    person_changed = final and outcome != case.outcome
    output = case.output if isinstance(case.output, dict) else {}
    # The AI's answer is ours only while it is the decision in force.
    answer = str(output.get("answer") or "") if final and not person_changed else ""
    reasons = _reasons(case, reason_codes, worded) if final else []
    rule = _rule(document, case.route or {})
    relied_on, grounds = [], []
    if final:
        relied_on = [worded(case.explanation_customer), worded(rule.get("explanation_customer"))]
        relied_on += [reason.explanation for reason in reasons]
        grounds = [reason.ground for reason in reasons] + [worded(rule.get("ground"))]
    route = case.route or {}
    wording = rules.outcome_wording.get(outcome)
    return Notice(
        case=case,
        state=state,
        final=final,
        outcome=outcome,
        outcome_sentence=worded(wording) if wording else "",
        adverse=outcome in rules.adverse,
        decided_by=case.decided_by,
        decided_at=decided_at,
        person_reviewed=person_reviewed,
        person_changed=person_changed,
        reasons=reasons,
        route_text=_route_text(route, rule, rules, worded),
        contested=contested,
        policy_version=route.get("policy_version"),
        route_reason=route.get("reason", ""),
        window=appeal_window(case=case, appeals=appeals, now=now),
        appeals=appeals,
        answer_by=answer_by,
        deadline_missed=min((task.due_at for task in late), default=None),
        missed=missed,
        answer=answer,
        relied_on=_distinct(relied_on),
        grounds=_distinct(grounds),
        external_review=worded(rules.external_review),
        erased_at=case.subject.erased_at,
        timeline=_appeal_timeline(events),
    )


def outcome_name(outcome: str) -> str:
    """The outcome's name for the customer, where the policy has no wording."""
    return str(OUTCOME_NAMES.get(outcome, outcome))


def _distinct(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(text for text in texts if text))


def _rule(document: dict, route: dict) -> dict:
    """The policy's rule that sent the case to a person, if a rule did."""
    if route.get("reason") != "rule":
        return {}
    for rule in document.get("rules") or []:
        if isinstance(rule, dict) and rule.get("name") == route.get("rule"):
            return rule
    return {}


def _route_text(route: dict, rule: dict, rules: "AppealRules", worded) -> str:
    """Why a person looked at the case, as the customer reads it: the rule's
    ``customer_text``, else a plain sentence from what the rule tests. Never
    the rule's or the queue's name."""
    reason = route.get("reason", "")
    if reason == "qa_sample":
        return gettext("It was picked at random for a quality check by a person.")
    if reason == "system_stopped":
        return gettext(
            "Our automated system was paused at the time, so a person checked every case."
        )
    if reason != "rule":
        return ""
    if rule.get("customer_text"):
        return worded(rule["customer_text"])
    tests = _tests(rule.get("when") or {})
    if tests == {"outcome_in"}:
        outcomes = _outcomes_tested(rule.get("when") or {})
        if outcomes and all(outcome in rules.adverse for outcome in outcomes):
            return gettext("Our policy sends every decision that goes against you to a person.")
        return gettext("Our policy sends every decision of this kind to a person.")
    if tests <= {"confidence_below", "confidence_at_least"}:
        return gettext(
            "The automated system was not sure enough of its assessment, so our policy "
            "sends it to a person."
        )
    if tests <= {"sentiment_below", "text_matches"}:
        return gettext(
            "You asked for a person, or seemed unhappy with the answer, so our policy "
            "sends the conversation to a person."
        )
    if tests == {"field"}:
        return gettext(
            "Something in the details of your case (for example its amount) means our "
            "policy sends it to a person."
        )
    return gettext("Our policy sends cases like yours to a person.")


def _tests(condition) -> set[str]:
    """The kinds of test a condition makes (``field`` for a field test)."""
    if not isinstance(condition, dict):
        return set()
    if "field" in condition:
        return {"field"}
    found = set()
    for name, arg in condition.items():
        if name in ("all", "any"):
            for part in arg if isinstance(arg, list) else []:
                found |= _tests(part)
        elif name == "not":
            found |= _tests(arg) | {"not"}
        else:
            found.add(name)
    return found


def _outcomes_tested(condition) -> list[str]:
    if not isinstance(condition, dict):
        return []
    if isinstance(condition.get("outcome_in"), list):
        return condition["outcome_in"]
    found = []
    for part in condition.get("all") or condition.get("any") or []:
        found += _outcomes_tested(part)
    return found


# A person's reason outside the catalog ("other"): its code means nothing to
# the customer, and the rationale is the reviewer's own note.
OTHER_REASON_NOTICE = gettext_noop(
    "The person who reviewed your case gave a reason that is not on our list of standard reasons."
)


def _reasons(case: Case, codes: list[str], worded) -> list[Reason]:
    """The reason codes in their customer-facing wording, in the customer's
    language where the catalog has it; a code the catalog does not know keeps
    the text the AI system gave with it."""
    given = {
        str(reason.get("code")): str(reason.get("text", ""))
        for reason in case.output.get("reasons") or []
        if isinstance(reason, dict)
    }
    catalog = {
        row.code: row for row in ReasonCode.objects.filter(system_id=case.system_id, code__in=codes)
    }
    reasons = []
    for code in codes:
        row = catalog.get(code)
        if row is None and code == OTHER_REASON:
            reasons.append(Reason(code, gettext(OTHER_REASON_NOTICE)))
            continue
        if row is None:
            reasons.append(Reason(code, given.get(code, "")))
            continue
        texts = {name: getattr(row, name) for name in ("customer_text", "ground", "explanation")}
        by_locale = {
            name: {"en": text, **{loc: t.get(name) for loc, t in row.translations.items()}}
            for name, text in texts.items()
        }
        reasons.append(
            Reason(
                code,
                worded(by_locale["customer_text"]) or given.get(code, ""),
                worded(by_locale["ground"]),
                worded(by_locale["explanation"]),
            )
        )
    return reasons


APPEAL_STEPS = {
    "appeal.filed": "received",
    "appeal.statement_opened": "under_review",
    "appeal.decided": "decided",
}


def _appeal_timeline(events: list[dict]) -> list[tuple[str, datetime]]:
    """The steps of the latest appeal, each with its first time."""
    steps: list[tuple[str, datetime]] = []
    for event in events:
        step = APPEAL_STEPS.get(event["action"])
        if step == "received":
            steps = []
        if step and step not in {name for name, _ in steps}:
            steps.append((step, _parse(event["at"])))
    return steps


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at)
