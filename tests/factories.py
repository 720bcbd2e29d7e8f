"""Factories and helpers shared by the tests: systems with policies, API
clients, and case payloads built from the real data in ``data/``."""

import copy
import csv
import json
from functools import lru_cache
from pathlib import Path

import factory
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.db import connection
from django.test import Client

from reviews.services import policy_publish
from workbench.models import AISystem, Role, User
from workbench.services import Actor, ai_system_create, api_key_create, trail_public_key_pem

DATA = Path(__file__).resolve().parent.parent / "data"
ACTOR = Actor.workbench("tests")

CLAIMS_POLICY = {
    "system": "claims-ai",
    "outcomes": ["approve", "deny", "partial"],
    "adverse_outcomes": ["deny", "partial"],
    "appeal_window_days": 184,
    "appeal_deadline_days": 30,
    "qa_sample_rate": 0.05,
    "default_queue": "claims-review",
    "escalation_queue": "supervisor",
    "queues": [
        {"slug": "claims-review", "name": "Claims review", "sla_hours": 48},
        {"slug": "senior-review", "name": "Senior review", "sla_hours": 24, "reviews_required": 2},
        {"slug": "supervisor", "name": "Supervisor", "role": "supervisor", "sla_hours": 24},
        {"slug": "appeals", "name": "Appeals", "role": "appeal_reviewer", "sla_hours": 720},
    ],
    "rules": [
        {
            "name": "large-amount",
            "when": {"field": "metadata.amount", "op": "gt", "value": 5000},
            "queue": "senior-review",
            "priority": 5,
        },
        {
            "name": "adverse-needs-human",
            "when": {"outcome_in": ["deny", "partial"]},
            "queue": "claims-review",
        },
        {"name": "low-confidence", "when": {"confidence_below": 0.8}, "queue": "claims-review"},
    ],
}

SUPPORT_POLICY = {
    "system": "support-bot",
    "outcomes": ["answered", "refused", "handoff"],
    "adverse_outcomes": ["refused"],
    "qa_sample_rate": 0,
    "default_queue": "chat-escalations",
    "queues": [{"slug": "chat-escalations", "name": "Chat escalations", "sla_hours": 4}],
    "rules": [
        {
            "name": "distressed-customer",
            "when": {
                "any": [
                    {"sentiment_below": -0.5},
                    {"text_matches": "(?i)\\b(human|agent|person)\\b"},
                ]
            },
            "queue": "chat-escalations",
        },
        {"name": "low-confidence", "when": {"confidence_below": 0.6}, "queue": "chat-escalations"},
    ],
}


def system_with_policy(policy: dict | None = None, *, stopped: bool = False) -> AISystem:
    policy = copy.deepcopy(policy or CLAIMS_POLICY)
    kind = "chatbot_answer" if policy["system"] == "support-bot" else "claim_decision"
    system = ai_system_create(slug=policy["system"], name=policy["system"], kind=kind, actor=ACTOR)
    policy_publish(document=policy, actor=ACTOR)
    if stopped:
        AISystem.objects.filter(pk=system.pk).update(stopped=True)
        system.refresh_from_db()
    return system


def api_client(system: AISystem, scope: str = "ingest") -> Client:
    key = api_key_create(system=system, scope=scope, actor=ACTOR).plaintext
    return Client(headers={"authorization": f"Bearer {key}"})


@lru_cache(maxsize=1)
def carc_codes() -> list[tuple[str, str]]:
    with open(DATA / "claims" / "carc_claim_adjustment_reason_codes.csv", newline="") as f:
        return [(row["code"], row["description"]) for row in csv.DictReader(f)]


@lru_cache(maxsize=1)
def support_requests() -> list[dict]:
    with open(DATA / "conversations" / "bitext_customer_support_sample.jsonl") as f:
        return [json.loads(line) for line in f]


def claim_payload(n: int = 1, **overrides) -> dict:
    """A claim denial built around a real CARC reason code."""
    code, text = carc_codes()[(n * 7) % 200]
    body = {
        "external_id": f"CLM-2026-{n:06d}",
        "kind": "claim_decision",
        "subject": {"reference": f"MBR-{n:05d}", "name": "Ana Ruiz", "email": "ana@example.org"},
        "model": {"name": "claims-triage", "version": "2026.11.1"},
        "input": {
            "claim": {"id": f"C{n}", "type": "professional"},
            "lines": [
                {
                    "code": "99213",
                    "description": "Office visit",
                    "amount": 180.0,
                    "reason_codes": [f"CO-{code}"],
                }
            ],
        },
        "output": {
            "outcome": "deny",
            "summary": text,
            "reasons": [{"code": f"CO-{code}", "text": text}],
        },
        "confidence": 0.62,
        "explanation": "top features: procedure code, diagnosis pointer",
        "metadata": {"amount": 4200},
    }
    body.update(overrides)
    return body


