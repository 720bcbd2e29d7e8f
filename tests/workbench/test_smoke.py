from reviews.models import Case
from tests import factories


def test_claim_submission_routes_a_denial_to_a_person(api_client):
    response = api_client.post(
        "/api/v1/cases", factories.claim_payload(), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["route"]["rule"] == "adverse-needs-human"
    assert Case.objects.get().status == Case.Status.PENDING_REVIEW
