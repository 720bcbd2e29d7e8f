"""Blind review and two reviews on the case page through the Django test
client: the AI hidden until the reviewer commits, the commitment required,
and the second reviewer not shown the first review."""

import re

from reviews.models import Case, Decision
from tests.factories import client_for
from tests.reviews.screens import (
    case_url,
    decide,
    deny_case,
    form_fields,
    large_case,
    messages_of,
)

# --- Blind review --------------------------------------------------------------------------


def test_blind_review_hides_the_ai_until_the_reviewer_commits(blind_system, alice):
    case = deny_case(blind_system)
    client = client_for(alice)
    client.post("/queues/claim/")

    page = client.get(case_url(case))

    html = page.content.decode()
    assert page.context["hidden"]
    assert "62%" not in html and "0.620" not in html
    assert case.output["summary"] not in html
    assert "top features" not in html  # the explanation waits too
    # The claim line's reason codes (the rules on outcome and confidence are
    # withheld whole: see test_views_blind_leaks.py).
    assert "hidden until you commit" in html
    timeline = {entry.action: entry for entry in page.context["timeline"]}
    assert "outcome" not in dict(timeline["case.received"].details)
    assert ">Commit outcome</button>" in html and ">Agree</button>" not in html
    assert 'name="outcome"' in html and '<option value="" selected>' in html

    # Committing nothing is refused.
    response = client.post(case_url(case), {**form_fields(page), "action": "commit"})
    assert response.status_code == 422 and "choose your outcome first" in response.content.decode()

    # Commit "approve": the page now shows the AI's outcome and asks to confirm.
    response = client.post(
        case_url(case), {**form_fields(page), "action": "commit", "outcome": "approve"}
    )
    assert response.status_code == 302 and response["Location"] == case_url(case)
    revealed = client.get(case_url(case))
    html = revealed.content.decode()
    assert not revealed.context["hidden"]
    assert "62%" in html and "Your outcome: <span" in html
    assert ">Override</button>" in html and ">Agree</button>" not in html
    # A second commit does not change the first choice.
    client.post(case_url(case), {**form_fields(page), "action": "commit", "outcome": "deny"})
    assert client.get(case_url(case)).context["blind_choice"] == "approve"

    # Confirming a different outcome is an override: reason and rationale needed.
    response = client.post(case_url(case), {**form_fields(revealed), "action": "override"})
    assert response.status_code == 422
    assert not Decision.objects.exists()
    response = client.post(
        case_url(case),
        {
            **form_fields(revealed),
            "action": "override",
            "reason_code": "CO-50",
            "rationale": "The notes show medical necessity.",
        },
    )
    assert response.status_code == 302
    decision = Decision.objects.get()
    assert (decision.verdict, decision.outcome, decision.ai_visible) == (
        "override",
        "approve",
        False,
    )


def test_blind_review_agreement_is_recorded_as_not_seen(blind_system, alice):
    case = deny_case(blind_system)
    client = client_for(alice)
    client.post("/queues/claim/")
    page = client.get(case_url(case))
    client.post(case_url(case), {**form_fields(page), "action": "commit", "outcome": "deny"})
    revealed = client.get(case_url(case))
    assert ">Agree</button>" in revealed.content.decode()

    response = client.post(case_url(case), {**form_fields(revealed), "action": "agree"})

    assert response.status_code == 302
    decision = Decision.objects.get()
    assert (decision.verdict, decision.outcome, decision.ai_visible) == ("agree", "deny", False)
    assert Case.objects.get().final_outcome == "deny"


def test_blind_review_cannot_skip_the_commitment(blind_system, alice):
    case = deny_case(blind_system)
    client = client_for(alice)
    client.post("/queues/claim/")
    page = client.get(case_url(case))
    response = client.post(
        case_url(case), {**form_fields(page), "action": "agree", "outcome": "deny"}
    )
    assert response.status_code == 422
    assert not Decision.objects.exists()


# --- Two reviews ----------------------------------------------------------------------------


def test_the_second_reviewer_does_not_see_the_first_review(system, alice, bob, catalog):
    case = large_case(system)
    alice_client = client_for(alice)
    alice_client.post("/queues/claim/")
    response = decide(
        alice_client,
        case,
        "override",
        outcome="approve",
        reason_code="CO-50",
        rationale="first opinion",
    )
    assert response.status_code == 302
    assert "a second reviewer will decide too" in messages_of(response)[0]

    bob_client = client_for(bob)
    assert bob_client.post("/queues/claim/")["Location"] == case_url(case)
    page = bob_client.get(case_url(case))

    reviewed = [e for e in page.context["timeline"] if e.action == "case.reviewed"]
    assert len(reviewed) == 1 and reviewed[0].details == []
    html = page.content.decode()
    assert "The first of two reviews is recorded" in html
    assert "first opinion" not in html and page.context["decisions"] == []
    assert "approve" not in [value for _, value in page.context["timeline"][-2].details]
    assert "CO-50" not in re.sub(r"<select.*?</select>", "", html, flags=re.S)

    # Once both are in (and agree), the case is final and the reviews are shown.
    response = decide(
        bob_client,
        case,
        "override",
        outcome="approve",
        reason_code="CO-50",
        rationale="second opinion",
    )
    assert response.status_code == 302
    page = bob_client.get(case_url(case))
    reviewed = [e for e in page.context["timeline"] if e.action == "case.reviewed"][0]
    assert ("verdict", "override") in reviewed.details
    html = page.content.decode()
    assert "first opinion" in html and "second opinion" in html
    assert Case.objects.get().final_outcome == "approve"
