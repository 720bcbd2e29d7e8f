"""What ``bench.claim`` checks and looks at beside the rates: one probe
claim's queries and their plans, and after the run that no task went to two
workers, that the database and the trail agree with what each was handed."""

import time
from collections import Counter

from bench.claim_workers import QUEUE

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

    from reviews.services.assignment import task_claim_next
    from workbench.models import User
    from workbench.selectors import user_roles

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
