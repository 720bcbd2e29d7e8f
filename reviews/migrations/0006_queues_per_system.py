"""Queues belong to their AI system (issue #11, DESIGN §3).

A queue's slug was unique across all systems, and a policy could change any
system's queue. Each queue now belongs to one system and its slug is unique
within it. Existing queues go to the systems that use them: the queues their
policies name (rules, default, appeal and escalation queues, ``queues:``),
and the queues their cases' tasks are in. A queue used by several systems is
copied for each system after the first (by id), and that system's tasks move
to its copy. The old fallbacks ("the first supervisors' queue", "the first
appeal reviewers' queue", by slug across all systems) become a copy of that
queue for every system that relied on them, so that escalations and appeals
go where they went. A queue no system uses goes to the first system, and is
dropped when there is no system (it can hold no task then).

The queue counts (``QueueTaskCount``) follow the moved tasks by their
triggers. No trail event is written here: this is a change of the schema,
recorded by the migration itself; the queues' later changes are recorded as
always.
"""

import django.db.models.deletion
from django.db import migrations, models

QUEUE_COPIED = ["name", "role", "sla_hours", "reviews_required", "blind", "lease_minutes"]


def _policy_slugs(document: dict) -> list[str]:
    slugs = [rule.get("queue") for rule in document.get("rules") or [] if isinstance(rule, dict)]
    slugs += [document.get(key) for key in ("default_queue", "appeal_queue", "escalation_queue")]
    slugs += [q.get("slug") for q in document.get("queues") or [] if isinstance(q, dict)]
    return [slug for slug in slugs if isinstance(slug, str)]


def assign_queues(apps, schema_editor):
    AISystem = apps.get_model("workbench", "AISystem")
    Policy = apps.get_model("reviews", "Policy")
    Queue = apps.get_model("reviews", "Queue")
    ReviewTask = apps.get_model("reviews", "ReviewTask")

    queues = {queue.slug: queue for queue in Queue.objects.order_by("id")}
    users: dict[int, list[int]] = {queue.pk: [] for queue in queues.values()}

    def use(queue_id: int, system_id: int) -> None:
        if system_id not in users[queue_id]:
            users[queue_id].append(system_id)

    systems = list(AISystem.objects.order_by("id").values_list("id", flat=True))
    for system_id in systems:
        policies = Policy.objects.filter(system_id=system_id).order_by("version")
        # Whether a version of the policy left the queue to the old fallback.
        named, relied = set(), {"supervisor": False, "appeal_reviewer": False}
        for policy in policies:
            document = policy.document or {}
            for slug in _policy_slugs(document):
                if slug in queues:
                    named.add(slug)
                    use(queues[slug].pk, system_id)
            relied["supervisor"] |= not document.get("escalation_queue")
            relied["appeal_reviewer"] |= not document.get("appeal_queue")
        if not policies.exists():
            continue
        for role, fell_back in relied.items():
            roles_named = {queues[slug].role for slug in named}
            fallback = next((q for q in queues.values() if q.role == role), None)
            if fell_back and role not in roles_named and fallback is not None:
                use(fallback.pk, system_id)
    for queue_id, system_id in (
        ReviewTask.objects.values_list("queue_id", "case__system_id").distinct().order_by()
    ):
        use(queue_id, system_id)

    for queue in queues.values():
        owners = users[queue.pk] or systems[:1]
        if not owners:
            queue.delete()
            continue
        queue.system_id = owners[0]
        queue.save(update_fields=["system"])
        for system_id in owners[1:]:
            copy = Queue.objects.create(
                system_id=system_id,
                slug=queue.slug,
                **{name: getattr(queue, name) for name in QUEUE_COPIED},
            )
            ReviewTask.objects.filter(queue=queue, case__system_id=system_id).update(queue=copy)


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0005_queue_counts"),
        ("workbench", "0007_export_expired"),
    ]

    operations = [
        migrations.AddField(
            model_name="queue",
            name="system",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="queues",
                to="workbench.aisystem",
            ),
        ),
        migrations.AlterField(
            model_name="queue",
            name="slug",
            field=models.SlugField(max_length=64),
        ),
        migrations.RunPython(assign_queues, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="queue",
            name="system",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="queues",
                to="workbench.aisystem",
            ),
        ),
        migrations.AddConstraint(
            model_name="queue",
            constraint=models.UniqueConstraint(
                fields=("system", "slug"), name="queue_slug_unique_per_system"
            ),
        ),
    ]
