"""Objects of one case, system or person reached with the key of another:
what the matrix cannot show in a status code alone."""

import json
import uuid

from django.test import Client

from escalations.models import Appeal
from reviews.models import Case
from reviews.services.notices import notice_token
from tests import factories
from workbench.models import APIKey, TrailEvent
from workbench.services import api_key_revoke


def notice(case) -> str:
    return f"/notice/{notice_token(case.reference)}/"


def test_a_notice_link_shows_its_own_case_and_nothing_of_another(world):
    page = Client().get(notice(world.case_decided)).content.decode()

    assert world.case_decided.reference in page
    for other in (world.case_a, world.case_b, world.case_appealed):
        assert other.reference not in page
        assert other.external_id not in page
    assert world.evidence.name not in page
    assert str(world.evidence.pk) not in page


def test_a_notice_link_files_its_own_appeal_whatever_the_form_names(world):
    """Fields naming another case, appeal or file are not read: the link
    alone says which case the appeal is about."""
    appealed = world.case_appealed
    trail_before = TrailEvent.objects.filter(case=appealed.reference).count()

    response = Client().post(
        notice(world.case_decided),
        {
            "statement": "Please look again.",
            "idempotency_key": uuid.uuid4().hex,
            "case": appealed.reference,
            "reference": appealed.reference,
            "appeal": world.appeal.pk,
            "task": world.appeal.task_id,
            "evidence_id": str(world.evidence.pk),
        },
    )

    assert response.status_code == 302
    filed = Appeal.objects.exclude(pk=world.appeal.pk).get()
    assert filed.case_id == world.case_decided.pk
    assert filed.evidence.count() == 0
    assert Appeal.objects.filter(case=appealed).count() == 1
    assert TrailEvent.objects.filter(case=appealed.reference).count() == trail_before


def test_the_form_key_of_another_cases_appeal_is_refused_without_naming_it(world):
    response = Client().post(
        notice(world.case_decided),
        {"statement": "Please look again.", "idempotency_key": world.appeal.idempotency_key},
    )

    assert response.status_code == 422
    assert not Appeal.objects.filter(case=world.case_decided).exists()
    assert world.case_appealed.reference not in response.content.decode()


def test_a_notice_link_opens_no_staff_page_and_no_evidence(world):
    """The customer of case_b, link in hand, on every page of case_appealed."""
    customer = Client()
    customer.get(notice(world.case_b))
    appealed = world.case_appealed.reference

    for url in (
        f"/cases/{appealed}/",
        f"/appeals/{appealed}/",
        f"/appeals/{appealed}/evidence/{world.evidence.pk}/",
    ):
        response = customer.get(url)
        assert response.status_code == 302 and response["Location"].startswith(
            "/accounts/login/"
        ), url


def test_revoking_a_key_takes_effect_at_the_next_request(world):
    client = world.client("key_a")
    url = f"/api/v1/cases/{world.case_a.reference}"
    assert client.get(url).status_code == 200

    key = APIKey.objects.get(prefix=world.keys["key_a"].split("_")[1])
    api_key_revoke(key_id=key.pk, actor=factories.ACTOR)

    refused = client.get(url)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"


def test_a_key_of_one_scope_is_refused_by_the_endpoints_of_the_other(world):
    ingest, compliance = world.client("key_a"), world.client("key_compliance")

    assert ingest.get("/api/v1/trail/head").status_code == 401
    assert compliance.get(f"/api/v1/cases/{world.case_a.reference}").status_code == 401
    assert (
        compliance.post(
            "/api/v1/cases", factories.claim_payload(60), content_type="application/json"
        ).status_code
        == 401
    )
    assert not Case.objects.filter(external_id="CLM-2026-000060").exists()


def test_a_key_of_system_a_cannot_contest_or_read_system_b_by_any_reference(world):
    client = world.client("key_a")
    before = TrailEvent.objects.filter(case=world.case_b.reference).count()

    for reference in (
        world.case_b.reference,
        world.case_b.reference.lower(),
        f" {world.case_b.reference}",
    ):
        assert client.get(f"/api/v1/cases/{reference}").status_code == 404
        contested = client.post(
            f"/api/v1/cases/{reference}/contest",
            {"reason": "the customer called"},
            content_type="application/json",
        )
        assert contested.status_code == 404
        assert world.case_b.external_id not in contested.content.decode()
        rated = client.post(
            f"/api/v1/cases/{reference}/feedback",
            {"listened": 1, "explained": 1},
            content_type="application/json",
        )
        assert rated.status_code == 404
        assert world.case_b.external_id not in rated.content.decode()

    assert TrailEvent.objects.filter(case=world.case_b.reference).count() == before


def test_a_compliance_key_limited_to_its_system_reads_nothing_of_another(world):
    whole = world.client("key_compliance").get("/api/v1/trail?limit=10000").json()
    own = world.client("key_compliance_own").get("/api/v1/trail?limit=10000").json()

    assert "support-bot" in {event["system"] for event in whole["events"]}
    assert {event["system"] for event in own["events"]} == {"claims-ai"}
    text = json.dumps(own)
    assert world.case_b.reference not in text and "support-bot" not in text
    assert all(event["proof"]["tree_size"] == own["checkpoint"]["seq"] for event in own["events"])
