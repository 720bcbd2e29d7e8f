"""The justice audit scorecard as rows, CSV or a printable HTML page: one
selector for the page, its download and ``manage.py justice_audit``."""

import csv
import io
from datetime import date

from django.template.loader import render_to_string
from django.utils import timezone

from workbench.errors import NotFound
from workbench.metrics.connection import WEIGHTS
from workbench.metrics.justice import Scorecard, justice_scorecard
from workbench.models import AISystem

CSV_COLUMNS = [
    "system",
    "model_version",
    "from",
    "to",
    "section",
    "line",
    "label",
    "value",
    "low",
    "high",
    "threshold",
    "direction",
    "status",
    "n",
    "detail",
]


def justice_scorecard_for(
    *, slug: str, start: date, end: date, model_version: str = ""
) -> Scorecard:
    """The scorecard of the AI system ``slug``; ``NotFound`` for an unknown one."""
    system = AISystem.objects.filter(slug=slug).first()
    if system is None:
        raise NotFound(f"no AI system {slug!r}", "unknown_system")
    return justice_scorecard(system=system, start=start, end=end, model_version=model_version)


def _number(value) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def scorecard_rows(card: Scorecard) -> list[list]:
    """The lines, header first, then the connection index's parts (section
    ``connection``: the part's score 0–100, its weight in ``threshold``) and
    the index by model version and by queue (``n``: the parts it used)."""
    head = [card.system, card.model_version or "all", card.start.isoformat(), card.end.isoformat()]
    rows: list[list] = [CSV_COLUMNS]
    for line in card.lines:
        low, high = line.interval or (None, None)
        rows.append(
            [
                *head,
                line.section,
                line.key,
                line.label,
                _number(line.value),
                _number(low),
                _number(high),
                _number(line.threshold),
                line.direction,
                line.status,
                line.n,
                line.detail,
            ]
        )
    for part in card.connection.total.parts:
        rows.append(
            [
                *head,
                "connection",
                f"part:{part.key}",
                part.label,
                _number(part.score),
                "",
                "",
                WEIGHTS[part.key],
                "weight",
                "no data" if part.score is None else "",
                "",
                part.text,
            ]
        )
    groups = [("version", g) for g in card.connection.versions]
    groups += [("queue", g) for g in card.connection.queues]
    for kind, group in groups:
        rows.append(
            [
                *head,
                "connection",
                f"index:{kind}:{group.label}",
                f"Connection index, {kind} {group.label}",
                _number(group.index),
                "",
                "",
                "",
                "",
                "no data" if group.index is None else "",
                group.parts_used,
                f"from {group.parts_used} of {len(group.parts)} parts",
            ]
        )
    return rows


def scorecard_csv(card: Scorecard) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(scorecard_rows(card))
    return out.getvalue()


def scorecard_render(card: Scorecard, *, fmt: str = "csv") -> str:
    """CSV, or the printable page on its own (the command's ``--format html``)."""
    if fmt == "csv":
        return scorecard_csv(card)
    if fmt == "html":
        return render_to_string(
            "workbench/compliance_audit_print.html",
            {"card": card, "generated_at": timezone.now(), "weights": WEIGHTS},
        )
    raise ValueError(f"unknown format {fmt!r}")
