"""The customer's notice page: the statement of reasons and the appeal form;
and the appeal reviewer's page."""

import re
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from escalations.models import Appeal
from reviews.models import Case
from reviews.services.notices import notice_token, notice_url
from reviews.services.tasks import task_claim_next
from tests import factories
from tests.factories import client_for, decided_case
from workbench.models import TrailEvent

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def catalog(system):
    from reviews.models import ReasonCode

    for n in range(200):
        code, text = factories.carc_codes()[n]
        ReasonCode.objects.get_or_create(
            system=system,
            code=f"CO-{code}",
            defaults={"description": text, "customer_text": f"Plain words for {code}."},
        )


def url(case: Case) -> str:
    return f"/notice/{notice_token(case.reference)}/"


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def key(response) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f]+)"', response.content.decode())[1]


def statement_opened(staff, case, task) -> dict:
    """Open the customer's statement on the appeal page as the holder of
    ``task``; returns the decision form's hidden fields."""
    page = staff.get(f"/appeals/{case.reference}/")
    form = {"task": task.pk, "fencing_token": task.fencing_token, "idempotency_key": key(page)}
    staff.post(f"/appeals/{case.reference}/", {**form, "action": "open"})
    return form


def appeal_post(client, case, response, statement="The visit was necessary.", **files):
    data = {"statement": statement, "idempotency_key": key(response)}
    if files:
        data["evidence"] = list(files.values())
    return client.post(url(case), data)


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
    assert "adverse-needs-human" in page and "version 1" in page
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


# --- Filing an appeal -------------------------------------------------------------------------


def test_filing_an_appeal_with_a_pdf_then_following_it(system, alice, carol):
    case = decided_case(system, alice)
    client = Client()
    page = client.get(url(case))
    response = appeal_post(
        client, case, page, evidence=SimpleUploadedFile("letter.pdf", PDF, "application/pdf")
    )
    assert response.status_code == 302 and response["Location"] == url(case)
    after = text(client.get(url(case)))
    assert "Your appeal was received" in after
    assert "Received" in after and "You will have an answer by" in after
    assert "File appeal" not in after
    appeal = Appeal.objects.get()
    assert appeal.evidence.get().content_type == "application/pdf"

    # The appeal reviewer decides: the page then shows the outcome and reasons.
    task = task_claim_next(user=carol)
    staff = client_for(carol)
    form = statement_opened(staff, case, task)
    decided = staff.post(
        f"/appeals/{case.reference}/",
        {
            **form,
            "action": "decide",
            "outcome": "overturned",
            "final_outcome": "approve",
            "reasons": "The letter from your doctor shows the visit was needed.",
        },
    )
    assert decided.status_code == 302
    final = text(client.get(url(case)))
    assert "The decision was overturned." in final
    assert "The letter from your doctor shows the visit was needed." in final
    assert "Under review by a person" in final and "Decided" in final
    assert "The outcome is: approve." in final


def test_html_in_the_statement_is_shown_escaped_to_staff(system, alice, carol):
    case = decided_case(system, alice)
    client = Client()
    appeal_post(client, case, client.get(url(case)), statement="<script>alert('x')</script>")
    task = task_claim_next(user=carol)
    staff = client_for(carol)
    statement_opened(staff, case, task)
    html = staff.get(f"/appeals/{case.reference}/").content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html


def test_an_empty_statement_or_a_disguised_file_is_refused_and_nothing_is_filed(system, alice):
    case = decided_case(system, alice)
    client = Client()
    page = client.get(url(case))
    response = appeal_post(client, case, page, statement="  ")
    assert response.status_code == 422
    assert "Tell us why you disagree" in text(response)
    fake = SimpleUploadedFile("letter.pdf", b"MZ\x90\x00 this is an executable")
    response = appeal_post(client, case, page, evidence=fake)
    assert response.status_code == 422
    assert "is not a PDF, JPEG or PNG file" in text(response)
    assert Appeal.objects.count() == 0


def test_a_body_over_the_limit_is_refused_before_it_is_read(system, alice):
    case = decided_case(system, alice)
    response = Client().post(
        url(case),
        data=b"x",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(200 * 1024 * 1024),
    )
    assert response.status_code == 413
    assert "too large" in text(response)
    assert Appeal.objects.count() == 0


def test_two_tabs_filing_at_once_file_one_appeal(system, alice):
    case = decided_case(system, alice)
    first, second = Client(), Client()
    page_one, page_two = first.get(url(case)), second.get(url(case))
    assert appeal_post(first, case, page_one).status_code == 302
    response = appeal_post(second, case, page_two)
    assert response.status_code == 302
    assert "Your appeal was already received" in text(second.get(url(case)))
    assert Appeal.objects.count() == 1


