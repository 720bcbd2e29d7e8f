"""Helpers for driving the reviewer's screens through the Django test client
(tests/reviews/test_views_*.py)."""

import re

from django.contrib.messages import get_messages

from tests import factories

HTMX = {"HX-Request": "true"}


def case_url(case) -> str:
    return f"/cases/{case.reference}/"


def deny_case(system, n=1, **overrides):
    """A denial: routed to claims-review by adverse-needs-human."""
    return factories.ingest(system, factories.claim_payload(n, **overrides))


def large_case(system, n=1):
    """A large claim: routed to senior-review (two reviews)."""
    return deny_case(system, n, metadata={"amount": 9000})


def form_fields(response) -> dict:
    """The hidden fields of the decision form as rendered."""
    html = response.content.decode()
    return {
        name: re.search(rf'name="{name}" value="([^"]*)"', html)[1]
        for name in ("task", "fencing_token", "idempotency_key")
    }


def decide(client, case, action, **fields):
    page = client.get(case_url(case))
    assert page.status_code == 200
    return client.post(case_url(case), {**form_fields(page), "action": action, **fields})


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# The Outcome and Reason selects of the decision form.
OUTCOME_SELECT = re.compile(r'<select name="outcome"[^>]*>(.*?)</select>', re.S)
REASON_SELECT = re.compile(r'<select name="reason_code"[^>]*>(.*?)</select>', re.S)
