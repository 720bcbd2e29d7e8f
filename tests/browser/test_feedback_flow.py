"""The customer is asked, in real headless Chromium (issue 16): a Spanish
customer opens the notice of a final decision, answers both questions in
Spanish with a comment, and sees the answer recorded in place (htmx swaps
the questions' region); reloading shows it, changeable. The first open is in
the trail once (``notice.opened``), and so is the answer (``case.feedback``)."""

import json

from playwright.sync_api import expect

from reviews.models import Feedback
from reviews.services.notices import notice_token
from reviews.services.subjects import subject_text_open
from tests import factories
from workbench.models import Role, TrailEvent
from workbench.services import trail_verify

SPANISH = {"reference": "MBR-4410", "name": "Lucía", "email": "lucia@example.org", "locale": "es"}
COMMENT = "La carta lo explicaba, pero nadie me preguntó por mi caso."


def test_a_spanish_customer_answers_the_two_questions_on_the_notice(page, live_server):
    claims = factories.system_with_policy()
    alice = factories.UserFactory(username="rev.alice", role=Role.REVIEWER)
    case = factories.decided_case(claims, alice, 1, subject=SPANISH)
    link = f"{live_server.url}/notice/{notice_token(case.reference)}/"

    page.goto(link)
    expect(page.locator("html")).to_have_attribute("lang", "es")
    region = page.get_by_role("region", name="Cómo le tratamos")
    expect(region).to_be_visible()
    listened = region.get_by_role("group", name="¿Le escuchamos?")
    explained = region.get_by_role("group", name="¿Le explicamos la decisión de forma justa?")
    expect(listened.get_by_role("radio")).to_have_count(5)
    listened.get_by_label("2 Poco").check()
    explained.get_by_label("5 Totalmente").check()
    region.get_by_label("¿Algo más que quiera añadir?").fill(COMMENT)
    region.get_by_role("button", name="Enviar respuestas").click()

    # htmx swapped the region in place: no reload, no redirect.
    region = page.get_by_role("region", name="Cómo le tratamos")
    expect(region.get_by_role("status")).to_have_text("Gracias: sus respuestas se registraron.")
    expect(region).to_contain_text("2 – Poco")
    expect(region).to_contain_text("5 – Totalmente")
    expect(region).to_contain_text(COMMENT)
    expect(region.get_by_role("button", name="Cambiar respuestas")).to_be_visible()
    assert page.url == link

    feedback = Feedback.objects.get(case=case)
    assert (feedback.listened, feedback.explained, feedback.source) == (2, 5, "notice")
    assert subject_text_open(feedback.comment) == COMMENT

    # Reloaded (and without htmx, the same page): the answer, changeable until a date.
    page.reload()
    region = page.get_by_role("region", name="Cómo le tratamos")
    expect(region).to_contain_text("Puede cambiar sus respuestas hasta el")
    expect(
        region.get_by_role("group", name="¿Le escuchamos?").get_by_label("2 Poco")
    ).to_be_checked()

    opened = TrailEvent.objects.filter(action="notice.opened", case=case.reference)
    assert opened.count() == 1  # opened twice, recorded once
    [answer] = [
        json.loads(body)
        for body in TrailEvent.objects.filter(action="case.feedback").values_list("body", flat=True)
    ]
    assert answer["data"]["listened"] == 2 and answer["data"]["explained"] == 5
    assert COMMENT not in json.dumps(answer)
    assert trail_verify().ok
