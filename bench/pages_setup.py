"""The database ``bench.pages`` measures (its steps 1-3): the demo, a million
cases made by PostgreSQL, and the measured cases with their trails."""

import time

from bench.cases import (
    cases_and_tasks_insert,
    cleanup,
    stage_create,
    subjects_insert,
    uniform_sql,
    variants_build,
    variants_load,
)
from bench.harness import CpuSampler

CLAIM_VARIANTS, CHAT_VARIANTS = 300, 200  # 60% claims, 40% chats
RECENT = 0.10  # the latest share of cases whose tasks are still open
MEASURED_REVIEWERS, HELD_EACH = 30, 3
COLLEAGUES = 100
CLAIMED_BY_COLLEAGUES = 200
OPEN_MEASURED, DECIDED_MEASURED = 100, 100
REVIEWER_QUEUES = ("claims-review", "senior-review", "chat-escalations")
# --- Setup ---------------------------------------------------------------------------------


def setup(args) -> dict:
    from django.core.management import call_command
    from django.db import connection, transaction

    from reviews.demo import CLAIMS, SUPPORT, chat_cases, claim_cases, demo_load
    from reviews.models import Queue
    from reviews.selectors import policy_active
    from workbench.models import AISystem, Role
    from workbench.services import Actor, user_create

    print(f"database {connection.settings_dict['NAME']}: migrating ...", flush=True)
    call_command("migrate", verbosity=0)
    demo_load(cases=0)
    actor = Actor.workbench("bench")
    reviewers = [
        user_create(username=f"bench.rev{i:02d}", role=Role.REVIEWER, actor=actor)
        for i in range(MEASURED_REVIEWERS)
    ]
    colleagues = [
        user_create(username=f"bench.staff{i:03d}", role=Role.REVIEWER, actor=actor)
        for i in range(COLLEAGUES)
    ]
    queues = {q.slug: q for q in Queue.objects.all()}
    claims = AISystem.objects.get(slug=CLAIMS.slug)
    support = AISystem.objects.get(slug=SUPPORT.slug)
    variants = variants_build(
        claims, policy_active(system=claims), claim_cases(CLAIM_VARIANTS), queues
    ) + variants_build(support, policy_active(system=support), chat_cases(CHAT_VARIANTS), queues)

    n = args.cases
    started = time.perf_counter()
    cpu = CpuSampler()
    print(f"creating {n:,} cases with their tasks ...", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")  # setup only: no fsync wait per commit
    with transaction.atomic(), connection.cursor() as cursor:
        variants_load(cursor, variants)
        stage_create(cursor)
        u1 = uniform_sql("g", 11)
        recent_from = int(n * (1 - RECENT))
        cursor.execute(
            f"""
            INSERT INTO bench_stage
            SELECT g, gen_random_uuid(), v.v, c.created, st.state, q.id, st.task_kind,
                   CASE WHEN st.state = 'escalation' THEN v.priority + 10 ELSE v.priority END,
                   c.created + make_interval(hours => q.sla_hours),
                   CASE WHEN st.state = 'done'
                        THEN (%(colleagues)s::bigint[])[1 + mod(g, %(ncol)s)] END,
                   CASE WHEN st.state = 'done' THEN c.created + interval '4 hours' END,
                   NULL
            FROM generate_series(1, %(n)s) g
            JOIN bench_variant v ON v.v = mod(g, %(k)s)
            CROSS JOIN LATERAL (
                SELECT now() - ((%(n)s - g)::float8 / %(n)s) * interval '365 days' AS created
            ) c
            CROSS JOIN LATERAL (
                SELECT CASE
                    WHEN v.queue_id IS NULL THEN
                        CASE WHEN g <= %(recent_from)s AND {u1} < 0.01 THEN 'appeal'
                             ELSE 'none' END
                    WHEN g > %(recent_from)s THEN
                        CASE WHEN {u1} < 0.005 THEN 'escalation' ELSE 'open' END
                    ELSE 'done'
                END AS state
            ) s0
            CROSS JOIN LATERAL (
                SELECT s0.state,
                       CASE s0.state WHEN 'none' THEN NULL WHEN 'appeal' THEN 'appeal'
                            WHEN 'escalation' THEN 'escalation' ELSE v.task_kind END AS task_kind,
                       CASE s0.state WHEN 'none' THEN NULL WHEN 'appeal' THEN %(appeals)s
                            WHEN 'escalation' THEN %(supervisor)s ELSE v.queue_id END AS queue_id
            ) st
            LEFT JOIN reviews_queue q ON q.id = st.queue_id
            """,
            {
                "n": n,
                "k": len(variants),
                "recent_from": recent_from,
                "colleagues": [u.pk for u in colleagues],
                "ncol": len(colleagues),
                "appeals": queues["appeals"].pk,
                "supervisor": queues["supervisor"].pk,
            },
        )
        share = {
            claims.pk: CLAIM_VARIANTS / len(variants),
            support.pk: CHAT_VARIANTS / len(variants),
        }
        subjects_insert(
            cursor,
            system_id=claims.pk,
            prefix="MBR-B",
            count=max(1, int(n * share[claims.pk] * 0.8)),
        )
        subjects_insert(
            cursor,
            system_id=support.pk,
            prefix="CUS-B",
            count=max(1, int(n * share[support.pk] * 0.9)),
        )
        cases, tasks = cases_and_tasks_insert(cursor)
        cleanup(cursor)
    inserted = time.perf_counter() - started
    print(f"  {cases:,} cases and {tasks:,} tasks in {inserted:.1f} s", flush=True)

    with transaction.atomic(), connection.cursor() as cursor:
        # Colleagues hold some open tasks under a live lease: 200, or a quarter
        # of the open tasks at sizes too small to have 800 (under ~20,000
        # cases), so that some remain for the measured reviewers.
        cursor.execute(
            "SELECT count(*) FROM reviews_reviewtask t JOIN reviews_queue q ON q.id = t.queue_id "
            "WHERE t.status = 'open' AND q.slug = ANY(%s)",
            [list(REVIEWER_QUEUES)],
        )
        claimed_by_colleagues = min(CLAIMED_BY_COLLEAGUES, cursor.fetchone()[0] // 4)
        cursor.execute(
            """
            WITH picked AS (
                SELECT t.id, row_number() OVER (ORDER BY hashint8(t.id)) AS n
                FROM reviews_reviewtask t JOIN reviews_queue q ON q.id = t.queue_id
                WHERE t.status = 'open' AND q.slug = ANY(%s)
                ORDER BY hashint8(t.id) LIMIT %s
            )
            UPDATE reviews_reviewtask t SET status = 'claimed',
                   assignee_id = (%s::bigint[])[1 + mod(p.n, %s)],
                   claimed_at = now() - interval '5 minutes',
                   lease_expires_at = now() + interval '8 hours', fencing_token = 1
            FROM picked p WHERE p.id = t.id
            """,
            [
                list(REVIEWER_QUEUES),
                claimed_by_colleagues,
                [u.pk for u in colleagues],
                len(colleagues),
            ],
        )
        cursor.execute(
            "UPDATE reviews_case c SET status = 'in_review' FROM reviews_reviewtask t "
            "WHERE t.case_id = c.id AND t.status = 'claimed'"
        )
    measured = measured_cases_make(reviewers, variants)
    for name in (
        "reviews_subject",
        "reviews_case",
        "reviews_reviewtask",
        "reviews_decision",
        "workbench_trailevent",
    ):
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {name}")
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = on")
        cursor.execute("CHECKPOINT")
        cursor.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('reviews_case')), "
            "pg_size_pretty(pg_total_relation_size('reviews_reviewtask')), "
            "(SELECT count(*) FROM reviews_reviewtask WHERE status = 'open'), "
            "(SELECT count(*) FROM reviews_reviewtask WHERE status = 'claimed'), "
            "(SELECT count(*) FROM workbench_trailevent)"
        )
        case_size, task_size, open_tasks, claimed_tasks, events = cursor.fetchone()
    seconds = time.perf_counter() - started
    made = {
        "cases": cases,
        "tasks": tasks,
        "open_tasks": open_tasks,
        "claimed_tasks": claimed_tasks,
        "trail_events": events,
        "reviews_case_size": case_size,
        "reviews_reviewtask_size": task_size,
        "variants": len(variants),
        "insert_seconds": round(inserted, 1),
        "setup_seconds": round(seconds, 1),
        "cpu": cpu.stop(),
    }
    print(
        f"  ready in {seconds:.1f} s: {open_tasks:,} open and {claimed_tasks:,} claimed tasks, "
        f"reviews_case {case_size}, reviews_reviewtask {task_size}, {events:,} trail events",
        flush=True,
    )
    return {"made": made, "reviewers": reviewers, **measured}


