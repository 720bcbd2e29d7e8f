"""Reason-code catalogs: per AI system, the codes a reviewer picks from when
deciding (for claims, the CARC list), each with the wording a customer reads
in their notice."""

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from reviews.models import Case, ReasonCode
from reviews.selectors import case_reason_choices
from reviews.wording import LOCALE, wording_split
from workbench.errors import Invalid
from workbench.models import AISystem
from workbench.services.trail import Actor, trail_append

CODE_MAX_LENGTH = 32  # Decision.reason_code and ReasonIn.code hold 32
CUSTOMER_TEXT_MAX_LENGTH = 1000
FIELDS = ("code", "description", "customer_text")
# Optional, for the customer's notice: the ground of the reason (a plan
# provision, a terms clause, a statute) and what the decision relied on. Each
# customer text may be given per locale: as ``{locale: text}``, or in CSV as a
# column of its own, ``customer_text_es``.
OPTIONAL = ("ground", "explanation")
WORDED = ("customer_text", *OPTIONAL)
OPTIONAL_MAX_LENGTH = 2000
LOCALIZED = re.compile(
    r"^(customer_text|ground|explanation)_([A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*)$"
)
# A row may say where it came from; without it, row i is line i + 2 (after a header).
LINE_KEY = "line"

# Customer wording is shown as text, never as markup: a tag or an entity in it
# is a file written for something else (a web page, a mail template).
MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?][^>]*>|&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);")
# C0 controls except tab and newline, DEL, C1 controls; NUL cannot be stored
# by PostgreSQL at all.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
CODE_SHAPE = re.compile(r"^\S+$")


@dataclass(frozen=True)
class LoadResult:
    created: int
    updated: int  # wording changed, or a deactivated code listed again
    deactivated: int
    unchanged: int
    sha256: str  # of the file's normalized content (see ``catalog_digest``)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deactivated)


class ReasonCodesInvalid(Invalid):
    """The file is refused as a whole; ``fields`` has one entry per problem:
    ``{"line": 7, "field": "customer_text", "message": "..."}``."""

    code = "reason_codes_invalid"

    def __init__(self, problems: list[dict[str, Any]]):
        lines = "\n- ".join(f"line {p['line']}, {p['field']}: {p['message']}" for p in problems)
        super().__init__(
            f"the reason-code file has {len(problems)} problem(s); nothing was loaded:\n- {lines}",
            fields=problems,
        )


@transaction.atomic
def reason_codes_load(*, system: AISystem, rows: list[dict], actor: Actor) -> LoadResult:
    """Replace ``system``'s reason-code catalog with ``rows`` (``code``,
    ``description``, ``customer_text``; optionally ``ground``, ``explanation``,
    per-locale texts (``customer_text_es``, or any customer text as
    ``{locale: text}``) and ``line``, where the row is in its file). Every
    row is checked first and a file with any bad row is refused whole. Codes
    are created or updated; codes missing from the file are deactivated, not
    deleted, as old decisions refer to them. One trail event records a load
    that changed something; loading the catalog as it stands changes nothing
    and records nothing."""
    entries = _validate(rows)
    digest = catalog_digest(entries)

    # Lock the system row first: loads for one system queue up here, so two
    # loads cannot both create the same new code. Then the trail head.
    AISystem.objects.select_for_update().get(pk=system.pk)
    current = {rc.code: rc for rc in ReasonCode.objects.filter(system=system)}

    to_create, to_update, unchanged = [], [], 0
    for entry in entries:
        existing = current.get(entry["code"])
        if existing is None:
            to_create.append(ReasonCode(system=system, active=True, **entry))
            continue
        wanted = {**entry, "active": True}
        if all(getattr(existing, name) == value for name, value in wanted.items()):
            unchanged += 1
            continue
        for name, value in wanted.items():
            setattr(existing, name, value)
        to_update.append(existing)
    listed = {entry["code"] for entry in entries}
    to_deactivate = [rc for code, rc in current.items() if code not in listed and rc.active]
    for rc in to_deactivate:
        rc.active = False

    result = LoadResult(
        created=len(to_create),
        updated=len(to_update),
        deactivated=len(to_deactivate),
        unchanged=unchanged,
        sha256=digest,
    )
    if not result.changed:
        return result

    ReasonCode.objects.bulk_create(to_create)
    ReasonCode.objects.bulk_update(
        to_update, ["description", "customer_text", *OPTIONAL, "translations", "active"]
    )
    ReasonCode.objects.bulk_update(to_deactivate, ["active"])
    trail_append(
        action="system.reason_codes_loaded",
        actor=actor,
        system=system.slug,
        data={
            "codes": len(entries),
            "created": result.created,
            "updated": result.updated,
            "deactivated": result.deactivated,
            "sha256": digest,
        },
    )
    return result


def catalog_digest(entries: list[dict]) -> str:
    """SHA-256 of the normalized catalog: fields trimmed, line ends as ``\\n``,
    rows sorted by code, as canonical JSON. Reordering a file or re-saving it
    with other line ends gives the same digest; changing any wording does not."""
    canonical = sorted(
        [e["code"], e["description"], e["customer_text"]]
        # The optional texts count only when given, so a catalog without
        # them keeps the digest it had before they existed.
        + (
            [e.get("ground", ""), e.get("explanation", ""), e.get("translations", {})]
            if e.get("ground") or e.get("explanation") or e.get("translations")
            else []
        )
        for e in entries
    )
    body = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def _validate(rows: list[dict]) -> list[dict]:
    if not rows:
        raise Invalid(
            "the reason-code file has no codes; a catalog cannot be emptied by loading "
            "an empty file",
            "reason_codes_empty",
        )
    problems: list[dict[str, Any]] = []
    entries: list[dict[str, str]] = []
    first_line: dict[str, int] = {}
    for index, row in enumerate(rows):
        line = row.get(LINE_KEY, index + 2)
        entry, row_problems = reason_code_row_problems(row)
        code = entry["code"]
        if code in first_line:
            row_problems.append(("code", f"{code!r} is listed already on line {first_line[code]}"))
        elif code:
            first_line[code] = line
        problems += [{"line": line, "field": name, "message": m} for name, m in row_problems]
        entries.append(entry)
    if problems:
        raise ReasonCodesInvalid(problems)
    return entries