def chat_payload(n: int = 1, text: str | None = None, **overrides) -> dict:
    """A chatbot answer to a real (Bitext) customer request."""
    row = support_requests()[n % len(support_requests())]
    body = {
        "external_id": f"CHAT-{n:06d}",
        "kind": "chatbot_answer",
        "subject": {"reference": f"CUS-{n:05d}"},
        "model": {"name": "support-llm", "version": "7"},
        "input": {"conversation": [{"role": "customer", "text": text or row["instruction"]}]},
        "output": {"outcome": "answered", "answer": row["response"][:2000]},
        "confidence": 0.9,
        "metadata": {"intent": row["intent"]},
    }
    body.update(overrides)
    return body


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        from django.contrib.auth.models import Group

        if extracted:
            self.groups.add(Group.objects.get_or_create(name=extracted)[0])
        self.save()


__all__ = ["Role", "UserFactory"]


def ingest(system: AISystem, payload: dict):
    """Submit ``payload`` through the intake service; returns the case."""
    from reviews.schemas import CaseIn
    from reviews.services import case_ingest

    return case_ingest(system=system, item=CaseIn.model_validate(payload)).case


def queue_id(system: AISystem, slug: str) -> int:
    """The id of ``system``'s queue ``slug`` (what the Claim next form sends)."""
    from reviews.models import Queue

    return Queue.objects.get(system=system, slug=slug).pk


def reason_code(system: AISystem, code: str = "CO-50", text: str = "Not medically necessary"):
    from reviews.models import ReasonCode

    return ReasonCode.objects.get_or_create(
        system=system, code=code, defaults={"description": text, "customer_text": text}
    )[0]


def client_for(user: User) -> Client:
    """A test client logged in as ``user``."""
    client = Client()
    client.force_login(user)
    return client


def decided_case(system: AISystem, reviewer: User, n: int = 1, **overrides):
    """A claim denial ``reviewer`` claimed and agreed with: final and appealable."""
    import uuid

    from reviews.models import Case
    from reviews.services.assignment import task_claim_next
    from reviews.services.decisions import DecisionInput, decision_record

    ingest(system, claim_payload(n, **overrides))
    task = task_claim_next(user=reviewer)
    decision_record(
        task_id=task.pk,
        user=reviewer,
        fencing_token=task.fencing_token,
        decision=DecisionInput(verdict="agree"),
        idempotency_key=uuid.uuid4().hex,
    )
    return Case.objects.get(pk=task.case_id)


def appeal_decided(reviewer: User, *, reasons: str, outcome: str = "upheld"):
    """``reviewer`` claims the next appeal, opens the customer's statement
    and decides it, as the appeal page does; returns the task."""
    import uuid

    from escalations.services.appeals import appeal_decide, appeal_statement_open
    from reviews.services.assignment import task_claim_next

    task = task_claim_next(user=reviewer)
    appeal_statement_open(task_id=task.pk, user=reviewer, fencing_token=task.fencing_token)
    appeal_decide(
        task_id=task.pk,
        user=reviewer,
        fencing_token=task.fencing_token,
        outcome=outcome,
        final_outcome="",
        reason_code="",
        reasons=reasons,
        idempotency_key=uuid.uuid4().hex,
    )
    return task


def signing_key_change(settings, tmp_path) -> None:
    """Deploy a new signing key; the old one's public key is kept as retired."""
    retired = tmp_path / "retired.pem"
    retired.write_text(trail_public_key_pem())
    settings.TRAIL_SIGNING_KEY = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    settings.TRAIL_RETIRED_PUBLIC_KEY_FILES = [str(retired)]


def trail_wait_queries() -> int:
    """The queries a request's read-your-writes wait (``trail_integrate``)
    adds when nothing is pending: one on PostgreSQL (is anything pending?),
    once per request; none on SQLite, where events are chained at once."""
    return 1 if connection.vendor == "postgresql" else 0
