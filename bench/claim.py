"""Claim-next throughput and latency with 16 concurrent reviewers, on PostgreSQL.

Not a test: it prints figures and merges them into bench/results/claim.json.

    .venv/bin/python bench/claim.py --quick               # 10,000 open tasks
    .venv/bin/python bench/claim.py                       # 100,000 open tasks
    .venv/bin/python bench/claim.py --mode processes      # 16 processes, not threads

In-process, on a fresh database ``workbench_bench_claim_<random>`` (dropped at
the end):

1. ``migrate``; the tests' claims system and policy
   (``tests.factories.system_with_policy``); ``--reviewers`` users with the
   reviewer role;
2. ``--tasks`` open review tasks in ``claims-review``, with their cases and
   subjects, made by PostgreSQL (``INSERT ... SELECT generate_series`` from a
   few hundred real demo claims routed by the policy, see ``_cases.py``): no
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
   ``reviews.services.tasks.task_claim_next(user=..., queue_slug=
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

import argparse
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter

from _cases import (
    cases_and_tasks_insert,
    cleanup,
    stage_create,
    subjects_insert,
    uniform_sql,
    variants_build,
    variants_load,
)
from _common import (
    RESULTS,
    ROOT,
    CpuSampler,
    Sequencer,
    machine,
    pg_url,
    pg_version,
    print_machine,
    results_merge,
    scratch_database,
    table,
)

sys.path.insert(0, str(ROOT))

TARGET_RATE = 1000.0  # claims/s
TARGET_P95_MS = 10.0
QUEUE = "claims-review"
SERIAL_CLAIMS, SERIAL_SECONDS = 300, 30.0  # one reviewer alone, before the concurrent phase
PROFILE_CLAIMS = 200
VARIANTS = 400  # demo claims to route; those sent to claims-review become templates

SKIP_LOCKED_CLAIM = """
UPDATE bench_claim SET status = 'claimed', assignee = %s
WHERE id = (
    SELECT id FROM bench_claim WHERE status = 'open'
    ORDER BY priority DESC, due_at, id
    LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING id
"""


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def latency_summary(latencies: list[float]) -> dict:
    values = sorted(latencies)
    ms = lambda p: round(percentile(values, p) * 1000, 2)  # noqa: E731
    return {
        "p50_ms": ms(50),
        "p95_ms": ms(95),
        "p99_ms": ms(99),
        "max_ms": round(values[-1] * 1000, 2) if values else None,
        "mean_ms": round(sum(values) / len(values) * 1000, 2) if values else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tasks", type=int, default=100_000, help="open tasks to claim (default 100,000)"
    )
    parser.add_argument("--quick", action="store_true", help="10,000 tasks")
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
    args = parser.parse_args()
    if args.quick:
        args.tasks = 10_000

    info = machine()
    info["postgresql"] = pg_version()
    print_machine(info)
    print(
        f"PostgreSQL {info['postgresql']} at 127.0.0.1:5432; {args.reviewers} reviewers as "
        f"{args.mode}; {args.tasks:,} open tasks"
    )
    with scratch_database("workbench-bench-claim", keep=args.keep) as database:
        figures = run(args, info, database)

    info["loadavg_at_end"] = os.getloadavg()
    print(
        "load average at start "
        + ", ".join(f"{x:.2f}" for x in info["loadavg_at_start"])
        + ", at end "
        + ", ".join(f"{x:.2f}" for x in info["loadavg_at_end"])
    )
    results_merge("claim.json", f"{args.mode}-{args.tasks}", figures)
    return 0 if figures["checks"]["ok"] else 1


# --- Setup --------------------------------------------------------------------------------


def setup(args) -> dict:
    from django.core.management import call_command
    from django.db import connection, transaction

    from reviews.demo import claim_cases
    from reviews.models import Queue
    from reviews.selectors import policy_active
    from tests.factories import system_with_policy
    from workbench.models import Role
    from workbench.services import Actor, user_create

    print(f"database {connection.settings_dict['NAME']}: migrating ...", flush=True)
    call_command("migrate", verbosity=0)
    system = system_with_policy()
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


# --- Running N workers -----------------------------------------------------------------------


def run_parallel(target, arglists: list[tuple], mode: str, timeout: float) -> tuple[list, float]:
    """Run ``target(*args, barrier)`` once per args in threads or forked
    processes; the clock starts when every worker waits at the barrier.
    Returns the workers' results (dicts, with "end" = perf_counter at their
    end) and the start time."""
    n = len(arglists)
    if mode == "threads":
        barrier = threading.Barrier(n + 1)
        results: list = [None] * n

        def wrap(i):
            try:
                results[i] = target(*arglists[i], barrier)
            except BaseException as exc:  # noqa: BLE001
                barrier.abort()
                results[i] = {"fatal": repr(exc)}

        workers = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
        for worker in workers:
            worker.start()
        barrier.wait(timeout=120)
        start = time.perf_counter()
        for worker in workers:
            worker.join(timeout + 120)
        return results, start

    from django.db import connections

    connections.close_all()  # the children open their own
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(n + 1)
    out = ctx.Queue()

    def child(i):
        try:
            out.put((i, target(*arglists[i], barrier)))
        except BaseException as exc:  # noqa: BLE001
            barrier.abort()
            out.put((i, {"fatal": repr(exc)}))

    procs = [ctx.Process(target=child, args=(i,)) for i in range(n)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)
    start = time.perf_counter()
    results = [None] * n
    for _ in range(n):
        i, result = out.get(timeout=timeout + 120)
        results[i] = result
    for proc in procs:
        proc.join(30)
    return results, start


def skip_locked_worker(database_url: str, assignee: int, max_seconds: float, barrier) -> dict:
    import psycopg

    ids, latencies = [], []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT 1")
        barrier.wait(timeout=120)
        deadline = time.perf_counter() + max_seconds
        timed_out = False
        while True:
            if time.perf_counter() > deadline:
                timed_out = True
                break
            started = time.perf_counter()
            row = conn.execute(SKIP_LOCKED_CLAIM, (assignee,)).fetchone()
            elapsed = time.perf_counter() - started
            if row is None:
                break
            ids.append(row[0])
            latencies.append(elapsed)
    return {"ids": ids, "latencies": latencies, "end": time.perf_counter(), "timed_out": timed_out}


_worker_local = threading.local()


def commit_timing_install() -> None:
    """Measurement only: time each claim's COMMIT (its WAL flush; before the
    sequencer, issue #15, also the wait for the chain head, whose event was
    chained during the commit by migration 0006's trigger). The share of the phase
    is the sum of the commits over the phase (above 100%: they overlap, i.e.
    wait for each other). Behaviour is unchanged."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    original = BaseDatabaseWrapper._commit
    if getattr(original, "bench_wrapped", False):
        return

    def _commit(self):
        started = time.perf_counter()
        try:
            return original(self)
        finally:
            times = getattr(_worker_local, "commits", None)
            if times is not None:
                times.append(time.perf_counter() - started)

    _commit.bench_wrapped = True
    BaseDatabaseWrapper._commit = _commit


