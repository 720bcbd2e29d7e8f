"""Claim-next throughput and latency with 16 concurrent reviewers, on PostgreSQL.

Not a test: it prints figures and merges them into bench/results/claim.json.

    .venv/bin/python -m bench.claim --quick               # 10,000 open tasks
    .venv/bin/python -m bench.claim                       # 100,000 open tasks
    .venv/bin/python -m bench.claim --mode processes      # 16 processes, not threads

In-process, on a fresh database ``workbench_bench_claim_<random>`` (dropped at
the end):

1. ``migrate``; the demo's claims system and policy
   (``bench.harness.demo_system_create``: ``reviews/demo/claims-ai.yaml``);
   ``--reviewers`` users with the reviewer role;
2. ``--tasks`` open review tasks in ``claims-review``, with their cases and
   subjects, made by PostgreSQL (``INSERT ... SELECT generate_series`` from a
   few hundred real demo claims routed by the policy, see ``bench/cases.py``): no
   intake, no trail. Priorities 0 (88%), 5 (10%), 20 (2%), due times spread
   over two days. ``VACUUM ANALYZE``;
3. **the physical limit**: a plain table ``bench_claim`` (id, status,
   priority, due_at, assignee; index on (status, priority DESC, due_at, id))
   with the same rows, and ``--reviewers`` workers each running, in
   autocommit, ``UPDATE bench_claim SET status='claimed', assignee=%s WHERE id
   = (SELECT id ... WHERE status='open' ORDER BY priority DESC, due_at, id
   LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id`` until nothing is left;
4. one probe claim through the service under ``CaptureQueriesContext``: the
   queries of one claim, with ``EXPLAIN (ANALYZE, BUFFERS)`` of its SELECTs;
5. **the service**: ``--reviewers`` workers (threads, each with its own
   Django connection, closed at its end; or ``--mode processes``) each call
   ``reviews.services.assignment.task_claim_next(user=..., queue_slug=
   'claims-review')`` in a loop until it returns None. The user's groups are
   prefetched once per worker (the view does it once per request). Claims/s
   overall, p50/p95/p99 of one call;
6. checks: no task id handed to two workers; in the database every task
   claimed, by the worker that got it, fencing token 1, case in_review; one
   ``case.claimed`` trail event per task, by that worker's user;
   ``trail_verify()`` ok. The probe's queries are EXPLAINed again on the
   emptied queue.

Celery is eager (no Redis): the checkpoint signing every 1,000th trail event
runs inline, in the claiming worker, after its commit.
"""

import os
import time
from collections import Counter

from bench.cases import (
    cases_and_tasks_insert,
    cleanup,
    stage_create,
    subjects_insert,
    uniform_sql,
    variants_build,
    variants_load,
)
from bench.claim_checks import checks, explain_all, probe
from bench.claim_workers import (
    QUEUE,
    WaitSampler,
    claim_serially,
    commit_timing_install,
    phase_figures,
    profile_claims,
    run_parallel,
    service_worker,
    skip_locked_worker,
)
from bench.harness import (
    CpuSampler,
    arguments,
    demo_system_create,
    load_report,
    machine,
    parse,
    pg_url,
    pg_version,
    print_machine,
    results_dir,
    results_merge,
    scratch_database,
    table,
)
from bench.processes import Sequencer

TARGET_RATIO = 0.5  # of the bare SKIP LOCKED loop's claims/s, same run (issue #15)
TARGET_P95_MS = 15.0
SERIAL_CLAIMS, SERIAL_SECONDS = 300, 30.0  # one reviewer alone, before the concurrent phase
PROFILE_CLAIMS = 200
VARIANTS = 400  # demo claims to route; those sent to claims-review become templates


