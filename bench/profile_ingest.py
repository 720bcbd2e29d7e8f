"""Profile intake in-process (no gunicorn): where does a batch of 1,000 and a
single case spend its time? The HTTP profiles use pyinstrument when it is
installed (``.venv/bin/pip install pyinstrument``; it is not a project
dependency), cProfile otherwise.

    .venv/bin/python -m bench.profile_ingest [--sqlite] [--batches 5] [--singles 200]
    .venv/bin/python -m bench.profile_ingest --quick     # 2 batches, 40 singles

Builds a scratch database (dropped at the end), publishes the demo's claims
policy (``reviews/demo/claims-ai.yaml``), warms up, then:

- times ``reviews.services.case_ingest_batch`` on batches of 1,000 and prints
  the SQL it ran per batch;
- profiles one batch of 1,000 through the whole HTTP stack (django.test.Client:
  JSON parsing, ninja/pydantic validation, the service, the response);
- profiles single-case POSTs the same way.
Profiles are written as text and HTML to bench/results/.
"""

import json
import time
from collections import Counter

from bench.harness import arguments, parse, results_dir, scratch_database, write_results


def main(argv: list[str] | None = None) -> int:
    parser = arguments(
        __doc__,
        {
            "batches": (5, 2, "timed service batches of 1,000 (default 5)"),
            "singles": (200, 40, "profiled single-case POSTs (default 200)"),
        },
        quick_help="2 batches, 40 single cases",
    )
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument(
        "--server-side-binding",
        action="store_true",
        help="what-if: PostgreSQL OPTIONS server_side_binding=True (no client-side quoting)",
    )
    parser.add_argument(
        "--no-unnest", action="store_true", help="what-if: bulk_create without UNNEST"
    )
    args = parse(parser, argv)
    with scratch_database("profile", sqlite=args.sqlite):
        return run(args)


