"""Worded policies and a reason catalog in English and Spanish, and the
checks every notice passes in both (issue 13 items 2 and 4)."""

import re
from pathlib import Path

from django.conf import settings
from django.test import Client
from django.utils import timezone

from reviews.models import Case
from reviews.services.assignment import task_claim_next
from tests import factories
from tests.escalations.notice_pages import text, url
from tests.factories import decided_case

WORDED_CLAIMS = {
    **factories.CLAIMS_POLICY,
    "appeals_allowed": 1,
    "appeal_queue": "appeals",
    "outcome_wording": {
        "approve": {"en": "Your claim is approved.", "es": "Su reclamación está aprobada."},
        "deny": {"en": "Your claim is denied.", "es": "Su reclamación está denegada."},
        "partial": {"en": "Your claim is paid in part.", "es": "Su reclamación se paga en parte."},
    },
    "external_review": {
        "en": "Ask the state insurance regulator for an external review.",
        "es": "Pida una revisión externa al regulador de seguros.",
    },
    "rules": [
        {**factories.CLAIMS_POLICY["rules"][0]},  # large-amount: no customer text, a default
        {
            **factories.CLAIMS_POLICY["rules"][1],  # adverse-needs-human
            "customer_text": {
                "en": "A person checks every denial before it is final.",
                "es": "Una persona revisa cada denegación antes de que sea definitiva.",
            },
            "ground": {
                "en": "Plan document, section 7.2 (claims review).",
                "es": "Documento del plan, apartado 7.2 (revisión de reclamaciones).",
            },
            "explanation_customer": {
                "en": "The procedure code and the diagnosis on the claim.",
                "es": "El código del procedimiento y el diagnóstico de la reclamación.",
            },
        },
        {**factories.CLAIMS_POLICY["rules"][2]},  # low-confidence
    ],
}
WORDED_SUPPORT = {
    **factories.SUPPORT_POLICY,
    "outcome_wording": {
        "answered": {"en": "We answered your question.", "es": "Respondimos a su pregunta."},
        "refused": {"en": "We could not help with this.", "es": "No pudimos ayudarle con esto."},
        "handoff": {
            "en": "A member of our team will contact you.",
            "es": "Una persona de nuestro equipo se pondrá en contacto con usted.",
        },
    },
    "external_review": {
        "en": "You can complain to the consumer authority.",
        "es": "Puede reclamar ante la autoridad de consumo.",
    },
}
CATALOG = [
    {
        "code": "CO-50",
        "description": "Not deemed a medical necessity",
        "customer_text": "Your plan pays for this only when it is medically necessary.",
        "customer_text_es": "Su plan lo paga solo cuando es médicamente necesario.",
        "ground": "Plan document, section 4.1 (medical necessity).",
        "ground_es": "Documento del plan, apartado 4.1 (necesidad médica).",
        "explanation": "The diagnosis did not show the service was needed.",
        "explanation_es": "El diagnóstico no mostraba que el servicio fuera necesario.",
    },
    {
        "code": "CO-97",
        "description": "Bundled",
        "customer_text": "This service is paid as part of another one.",
        "customer_text_es": "Este servicio se paga como parte de otro.",
    },
]
ANSWER = "Your parcel is on its way and will arrive on Friday."


def english_leftovers(html: str) -> list[str]:
    """The notice's English sentences (the catalog's msgids with a Spanish
    msgstr of their own) and the policies' English texts found in ``html``."""
    po = (Path(settings.BASE_DIR) / "locale/es/LC_MESSAGES/django.po").read_text()
    english = []
    for block in po.split("\n\n"):
        msgid = "".join(re.findall(r'"(.*)"', block.split("msgstr")[0].split("msgid", 1)[-1]))
        msgstr = "".join(re.findall(r'"(.*)"', block.split("msgstr", 1)[-1]))
        words = re.sub(r"%\(\w+\)s|<[^>]+>", "|", msgid).split("|")
        if msgstr and msgstr != msgid:
            english += [part.strip() for part in words if len(part.strip()) >= 18]
    for policy in (WORDED_CLAIMS, WORDED_SUPPORT):
        english += [texts["en"] for texts in policy["outcome_wording"].values()]
        english.append(policy["external_review"]["en"])
        for rule in policy["rules"]:
            english += [rule[key]["en"] for key in ("customer_text", "ground") if key in rule]
    english += [row["customer_text"] for row in CATALOG] + [CATALOG[0]["ground"]]
    return [sentence for sentence in english if sentence in html]


