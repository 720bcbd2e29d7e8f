"""Publishing routing policies and the queues they name."""

import hashlib
import json
from dataclasses import dataclass

from django.db import transaction

from reviews.models import Policy, Queue
from reviews.routing import PolicyInvalid, policy_validate
from workbench.models import AISystem, Role
from workbench.services.trail import Actor, trail_append

QUEUE_DEFAULTS = {
    "role": Role.REVIEWER,
    "sla_hours": 24,
    "reviews_required": 1,
    "blind": False,
    "lease_minutes": 15,
}


@dataclass(frozen=True)
class Published:
    policy: Policy
    created: bool  # False when the document equals the version in force


def _digest(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


@transaction.atomic
def policy_publish(*, document: dict, actor: Actor) -> Published:
    """Validate and publish a new version of a system's policy, creating or
    updating the queues it declares. Publishing the version in force again
    changes nothing."""
    existing = set(Queue.objects.values_list("slug", flat=True))
    policy_doc = policy_validate(document, existing_queues=existing, roles=set(Role.values))
    system = AISystem.objects.filter(slug=policy_doc["system"]).first()
    if system is None:
        raise PolicyInvalid([f"system: no AI system {policy_doc['system']!r}; create it first"])

    for spec in policy_doc["queues"]:
        _queue_upsert(spec, actor=actor)

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


def _queue_upsert(spec: dict, *, actor: Actor) -> Queue:
    values = {**QUEUE_DEFAULTS, "name": spec["slug"], **spec}
    slug = values.pop("slug")
    queue = Queue.objects.select_for_update().filter(slug=slug).first()
    if queue is None:
        queue = Queue.objects.create(slug=slug, **values)
        trail_append(action="queue.created", actor=actor, data={"queue": slug, **values})
        return queue
    changed = {k: v for k, v in values.items() if getattr(queue, k) != v}
    if changed:
        for name, value in changed.items():
            setattr(queue, name, value)
        queue.save(update_fields=list(changed))
        trail_append(action="queue.updated", actor=actor, data={"queue": slug, **changed})
    return queue
