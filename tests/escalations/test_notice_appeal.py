"""The customer's notice page: filing an appeal."""

from datetime import timedelta

import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from escalations.models import Appeal
from reviews.services.assignment import task_claim_next
from tests.escalations.notice_pages import PDF, appeal_post, statement_opened, text, url
from tests.factories import client_for, decided_case

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