def render(case: Case, language: str) -> str:
    from reviews.models import Subject

    Subject.objects.filter(pk=case.subject_id).update(locale=language)
    response = Client().get(url(case))
    assert response.status_code == 200
    return text(response)


def internal_names(*policies) -> list[str]:
    names = ["qa-sample", "kill-switch", "system_stopped", "qa_sample"]
    for policy in policies:
        names += [rule["name"] for rule in policy["rules"]]
        names += [q["slug"] for q in policy["queues"]] + [q["name"] for q in policy["queues"]]
    # "Appeals" is a queue's name and also the heading of the page's own
    # section about appealing: not a leak.
    return [name for name in names if name != "Appeals"]


def day(moment, language: str) -> str:
    from django.utils import translation
    from django.utils.formats import date_format
    from django.utils.translation import pgettext

    with translation.override(language):
        return date_format(timezone.localtime(moment), pgettext("date format", "j F Y"))


def check_every_notice(html: str, language: str, case: Case):
    """What every notice says, whoever decided: an automated system (AI) took
    part; no internal rule or queue name; in Spanish, no English left."""
    assert ("(AI:" if language == "en" else "(IA:") in html
    for name in internal_names(WORDED_CLAIMS, WORDED_SUPPORT):
        assert name not in html, name
    if language == "es":
        assert english_leftovers(html) == []
    else:
        assert len(english_leftovers(html)) > 5  # the check finds English where there is some


def decided_states(claims, alice, carol):
    """Claims cases in every decided state, by name."""
    import uuid as uuid_

    from escalations.services import appeal_decide, appeal_file, appeal_statement_open
    from reviews.services.decisions import DecisionInput, decision_record

    medical = {
        "outcome": "deny",
        "summary": "Not medically necessary",
        "reasons": [{"code": "CO-50", "text": "Not deemed a medical necessity"}],
    }
    states = {"agreed": decided_case(claims, alice, 1, output=medical)}
    factories.ingest(claims, factories.claim_payload(2))
    task = task_claim_next(user=alice)
    decision_record(
        task_id=task.pk,
        user=alice,
        fencing_token=task.fencing_token,
        decision=DecisionInput(
            verdict="override", outcome="approve", reason_code="CO-97", rationale="Bundled."
        ),
        idempotency_key=uuid_.uuid4().hex,
    )
    states["overridden"] = Case.objects.get(pk=task.case_id)
    for n, outcome, final in (
        (3, "upheld", ""),
        (4, "overturned", "approve"),
        (5, "modified", "partial"),
    ):
        case = decided_case(claims, alice, n)
        appeal_file(
            case=case,
            statement="Please look again.",
            evidence=[],
            idempotency_key=uuid_.uuid4().hex,
        )
        task = task_claim_next(user=carol)
        appeal_statement_open(task_id=task.pk, user=carol, fencing_token=task.fencing_token)
        appeal_decide(
            task_id=task.pk,
            user=carol,
            fencing_token=task.fencing_token,
            outcome=outcome,
            final_outcome=final,
            reason_code="CO-50" if outcome != "upheld" else "",
            reasons={"upheld": "It stays.", "overturned": "We pay.", "modified": "We pay part."}[
                outcome
            ],
            idempotency_key=uuid_.uuid4().hex,
        )
        states[f"appeal {outcome}"] = Case.objects.get(pk=case.pk)
    under_appeal = decided_case(claims, alice, 7)
    appeal_file(
        case=under_appeal, statement="Again.", evidence=[], idempotency_key=uuid_.uuid4().hex
    )
    states["under appeal"] = Case.objects.get(pk=under_appeal.pk)
    return states