def reason_code_row_problems(row: dict) -> tuple[dict, list[tuple[str, str]]]:
    """One catalog row trimmed, and what is wrong with it as (field, message)
    pairs (a CSV file's rows and a policy's ``reason_codes:`` alike)."""
    problems = [
        (
            str(name),
            "unknown field; a row has code, description and customer_text, and may have "
            "ground, explanation and per-locale texts such as customer_text_es",
        )
        for name in sorted(set(row) - {*FIELDS, *OPTIONAL, LINE_KEY}, key=str)
        if not (isinstance(name, str) and LOCALIZED.match(name))
    ]
    # Per-locale texts, from {locale: text} values or customer_text_es columns.
    row, translations = dict(row), {}
    for name in WORDED:
        if isinstance(row.get(name), dict):
            row[name], others = wording_split(row[name])
            for locale, text in others.items():
                translations.setdefault(locale, {})[name] = text
    for name, value in list(row.items()):
        match = isinstance(name, str) and LOCALIZED.match(name)
        if match and value not in (None, ""):
            translations.setdefault(match[2].replace("_", "-").lower(), {})[match[1]] = value

    entry: dict = {}
    for name in (*FIELDS, *OPTIONAL):
        entry[name] = _text(row.get(name), name, problems, required=name in FIELDS)
    for locale, texts in sorted(translations.items()):
        if not LOCALE.match(locale):
            problems.append((f"customer_text_{locale}", "not a locale (e.g. es, es-MX)"))
        for name in list(texts):
            texts[name] = _text(texts[name], f"{name}_{locale}", problems, required=False)
    entry["translations"] = {
        locale: {name: text for name, text in texts.items() if text}
        for locale, texts in sorted(translations.items())
        if any(texts.values())
    }

    code = entry["code"]
    if len(code) > CODE_MAX_LENGTH:
        problems.append(("code", f"{len(code)} characters; at most {CODE_MAX_LENGTH}"))
    elif code and not CODE_SHAPE.match(code):
        problems.append(("code", "must not contain spaces"))
    customer_texts = [("customer_text", entry["customer_text"], CUSTOMER_TEXT_MAX_LENGTH)]
    customer_texts += [(name, entry[name], OPTIONAL_MAX_LENGTH) for name in OPTIONAL]
    for locale, texts in entry["translations"].items():
        for name, text in texts.items():
            limit = CUSTOMER_TEXT_MAX_LENGTH if name == "customer_text" else OPTIONAL_MAX_LENGTH
            customer_texts.append((f"{name}_{locale}", text, limit))
    for name, text, limit in customer_texts:
        if len(text) > limit:
            problems.append((name, f"{len(text)} characters; at most {limit}"))
        if MARKUP.search(text):
            problems.append((name, "must be plain text, without markup (tags or entities)"))
    return entry, problems


def _text(value, name: str, problems: list, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        problems.append((name, f"must be text, not {type(value).__name__}"))
        value = ""
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not value and required:
        problems.append((name, "required"))
    elif CONTROL.search(value):
        problems.append((name, "contains a control character"))
    return value


def reason_code_problem(*, case: Case, code: str) -> dict | None:
    """The form problem of a reason code that may not be chosen on ``case``
    (``case_reason_choices``: the catalog, the AI's own codes, or Other);
    None when it may, or when none was chosen."""
    if not code or code in case_reason_choices(case=case).codes:
        return None
    return {
        "path": "reason_code",
        "message": f"{code!r} is not a reason for this case: choose a code of the "
        "catalog, one the AI gave, or Other",
    }


@transaction.atomic
def reason_code_save(
    *,
    system: AISystem,
    code: str,
    description: str,
    customer_text: str,
    ground: str = "",
    explanation: str = "",
    active: bool = True,
    actor: Actor,
) -> ReasonCode:
    """Create or change one code of ``system``'s catalog (the admin's edit),
    in the catalog's default wording (its translations are kept as they
    are). The same checks as a loaded file; one trail event naming who
    changed what (field names), none when nothing changed."""
    entry, problems = reason_code_row_problems(
        {
            "code": code,
            "description": description,
            "customer_text": customer_text,
            "ground": ground,
            "explanation": explanation,
        }
    )
    entry.pop("translations")
    if problems:
        raise Invalid(
            "the reason code is invalid",
            fields=[{"path": name, "message": message} for name, message in problems],
        )
    AISystem.objects.select_for_update().get(pk=system.pk)  # as reason_codes_load does
    row = ReasonCode.objects.filter(system=system, code=entry["code"]).first()
    wanted = {**entry, "active": active}
    created = row is None
    if created:
        row = ReasonCode.objects.create(system=system, **wanted)
        changed = sorted(name for name, value in wanted.items() if value != "")
    else:
        changed = sorted(name for name, value in wanted.items() if getattr(row, name) != value)
        if not changed:
            return row
        for name in changed:
            setattr(row, name, wanted[name])
        row.save(update_fields=changed)
    trail_append(
        action="system.reason_code_saved",
        actor=actor,
        system=system.slug,
        data={
            "code": row.code,
            "created": created,
            "changed": changed,
            "active": row.active,
        },
    )
    return row
