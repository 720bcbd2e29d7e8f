"""Publishing routing policies and the queues they name."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml
from django.db import transaction

from reviews.models import Case, Policy, Queue
from reviews.routing import Facts, PolicyInvalid, policy_validate, route_evaluate
from reviews.selectors import case_input_opened
from reviews.services.reason_codes import reason_codes_load
from workbench.models import AISystem, Role
from workbench.services.trail import Actor, trail_append

QUEUE_DEFAULTS = {
    "role": Role.REVIEWER,
    "sla_hours": 24,
    "reviews_required": 1,
    "blind": False,
    "lease_minutes": 15,
    "hold_limit": 1,
    "release_cooldown_minutes": 30,
}
SUPERVISORS_QUEUE = {
    "slug": "supervisors",
    "name": "Supervisor escalations",
    "role": Role.SUPERVISOR,
    "sla_hours": 24,
}


MAX_POLICY_BYTES = 1024 * 1024


def policy_parse(text: str, *, name: str) -> Any:
    """A policy file's text as data: JSON when ``name`` ends in ``.json``,
    else YAML (a superset of JSON). ``PolicyInvalid`` naming the problem."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise PolicyInvalid([f"{name}: larger than 1 MiB"])
    json_file = name.lower().endswith(".json")
    try:
        return json.loads(text) if json_file else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise PolicyInvalid(
            [f"{name} is not valid {'JSON' if json_file else 'YAML'}: {exc}"]
        ) from None


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
            # The justice audit reads its thresholds from here (workbench.metrics.justice).
            "audit": policy_doc["audit"],
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


# --- The dry run -------------------------------------------------------------------------

DRY_RUN_CASES = 1000


@dataclass(frozen=True)
class DryRunRow:
    destination: str  # a queue's slug, or AUTO_FINALIZED
    current: int
    proposed: int

    @property
    def change(self) -> int:
        return self.proposed - self.current


@dataclass(frozen=True)
class DryRun:
    """How a system's latest cases would route under a proposed policy, beside
    the policy in force (both evaluated now, on the same cases)."""

    system: AISystem
    document: dict  # the proposed policy, validated and normalized
    current_version: int | None
    cases: int
    changed: int  # cases whose destination differs
    rows: list[DryRunRow]


AUTO_FINALIZED = "(decided by the AI alone)"


def policy_dry_run(*, document: Any, cases: int = DRY_RUN_CASES) -> DryRun:
    """Route the system's last ``cases`` cases under ``document`` and under
    the policy in force, and count where each would go. Reads only: no case,
    task or trail event is written, nothing is published."""
    system, proposed = policy_check(document)
    current = Policy.objects.filter(system=system).order_by("-version").first()
    latest = list(
        Case.objects.filter(system=system).order_by("-created_at", "-pk").only(*FACT_FIELDS)[:cases]
    )
    counts: dict[str, list[int]] = {}
    changed = 0
    for case in latest:
        facts = case_facts(case)
        before = _destination(current.document, current.version, facts, case) if current else None
        after = _destination(proposed, (current.version + 1) if current else 1, facts, case)
        if before is not None:
            counts.setdefault(before, [0, 0])[0] += 1
        counts.setdefault(after, [0, 0])[1] += 1
        changed += before != after
    rows = [DryRunRow(dest, *counts[dest]) for dest in sorted(counts, key=_row_order)]
    return DryRun(
        system, proposed, current.version if current else None, len(latest), changed, rows
    )


FACT_FIELDS = (
    "pk",
    "external_id",
    "kind",
    "input",
    "output",
    "confidence",
    "metadata",
    "model_name",
    "model_version",
    "explanation",
    "subject",  # the sealed customer words are opened with its key
)


def case_facts(case: Case) -> Facts:
    """What the rules saw of a stored case at its intake: the customer's
    words come back from where they are sealed (gone once erased)."""
    return Facts(
        kind=case.kind,
        input=case_input_opened(case=case),
        output=case.output,
        confidence=case.confidence,
        metadata=case.metadata,
        model={"name": case.model_name, "version": case.model_version},
        explanation=case.explanation,
    )


def _destination(document: dict, version: int, facts: Facts, case: Case) -> str:
    route = route_evaluate(
        document, version=version, facts=facts, external_id=case.external_id, stopped=False
    )
    return route.queue if route.needs_human else AUTO_FINALIZED


def _row_order(destination: str) -> tuple[bool, str]:
    return destination == AUTO_FINALIZED, destination