def test_a_late_filing_names_the_date_the_window_closed_and_the_routes_left(system, alice):
    case = decided_case(system, alice)
    client = Client()
    page = client.get(url(case))
    closes = case.finalized_at + timedelta(days=184)
    with time_machine.travel(closes + timedelta(hours=1)):
        response = appeal_post(client, case, page)
    assert response.status_code == 409
    body = text(response)
    assert "Your appeal was not filed." in body
    assert f"ended on {closes:%-d %B %Y}" in body
    assert Appeal.objects.count() == 0


@override_settings(NOTICE_RATE_GET="3/m")
def test_the_notice_page_is_rate_limited(system, alice):
    case = decided_case(system, alice)
    # An address no other test uses; the cache's keys are the run's own
    # (a prefix per process), so no count carries over from elsewhere.
    client = Client(REMOTE_ADDR="203.0.113.9")
    statuses = [client.get(url(case)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_the_notice_after_erasure_says_the_data_was_erased(system, alice):
    from escalations.services import subject_erase
    from workbench.services import Actor

    case = decided_case(system, alice)
    with time_machine.travel(case.finalized_at + timedelta(days=185)):
        subject_erase(reference=case.subject.reference, by=Actor.workbench("tests"))
        page = text(Client().get(url(case)))
    assert "was erased on" in page
    assert "The outcome is: deny." in page


# --- The appeal reviewer's page -------------------------------------------------------------


def test_the_decision_appealed_shows_only_after_opening_the_statement(system, alice, carol):
    case = decided_case(system, alice)
    client = Client()
    appeal_post(client, case, client.get(url(case)))
    task = task_claim_next(user=carol)
    staff = client_for(carol)
    # The case URL leads an appeal reviewer to the appeal page.
    assert staff.get(f"/cases/{case.reference}/")["Location"] == f"/appeals/{case.reference}/"
    before = staff.get(f"/appeals/{case.reference}/")
    assert "Open the customer's statement" in before.content.decode()
    assert "The decision appealed" not in text(before)
    assert "The visit was necessary." not in text(before)
    staff.post(
        f"/appeals/{case.reference}/",
        {
            "task": task.pk,
            "fencing_token": task.fencing_token,
            "idempotency_key": key(before),
            "action": "open",
        },
    )
    after = text(staff.get(f"/appeals/{case.reference}/"))
    assert "The visit was necessary." in after
    assert "The decision appealed" in after and "Decide appeal" in after
    assert TrailEvent.objects.filter(action="appeal.statement_opened").count() == 1


def test_evidence_is_served_to_the_reviewer_who_opened_the_statement_only(system, alice, carol):
    case = decided_case(system, alice)
    client = Client()
    appeal_post(client, case, client.get(url(case)), evidence=SimpleUploadedFile("a.pdf", PDF))
    item = Appeal.objects.get().evidence.get()
    link = f"/appeals/{case.reference}/evidence/{item.pk}/"
    task = task_claim_next(user=carol)
    staff = client_for(carol)
    assert staff.get(link).status_code == 404  # not opened yet
    statement_opened(staff, case, task)
    response = staff.get(link)
    assert response.status_code == 200
    assert response.content == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment")
    assert client_for(alice).get(link).status_code == 404
    assert Client().get(link).status_code == 302  # to the login page
    # Nothing in the static or media roots: the file is stored encrypted elsewhere.
    from django.core.files.storage import storages

    with storages["evidence"].open(item.stored_as) as stored:
        assert stored.read() != PDF


def test_someone_who_is_not_an_appeal_reviewer_gets_404(system, alice):
    case = decided_case(system, alice)
    client = Client()
    appeal_post(client, case, client.get(url(case)))
    assert client_for(alice).get(f"/appeals/{case.reference}/").status_code == 404
    assert client_for(alice).get("/appeals/WB-NONE-NONE/").status_code == 404


def test_an_appeal_decision_without_reasons_is_refused_with_the_field_named(system, alice, carol):
    case = decided_case(system, alice)
    client = Client()
    appeal_post(client, case, client.get(url(case)))
    task = task_claim_next(user=carol)
    staff = client_for(carol)
    form = statement_opened(staff, case, task)
    response = staff.post(
        f"/appeals/{case.reference}/", {**form, "action": "decide", "outcome": "upheld"}
    )
    assert response.status_code == 422
    assert "give your reasons" in text(response)
    assert Appeal.objects.get().status == "under_review"
    # The form comes back with a new key: the next try is its own decision.
    assert key(response) != form["idempotency_key"]
    assert uuid.UUID(key(response))


def test_a_refused_file_is_explained_in_the_customers_language(system, alice):
    subject = {"reference": "MBR-1", "name": "Ana", "email": "a@example.org", "locale": "es"}
    case = decided_case(system, alice, subject=subject)
    client = Client()
    page = client.get(url(case))
    assert "Opcional." in text(page)  # the evidence help, formatted per request
    response = appeal_post(client, case, page, evidence=SimpleUploadedFile("a.pdf", b"MZ\x90"))
    assert response.status_code == 422
    assert "a.pdf no es un archivo PDF, JPEG o PNG." in text(response)
