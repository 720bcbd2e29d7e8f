"""Migrations that move data, run forward over data made the old way."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("reviews", "0005_queue_counts")]
AFTER = [("reviews", "0006_queues_per_system")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_world(transactional_db):
    """The schema before queues belonged to a system; put back afterwards."""
    apps = migrate(BEFORE)
    yield apps
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_existing_queues_go_to_the_systems_whose_policies_and_tasks_use_them(old_world):
    apps = old_world
    AISystem = apps.get_model("workbench", "AISystem")
    Policy = apps.get_model("reviews", "Policy")
    Queue = apps.get_model("reviews", "Queue")
    Subject = apps.get_model("reviews", "Subject")
    Case = apps.get_model("reviews", "Case")
    ReviewTask = apps.get_model("reviews", "ReviewTask")

    claims = AISystem.objects.create(slug="claims-ai", name="Claims", kind="claim_decision")
    chat = AISystem.objects.create(slug="support-bot", name="Chat", kind="chatbot_answer")
    queues = {
        slug: Queue.objects.create(slug=slug, name=slug.title(), role=role, sla_hours=hours)
        for slug, role, hours in [
            ("claims-review", "reviewer", 48),
            ("shared", "reviewer", 8),  # named by both policies
            ("supervisor", "supervisor", 24),  # the old fallback for escalations
            ("appeals", "appeal_reviewer", 720),  # named by claims-ai, the fallback for chat
            ("unused", "reviewer", 24),
        ]
    }

    def policy(system, **document):
        return Policy.objects.create(system=system, version=1, document=document, digest="x")

    claims_policy = policy(
        claims,
        rules=[{"queue": "claims-review"}, {"queue": "shared"}],
        default_queue="claims-review",
        escalation_queue="supervisor",
        appeal_queue="appeals",
    )
    chat_policy = policy(chat, rules=[{"queue": "shared"}], default_queue="shared")

    def task(system, policy, queue, n):
        subject = Subject.objects.get_or_create(system=system, reference=f"S{n}")[0]
        case = Case.objects.create(
            reference=f"WB-{n}",
            system=system,
            external_id=str(n),
            kind=system.kind,
            subject=subject,
            model_name="m",
            model_version="1",
            input={},
            output={"outcome": "x"},
            confidence=0.5,
            body_digest="d",
            policy=policy,
            route={},
            status="pending_review",
            notice_token_hash=f"h{n}",
        )
        return ReviewTask.objects.create(
            case=case, kind="review", queue=queues[queue], due_at=timezone.now()
        )

    claims_task = task(claims, claims_policy, "shared", 1)
    chat_task = task(chat, chat_policy, "shared", 2)

    apps = migrate(AFTER)
    Queue = apps.get_model("reviews", "Queue")
    ReviewTask = apps.get_model("reviews", "ReviewTask")
    QueueTaskCount = apps.get_model("reviews", "QueueTaskCount")

    owned = set(Queue.objects.values_list("system__slug", "slug", "sla_hours"))
    assert owned == {
        ("claims-ai", "claims-review", 48),
        ("claims-ai", "shared", 8),
        ("claims-ai", "supervisor", 24),
        ("claims-ai", "appeals", 720),
        ("claims-ai", "unused", 24),  # used by nobody: the first system's
        ("support-bot", "shared", 8),  # a copy, with the same settings
        ("support-bot", "supervisor", 24),  # it escalated to the first supervisors' queue
        ("support-bot", "appeals", 720),  # and appealed to the first appeals queue
    }
    # Each task is in its own system's queue now, and the counts followed it.
    moved = ReviewTask.objects.get(pk=chat_task.pk)
    assert (moved.queue.system.slug, moved.queue.slug) == ("support-bot", "shared")
    stayed = ReviewTask.objects.get(pk=claims_task.pk)
    assert (stayed.queue.system.slug, stayed.queue.slug) == ("claims-ai", "shared")
    for queue in Queue.objects.filter(slug="shared"):
        rows = QueueTaskCount.objects.filter(queue=queue)
        assert sum(row.open for row in rows) == 1, queue.system.slug