def run(args) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.harness import demo_system_create
    from bench.payloads import Payloads
    from reviews.schemas import CaseIn
    from reviews.selectors import policy_active
    from reviews.services import case_ingest_batch
    from workbench.models import AISystem
    from workbench.services import Actor, api_key_create

    if args.server_side_binding:
        connection.close()
        connection.settings_dict.setdefault("OPTIONS", {})["server_side_binding"] = True
        print("what-if: server_side_binding=True")
    if args.no_unnest:
        # what-if: Django's plain multi-row VALUES instead of its PostgreSQL UNNEST
        # strategy (whose array parameters psycopg quotes element by element in Python)
        from django.db.backends.postgresql import compiler as pg_compiler
        from django.db.models.sql.compiler import SQLInsertCompiler

        pg_compiler.SQLInsertCompiler.assemble_as_sql = SQLInsertCompiler.assemble_as_sql
        print("what-if: bulk_create without UNNEST")
    call_command("migrate", verbosity=0)
    actor = Actor.workbench("bench")
    system = demo_system_create()
    key = api_key_create(system=system, actor=actor).plaintext
    client = Client(headers={"authorization": f"Bearer {key}"})
    payloads = Payloads(members=20_000)
    counter = iter(range(10**9))

    def batch(n=1000):
        return [payloads.case(f"P-{next(counter):08d}") for _ in range(n)]

    # warm-up
    client.post("/api/v1/cases/batch", {"cases": batch(100)}, content_type="application/json")
    system = AISystem.objects.get(pk=system.pk)

    figures = {"database": connection.vendor, "service_batches": []}
    print(f"database: {connection.vendor}")

    class Timer:
        """execute_wrapper timing each query (no SQL composing, unlike CaptureQueriesContext)."""

        def __init__(self):
            self.queries = []

        def __call__(self, execute, sql, params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                self.queries.append((time.perf_counter() - started, sql, params))

    for n in range(args.batches):
        items = [CaseIn.model_validate(raw) for raw in batch()]
        timer = Timer()
        with connection.execute_wrapper(timer):
            started = time.perf_counter()
            results = case_ingest_batch(system=system, items=items)
            seconds = time.perf_counter() - started
        assert all(r.status == 201 for r in results)
        kinds = Counter(sql.split()[0] for _, sql, _ in timer.queries)
        sql_seconds = sum(t for t, _, _ in timer.queries)
        figures["service_batches"].append(
            {
                "seconds": round(seconds, 3),
                "queries": len(timer.queries),
                "sql_seconds": round(sql_seconds, 3),
            }
        )
        print(
            f"case_ingest_batch(1,000): {seconds * 1000:,.0f} ms, {1000 / seconds:,.0f} cases/s, "
            f"{len(timer.queries)} queries ({dict(kinds)}), {sql_seconds * 1000:,.0f} ms in "
            f"cursor.execute (psycopg quoting + round trip + server)"
        )
        if n == 0:
            print("  its queries: ms in cursor.execute, parameters, start of SQL")
            for t, sql, params in timer.queries:
                unnest = "UNNEST" if "UNNEST(" in sql else ""
                print(f"  {t * 1000:8.1f} ms {len(params or ()):6} {unnest:6} {sql[:80]}")

    # Where a batch's time goes, without a profiler's distortion: wrap the
    # service's steps in timers (each is called at most a few thousand times).
    figures["breakdown_ms_per_batch"] = breakdown(client, batch, args.batches, connection)

    # One service batch under cProfile: the functions that cost most by own time.
    import cProfile
    import io
    import pstats

    items = [CaseIn.model_validate(raw) for raw in batch()]
    profile = cProfile.Profile()
    profile.enable()
    case_ingest_batch(system=system, items=items)
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(35)
    stats.sort_stats("cumulative").print_stats(60)
    (results_dir() / f"cprofile-batch-{connection.vendor}.txt").write_text(out.getvalue())
    print(out.getvalue()[:9000])

    # One batch through the HTTP stack, profiled.
    body = json.dumps({"cases": batch()})
    profiler = Profiler(interval=0.001)
    profiler.start()
    started = time.perf_counter()
    response = client.post("/api/v1/cases/batch", body, content_type="application/json")
    seconds = time.perf_counter() - started
    profiler.stop()
    assert response.status_code == 200, response.content[:500]
    figures["http_batch_seconds"] = round(seconds, 3)
    print(f"\nPOST /cases/batch (1,000) in-process: {seconds * 1000:,.0f} ms")
    save(profiler, f"profile-batch-{connection.vendor}")

    # Single cases through the HTTP stack, profiled.
    bodies = [json.dumps(payloads.case(f"S-{i:08d}")) for i in range(args.singles)]
    with CaptureQueriesContext(connection) as queries:
        client.post("/api/v1/cases", bodies[0], content_type="application/json")
    print(f"\nPOST /cases (single) runs {len(queries)} queries:")
    for q in queries.captured_queries:
        print(f"  {float(q['time']) * 1000:6.2f} ms  {q['sql'][:150]}")

    def singles(chunk):
        latencies = []
        for body in chunk:
            started = time.perf_counter()
            response = client.post("/api/v1/cases", body, content_type="application/json")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 201, response.content[:500]
        latencies.sort()
        return {
            "p50": round(latencies[len(latencies) // 2] * 1000, 2),
            "p95": round(latencies[int(len(latencies) * 0.95)] * 1000, 2),
        }

    half = len(bodies) // 2
    cpu = time.process_time()
    figures["http_single_ms"] = singles(bodies[1:half])
    cpu_each = (time.process_time() - cpu) / (half - 1) * 1000
    figures["http_single_cpu_ms"] = round(cpu_each, 2)
    print(
        f"POST /cases single, one at a time in-process (no profiler): "
        f"{figures['http_single_ms']} ms, {cpu_each:.1f} ms CPU each"
    )
    started = time.perf_counter()
    for _ in range(200):
        policy_active(system=system)
    print(f"policy_active() alone: {(time.perf_counter() - started) / 200 * 1000:.2f} ms")
    profiler = Profiler(interval=0.001)
    profiler.start()
    singles(bodies[half:])
    profiler.stop()
    save(profiler, f"profile-single-{connection.vendor}")
    suffix = ("-ssb" if args.server_side_binding else "") + ("-nounnest" if args.no_unnest else "")
    write_results(f"profile-{connection.vendor}{suffix}.json", figures)
    return 0


def breakdown(client, batch, batches: int, connection) -> dict:
    import functools
    import inspect

    import rfc8785
    from django.db.models.query import QuerySet

    import reviews.api
    import reviews.services.intake as intake
    import workbench.api
    import workbench.services.trail as trail

    totals: Counter = Counter()
    calls: Counter = Counter()

    def timed(label, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                totals[label] += time.perf_counter() - started
                calls[label] += 1

        return wrapper

    patches = []

    missing = object()

    def patch(owner, name, label):
        if not hasattr(owner, name):
            print(f"  (breakdown: {getattr(owner, '__name__', owner)}.{name} not found; skipped)")
            return
        if isinstance(owner, type):
            own = owner.__dict__.get(name, missing)
            attr = inspect.getattr_static(owner, name)
            if isinstance(attr, classmethod):
                setattr(owner, name, classmethod(timed(label, attr.__func__)))
            else:
                setattr(owner, name, timed(label, attr))
        else:
            own = getattr(owner, name)
            setattr(owner, name, timed(label, own))
        patches.append((owner, name, own))

    patch(workbench.api.StrictJSONParser, "parse_body", "1 parse JSON body (+depth check)")
    patch(reviews.api.CaseIn, "model_validate", "2 CaseIn.model_validate x1000 (api layer)")
    patch(reviews.api, "case_ingest_batch", "3 case_ingest_batch (service, total)")
    patch(intake, "policy_active", "3.1 policy_active")
    patch(intake, "_body_digest", "3.2 _body_digest x1000")
    patch(intake, "_route", "3.3 _route (rules) x1000")
    patch(intake, "_store", "3.4 _store (under trail-head lock)")
    patch(intake, "trail_prepare", "3.4.1 trail_prepare (hashing, before the lock)")
    patch(trail, "_lock_head", "3.4.6.0 _lock_head (the chain head's row lock)")
    patch(intake, "_subjects_upsert", "3.4.2 _subjects_upsert")
    patch(intake, "contact_seal", "3.4.2.1 contact_seal (AES-GCM) per subject")
    patch(intake, "_unique_references", "3.4.3 _unique_references")
    patch(intake, "notice_token", "3.4.4 notice_token (HMAC) x1000")
    patch(intake, "_intake_events", "3.4.5 _intake_events x1000")
    patch(intake, "bulk_insert", "3.4.5.1 bulk_insert cases + tasks (COPY on PostgreSQL)")
    patch(intake, "trail_append_many", "3.4.6 trail_append_many")
    patch(trail, "bulk_insert", "3.4.6.2 bulk_insert trail events (COPY on PostgreSQL)")
    patch(rfc8785, "dumps", "3.4.6.1 rfc8785.dumps x2000")
    patch(reviews.api, "_created", "4 response items (_created x1000)")

    original_bulk_create = QuerySet.bulk_create

    def bulk_create(self, *args, **kwargs):
        label = f"bulk_create {self.model.__name__}"
        started = time.perf_counter()
        try:
            return original_bulk_create(self, *args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - started
            calls[label] += 1

    QuerySet.bulk_create = bulk_create
    original_bulk_update = QuerySet.bulk_update

    def bulk_update(self, objs, *args, **kwargs):
        label = f"bulk_update {self.model.__name__}"
        calls[f"rows {label}"] += len(objs)
        started = time.perf_counter()
        try:
            return original_bulk_update(self, objs, *args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - started
            calls[label] += 1

    QuerySet.bulk_update = bulk_update

    def execute_timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            totals["cursor.execute (SQL other than COPY: quoting + round trip + server)"] += (
                time.perf_counter() - started
            )

    original_commit = connection.commit

    def commit():
        started = time.perf_counter()
        try:
            return original_commit()
        finally:
            totals["COMMIT"] += time.perf_counter() - started

    connection.commit = commit
    trail_module = trail  # noqa: F841 (rfc8785 is looked up through the module)
    request_total = 0.0
    try:
        for _ in range(batches):
            body = json.dumps({"cases": batch()})
            with connection.execute_wrapper(execute_timer):
                started = time.perf_counter()
                response = client.post("/api/v1/cases/batch", body, content_type="application/json")
                request_total += time.perf_counter() - started
            assert response.status_code == 200
    finally:
        for owner, name, original in reversed(patches):
            if original is missing:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        QuerySet.bulk_create = original_bulk_create
        QuerySet.bulk_update = original_bulk_update
        del connection.commit

    per_batch = {"POST /cases/batch (whole request, in-process)": request_total / batches}
    for label in sorted(totals, key=lambda k: (not k[0].isdigit(), k)):
        per_batch[label] = totals[label] / batches
    print(f"\nbreakdown: POST /cases/batch of 1,000, in-process, mean of {batches} (no profiler)")
    for label, count in calls.items():
        if label.startswith("rows "):
            print(f"  ({label[5:]}: {count / batches:,.0f} rows per batch)")
    whole = per_batch["POST /cases/batch (whole request, in-process)"]
    for label, seconds in per_batch.items():
        print(f"  {seconds * 1000:8.0f} ms  {100 * seconds / whole:5.1f}%  {label}")
    return {label: round(seconds * 1000, 1) for label, seconds in per_batch.items()}


def Profiler(interval: float):  # noqa: N802 (stands in for pyinstrument's class)
    """pyinstrument's sampling profiler, or cProfile when it is not installed."""
    try:
        from pyinstrument import Profiler as Sampling
    except ImportError:
        return _CProfiler()
    return Sampling(interval=interval)


class _CProfiler:
    def __init__(self):
        import cProfile

        self.profile = cProfile.Profile()

    def start(self):
        self.profile.enable()

    def stop(self):
        self.profile.disable()


def save(profiler, name: str) -> None:
    results = results_dir()
    if isinstance(profiler, _CProfiler):
        import io
        import pstats

        out = io.StringIO()
        pstats.Stats(profiler.profile, stream=out).sort_stats("cumulative").print_stats(60)
        text = out.getvalue()
        (results / f"{name}-cprofile.txt").write_text(text)
    else:
        text = profiler.output_text(unicode=False, color=False, show_all=False)
        (results / f"{name}.txt").write_text(text)
        (results / f"{name}.html").write_text(profiler.output_html())
    print(text[:6000])


if __name__ == "__main__":
    raise SystemExit(main())
