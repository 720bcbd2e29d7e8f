"""The notice in every state of a case, in English and Spanish (issue 13
items 2 and 4)."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from escalations.models import Appeal
from reviews.models import Case, Queue
from reviews.services.assignment import task_claim_next
from tests import factories
from tests.escalations.notice_pages import text, url
from tests.escalations.worded import (
    ANSWER,
    CATALOG,
    WORDED_CLAIMS,
    WORDED_SUPPORT,
    check_every_notice,
    day,
    decided_states,
    render,
)
from tests.factories import decided_case

# --- Every state, in English and Spanish (issue 13 items 2 and 4) ------------------------------


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_decided_state_tells_the_decision_in_force_its_reasons_and_the_appeal_date(
    worded, alice, carol, language
):
    claims, _ = worded
    states = decided_states(claims, alice, carol)
    es = language == "es"
    for name, case in states.items():
        html = render(case, language)
        check_every_notice(html, language, case)
        # The reason codes, with their text in the customer's language.
        from escalations.selectors import notice_build

        for reason in notice_build(case=case, language=language).reasons:
            assert f"{reason.code})" in html and reason.text in html, (name, reason)
        if name == "agreed":
            assert ("Su reclamación está denegada." if es else "Your claim is denied.") in html
            assert (CATALOG[0]["customer_text_es"] if es else CATALOG[0]["customer_text"]) in html
            # The ground and what the automated system relied on, per reason and per rule.
            assert (CATALOG[0]["ground_es"] if es else CATALOG[0]["ground"]) in html
            assert (CATALOG[0]["explanation_es"] if es else CATALOG[0]["explanation"]) in html
            rule = WORDED_CLAIMS["rules"][1]
            assert rule["ground"][language] in html
            assert rule["explanation_customer"][language] in html
            assert rule["customer_text"][language] in html
            closes = case.finalized_at + timedelta(days=184)
            assert day(closes, language) in html  # the date by which to appeal
        if name == "overridden":
            assert ("Su reclamación está aprobada." if es else "Your claim is approved.") in html
            assert (CATALOG[1]["customer_text_es"] if es else CATALOG[1]["customer_text"]) in html
            assert ("cambió el resultado" if es else "changed the outcome") in html
            assert day(case.finalized_at + timedelta(days=184), language) in html
        if name.startswith("appeal "):
            outcome = name.split()[1]
            expected = {
                ("en", "upheld"): "The decision was upheld",
                ("en", "overturned"): "The decision was overturned",
                ("en", "modified"): "The decision was modified",
                ("es", "upheld"): "Se ha confirmado la decisión",
                ("es", "overturned"): "Se ha anulado la decisión",
                ("es", "modified"): "Se ha modificado la decisión",
            }[(language, outcome)]
            assert expected in html
            assert WORDED_CLAIMS["external_review"][language] in html
        if name == "under appeal":
            assert (
                "Ha recurrido esta decisión" if es else "You have appealed this decision"
            ) in html
            due = Appeal.objects.get(case=case).due_at
            assert day(due, language) in html


@pytest.mark.parametrize("language", ["en", "es"])
def test_under_review_qa_sample_stopped_contested_and_escalated_notices_promise_nothing_final(
    worded, alice, language
):
    from reviews.models import ReviewTask
    from reviews.services.decisions import DecisionInput, decision_record

    claims, _ = worded
    es = language == "es"
    pending = factories.ingest(claims, factories.claim_payload(1))
    sampled = factories.ingest(
        claims, factories.claim_payload(6, output={"outcome": "approve"}, confidence=0.99)
    )
    assert sampled.route["reason"] == "qa_sample"
    from workbench.models import AISystem

    AISystem.objects.filter(pk=claims.pk).update(stopped=True)
    stopped = factories.ingest(
        claims, factories.claim_payload(8, output={"outcome": "approve"}, confidence=0.99)
    )
    AISystem.objects.filter(pk=claims.pk).update(stopped=False)
    approved = factories.ingest(
        claims, factories.claim_payload(9, output={"outcome": "approve"}, confidence=0.99)
    )
    factories.api_client(claims).post(
        f"/api/v1/cases/{approved.reference}/contest", {"reason": "Wrong."}, "application/json"
    )
    escalated = factories.ingest(claims, factories.claim_payload(10))
    ReviewTask.objects.filter(case=escalated).update(priority=99)
    task = task_claim_next(user=alice)
    assert task.case_id == escalated.pk
    decision_record(
        task_id=task.pk,
        user=alice,
        fencing_token=task.fencing_token,
        decision=DecisionInput(verdict="escalate", rationale="Not sure."),
        idempotency_key="k-escalate",
    )
    cases = {
        "pending": pending,
        "qa": sampled,
        "stopped": stopped,
        "contested": Case.objects.get(pk=approved.pk),
        "escalated": Case.objects.get(pk=escalated.pk),
    }
    for name, case in cases.items():
        html = render(case, language)
        check_every_notice(html, language, case)
        assert (
            "Una persona está revisando" if es else "A person is reviewing this decision"
        ) in html
        assert ("Su reclamación" if es else "Your claim is") not in html  # no outcome yet
        due = max(t.due_at for t in case.tasks.filter(status__in=["open", "claimed"]))
        assert day(due, language) in html, name
        assert ("dentro de 184 días" if es else "within 184 days") in html or (
            "en un plazo de 184 días" in html
        )
    assert ("control de calidad" if es else "quality check") in render(sampled, language)
    assert ("estaba detenido" if es else "was paused") in render(stopped, language)
    assert ("se cuestionó" if es else "was questioned") in render(cases["contested"], language)
    assert WORDED_CLAIMS["rules"][1]["customer_text"][language] in render(pending, language)


@pytest.mark.parametrize("language", ["en", "es"])
def test_after_a_missed_deadline_the_notice_says_so_and_what_happens_next(
    worded, alice, carol, language
):
    from escalations.services import appeal_file, tasks_escalate_overdue

    claims, _ = worded
    es = language == "es"
    appealed = decided_case(claims, alice, 2)
    appeal_file(case=appealed, statement="Again.", evidence=[], idempotency_key="k-late")
    appeal_due = Appeal.objects.get().due_at
    pending = factories.ingest(claims, factories.claim_payload(1))
    due = pending.tasks.get().due_at
    with time_machine.travel(max(due, appeal_due) + timedelta(hours=1)):
        tasks_escalate_overdue()
        late = render(pending, language)
        late_appeal = render(appealed, language)
    check_every_notice(late, language, pending)
    check_every_notice(late_appeal, language, appealed)
    missed = "no hemos cumplido ese plazo" if es else "we have missed that date"
    promise = "Recibirá una respuesta a más tardar" if es else "You will have an answer by"
    assert missed in late and day(due, language) in late
    assert promise not in late  # no date promised again
    assert ("Qué pasa ahora" if es else "What happens next") in late
    assert missed in late_appeal and day(appeal_due, language) in late_appeal
    assert promise not in late_appeal
    assert WORDED_CLAIMS["external_review"][language] in late_appeal


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_chat_notice_shows_our_answer_only_while_it_is_the_decision_in_force(
    worded, alice, language
):
    import uuid as uuid_

    from reviews.services.decisions import DecisionInput, decision_record

    _, support = worded
    es = language == "es"

    def chat(n, text, confidence=0.9):
        payload = factories.chat_payload(
            n, text=text, output={"outcome": "answered", "answer": ANSWER}, confidence=confidence
        )
        return factories.ingest(support, payload)

    alone = chat(1, "Where is my parcel? Thank you so much!")
    assert alone.status == "finalized"
    pending = chat(2, "I want a human, this is useless")
    overridden = chat(3, "Please get me a person")
    Queue.objects.filter(system=support).update(hold_limit=2)  # alice holds two at once
    task = task_claim_next(user=alice)  # the customer who asked for a person: still pending
    assert task.case_id == pending.pk
    task = task_claim_next(user=alice)
    assert task.case_id == overridden.pk
    from reviews.services import reason_codes_load

    reason_codes_load(
        system=support,
        rows=[
            {
                "code": "needs-person",
                "description": "Needs a person",
                "customer_text": "Your request needs a person from our team.",
                "customer_text_es": "Su petición necesita a una persona de nuestro equipo.",
            }
        ],
        actor=factories.ACTOR,
    )
    decision_record(
        task_id=task.pk,
        user=alice,
        fencing_token=task.fencing_token,
        decision=DecisionInput(
            verdict="override",
            outcome="handoff",
            rationale="Needs a person.",
            reason_code="needs-person",
        ),
        idempotency_key=uuid_.uuid4().hex,
    )
    overridden = Case.objects.get(pk=overridden.pk)
    assert overridden.final_outcome == "handoff"

    by_ai = render(alone, language)
    assert ANSWER in by_ai and ("Nuestra respuesta" if es else "Our answer") in by_ai
    check_every_notice(by_ai, language, alone)
    for case in (pending, overridden):
        html = render(case, language)
        check_every_notice(html, language, case)
        assert ANSWER not in html
        assert ("Nuestra respuesta" if es else "Our answer") not in html
    html = render(overridden, language)
    assert WORDED_SUPPORT["outcome_wording"]["handoff"][language] in html
    assert ("Su petición necesita a una persona" if es else "Your request needs a person") in html


@pytest.mark.parametrize("language", ["en", "es"])
def test_an_override_for_a_reason_outside_the_catalog_is_told_in_plain_words(
    worded, alice, language
):
    """The reviewer chose "other" (explained in their rationale, which stays
    internal): the customer reads a sentence, not the code "other"."""
    import uuid as uuid_

    from reviews.services.decisions import DecisionInput, decision_record

    claims, _ = worded
    factories.ingest(claims, factories.claim_payload(1))
    task = task_claim_next(user=alice)
    decision_record(
        task_id=task.pk,
        user=alice,
        fencing_token=task.fencing_token,
        decision=DecisionInput(
            verdict="override", outcome="approve", reason_code="other", rationale="Internal note."
        ),
        idempotency_key=uuid_.uuid4().hex,
    )
    html = render(Case.objects.get(pk=task.case_id), language)
    check_every_notice(html, language, task.case)
    plain = {
        "en": "gave a reason that is not on our list of standard reasons",
        "es": "indicó un motivo que no figura en nuestra lista de motivos habituales",
    }
    assert plain[language] in html
    assert "Internal note." not in html
    assert "code other" not in html and "código other" not in html
    assert "<li>other" not in html


def test_a_locale_with_no_translation_reads_english_and_a_plain_policy_text_stays_as_written(
    worded, alice
):
    from reviews.models import Subject

    claims, _ = worded
    case = decided_case(claims, alice, 1)
    Subject.objects.filter(pk=case.subject_id).update(locale="tlh")  # exists nowhere here
    html = text(Client().get(url(case)))
    assert '<html lang="en">' in Client().get(url(case)).content.decode()
    assert "Your claim is denied." in html and "(AI:" in html


def test_the_explanation_the_ai_system_sends_is_shown_in_the_customers_language(worded, alice):
    claims, _ = worded
    explanation = {
        "en": "Your plan excludes physiotherapy after 20 sessions.",
        "es": "Su plan excluye la fisioterapia tras 20 sesiones.",
    }
    case = decided_case(claims, alice, 1, explanation_customer=explanation)
    assert case.explanation_customer == explanation
    assert explanation["es"] in render(case, "es")
    assert explanation["en"] in render(case, "en")
    assert explanation["en"] not in render(case, "es")
