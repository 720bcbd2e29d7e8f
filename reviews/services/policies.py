"""Publishing routing policies and the queues they name."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from reviews.models import Policy, Queue
from reviews.routing import PolicyInvalid, policy_validate
from reviews.services.reason_codes import reason_codes_load
from workbench.models import AISystem, Role
from workbench.services.trail import Actor, trail_append

QUEUE_DEFAULTS = {
    "role": Role.REVIEWER,
    "sla_hours": 24,
    "reviews_required": 1,
    "blind": False,
    "lease_minutes": 15,
}
SUPERVISORS_QUEUE = {
    "slug": "supervisors",
    "name": "Supervisor escalations",
    "role": Role.SUPERVISOR,
    "sla_hours": 24,
}


@dataclass(frozen=True)
class Published:
    policy: Policy
    created: bool  # False when the document equals the version in force


def _digest(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def policy_check(document: Any) -> tuple[AISystem, dict]:
    """The system a policy document is for, and the document validated and
    normalized against that system's queues; ``PolicyInvalid`` otherwise.
    Reads only."""
    slug = document.get("system") if isinstance(document, dict) else None
    system = AISystem.objects.filter(slug=slug).first() if isinstance(slug, str) else None
    existing = (
        dict(Queue.objects.filter(system=system).values_list("slug", "role")) if system else {}
    )
    policy_doc = policy_validate(document, existing_queues=existing, roles=set(Role.values))
    if system is None:
        raise PolicyInvalid([f"system: no AI system {policy_doc['system']!r}; create it first"])
    return system, policy_doc


@transaction.atomic
def policy_publish(*, document: dict, actor: Actor) -> Published:
    """Validate and publish a new version of a system's policy, creating or
    updating the queues it declares (only that system's queues), and loading
    its ``reason_codes:`` into the system's catalog. Publishing the version
    in force again changes nothing."""
    system, policy_doc = policy_check(document)
    # One publisher per system at a time: the system's row, then its queues.
    AISystem.objects.select_for_update().filter(pk=system.pk).first()

    for spec in policy_doc["queues"]:
        _queue_upsert(system, spec, actor=actor)
    if policy_doc["escalation_queue"] is None:
        # Escalate is a verdict every reviewer has (DESIGN §5b): a system
        # whose policy names no supervisors' queue gets one.
        _queue_upsert(system, SUPERVISORS_QUEUE, actor=actor)
        policy_doc["escalation_queue"] = SUPERVISORS_QUEUE["slug"]
    if policy_doc.get("reason_codes") is not None:
        reason_codes_load(system=system, rows=policy_doc["reason_codes"], actor=actor)

    digest = _digest(policy_doc)
    current = Policy.objects.select_for_update().filter(system=system).order_by("-version").first()
    if current is not None and current.digest == digest:
        return Published(current, created=False)
    policy = Policy.objects.create(
        system=system,
        version=(current.version + 1) if current else 1,
        document=policy_doc,
        digest=digest,
        published_by=actor.id,
    )
    trail_append(
        action="policy.published",
        actor=actor,
        system=system.slug,
        data={
            "version": policy.version,
            "sha256": digest,
            "rules": [rule["name"] for rule in policy_doc["rules"]],
            "appeal_window_days": policy_doc["appeal_window_days"],
            "qa_sample_rate": policy_doc["qa_sample_rate"],
        },
    )
    return Published(policy, created=True)


def _queue_upsert(system: AISystem, spec: dict, *, actor: Actor) -> Queue:
    values = {**QUEUE_DEFAULTS, "name": spec["slug"], **spec}
    slug = values.pop("slug")
    queue = Queue.objects.select_for_update().filter(system=system, slug=slug).first()
    if queue is None:
        queue = Queue.objects.create(system=system, slug=slug, **values)
        trail_append(
            action="queue.created",
            actor=actor,
            system=system.slug,
            data={"queue": slug, **values},
        )
        return queue
    changed = {k: v for k, v in values.items() if getattr(queue, k) != v}
    if changed:
        for name, value in changed.items():
            setattr(queue, name, value)
        queue.save(update_fields=list(changed))
        trail_append(
            action="queue.updated",
            actor=actor,
            system=system.slug,
            data={"queue": slug, **changed},
        )
    return queue
