"""The customer's notice page: the statement of reasons it gives."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client

from reviews.models import Case
from reviews.services.notices import notice_token, notice_url
from tests import factories
from tests.escalations.notice_pages import text, url
from tests.factories import decided_case

# --- Reading the notice -------------------------------------------------------------------------


def test_the_notice_states_the_decision_reasons_facts_and_how_to_appeal(system, alice, catalog):
    case = decided_case(system, alice)
    response = Client().get(url(case))
    assert response.status_code == 200
    page = text(response)
    assert case.reference in page
    assert "The outcome is: deny." in page  # the test policy has no outcome wording
    code = case.output["reasons"][0]["code"]
    assert f"Plain words for {code.removeprefix('CO-')}." in page  # the customer wording
    assert "Office visit" in page and "180.00" in page  # the facts relied on
    assert "Automated means were used" in page and "claims-triage" in page
    assert "A person reviewed it" in page
    # The policy's version, and why it sent the case to a person in plain
    # words: never the rule's internal name (issue 13).
    assert "version 1" in page and "adverse-needs-human" not in page
    assert "Our policy sends every decision that goes against you to a person." in page
    closes = case.finalized_at + timedelta(days=184)
    assert f"until {closes:%-d %B %Y}" in page  # a date, not a number of days
    for label in ("Your statement", "Evidence", "File appeal"):
        assert label in page
    assert 'name="robots" content="noindex' in page


def test_an_ai_only_decision_says_no_person_reviewed_it(system):
    case = factories.ingest(
        system, factories.claim_payload(1, output={"outcome": "approve"}, confidence=0.99)
    )
    case = Case.objects.get(pk=case.pk)
    if case.status != "finalized":
        pytest.skip("sampled for QA")  # deterministic: never for this id
    page = text(Client().get(url(case)))
    assert "No person reviewed it" in page


def test_a_case_under_review_shows_the_date_of_the_answer_and_no_form(system):
    case = factories.ingest(system, factories.claim_payload(1))
    page = text(Client().get(url(case)))
    assert "A person is reviewing this decision" in page
    task = case.tasks.get()
    assert f"You will have an answer by {task.due_at:%-d %B %Y}" in page
    assert "File appeal" not in page


@pytest.mark.parametrize("token", ["forged", "A" * 43, notice_token("WB-NONE-HERE")])
def test_a_forged_token_is_404_without_saying_whether_a_case_exists(system, alice, token):
    decided_case(system, alice)
    response = Client().get(f"/notice/{token}/")
    assert response.status_code == 404


def test_links_sent_before_a_change_of_the_link_key_keep_working(system, settings, caplog):
    before = factories.ingest(system, factories.claim_payload(1))
    sent = notice_url(before)
    settings.NOTICE_LINK_KEY_FALLBACKS = [settings.NOTICE_LINK_KEY]
    settings.NOTICE_LINK_KEY = "a-new-notice-link-key"
    after = factories.ingest(system, factories.claim_payload(2))
    # The old link opens, and is the one handed out again; new cases get the new key's.
    assert Client().get(urlsplit(sent).path).status_code == 200
    assert notice_url(before) == sent
    assert notice_url(after) == f"http://testserver/notice/{notice_token(after.reference)}/"
    assert Client().get(url(after)).status_code == 200
    # Without the old key, a link for the older case can no longer be made: logged.
    settings.NOTICE_LINK_KEY_FALLBACKS = []
    assert Client().get(urlsplit(sent).path).status_code == 200  # its hash is kept
    notice_url(before)
    assert f"notice link of case {before.reference}" in caplog.text


@pytest.mark.parametrize(
    ("locale", "lang", "button"),
    [
        ("es", "es", "Presentar recurso"),
        ("es-MX", "es", "Presentar recurso"),
        ("fr", "en", "File appeal"),
    ],
)
def test_the_page_is_in_the_subjects_locale_where_a_translation_exists(
    system, alice, locale, lang, button
):
    subject = {"reference": "MBR-1", "name": "Ana", "email": "a@example.org", "locale": locale}
    case = decided_case(system, alice, subject=subject)
    response = Client().get(url(case))
    assert f'<html lang="{lang}">' in response.content.decode()
    assert button in text(response)


def test_a_chat_completions_transcript_shows_the_customer_only_their_exchange(chat_system):
    messages = [
        {"role": "system", "content": "zqsystemprompt: never promise refunds."},
        {"role": "user", "content": "Where is my parcel? Thank you so much!"},
        {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "zqtool"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "zqtooloutput: internal note"},
        {"role": "assistant", "content": "It is on its way."},
    ]
    case = factories.ingest(chat_system, factories.chat_payload(1, input={"messages": messages}))
    page = text(Client().get(url(case)))
    assert "Where is my parcel? Thank you so much!" in page
    assert "It is on its way." in page
    # A system prompt, a tool's output and the AI's tool calls are not the customer's to read.
    for hidden in ("zqsystemprompt", "zqtooloutput", "zqtool"):
        assert hidden not in page
