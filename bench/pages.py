"""Server time and SQL queries of the reviewer's pages with a million cases.

Not a test: it prints figures and merges them into bench/results/pages.json.

    .venv/bin/python -m bench.pages --quick        # 100,000 cases
    .venv/bin/python -m bench.pages                # 1,000,000 cases
    .venv/bin/python -m bench.pages --cases 300000 --requests 500

In-process, on a fresh database ``workbench_bench_pages_<random>`` (dropped at
the end), with ``DEBUG`` false:

1. ``migrate``; the demo's AI systems, policies, queues, reason-code catalogs
   and users (``reviews.demo.demo_load(cases=0)``); 30 more reviewers who are
   measured and 100 colleagues who hold or decided the rest;
2. ``--cases`` cases made by PostgreSQL (``INSERT ... SELECT generate_series``
   from 500 real demo claims and chats routed by the demo policies, 60/40, see
   ``bench/cases.py``), created over the past year. Routed to a person: the
   latest 10% still have an open task (a few an escalation in the supervisors'
   queue), the older ones a done task decided by a colleague; decided by the AI
   alone: no task, 1% of the older ones an open appeal. 200 open tasks are
   claimed by colleagues. About 47% of the cases have a task, about 5% an open
   one;
3. the measured cases, each with a trail of a few events appended through
   ``workbench.services.trail.trail_append_many`` in one
   ``transaction.atomic()`` (so the chain stays valid; the other cases have no
   trail): **held** (90: claimed by the measured reviewers, 3 each, under a
   live lease: the page with the decision form), **open** (100: waiting in a
   queue) and **decided** (100: finalized by a person, with their decision).
   ``VACUUM ANALYZE``;
4. with ``django.test.Client`` (``force_login``), ``--requests`` GETs of each
   page: the queue page ``/`` (each measured reviewer in turn) and the case
   page ``/cases/<reference>/`` for each group; p50/p95/p99 of the time of
   ``client.get`` (the whole Django stack, no network). Then 20 more of each
   under ``CaptureQueriesContext``: queries per page and the slowest query, with
   ``EXPLAIN (ANALYZE, BUFFERS)`` of it.
"""

import os
import re
import statistics
import time

from bench.harness import (
    CpuSampler,
    arguments,
    load_report,
    machine,
    parse,
    percentile,
    pg_version,
    print_machine,
    results_dir,
    results_merge,
    scratch_database,
    shown,
    table,
)
from bench.pages_setup import setup

TARGET_P95_MS = 50.0
QUERY_PASSES = 20
PROFILE_REQUESTS = 50
LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")


def main(argv: list[str] | None = None) -> int:
    parser = arguments(
        __doc__,
        {"cases": (1_000_000, 100_000, "cases in the database (default 1,000,000)")},
        quick_help="100,000 cases",
    )
    parser.add_argument(
        "--requests", type=int, default=300, help="timed requests per page (default 300)"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="time each page this many times on the one database (default 1)",
    )
    parser.add_argument(
        "--page-seconds",
        type=float,
        default=120,
        help="stop timing a page after this long, at 30 requests or more (default 120 s)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"also profile {PROFILE_REQUESTS} requests of each page with cProfile "
        "(bench/results/cprofile-pages-*.txt)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (debugging)")
    args = parse(parser, argv)

    info = machine()
    info["postgresql"] = pg_version()
    print_machine(info)
    print(f"PostgreSQL {info['postgresql']} at 127.0.0.1:5432; {args.cases:,} cases")
    with scratch_database("pages", keep=args.keep):
        figures = run(args, info)

    info["loadavg_at_end"] = os.getloadavg()
    load_report(info)
    results_merge("pages.json", str(args.cases), figures)
    return 0 if figures["ok"] else 1


# --- Measuring -------------------------------------------------------------------------------


