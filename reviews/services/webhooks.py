"""The webhooks of a case's life beyond its final outcome (DESIGN §5): each
topic is sent only to a system that subscribed to it (``AISystem.webhook_topics``),
through the outbox, in the transaction of the change. Their shapes are
declared in the OpenAPI document (``reviews.schemas``, ``webhooks``)."""

from typing import Any

from reviews.models import Case
from workbench.models import AISystem
from workbench.services.outbox import webhook_enqueue, webhook_enqueue_many
from workbench.services.webhooks import webhook_wanted


def case_webhook_payload(case: Case, **extra: Any) -> dict[str, Any]:
    """What every case webhook carries, and the topic's own fields."""
    return {
        "reference": case.reference,
        "external_id": case.external_id,
        "status": case.status,
        "outcome": case.final_outcome or None,
        "decided_by": case.decided_by or None,
        **extra,
    }


def case_webhook(*, case: Case, topic: str, **extra: Any) -> None:
    """Queue ``topic`` about ``case`` to its system, if it subscribed."""
    if webhook_wanted(case.system, topic):
        payload = case_webhook_payload(case, **extra)
        webhook_enqueue(system=case.system, topic=topic, payload=payload)


def cases_routed_webhooks(*, system: AISystem, cases: list[Case]) -> None:
    """``case.routed`` for a batch of new cases: one INSERT for all of them,
    and nothing at all for a system that did not subscribe."""
    if not webhook_wanted(system, "case.routed"):
        return
    webhook_enqueue_many(
        system=system,
        topic="case.routed",
        payloads=[
            case_webhook_payload(
                case,
                route={
                    "rule": case.route.get("rule"),
                    "queue": case.route.get("queue"),
                    "policy_version": case.route["policy_version"],
                    "reason": case.route.get("reason"),
                },
            )
            for case in cases
        ],
    )


def cases_overdue_webhooks(*, moved: list[tuple[Case, dict[str, Any]]]) -> None:
    """``case.overdue`` for the tasks the deadline sweep moved: one INSERT per
    system that subscribed."""
    by_system: dict[int, tuple[AISystem, list[dict]]] = {}
    for case, extra in moved:
        if webhook_wanted(case.system, "case.overdue"):
            entry = by_system.setdefault(case.system_id, (case.system, []))
            entry[1].append(case_webhook_payload(case, **extra))
    for system, payloads in by_system.values():
        webhook_enqueue_many(system=system, topic="case.overdue", payloads=payloads)
