"""POST /api/v1/cases/{reference}/feedback: ratings the AI system collected
in its own channel (issue 16). Validated like intake (422 with field paths),
409 with a code while the case is not final or after 14 days, 404 for
another system's case; nothing stored on any refusal."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from reviews.models import Feedback, SubjectText
from tests import factories
from tests.factories import decided_case
from tests.reviews.intake import CASES, error, post
from workbench.models import TrailEvent


def url(reference: str) -> str:
    return f"{CASES}/{reference}/feedback"


def nothing_stored():
    assert not Feedback.objects.exists()
    assert not SubjectText.objects.filter(kind="feedback").exists()
    assert not TrailEvent.objects.filter(action="case.feedback").exists()


def test_201_with_the_feedback_marked_as_the_systems(api_client, system, alice):
    case = decided_case(system, alice)
    body = {"listened": 4, "explained": 2, "comment": "Quick, but unclear.", "channel": "chat"}

    response = post(api_client, body, url(case.reference))

    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["reference"] == case.reference
    assert (answer["listened"], answer["explained"], answer["stage"]) == (4, 2, "decision")
    assert (answer["source"], answer["channel"], answer["decided_by"]) == (
        "system",
        "chat",
        "human",
    )
    assert answer["changed"] is False and answer["changed_at"] is None
    assert len(answer["comment_sha256"]) == 64
    event = json.loads(TrailEvent.objects.get(action="case.feedback").body)
    assert event["actor"] == {"type": "system", "id": "claims-ai"}
    assert event["data"]["source"] == "system" and event["data"]["channel"] == "chat"
    assert "Quick, but unclear." not in json.dumps(event)


def test_a_changed_rating_is_200_and_marked_changed(api_client, system, alice):
    case = decided_case(system, alice)
    post(api_client, {"listened": 4, "explained": 2}, url(case.reference))

    with time_machine.travel(timedelta(days=2)):
        response = post(api_client, {"listened": 5, "explained": 5}, url(case.reference))

    assert response.status_code == 200
    assert response.json()["changed"] is True and response.json()["listened"] == 5
    assert TrailEvent.objects.filter(action="case.feedback").count() == 2


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"listened": 0, "explained": 3}, ["listened"]),
        ({"listened": 3, "explained": 6}, ["explained"]),
        ({"listened": "4", "explained": 3}, ["listened"]),
        ({"listened": 4.5, "explained": 3}, ["listened"]),
        ({"explained": 3}, ["listened"]),
        ({"listened": 3, "explained": 3, "comment": "x" * 2001}, ["comment"]),
        ({"listened": 3, "explained": 3, "channel": "Chat Survey"}, ["channel"]),
        ({"listened": 3, "explained": 3, "stars": 5}, ["stars"]),
    ],
)
def test_an_invalid_body_is_422_with_field_paths(api_client, system, alice, body, paths):
    case = decided_case(system, alice)

    response = post(api_client, body, url(case.reference))

    assert response.status_code == 422
    code, found = error(response)
    assert code == "invalid" and found == paths
    nothing_stored()


def test_a_comment_with_markup_is_422_on_the_comment(api_client, system, alice):
    case = decided_case(system, alice)

    response = post(
        api_client, {"listened": 3, "explained": 3, "comment": "<b>hi</b>"}, url(case.reference)
    )

    assert response.status_code == 422
    assert error(response) == ("comment_markup", ["comment"])
    nothing_stored()


def test_a_case_not_final_is_409(api_client, system):
    case = factories.ingest(system, factories.claim_payload(1))

    response = post(api_client, {"listened": 3, "explained": 3}, url(case.reference))

    assert response.status_code == 409
    assert error(response)[0] == "not_final"
    nothing_stored()


def test_a_change_after_14_days_is_409_too_late(api_client, system, alice):
    case = decided_case(system, alice)
    post(api_client, {"listened": 1, "explained": 1}, url(case.reference))

    with time_machine.travel(timedelta(days=15)):
        response = post(api_client, {"listened": 5, "explained": 5}, url(case.reference))

    assert response.status_code == 409
    assert error(response)[0] == "too_late"
    assert Feedback.objects.get().listened == 1


def test_another_systems_case_is_404_and_untouched(system, alice):
    case = decided_case(system, alice)
    other = factories.system_with_policy(factories.SUPPORT_POLICY)

    response = post(
        factories.api_client(other), {"listened": 3, "explained": 3}, url(case.reference)
    )

    assert response.status_code == 404
    assert error(response)[0] == "case_not_found"
    nothing_stored()


def test_without_a_key_401(system, alice):
    case = decided_case(system, alice)

    response = post(Client(), {"listened": 3, "explained": 3}, url(case.reference))

    assert response.status_code == 401
    nothing_stored()