def service_worker(user_id: int, queue_slug: str, max_seconds: float, barrier) -> dict:
    from django.db import connection

    from reviews.selectors import user_roles
    from reviews.services.tasks import task_claim_next
    from workbench.models import User

    ids, latencies, errors = [], [], []
    error_count, timed_out = 0, False
    _worker_local.commits = []
    try:
        user = User.objects.get(pk=user_id)
        user_roles(user=user)  # groups prefetched, as the view does per request
        barrier.wait(timeout=120)
        deadline = time.perf_counter() + max_seconds
        while True:
            if time.perf_counter() > deadline:
                timed_out = True
                break
            started = time.perf_counter()
            try:
                task = task_claim_next(user=user, queue_slug=queue_slug)
            except Exception as exc:  # noqa: BLE001 (counted and reported)
                error_count += 1
                if len(errors) < 5:
                    errors.append(repr(exc)[:300])
                if error_count > 100:
                    break
                continue
            elapsed = time.perf_counter() - started
            if task is None:
                break
            ids.append(task.pk)
            latencies.append(elapsed)
    finally:
        connection.close()
    return {
        "ids": ids,
        "latencies": latencies,
        "errors": errors,
        "error_count": error_count,
        "end": time.perf_counter(),
        "timed_out": timed_out,
        "commits": _worker_local.commits,
    }


