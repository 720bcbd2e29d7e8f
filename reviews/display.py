"""The case as people read it: what the AI saw, shaped for its kind, and what
it said. Shared by the reviewer's case page and the appeal page."""

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from reviews.models import Case, ReviewTask
from reviews.selectors import case_input_opened


@dataclass(frozen=True)
class CaseFacts:
    """The case as anyone who may open its page reads it, a blind reviewer
    too (``BLIND_VIEW`` "case"): who and what it is about, never what the AI
    said. The page's head is built from this alone."""

    reference: str
    system_name: str
    kind: str
    kind_display: str
    subject: str
    external_id: str
    status: str
    status_display: str
    created_at: datetime
    model_name: str
    model_version: str

    @classmethod
    def of(cls, case: Case) -> "CaseFacts":
        return cls(
            reference=case.reference,
            system_name=case.system.name,
            kind=case.kind,
            kind_display=case.get_kind_display(),
            subject=case.subject.reference,
            external_id=case.external_id,
            status=case.status,
            status_display=case.get_status_display(),
            created_at=case.created_at,
            model_name=case.model_name,
            model_version=case.model_version,
        )


@dataclass(frozen=True)
class TaskFacts:
    """A task as the case page shows it (``BLIND_VIEW`` "queue" and "lease").
    Blind, a QA task reads as a review: that the policy finalized the case
    alone would say that no rule on the outcome or confidence matched."""

    pk: int
    kind_display: str
    queue_name: str
    status: str
    assignee: str
    lease_expires_at: datetime | None
    due_at: datetime

    @classmethod
    def of(cls, task: ReviewTask, *, blind: bool) -> "TaskFacts":
        kind = task.get_kind_display()
        if blind and task.kind == ReviewTask.Kind.QA:
            kind = ReviewTask.Kind.REVIEW.label
        return cls(
            pk=task.pk,
            kind_display=kind,
            queue_name=task.queue.name,
            status=task.status,
            assignee=task.assignee.get_username() if task.assignee else "",
            lease_expires_at=task.lease_expires_at,
            due_at=task.due_at,
        )


# The turns of a conversation the customer's notice shows: theirs and the
# answers they were given, never a system prompt or a tool's output (STYLE 14).
CUSTOMER_SEES_ROLES = ("customer", "assistant", "agent")


def case_input_view(
    case: Case, catalog: dict, *, hide_codes: bool, roles: tuple[str, ...] | None = None
) -> dict:
    """The case input shaped for its kind: claim lines as a table, a
    conversation as chat turns, anything else as indented JSON. The
    customer's words are opened from where they are sealed. ``hide_codes``
    (blind review): the AI's reason codes are left out, from the claim lines
    and from any ``reason_codes`` key of the rest. ``roles``: the only turns
    of a conversation shown (all when None)."""
    data = case_input_opened(case=case)
    if hide_codes:
        data = _without_codes(data)
    if case.kind == "claim_decision" and isinstance(data, dict):
        lines = case.input.get("lines")
        if isinstance(lines, list) and lines and all(isinstance(line, dict) for line in lines):
            rows, total = [], Decimal(0)
            for line in lines:
                amount = _decimal(line.get("amount"))
                if amount is not None and total is not None:
                    total += amount
                else:
                    total = None
                codes = line.get("reason_codes")
                codes = codes if isinstance(codes, list) else []
                extra = {
                    k: v
                    for k, v in line.items()
                    if k not in {"code", "description", "amount", "reason_codes"}
                }
                rows.append(
                    {
                        "code": line.get("code", ""),
                        "description": line.get("description", ""),
                        "amount": amount,
                        "reason_codes": []
                        if hide_codes
                        else [(str(c), catalog.get(str(c))) for c in codes],
                        "codes_hidden": hide_codes and bool(codes),
                        "extra": _without_codes(extra) if hide_codes else extra,
                    }
                )
            claim = data.get("claim") if isinstance(data.get("claim"), dict) else {}
            others = {k: v for k, v in data.items() if k not in {"claim", "lines"}}
            return {
                "shape": "claim",
                "claim": [(k, _plain(v)) for k, v in claim.items()],
                "lines": rows,
                "total": total,
                "hide_codes": hide_codes,
                "others": _pretty(others) if others else "",
                "erased_at": case.subject.erased_at,
            }
    if case.kind == "chatbot_answer" and isinstance(data, dict):
        conversation = data.get("conversation")
        if isinstance(conversation, list) and all(isinstance(t, dict) for t in conversation):
            turns = [
                {
                    "role": str(turn.get("role", "")),
                    "text": str(turn.get("text", "")),
                    "erased": turn.get("erased") is True,
                    "calls": _tool_calls(turn.get("tool_calls")),
                }
                for turn in conversation
                if roles is None or turn.get("role") in roles
            ]
            return {"shape": "chat", "turns": turns, "erased_at": case.subject.erased_at}
    return {"shape": "json", "text": _pretty(data), "erased_at": case.subject.erased_at}


def _tool_calls(calls) -> list[str]:
    """An assistant's tool calls (chat-completions ``tool_calls``) as
    ``name(arguments)``, for the reviewer to read."""
    if not isinstance(calls, list):
        return []
    shown = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            shown.append(f"{function.get('name', '')}({_plain(function.get('arguments', ''))})")
        else:
            shown.append(_plain(call))
    return shown


def _without_codes(value):
    """``value`` without any ``reason_codes`` key, at any depth."""
    if isinstance(value, dict):
        return {k: _without_codes(v) for k, v in value.items() if k != "reason_codes"}
    if isinstance(value, list):
        return [_without_codes(item) for item in value]
    return value


def case_output_view(case: Case, catalog: dict) -> dict:
    output = case.output if isinstance(case.output, dict) else {}
    reasons = []
    for reason in output.get("reasons") or []:
        if isinstance(reason, dict):
            code = str(reason.get("code", ""))
            text = reason.get("text", "")
            reasons.append({"code": code, "text": text, "entry": catalog.get(code)})
    known = {"outcome", "summary", "reasons", "answer"}
    others = {k: v for k, v in output.items() if k not in known}
    return {
        "outcome": output.get("outcome", ""),
        "summary": output.get("summary", ""),
        "reasons": reasons,
        "answer": output.get("answer", ""),
        "others": _pretty(others) if others else "",
    }


def _decimal(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _plain(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
