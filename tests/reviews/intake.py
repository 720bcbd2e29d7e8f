"""Helpers for the intake API's tests (tests/reviews/test_api_*.py)."""

import json
import re
from itertools import count

from reviews.models import Case, ReviewTask
from reviews.routing import qa_sampled
from tests import factories
from workbench.models import TrailEvent
from workbench.services import trail_verify

CASES = "/api/v1/cases"
JSON = "application/json"
REFERENCE = re.compile(r"^WB-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$")


def post(client, body, path=CASES):
    """POST ``body``: a dict is sent as JSON, bytes or text as they are."""
    return client.post(path, body, content_type=JSON)


def error(response) -> tuple[str, list[str]]:
    body = response.json()["error"]
    return body["code"], [problem["path"] for problem in body["fields"]]


def approval(n: int, **overrides) -> dict:
    """A confident approval the claims policy finalizes: no rule matches, and
    ``n`` is moved past external_ids the 5% QA sample would pick."""
    n = next(
        m
        for m in count(n)
        if not qa_sampled(system="claims-ai", external_id=f"CLM-2026-{m:06d}", rate=0.05)
    )
    body = factories.claim_payload(
        n,
        output={"outcome": "approve", "summary": "Covered", "reasons": []},
        confidence=0.97,
        metadata={"amount": 180},
    )
    body.update(overrides)
    return body


def tweet(tweet_id: str) -> str:
    with open(factories.DATA / "emotion" / "vader_tweets_human_ratings.jsonl") as f:
        rows = (json.loads(line) for line in f)
        return next(row["text"] for row in rows if row["id"] == tweet_id)


def assert_nothing_written(trail_before: int) -> None:
    assert Case.objects.count() == 0
    assert ReviewTask.objects.count() == 0
    assert TrailEvent.objects.count() == trail_before
    assert trail_verify().ok
