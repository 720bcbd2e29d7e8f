"""The appeal reviewer's page: the statement, the evidence, the decision."""

import uuid

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from escalations.models import Appeal
from reviews.services.assignment import task_claim_next
from tests import factories
from tests.escalations.notice_pages import PDF, appeal_post, key, statement_opened, text, url
from tests.factories import client_for, decided_case
from workbench.models import TrailEvent

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


def test_a_system_without_an_appeals_queue_tells_the_customer_in_their_language(alice):
    """The operators forgot the appeals queue: the Spanish customer is told,
    in Spanish, that nothing was sent, and keeps their statement."""
    policy = {
        **factories.CLAIMS_POLICY,
        "queues": [q for q in factories.CLAIMS_POLICY["queues"] if q["slug"] != "appeals"],
    }
    system = factories.system_with_policy(policy)
    subject = {"reference": "MBR-1", "name": "Ana", "email": "a@example.org", "locale": "es"}
    case = decided_case(system, alice, subject=subject)
    client = Client()
    page = client.get(url(case))
    response = appeal_post(client, case, page, statement="Mi escrito.")
    assert response.status_code == 503
    html = text(response)
    assert "Todavía no podemos recibir recursos en línea sobre esta decisión" in html
    assert "Mi escrito." in html  # the statement stays in the form
    assert not Appeal.objects.exists()