class WaitSampler:
    """What the bench's connections are doing, from ``pg_stat_activity``
    sampled every 20 ms on a connection of its own: counts of (state, wait
    event, first words of the query) over the phase."""

    def __init__(self, database_url: str, database: str):
        self.url, self.database = database_url, database
        self.samples: Counter = Counter()
        self.rounds = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop_event.wait(0.02):
                rows = conn.execute(
                    "SELECT state, coalesce(wait_event_type || ':' || wait_event, 'on CPU'), "
                    "left(regexp_replace(query, '\\s+', ' ', 'g'), 60) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = "
                    "'client backend'",
                    (self.database,),
                ).fetchall()
                self.rounds += 1
                for state, wait, query in rows:
                    if state == "active":
                        self.samples[f"active, {wait}: {query}"] += 1
                    else:
                        self.samples[f"{state}"] += 1

    def stop(self) -> dict:
        self.stop_event.set()
        self.thread.join(5)
        rounds = self.rounds or 1
        return {
            "rounds": self.rounds,
            "mean_connections_by_activity": {
                k: round(v / rounds, 2) for k, v in self.samples.most_common(12)
            },
        }


def phase_figures(results: list, start: float, cpu: dict) -> dict:
    fatal = [r["fatal"] for r in results if r and "fatal" in r]
    done = [r for r in results if r and "fatal" not in r]
    latencies = [x for r in done for x in r["latencies"]]
    claims = len(latencies)
    seconds = (max(r["end"] for r in done) - start) if done else float("nan")
    figures = {
        "claims": claims,
        "seconds": round(seconds, 3),
        "claims_per_s": round(claims / seconds, 1) if seconds else None,
        **latency_summary(latencies),
        "per_worker": [len(r["ids"]) for r in done],
        "timed_out": any(r.get("timed_out") for r in done),
        "errors": [e for r in done for e in r.get("errors", [])][:5],
        "error_count": sum(r.get("error_count", 0) for r in done),
        "fatal": fatal,
        "cpu": cpu,
    }
    commits = [x for r in done for x in r.get("commits", [])]
    if commits:
        figures["commit"] = latency_summary(commits)
        figures["commit_share"] = round(sum(commits) / seconds, 3)
    return figures


# --- One reviewer alone -----------------------------------------------------------------------


def claim_serially(user_id: int, count: int, max_seconds: float) -> tuple[dict, list[int]]:
    """``count`` claims one after the other by one user (at most ``max_seconds``)."""
    from reviews.selectors import user_roles
    from reviews.services.tasks import task_claim_next
    from workbench.models import User

    user = User.objects.get(pk=user_id)
    user_roles(user=user)
    _worker_local.commits = []
    ids, latencies = [], []
    cpu = CpuSampler()
    start = time.perf_counter()
    while len(ids) < count and time.perf_counter() - start < max_seconds:
        started = time.perf_counter()
        task = task_claim_next(user=user, queue_slug=QUEUE)
        if task is None:
            break
        latencies.append(time.perf_counter() - started)
        ids.append(task.pk)
    result = {
        "ids": ids,
        "latencies": latencies,
        "end": time.perf_counter(),
        "commits": _worker_local.commits,
    }
    _worker_local.commits = None
    figures = phase_figures([result], start, cpu.stop())
    del figures["per_worker"]
    return figures, ids