def main(argv: list[str] | None = None) -> int:
    parser = arguments(
        __doc__,
        {"tasks": (100_000, 10_000, "open tasks to claim (default 100,000)")},
        quick_help="10,000 tasks",
    )
    parser.add_argument(
        "--reviewers", type=int, default=16, help="concurrent claimers (default 16)"
    )
    parser.add_argument(
        "--mode",
        choices=("threads", "processes"),
        default="threads",
        help="one thread per reviewer (default) or one process",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=300,
        help="stop each claiming phase after this long (default 300 s)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"also run {PROFILE_CLAIMS} claims by one reviewer under cProfile",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (debugging)")
    args = parse(parser, argv)

    info = machine()
    info["postgresql"] = pg_version()
    print_machine(info)
    print(
        f"PostgreSQL {info['postgresql']} at 127.0.0.1:5432; {args.reviewers} reviewers as "
        f"{args.mode}; {args.tasks:,} open tasks"
    )
    with scratch_database("claim", keep=args.keep) as database:
        figures = run(args, info, database)

    info["loadavg_at_end"] = os.getloadavg()
    load_report(info)
    results_merge("claim.json", f"{args.mode}-{args.tasks}", figures)
    return 0 if figures["checks"]["ok"] else 1


# --- Setup --------------------------------------------------------------------------------


