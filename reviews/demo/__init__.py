"""The demo: two AI systems with their policies (the YAML files here), real
cases from ../shared/data, and people in every role (``loader``)."""

from reviews.demo.loader import (
    CLAIMS,
    DEMO_PASSWORD,
    DEMO_SYSTEMS,
    DEMO_USERS,
    REFUSAL_REASON,
    SUPPORT,
    chat_cases,
    claim_cases,
    demo_load,
)

__all__ = [
    "CLAIMS",
    "DEMO_PASSWORD",
    "DEMO_SYSTEMS",
    "DEMO_USERS",
    "REFUSAL_REASON",
    "SUPPORT",
    "chat_cases",
    "claim_cases",
    "demo_load",
]