def measured_cases_make(reviewers, variants) -> dict:
    """The cases the case page is measured on, with their trail; see the module doc."""
    import hashlib
    import uuid
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from reviews.models import Case, Decision, ReviewTask
    from reviews.services.intake import _intake_events
    from workbench.services.trail import Actor, TrailEntry, trail_append_many

    def pick(status: str, count: int) -> list[ReviewTask]:
        ids = list(
            ReviewTask.objects.filter(status=status, queue__slug__in=REVIEWER_QUEUES)
            .order_by("?")
            .values_list("pk", flat=True)[:count]
        )
        return list(
            ReviewTask.objects.filter(pk__in=ids)
            .select_related("case__system", "queue", "assignee")
            .order_by("pk")
        )

    now = timezone.now()
    # At small sizes fewer tasks are open than the two groups want: half each.
    available = ReviewTask.objects.filter(
        status=ReviewTask.Status.OPEN, queue__slug__in=REVIEWER_QUEUES
    ).count()
    held_tasks = pick(ReviewTask.Status.OPEN, min(MEASURED_REVIEWERS * HELD_EACH, available // 2))
    taken = {t.pk for t in held_tasks}
    open_tasks = [t for t in pick(ReviewTask.Status.OPEN, OPEN_MEASURED * 2) if t.pk not in taken]
    open_tasks = open_tasks[:OPEN_MEASURED]
    decided_tasks = pick(ReviewTask.Status.DONE, DECIDED_MEASURED)

    entries: list[TrailEntry] = []

    def intake_events(case: Case) -> list[TrailEntry]:
        variant = variants[int(case.external_id[-8:]) % len(variants)]
        item = variant.item.model_copy(update={"external_id": case.external_id})
        return _intake_events(case.system, case, item, variant.route)

    def claimed_event(task: ReviewTask, user, at) -> TrailEntry:
        return TrailEntry(
            "case.claimed",
            Actor.user(user),
            task.case.reference,
            task.case.system.slug,
            {
                "task": task.pk,
                "kind": task.kind,
                "queue": task.queue.slug,
                "fencing_token": 1,
                "lease_expires_at": (at + timedelta(minutes=task.queue.lease_minutes)).isoformat(),
            },
        )

    held = []
    with transaction.atomic():
        for n, task in enumerate(held_tasks):
            user = reviewers[n % len(reviewers)]
            task.status, task.assignee = ReviewTask.Status.CLAIMED, user
            task.claimed_at, task.lease_expires_at = now, now + timedelta(hours=8)
            task.fencing_token = 1
            task.save(update_fields=["status", "assignee", "claimed_at", "lease_expires_at",
                                     "fencing_token"])  # fmt: skip
            Case.objects.filter(pk=task.case_id).update(status=Case.Status.IN_REVIEW)
            task.case.status = Case.Status.PENDING_REVIEW  # what intake recorded
            entries += intake_events(task.case)
            entries.append(claimed_event(task, user, now))
            held.append((task.case.reference, user.pk))
        for task in open_tasks:
            entries += intake_events(task.case)
        decisions = []
        for task in decided_tasks:
            case = task.case
            final = case.status
            case.status = Case.Status.PENDING_REVIEW
            entries += intake_events(case)
            case.status = final
            entries.append(claimed_event(task, task.assignee, now))
            decisions.append(
                Decision(
                    task=task,
                    case=case,
                    reviewer=task.assignee,
                    verdict=Decision.Verdict.AGREE,
                    outcome=case.outcome,
                    rationale="Checked the claim lines against the plan; the AI is right.",
                    seconds_spent=95.0,
                    ai_visible=True,
                    fencing_token=1,
                    idempotency_key=uuid.uuid4().hex,
                )
            )
            entries.append(
                TrailEntry(
                    "case.decided",
                    Actor.user(task.assignee),
                    case.reference,
                    case.system.slug,
                    {
                        "task": task.pk,
                        "verdict": "agree",
                        "outcome": case.outcome,
                        "reason_code": None,
                        "rationale_sha256": hashlib.sha256(
                            decisions[-1].rationale.encode()
                        ).hexdigest(),
                        "seconds": 95.0,
                        "ai_visible": True,
                        "final_outcome": case.outcome,
                    },
                )
            )
        Decision.objects.bulk_create(decisions)
        trail_append_many(entries)
    return {
        "held": held,  # (reference, holder's user id)
        "open": [t.case.reference for t in open_tasks],
        "decided": [t.case.reference for t in decided_tasks],
        "trail_events_appended": len(entries),
    }