def setup(args) -> dict:
    from django.core.management import call_command
    from django.db import connection, transaction

    from reviews.demo import claim_cases
    from reviews.models import Queue
    from reviews.selectors import policy_active
    from workbench.models import Role
    from workbench.services import Actor, user_create

    print(f"database {connection.settings_dict['NAME']}: migrating ...", flush=True)
    call_command("migrate", verbosity=0)
    system = demo_system_create()
    # Each worker claims until the queue is empty, deciding nothing: the
    # queue's hold limit (1 by default) would stop it at its first claim.
    Queue.objects.filter(system=system).update(hold_limit=32767)
    policy = policy_active(system=system)
    actor = Actor.workbench("bench")
    users = [
        user_create(username=f"bench.rev{i:02d}", role=Role.REVIEWER, actor=actor)
        for i in range(args.reviewers)
    ]
    probe = user_create(username="bench.probe", role=Role.REVIEWER, actor=actor)
    queues = {q.slug: q for q in Queue.objects.all()}

    variants = [
        v
        for v in variants_build(system, policy, claim_cases(VARIANTS), queues)
        if v.route.queue == QUEUE
    ]
    started = time.perf_counter()
    print(f"creating {args.tasks:,} open tasks with their cases ...", flush=True)
    with transaction.atomic(), connection.cursor() as cursor:
        variants_load(cursor, variants)
        stage_create(cursor)
        u1, u2 = uniform_sql("g", 1), uniform_sql("g", 2)
        cursor.execute(
            f"""
            INSERT INTO bench_stage
            SELECT g, gen_random_uuid(), v.v, created, 'open', v.queue_id, v.task_kind,
                   CASE WHEN {u2} < 0.02 THEN 20 WHEN {u2} < 0.12 THEN 5 ELSE 0 END,
                   created + make_interval(hours => v.sla_hours), NULL, NULL, NULL
            FROM generate_series(1, %s) g
            JOIN bench_variant v ON v.v = mod(g, %s)
            CROSS JOIN LATERAL (SELECT now() - {u1} * interval '47 hours' AS created) c
            """,
            [args.tasks, len(variants)],
        )
        subjects_insert(
            cursor, system_id=system.pk, prefix="MBR-B", count=max(1, args.tasks * 4 // 5)
        )
        cases, tasks = cases_and_tasks_insert(cursor)
        cleanup(cursor)
    for name in ("reviews_subject", "reviews_case", "reviews_reviewtask"):
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {name}")
    seconds = time.perf_counter() - started
    print(f"  {cases:,} cases and {tasks:,} tasks in {seconds:.1f} s", flush=True)
    return {
        "users": [u.pk for u in users],
        "probe": probe.pk,
        "variants": len(variants),
        "cases": cases,
        "tasks": tasks,
        "seconds": round(seconds, 1),
    }


# --- The run ---------------------------------------------------------------------------------


def run(args, info: dict, database: str) -> dict:
    import django

    django.setup()
    from django.db import connection

    made = setup(args)
    users = made["users"]
    figures: dict = {
        "machine": info,
        "mode": args.mode,
        "reviewers": args.reviewers,
        "tasks": made["tasks"],
        "setup": made,
        "targets": {"over_skip_locked": TARGET_RATIO, "p95_ms": TARGET_P95_MS, "double_claims": 0},
    }

    # 3. The physical limit on a plain table of the same rows.
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_claim (id bigint PRIMARY KEY, status text NOT NULL, "
            "priority int NOT NULL, due_at timestamptz NOT NULL, assignee bigint)"
        )
        cursor.execute(
            "INSERT INTO bench_claim SELECT id, status, priority, due_at, NULL "
            "FROM reviews_reviewtask"
        )
        cursor.execute(
            "CREATE INDEX bench_claim_order ON bench_claim (status, priority DESC, due_at, id)"
        )
        cursor.execute("VACUUM ANALYZE bench_claim")
        cursor.execute("CHECKPOINT")
    print(
        f"SKIP LOCKED limit: {args.reviewers} {args.mode} on a plain table of "
        f"{made['tasks']:,} rows ...",
        flush=True,
    )
    url = pg_url(database)
    cpu = CpuSampler()
    results, start = run_parallel(
        skip_locked_worker,
        [(url, i + 1, args.max_seconds) for i in range(args.reviewers)],
        args.mode,
        args.max_seconds,
    )
    bare = phase_figures(results, start, cpu.stop())
    bare_ids = Counter(x for r in results if r and "ids" in r for x in r["ids"])
    bare["double_claims"] = sum(1 for n in bare_ids.values() if n > 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FILTER (WHERE status = 'open') FROM bench_claim")
        bare["still_open"] = cursor.fetchone()[0]
        cursor.execute("DROP TABLE bench_claim")
        cursor.execute("CHECKPOINT")
    figures["skip_locked_limit"] = bare
    print(
        f"  {bare['claims_per_s']:,.0f} claims/s, p50 {bare['p50_ms']} ms, p95 {bare['p95_ms']} "
        f"ms, double claims {bare['double_claims']}, cpu {bare['cpu']}",
        flush=True,
    )

    # 4. One probe claim: its queries and their plans.
    probed = probe(made["probe"])
    figures["probe"] = probed
    print(f"one claim through the service: {probed['query_count']} queries")
    for q in probed["queries"]:
        print(f"  {q['ms']:7.2f} ms  {q['sql'][:150]}")

    # 4b. One reviewer alone: the uncontended cost of a claim.
    commit_timing_install()
    serial, serial_ids = claim_serially(made["probe"], SERIAL_CLAIMS, SERIAL_SECONDS)
    figures["one_reviewer"] = serial
    line = (
        f"one reviewer alone, {serial['claims']} claims: {serial['claims_per_s']:,.0f} claims/s, "
        f"p50 {serial['p50_ms']} ms, p95 {serial['p95_ms']} ms"
    )
    if "commit" in serial:
        line += f"; COMMIT (chaining the event) p50 {serial['commit']['p50_ms']} ms"
    print(line, flush=True)
    if args.profile:
        profiled, profiled_ids = profile_claims(made["probe"], PROFILE_CLAIMS)
        serial_ids += profiled_ids
        figures["profile"] = profiled

    # 5. The service.
    print(
        f"service: {args.reviewers} {args.mode} call task_claim_next until the queue is empty ...",
        flush=True,
    )
    from workbench.services import trail_integrate

    trail_integrate()  # the setup's events: not this phase's delay
    sequencer = Sequencer(
        dict(os.environ),
        results_dir() / "claim-merge-delays.json",
        results_dir() / "claim-sequencer.log",
    )
    sequencer.start()
    cpu = CpuSampler()
    cpu_process = time.process_time()
    waits = WaitSampler(url, database)
    results, start = run_parallel(
        service_worker,
        [(user_id, QUEUE, args.max_seconds) for user_id in users],
        args.mode,
        args.max_seconds,
    )
    service = phase_figures(results, start, cpu.stop())
    service["merge_delay"] = sequencer.stop()
    service["pg_activity"] = waits.stop()
    service["bench_process_cpu_s"] = round(time.process_time() - cpu_process, 2)
    figures["service"] = service
    print(
        f"  {service['claims_per_s']:,.0f} claims/s, p50 {service['p50_ms']} ms, "
        f"p95 {service['p95_ms']} ms, p99 {service['p99_ms']} ms, errors "
        f"{service['error_count']}, cpu {service['cpu']}",
        flush=True,
    )
    print(f"  merge delay (commit to seq, manage.py trail_sequencer): {service['merge_delay']}")
    if "commit" in service:
        commit = service["commit"]
        print(
            f"  COMMIT per claim (waiting for the chain head, chaining, WAL flush): "
            f"p50 {commit['p50_ms']} / p95 {commit['p95_ms']} / mean {commit['mean_ms']} ms "
            f"({service['commit_share']:.0%} of the phase)"
        )
    print("  where the claimers' connections were (mean number, sampled every 20 ms):")
    for what, n in service["pg_activity"]["mean_connections_by_activity"].items():
        print(f"    {n:5.2f}  {what}")
    if service["fatal"] or service["errors"]:
        print(f"  problems: {service['fatal'] or service['errors']}")

    # 6. Checks, and the probe's queries again on the emptied queue.
    records: dict[int, list[int]] = {
        made["probe"]: ([probed["task"]] if probed["task"] else []) + serial_ids
    }
    for user_id, result in zip(users, results, strict=True):
        if result and "ids" in result:
            records[user_id] = result["ids"]
    print("checking ...", flush=True)
    figures["checks"] = checks(records, service["timed_out"])
    figures["probe"]["plans_after"] = explain_all([q["sql"] for q in probed["queries"]])
    figures["ratio_service_over_skip_locked"] = (
        round(service["claims_per_s"] / bare["claims_per_s"], 4)
        if service["claims_per_s"] and bare["claims_per_s"]
        else None
    )
    figures["machine"]["loadavg_at_end"] = os.getloadavg()
    report(figures)
    return figures


def report(figures: dict) -> None:
    service, bare, check = figures["service"], figures["skip_locked_limit"], figures["checks"]
    alone = figures["one_reviewer"]
    rows = [
        (
            f"task_claim_next, {figures['reviewers']} {figures['mode']}",
            f"{service['claims_per_s']:,.0f} claims/s",
            f"{service['claims']:,} claims in {service['seconds']:.1f} s",
            f">= {TARGET_RATIO:.0%} of bare SKIP LOCKED",
            "PASS"
            if (service["claims_per_s"] or 0) >= TARGET_RATIO * bare["claims_per_s"]
            else "MISS",
        ),
        (
            "  latency of one claim",
            f"p95 {service['p95_ms']} ms",
            f"p50 {service['p50_ms']} / p99 {service['p99_ms']} / max {service['max_ms']} ms",
            f"p95 <= {TARGET_P95_MS:.0f} ms",
            "PASS" if service["p95_ms"] <= TARGET_P95_MS else "MISS",
        ),
        (
            "  double claims",
            str(check["double_claims"]),
            f"{check['distinct_tasks_handed_out']:,} tasks, {check['claimed_events']:,} "
            "claimed events",
            "0",
            "PASS" if check["double_claims"] == 0 else "MISS",
        ),
        (
            "task_claim_next, one reviewer alone",
            f"{alone['claims_per_s']:,.0f} claims/s",
            f"p50 {alone['p50_ms']} / p95 {alone['p95_ms']} ms, {alone['claims']} claims",
            "",
            "",
        ),
        (
            f"bare SKIP LOCKED UPDATE, {figures['reviewers']} {figures['mode']}",
            f"{bare['claims_per_s']:,.0f} claims/s",
            f"p50 {bare['p50_ms']} / p95 {bare['p95_ms']} / p99 {bare['p99_ms']} ms",
            "",
            "",
        ),
    ]
    print()
    machine_info = figures["machine"]
    print(
        f"{machine_info['cpus']} cores; load average at start "
        f"{', '.join(f'{x:.2f}' for x in machine_info['loadavg_at_start'])}"
    )
    print(table(rows, ("measure", "rate", "detail", "target", "")))
    ratio = figures["ratio_service_over_skip_locked"]
    if ratio:
        print(f"service / bare SKIP LOCKED: {ratio:.1%}")
    problems = check["problems"]
    print(
        f"checks: {'OK' if check['ok'] else 'FAILED'} — {check['claimed_in_db']:,} of "
        f"{check['tasks_in_db']:,} tasks claimed, {check['tasks_with_claimed_event']:,} with a "
        f"case.claimed event, trail_verify ok={check['trail_verify_ok']} "
        f"({check['trail_verify_events']:,} events)"
        + (
            f"; stopped at the time limit with {check['still_open']:,} open"
            if check["stopped_at_time_limit"]
            else ""
        )
        + (f"; problems {problems}" if problems else "")
    )
    per_worker = service["per_worker"]
    if per_worker:
        print(f"claims per worker: min {min(per_worker):,}, max {max(per_worker):,}")


if __name__ == "__main__":
    raise SystemExit(main())
