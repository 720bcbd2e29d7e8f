"""The routing policy: rules as data (DESIGN §4).

``validation``: ``policy_validate`` checks a policy document and returns it
normalized, or raises ``PolicyInvalid`` listing every problem.
``evaluation``: ``route_evaluate`` runs a validated policy over a case's facts.
"""

from reviews.routing.evaluation import (
    Facts,
    Route,
    fairness_segments,
    latest_customer_text,
    qa_sampled,
    route_evaluate,
    sentiment_score,
)
from reviews.routing.validation import MIN_APPEAL_WINDOW_DAYS, PolicyInvalid, policy_validate

__all__ = [
    "MIN_APPEAL_WINDOW_DAYS",
    "Facts",
    "PolicyInvalid",
    "Route",
    "fairness_segments",
    "latest_customer_text",
    "policy_validate",
    "qa_sampled",
    "route_evaluate",
    "sentiment_score",
]
