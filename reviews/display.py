"""The case as people read it: what the AI saw, shaped for its kind, and what
it said. Shared by the reviewer's case page and the appeal page."""

import json
from decimal import Decimal, InvalidOperation

from reviews.models import Case


def case_input_view(case: Case, catalog: dict, *, hide_codes: bool) -> dict:
    """The case input shaped for its kind: claim lines as a table, a
    conversation as chat turns, anything else as indented JSON."""
    data = case.input
    if case.kind == "claim_decision" and isinstance(data, dict):
        lines = data.get("lines")
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
                rows.append(
                    {
                        "code": line.get("code", ""),
                        "description": line.get("description", ""),
                        "amount": amount,
                        "reason_codes": [(str(c), catalog.get(str(c))) for c in codes],
                        "extra": {
                            k: v
                            for k, v in line.items()
                            if k not in {"code", "description", "amount", "reason_codes"}
                        },
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
            }
    if case.kind == "chatbot_answer" and isinstance(data, dict):
        conversation = data.get("conversation")
        if isinstance(conversation, list) and all(isinstance(t, dict) for t in conversation):
            turns = [
                {"role": str(turn.get("role", "")), "text": str(turn.get("text", ""))}
                for turn in conversation
            ]
            return {"shape": "chat", "turns": turns}
    return {"shape": "json", "text": _pretty(data)}


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
