"""The notice's two questions (issue 16): asked once the decision is final,
in the customer's language, plain and with htmx, changeable for 14 days then
read-only; bad answers are refused cleanly with nothing stored. And the
first open of the link by its holder is recorded once (``notice.opened``)."""

import json
from datetime import timedelta
from functools import partial

import pytest
import time_machine
from django.test import Client

from escalations.services import appeal_file, subject_erase
from reviews.models import Case, Feedback, SubjectText
from reviews.services.notices import notice_token
from reviews.services.subjects import subject_text_open
from tests import factories
from tests.escalations.notice_pages import text, url
from tests.escalations.worded import english_leftovers
from tests.factories import client_for, decided_case
from tests.reviews.test_concurrency import run_together
from workbench.models import TrailEvent
from workbench.services import Actor

QUESTIONS = ("Did we listen to you?", "Was the decision explained fairly?")
SPANISH = {"reference": "MBR-7", "name": "Lucía", "email": "lucia@example.org", "locale": "es"}


def answers(listened="4", explained="5", comment="") -> dict:
    return {"form": "feedback", "listened": listened, "explained": explained, "comment": comment}


def feedback_events() -> list[dict]:
    bodies = TrailEvent.objects.filter(action="case.feedback").values_list("body", flat=True)
    return [json.loads(body) for body in bodies.order_by("pk")]


def nothing_stored():
    assert not Feedback.objects.exists()
    assert not SubjectText.objects.filter(kind="feedback").exists()
    assert feedback_events() == []


HX = {"HTTP_HX_REQUEST": "true"}


# --- Asked once final --------------------------------------------------------------------------


def test_a_final_decision_asks_the_two_questions_with_plain_labels(system, alice):
    case = decided_case(system, alice)

    page = Client().get(url(case)).content.decode()

    for question in QUESTIONS:
        assert f"<legend>{question}</legend>" in page
    for n, words in [(1, "Not at all"), (3, "Partly"), (5, "Completely")]:
        assert f'<span class="score">{n}</span> {words}</label>' in page
    assert page.count('type="radio"') == 10
    assert 'name="form" value="feedback"' in page and "Send answers" in page
    assert "File appeal" in page  # the appeal form is still there


def test_a_case_under_review_or_under_appeal_asks_nothing(system, alice):
    pending = factories.ingest(system, factories.claim_payload(2))
    appealed = decided_case(system, alice)
    appeal_file(case=appealed, statement="Look again.", evidence=[], idempotency_key="a" * 32)

    for case in (pending, appealed):
        page = text(Client().get(url(case)))
        assert QUESTIONS[0] not in page and "Send answers" not in page


def test_answering_without_javascript_redirects_and_shows_the_answer(system, alice):
    case = decided_case(system, alice)
    client = Client()

    response = client.post(url(case), answers("2", "4", "You were quick."))

    assert response.status_code == 302
    assert response["Location"] == f"{url(case)}#feedback"
    page = text(client.get(url(case)))
    assert "Thank you: your answers were recorded." in page
    assert "2 – A little" in page and "4 – Mostly" in page and "You were quick." in page
    until = Feedback.objects.get().answered_at + timedelta(days=14)
    assert f"You can change your answers until {until:%-d %B %Y}" in page
    assert "Change answers" in page and "checked" in page  # the answer given, to change
    feedback = Feedback.objects.get()
    assert (feedback.listened, feedback.explained, feedback.source) == (2, 4, "notice")
    [event] = feedback_events()
    assert event["actor"] == {"type": "customer", "id": case.subject.reference}


def test_answering_with_htmx_swaps_the_questions_region_alone(system, alice):
    case = decided_case(system, alice)

    response = Client().post(url(case), answers("5", "5"), **HX)

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card" aria-labelledby="feedback-title"')
    assert "<html" not in body and "Statement of reasons" not in body
    assert "Thank you: your answers were recorded." in body and "5 – Completely" in body
    assert Feedback.objects.get().listened == 5


def test_the_form_posts_to_the_same_url_with_and_without_htmx(system, alice):
    case = decided_case(system, alice)

    page = Client().get(url(case)).content.decode()

    assert f'action="{url(case)}#feedback" hx-post="{url(case)}" hx-target="#feedback"' in page
    assert "js/htmx.min.js" in page


def test_a_change_within_14_days_then_read_only(system, alice):
    case = decided_case(system, alice)
    client = Client()
    client.post(url(case), answers("1", "1", "Nobody listened."))

    with time_machine.travel(timedelta(days=3)):
        changed = client.post(url(case), answers("3", "2", "Better after the call."), **HX)
    assert changed.status_code == 200
    assert "Thank you: your answers were changed." in text(changed)
    assert [e["data"]["changed"] for e in feedback_events()] == [False, True]

    with time_machine.travel(timedelta(days=15)):
        page = text(client.get(url(case)))
        assert "The time to change these answers has ended." in page
        assert "3 – Partly" in page and "Better after the call." in page
        assert "Send answers" not in page and "Change answers" not in page
        late = client.post(url(case), answers("5", "5"))
    assert late.status_code == 409
    assert "Your answers were not recorded." in text(late)
    assert Feedback.objects.get().listened == 3


# --- In the customer's language ---------------------------------------------------------------