def profile_claims(user_id: int, count: int) -> tuple[dict, list[int]]:
    """``count`` claims by one user under cProfile; the top functions go to
    bench/results/cprofile-claim.txt."""
    import cProfile
    import io
    import pstats

    from reviews.selectors import user_roles
    from reviews.services.tasks import task_claim_next
    from workbench.models import User

    user = User.objects.get(pk=user_id)
    user_roles(user=user)
    ids = []
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    for _ in range(count):
        task = task_claim_next(user=user, queue_slug=QUEUE)
        if task is None:
            break
        ids.append(task.pk)
    profile.disable()
    seconds = time.perf_counter() - started
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "cprofile-claim.txt"
    path.write_text(out.getvalue())
    print(
        f"cProfile of {len(ids)} claims ({seconds / max(1, len(ids)) * 1000:.1f} ms each under "
        f"the profiler) in {path.relative_to(ROOT)}"
    )
    return {"claims": len(ids), "seconds": round(seconds, 3), "file": str(path)}, ids


# --- Probe: one claim's queries and their plans ---------------------------------------------


def explain_all(queries: list[str]) -> list[dict]:
    """EXPLAIN (ANALYZE, BUFFERS) of each SELECT, in a transaction rolled back
    (a FOR UPDATE one locks a row while it runs)."""
    from django.db import connection, transaction

    plans = []
    for sql in queries:
        if not sql.lstrip().upper().startswith("SELECT") or "reviews_" not in sql:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            transaction.set_rollback(True)
        plans.append({"sql": sql, "plan": plan})
    return plans