def timed_requests(requests: list[tuple], count: int, max_seconds: float = 1e9) -> dict:
    """``count`` GETs, cycling through ``requests`` = [(client, url)]; fewer
    (but at least 30) if they take more than ``max_seconds`` in all."""
    latencies, statuses = [], {}
    deadline = time.perf_counter() + max_seconds
    for i in range(count):
        if i >= 30 and time.perf_counter() > deadline:
            break
        client, url = requests[i % len(requests)]
        started = time.perf_counter()
        response = client.get(url)
        latencies.append(time.perf_counter() - started)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    latencies.sort()
    ms = lambda p: round(percentile(latencies, p) * 1000, 2)  # noqa: E731
    return {
        "requests": len(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": ms(50),
        "p95_ms": ms(95),
        "p99_ms": ms(99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


def query_pass(requests: list[tuple], count: int) -> dict:
    """``count`` GETs under CaptureQueriesContext: queries per request, and the
    mean time of each query (grouped by its SQL with the literals taken out)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts, by_shape, sql_ms = [], {}, []
    for i in range(count):
        client, url = requests[i % len(requests)]
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        counts.append(len(captured.captured_queries))
        sql_ms.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
        for query in captured.captured_queries:
            shape = LITERALS.sub("?", query["sql"])
            entry = by_shape.setdefault(shape, {"sql": query["sql"], "times": []})
            entry["times"].append(float(query["time"]) * 1000)
    queries = [
        {
            "in_requests": len(e["times"]),
            "mean_ms": round(statistics.fmean(e["times"]), 2),
            "max_ms": round(max(e["times"]), 2),
            "sql": e["sql"],
        }
        for e in by_shape.values()
    ]
    histogram: dict[str, int] = {}
    for n in counts:
        histogram[str(n)] = histogram.get(str(n), 0) + 1
    return {
        "min": min(counts),
        "max": max(counts),
        "per_request": dict(sorted(histogram.items())),
        # Django's own timing of each execute, round trip included (ms resolution).
        "sql_ms_per_request_mean": round(statistics.fmean(sql_ms), 2),
        "queries": queries,
        "slowest": max(queries, key=lambda q: q["mean_ms"]) if queries else None,
    }


def profile_page(name: str, requests: list[tuple], count: int) -> str:
    import cProfile
    import io
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for i in range(count):
        client, url = requests[i % len(requests)]
        client.get(url)
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(45)
    slug = re.sub(r"[^a-z]+", "-", name.lower()).strip("-")
    path = results_dir() / f"cprofile-pages-{slug}.txt"
    path.write_text(out.getvalue())
    print(f"  cProfile of {count} requests in {shown(path)}")
    return shown(path)


def explain(sql: str) -> str:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


ACTIVE_INDEX = (
    "CREATE INDEX bench_whatif_active_tasks ON reviews_reviewtask (queue_id, status, due_at, id) "
    "WHERE status IN ('open', 'claimed')"
)


def queue_counts_what_if(page: dict) -> dict | None:
    """Comparison only, not the product code: the queue page's counts query
    (every open and claimed task of the reviewer's queues is counted on each
    view), timed as it is and again with a partial index covering the
    active tasks (queue_id, status, due_at, id), created for the comparison in
    the scratch database and dropped."""
    from django.db import connection

    as_is = next((q["sql"] for q in page["queries"]["queries"] if "COUNT(" in q["sql"]), None)
    if as_is is None:
        return None

    def timed(sql: str) -> tuple[float, list]:
        times, rows = [], []
        with connection.cursor() as cursor:
            for _ in range(5):
                started = time.perf_counter()
                cursor.execute(sql)
                rows = cursor.fetchall()
                times.append(time.perf_counter() - started)
        return round(statistics.median(times) * 1000, 2), rows

    out = {"sql": as_is, "index": ACTIVE_INDEX}
    out["as_is_ms"], rows = timed(as_is)
    with connection.cursor() as cursor:
        cursor.execute(ACTIVE_INDEX)
        cursor.execute("VACUUM ANALYZE reviews_reviewtask")
    try:
        out["with_index_ms"], rows_with_index = timed(as_is)
        out["same_result"] = rows == rows_with_index
        out["with_index_plan"] = explain(as_is)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX bench_whatif_active_tasks")
    return out


def run(args, info: dict) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from workbench.models import User

    assert not settings.DEBUG, "measure with DEBUG off"
    built = setup(args)
    reviewers = built["reviewers"]
    clients = {}
    for user in User.objects.filter(pk__in=[u.pk for u in reviewers]):
        client = Client()
        client.force_login(user)
        clients[user.pk] = client
    any_client = clients[reviewers[0].pk]
    pages = {
        "queue page /": [(clients[u.pk], "/") for u in reviewers],
        "case page, held (decision form)": [
            (clients[holder], f"/cases/{reference}/") for reference, holder in built["held"]
        ],
        "case page, open": [(any_client, f"/cases/{r}/") for r in built["open"]],
        "case page, decided": [(any_client, f"/cases/{r}/") for r in built["decided"]],
    }
    figures: dict = {
        "machine": info,
        "setup": built["made"],
        "trail_events_for_measured_cases": built["trail_events_appended"],
        "target_p95_ms": TARGET_P95_MS,
        "pages": {},
    }
    for name in [name for name, requests in pages.items() if not requests]:
        print(f"{name}: no such case among {args.cases:,} cases; not measured", flush=True)
        del pages[name]
    # Each run times every page in turn (each after its warm-up), so that the
    # runs are spread over the same stretch of time.
    runs: dict[str, list[dict]] = {name: [] for name in pages}
    for run_number in range(1, args.runs + 1):
        of = f" (run {run_number} of {args.runs})" if args.runs > 1 else ""
        for name, requests in pages.items():
            timed_requests(requests, min(30, len(requests)))  # warm-up: code paths, caches
            cpu = CpuSampler()
            print(f"{name}: {args.requests} requests{of} ...", flush=True)
            timing = timed_requests(requests, args.requests, args.page_seconds)
            timing["cpu"] = cpu.stop()
            runs[name].append(timing)
            if args.runs > 1:
                print(f"  p50 {timing['p50_ms']} ms, p95 {timing['p95_ms']} ms", flush=True)
    for name, requests in pages.items():
        # The page's figures are its last run's; with --runs, every run is in "runs".
        timing = {**runs[name][-1], "runs": runs[name]} if args.runs > 1 else runs[name][-1]
        queries = query_pass(requests, QUERY_PASSES)
        slowest = queries["slowest"]
        timing["queries"] = queries
        timing["slowest_query_plan"] = explain(slowest["sql"]) if slowest else None
        figures["pages"][name] = timing
        if args.profile:
            timing["profile"] = profile_page(name, requests, PROFILE_REQUESTS)
        print(
            f"  p50 {timing['p50_ms']} ms, p95 {timing['p95_ms']} ms, p99 {timing['p99_ms']} ms; "
            f"{queries['min']}-{queries['max']} queries; slowest "
            f"{slowest['mean_ms']} ms: {slowest['sql'][:110]}",
            flush=True,
        )
    what_if = queue_counts_what_if(figures["pages"]["queue page /"])
    if what_if:
        figures["what_if_queue_counts"] = what_if
    figures["ok"] = all(set(page["statuses"]) == {"200"} for page in figures["pages"].values())
    figures["machine"]["loadavg_at_end"] = os.getloadavg()
    report(figures)
    return figures


def report(figures: dict) -> None:
    rows = []
    for name, page in figures["pages"].items():
        queries = page["queries"]
        count = (
            str(queries["min"])
            if queries["min"] == queries["max"]
            else f"{queries['min']}-{queries['max']}"
        )
        rows.append(
            (
                name,
                f"p95 {page['p95_ms']} ms",
                f"p50 {page['p50_ms']} / p99 {page['p99_ms']} ms",
                count,
                f"{queries['slowest']['mean_ms']} ms",
                f"p95 <= {TARGET_P95_MS:.0f} ms",
                "PASS" if page["p95_ms"] <= TARGET_P95_MS else "MISS",
            )
        )
    made = figures["setup"]
    print()
    print(
        f"{made['cases']:,} cases ({made['reviews_case_size']}), {made['tasks']:,} tasks "
        f"({made['open_tasks']:,} open, {made['claimed_tasks']:,} claimed), "
        f"{made['trail_events']:,} trail events; statuses "
        + ", ".join(f"{name}: {page['statuses']}" for name, page in figures["pages"].items())
    )
    print(table(rows, ("page", "time", "detail", "queries", "slowest query", "target", "")))
    for name, page in figures["pages"].items():
        queries = page["queries"]
        print(
            f"{name}: queries per request {queries['per_request']}, SQL "
            f"{queries['sql_ms_per_request_mean']} ms per request; "
            + "; ".join(
                f"{q['mean_ms']} ms {q['sql'][7:60]}..."
                for q in sorted(queries["queries"], key=lambda q: -q["mean_ms"])[:3]
            )
        )
    for name, page in figures["pages"].items():
        if page["p95_ms"] > TARGET_P95_MS and page["slowest_query_plan"]:
            sql_ms = page["queries"]["sql_ms_per_request_mean"]
            print(
                f"\n{name} misses the target; SQL takes {sql_ms} ms of a request "
                f"(p50 {page['p50_ms']} ms)"
                + (
                    ": the time is mostly outside the database (--profile shows where)"
                    if sql_ms < 0.3 * page["p50_ms"]
                    else ""
                )
                + "; its slowest query:"
            )
            print(page["queries"]["slowest"]["sql"])
            print(page["slowest_query_plan"])
    what_if = figures.get("what_if_queue_counts")
    if what_if:
        print(
            "\nwhat-if (comparison only), the queue counts query, median of 5: "
            f"{what_if['as_is_ms']} ms as is; {what_if['with_index_ms']} ms with a partial index "
            f"covering the active tasks (same result: {what_if['same_result']})"
        )


if __name__ == "__main__":
    raise SystemExit(main())