def test_the_questions_are_in_spanish_for_a_spanish_customer(system, alice):
    case = decided_case(system, alice, subject=SPANISH)
    client = Client()

    page = text(client.get(url(case)))
    for spanish in (
        "¿Le escuchamos?",
        "¿Le explicamos la decisión de forma justa?",
        "Nada",
        "Totalmente",
        "Enviar respuestas",
        "Cómo le tratamos",
    ):
        assert spanish in page
    assert english_leftovers(page) == []
    refused = client.post(url(case), answers("", "9", "<i>hola</i>"), **HX)
    assert refused.status_code == 422
    assert "Elija una respuesta del 1 al 5." in text(refused)
    assert "sin etiquetas" in text(refused)
    client.post(url(case), answers("4", "5", "Gracias por la explicación."))
    page = text(client.get(url(case)))
    assert "Gracias: sus respuestas se registraron." in page
    assert "4 – Bastante" in page and "Puede cambiar sus respuestas hasta el" in page
    assert english_leftovers(page) == []


# --- Refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("hx", [False, True])
def test_missing_or_out_of_range_scores_are_refused_next_to_the_question(system, alice, hx):
    case = decided_case(system, alice)

    response = Client().post(url(case), answers("", "7"), **(HX if hx else {}))

    assert response.status_code == 422
    assert text(response).count("Choose an answer from 1 to 5.") == 2
    nothing_stored()


@pytest.mark.parametrize("comment", ["<b>thanks</b>", "ok <script>alert(1)</script>"])
def test_a_comment_with_markup_is_refused_not_stripped(system, alice, comment):
    case = decided_case(system, alice)

    response = Client().post(url(case), answers(comment=comment))

    assert response.status_code == 422
    assert "Write your comment as plain text, without &lt; &gt; tags." in text(response)
    assert "<script>alert(1)" not in response.content.decode()
    nothing_stored()


@pytest.mark.parametrize("hx", [False, True])
def test_a_1_mb_comment_is_refused_cleanly(system, alice, hx):
    case = decided_case(system, alice)

    response = Client().post(url(case), answers(comment="z" * (1024 * 1024)), **(HX if hx else {}))

    assert response.status_code == 422
    assert "Keep your comment under 2000 characters." in text(response)
    assert len(response.content) < 100_000  # not echoed back whole
    nothing_stored()


def test_a_forged_token_is_404_and_stores_nothing(system, alice):
    decided_case(system, alice)

    for token in ("forged", notice_token("WB-NONE-HERE")):
        response = Client().post(f"/notice/{token}/", answers())
        assert response.status_code == 404
    nothing_stored()


def test_answers_are_rate_limited_like_appeals(system, alice, settings):
    settings.NOTICE_RATE_POST = "2/h"
    case = decided_case(system, alice)
    client = Client(REMOTE_ADDR="198.51.100.216")  # an address of this test's own

    statuses = [client.post(url(case), answers(n, n)).status_code for n in ("1", "2", "3")]

    assert statuses == [302, 302, 429]
    assert Feedback.objects.get().listened == 2


def test_after_erasure_the_scores_stay_and_the_comment_is_gone(system, alice):
    case = decided_case(system, alice)
    Client().post(url(case), answers("2", "3", "Quillonvexfeedback words"))
    with time_machine.travel(case.finalized_at + timedelta(days=185)):
        subject_erase(reference=case.subject.reference, by=Actor.workbench("tests"))
        page = text(Client().get(url(case)))
    assert "Quillonvexfeedback" not in page
    assert "2 – A little" in page and "(erased)" in page
    assert "Send answers" not in page and "Change answers" not in page
    feedback = Feedback.objects.select_related("comment").get()
    assert (feedback.listened, feedback.explained) == (2, 3)
    assert feedback.comment.sealed is None
    assert subject_text_open(feedback.comment, subject=Case.objects.get().subject) is None


# --- The notice opened -----------------------------------------------------------------------


def opened_events(case) -> list[dict]:
    bodies = TrailEvent.objects.filter(action="notice.opened", case=case.reference)
    return [json.loads(body) for body in bodies.values_list("body", flat=True)]


def test_the_first_open_by_the_token_holder_is_recorded_once(system, alice):
    case = decided_case(system, alice)

    for _ in range(3):
        assert Client().get(url(case)).status_code == 200

    [event] = opened_events(case)
    assert event["actor"] == {"type": "customer", "id": case.subject.reference}
    assert event["data"] == {"adverse": True}
    assert Case.objects.get(pk=case.pk).notice_opened_at is not None


def test_staff_opening_the_link_is_never_the_customer(system, alice, sam):
    case = decided_case(system, alice)

    assert client_for(sam).get(url(case)).status_code == 200
    assert client_for(alice).get(url(case)).status_code == 200

    assert opened_events(case) == []
    assert Case.objects.get(pk=case.pk).notice_opened_at is None


def test_a_forged_token_or_a_refused_request_records_nothing(system, alice, settings):
    case = decided_case(system, alice)
    settings.NOTICE_RATE_GET = "1/h"
    client = Client(REMOTE_ADDR="198.51.100.217")
    assert client.get("/notice/forged/").status_code == 404
    assert client.get(url(case)).status_code == 429

    assert opened_events(case) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_opens_record_one_event():
    system = factories.system_with_policy()
    case = factories.ingest(system, factories.claim_payload(1))

    def open_it():
        assert Client().get(url(case)).status_code == 200

    assert run_together([partial(open_it) for _ in range(8)]) == []
    assert len(opened_events(case)) == 1