def probe(user_id: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reviews.selectors import user_roles
    from reviews.services.tasks import task_claim_next
    from workbench.models import User

    user = User.objects.get(pk=user_id)
    user_roles(user=user)
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        task = task_claim_next(user=user, queue_slug=QUEUE)
        seconds = time.perf_counter() - started
    queries = [q["sql"] for q in captured.captured_queries]
    return {
        "task": task.pk if task else None,
        "seconds": round(seconds, 4),
        "query_count": len(queries),
        "queries": [
            {"sql": q["sql"], "ms": round(float(q["time"]) * 1000, 2)}
            for q in captured.captured_queries
        ],
        "plans_before": explain_all(queries),
    }


# --- Checks ----------------------------------------------------------------------------------


def checks(records: dict[int, list[int]], timed_out: bool) -> dict:
    """``records``: user id -> task ids the service handed that user. When the
    run stopped at its time limit, tasks still open are expected."""
    from django.db import connection

    from workbench.services.trail import trail_integrate, trail_verify

    trail_integrate()  # whatever the sequencer had not integrated yet
    handed = Counter(task for tasks in records.values() for task in tasks)
    twice_handed = sum(1 for n in handed.values() if n > 1)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_handed (task_id bigint, user_id bigint)")
        with cursor.cursor.copy("COPY bench_handed (task_id, user_id) FROM STDIN") as copy:
            for user_id, tasks in records.items():
                for task in tasks:
                    copy.write_row((task, user_id))
        cursor.execute("CREATE INDEX ON bench_handed (task_id)")
        cursor.execute("ANALYZE bench_handed")
        cursor.execute(
            """
            SELECT count(*),
                   count(*) FILTER (WHERE t.status = 'open'),
                   count(*) FILTER (WHERE t.status = 'claimed'),
                   count(*) FILTER (WHERE t.status = 'claimed' AND NOT EXISTS (
                       SELECT 1 FROM bench_handed h WHERE h.task_id = t.id)),
                   count(*) FILTER (WHERE t.status <> 'claimed' AND EXISTS (
                       SELECT 1 FROM bench_handed h WHERE h.task_id = t.id)),
                   count(*) FILTER (WHERE t.status = 'claimed' AND t.assignee_id IS NULL),
                   count(*) FILTER (WHERE t.fencing_token
                                    <> CASE t.status WHEN 'claimed' THEN 1 ELSE 0 END),
                   count(*) FILTER (WHERE c.status
                                    <> CASE t.status WHEN 'claimed' THEN 'in_review'
                                       ELSE 'pending_review' END)
            FROM reviews_reviewtask t JOIN reviews_case c ON c.id = t.case_id
            """
        )
        (
            total,
            still_open,
            claimed,
            claimed_not_handed,
            handed_not_claimed,
            no_assignee,
            token_wrong,
            case_status_wrong,
        ) = cursor.fetchone()
        cursor.execute(
            """
            SELECT count(*) FROM bench_handed h
            LEFT JOIN reviews_reviewtask t ON t.id = h.task_id
            WHERE t.assignee_id IS DISTINCT FROM h.user_id
            """
        )
        (assignee_mismatch,) = cursor.fetchone()
        cursor.execute(
            """
            CREATE TEMP TABLE bench_claimed_events AS
            SELECT (body::jsonb -> 'data' ->> 'task')::bigint AS task_id,
                   body::jsonb -> 'actor' ->> 'id' AS username
            FROM workbench_trailevent WHERE action = 'case.claimed'
            """
        )
        cursor.execute("SELECT count(*), count(DISTINCT task_id) FROM bench_claimed_events")
        events, event_tasks = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM (SELECT task_id FROM bench_claimed_events "
            "GROUP BY task_id HAVING count(*) > 1) d"
        )
        (tasks_with_two_events,) = cursor.fetchone()
        cursor.execute(
            """
            SELECT count(*) FROM bench_claimed_events e
            LEFT JOIN reviews_reviewtask t ON t.id = e.task_id
            LEFT JOIN workbench_user u ON u.id = t.assignee_id
            WHERE u.username IS DISTINCT FROM e.username
            """
        )
        (event_user_mismatch,) = cursor.fetchone()
        cursor.execute("DROP TABLE bench_handed")
        cursor.execute("DROP TABLE bench_claimed_events")
    started = time.perf_counter()
    verified = trail_verify()
    verify_seconds = time.perf_counter() - started
    out = {
        "handed_out": sum(handed.values()),
        "distinct_tasks_handed_out": len(handed),
        "tasks_handed_to_two_workers": twice_handed,
        "tasks_in_db": total,
        "still_open": still_open,
        "stopped_at_time_limit": timed_out,
        "claimed_in_db": claimed,
        "claimed_but_not_handed_out": claimed_not_handed,
        "handed_out_but_not_claimed": handed_not_claimed,
        "claimed_without_assignee": no_assignee,
        "fencing_token_wrong": token_wrong,
        "case_status_wrong": case_status_wrong,
        "assignee_not_the_worker_handed_it": assignee_mismatch,
        "claimed_events": events,
        "tasks_with_claimed_event": event_tasks,
        "tasks_with_two_claimed_events": tasks_with_two_events,
        "event_actor_not_assignee": event_user_mismatch,
        "trail_verify_ok": verified.ok,
        "trail_verify_events": verified.checked,
        "trail_verify_seconds": round(verify_seconds, 2),
        "trail_verify_problem": verified.problem,
    }
    out["double_claims"] = twice_handed + tasks_with_two_events
    out["problems"] = {
        k: out[k]
        for k in (
            "claimed_but_not_handed_out",
            "handed_out_but_not_claimed",
            "claimed_without_assignee",
            "fencing_token_wrong",
            "case_status_wrong",
            "assignee_not_the_worker_handed_it",
            "tasks_with_two_claimed_events",
            "event_actor_not_assignee",
        )
        if out[k]
    }
    if events != claimed:
        out["problems"]["claimed_events_not_claimed_tasks"] = events - claimed
    if still_open and not timed_out:
        out["problems"]["still_open_though_not_stopped"] = still_open
    if not verified.ok:
        out["problems"]["trail_verify"] = verified.problem
    out["ok"] = out["double_claims"] == 0 and not out["problems"]
    return out


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
        "targets": {"claims_per_s": TARGET_RATE, "p95_ms": TARGET_P95_MS, "double_claims": 0},
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
    cpu = CpuSampler()
    cpu_process = time.process_time()
    from workbench.services import trail_integrate

    trail_integrate()  # the setup's events: not this phase's delay
    sequencer = Sequencer(
        dict(os.environ), RESULTS / "claim-merge-delays.json", RESULTS / "claim-sequencer.log"
    )
    sequencer.start()
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
    delay = service["merge_delay"]
    print(
        f"  merge delay (commit to seq, manage.py trail_sequencer): {delay}",
    )
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
            f">= {TARGET_RATE:,.0f} claims/s",
            "PASS" if (service["claims_per_s"] or 0) >= TARGET_RATE else "MISS",
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
    sys.exit(main())
