"""Intake throughput and latency against gunicorn on PostgreSQL.

Not a test: it prints figures and writes them to bench/results/ingest.json.

    .venv/bin/python -m bench.ingest            # 50,000 cases per batch phase
    .venv/bin/python -m bench.ingest --quick    # 5,000 cases, 1,000 single requests
    .venv/bin/python -m bench.ingest --celery   # with a Celery worker and beat

What it does, all on loopback, in one run:

1. creates a scratch database ``workbench_bench_<random>``, migrates it,
   creates the demo's AI system ``claims-ai`` with ``manage.py
   create_ai_system`` and publishes the demo's claims policy
   (``reviews/demo/claims-ai.yaml``) with ``manage.py load_policy``;
2. starts gunicorn on a free port and waits until it answers; with
   ``--celery`` also a Celery worker and beat, as the Procfile runs them
   (without it nothing consumes the broker until the end of the run);
3. batch: POSTs ``--cases`` claim cases to /api/v1/cases/batch in batches of
   1,000 with one client, then ``--cases`` more with two concurrent clients
   (validation, routing, subjects, review tasks and the hash-chained trail
   all included) and reports cases/s;
4. single: 8 threads, each with its own ``requests.Session``, POST ``--single``
   cases one at a time to /api/v1/cases; p50/p95/p99 latency and req/s; then
   300 more from one client;
5. the physical limit: PostgreSQL ``COPY`` (psycopg3 ``cursor.copy()``) of the
   very rows the first batch phase stored, into ``LIKE reviews_case INCLUDING
   ALL`` (same columns and indexes, logged), rows/s; and the full footprint of
   a case (case + 2 trail events + review task + subject rows) the same way;
6. checks the case count and runs ``manage.py trail_verify``;
7. stops gunicorn and drops the database, whatever happened;
8. with ``--peer`` (Label Studio's virtualenv, ``bench/labelstudio.py``): the
   peer imports the same items, batch phases and single items, on the same
   PostgreSQL, after Workbench's servers have stopped; the ratios are printed.
"""

import itertools
import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import requests
import yaml

from bench.harness import (
    DEMO_CLAIMS_POLICY,
    ROOT,
    CpuSampler,
    arguments,
    machine,
    parse,
    percentile,
    pg_url,
    pg_version,
    print_machine,
    results_dir,
    scratch_database,
    shown,
    write_results,
)
from bench.ingest_copy import measure_copy
from bench.ingest_report import (
    TARGET_OVER_PEER,
    TARGET_SCALING,
    TARGET_SINGLE_P95_MS,
    report,
)
from bench.payloads import Payloads
from bench.processes import (
    MANAGE,
    PYTHON,
    REDIS_HOST,
    REDIS_PORT,
    RedisScratch,
    Sequencer,
    celery,
    free_port,
    gunicorn,
    manage,
    server_errors,
)

BATCH_SIZE = 1000
SINGLE_CLIENTS = 8

SINGLE_ALONE = 300  # single-case requests from 1 client


# --- Load ---------------------------------------------------------------------------


def run_batches(url: str, key: str, batches: list[bytes], clients: int) -> dict:
    """POST the pre-encoded batches with ``clients`` concurrent clients."""
    work: queue.Queue = queue.Queue()
    for body in batches:
        work.put(body)
    statuses: Counter = Counter()
    case_statuses: Counter = Counter()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def client():
        with requests.Session() as session:
            while True:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                started = time.perf_counter()
                response = session.post(
                    f"{url}/api/v1/cases/batch", data=body, headers=headers, timeout=300
                )
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    with lock:
                        errors.append(f"{response.status_code}: {response.text[:300]}")
                    continue
                results = response.json()["results"]
                with lock:
                    latencies.append(elapsed)
                    statuses.update(item["status"] for item in results)
                    case_statuses.update(item.get("case_status") for item in results)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu, client_cpu = CpuSampler(), time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    stored = statuses[201]
    latencies.sort()
    return {
        "clients": clients,
        "batches": len(batches),
        "cases": sum(statuses.values()),
        "created": stored,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "routed": {str(k): v for k, v in sorted(case_statuses.items()) if k},
        "errors": errors[:5],
        "error_count": len(errors),
        "seconds": round(seconds, 3),
        "cases_per_s": round(stored / seconds, 1),
        "batch_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "batch_max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "cpu": cpu.stop(),
        "client_cpu_s": round(client_cpu, 2),
    }


def run_singles(url: str, key: str, bodies: list[bytes], clients: int) -> dict:
    """``clients`` threads, each with its own Session, POST one case at a time."""
    counter = itertools.count()
    per_thread: list[list[float]] = [[] for _ in range(clients)]
    statuses: Counter = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def client(latencies: list[float]):
        local: Counter = Counter()
        with requests.Session() as session:
            while (index := next(counter)) < len(bodies):
                started = time.perf_counter()
                response = session.post(
                    f"{url}/api/v1/cases", data=bodies[index], headers=headers, timeout=60
                )
                latencies.append(time.perf_counter() - started)
                local[response.status_code] += 1
                if response.status_code != 201 and len(errors) < 5:
                    with lock:
                        errors.append(f"{response.status_code}: {response.text[:300]}")
        with lock:
            statuses.update(local)

    threads = [threading.Thread(target=client, args=(lat,)) for lat in per_thread]
    cpu, client_cpu = CpuSampler(), time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    latencies = sorted(itertools.chain.from_iterable(per_thread))
    ms = lambda p: round(percentile(latencies, p) * 1000, 2)  # noqa: E731
    return {
        "clients": clients,
        "requests": len(latencies),
        "created": statuses[201],
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
        "seconds": round(seconds, 3),
        "req_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": ms(50),
        "p95_ms": ms(95),
        "p99_ms": ms(99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "cpu": cpu.stop(),
        "client_cpu_s": round(client_cpu, 2),
    }


# --- Main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = arguments(
        __doc__,
        {
            "cases": (50_000, 5_000, "cases per batch phase (default 50,000)"),
            "single": (4_000, 1_000, "single-case requests (default 4,000)"),
        },
        quick_help="5,000 cases and 1,000 single requests",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn sync workers (default 2 = cores here)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per worker (gthread if > 1)"
    )
    parser.add_argument("--clients", default="1,2", help="batch client counts to try (default 1,2)")
    parser.add_argument(
        "--celery",
        action="store_true",
        help="also run a Celery worker (--concurrency 2) and beat, as in production",
    )
    parser.add_argument("--redis-db", type=int, default=int(os.environ.get("BENCH_REDIS_DB", 14)))
    parser.add_argument("--keep", action="store_true", help="keep the database (debugging)")
    parser.add_argument(
        "--peer",
        type=Path,
        default=os.environ.get("BENCH_LABELSTUDIO_VENV") or None,
        help="Label Studio's virtualenv: measure its import of the same items "
        "(bench/labelstudio.py; default $BENCH_LABELSTUDIO_VENV)",
    )
    args = parse(parser, argv)
    args.client_counts = client_counts = [int(c) for c in args.clients.split(",")]

    info = machine()
    info["postgresql"] = pg_version()
    print_machine(info)
    print(f"PostgreSQL {info['postgresql']} at 127.0.0.1:5432, Redis at {REDIS_HOST}:{REDIS_PORT}")
    server_desc = f"gunicorn -w {args.workers}" + (
        f" -k gthread --threads {args.threads}" if args.threads > 1 else " (sync workers)"
    )
    if args.celery:
        server_desc += ", celery worker --concurrency 2 and beat"
    print(f"server: {server_desc}")

    # Payloads are built and encoded up front, so the timed phases only send them.
    total_batch = args.cases * len(client_counts)
    payloads = Payloads(members=max(500, int((total_batch + args.single) * 0.4)))
    phases_bodies, phases_cases = [], []
    for phase in range(len(client_counts)):
        prefix = f"CLM-B{phase + 1}-"
        cases = [payloads.case(f"{prefix}{i:07d}") for i in range(args.cases)]
        phases_cases.append(cases)
        phases_bodies.append(
            [
                json.dumps({"cases": cases[i : i + BATCH_SIZE]}).encode()
                for i in range(0, len(cases), BATCH_SIZE)
            ]
        )
    single_cases = [payloads.case(f"CLM-S-{i:07d}") for i in range(args.single + SINGLE_ALONE)]
    singles = [json.dumps(case).encode() for case in single_cases]
    warmup_single = [json.dumps(payloads.case(f"CLM-W-{i:07d}")).encode() for i in range(32)]
    warmup_batch = [
        json.dumps({"cases": [payloads.case(f"CLM-WB{b}-{i:04d}") for i in range(100)]}).encode()
        for b in range(4)
    ]
    submitted = total_batch + args.single + SINGLE_ALONE + 32 + 400
    payload_sets = (phases_bodies, singles, warmup_single, warmup_batch, submitted)

    with (
        scratch_database("", keep=args.keep) as database,
        tempfile.TemporaryDirectory(prefix="workbench-bench-ingest-") as tmp,
    ):
        figures = run(args, info, server_desc, database, Path(tmp), payload_sets)
    if args.peer:  # after Workbench's servers stopped: the two never share the cores
        from bench.labelstudio import peer_measure

        peer_phases = list(zip(client_counts, phases_cases, strict=True))
        figures["peer"] = peer_measure(args.peer, peer_phases, single_cases[-SINGLE_ALONE - 50 :])

    figures["machine"]["loadavg_at_end"] = os.getloadavg()
    report(figures)
    path = write_results("ingest.json", figures)
    print(f"\nfigures written to {shown(path)}")
    ok = figures["verify"]["count_ok"] and figures["verify"]["trail_verify_ok"]
    return 0 if ok else 1


def run(args, info: dict, server_desc: str, database: str, tmp: Path, payload_sets: tuple) -> dict:
    """Steps 1-6 on the scratch database; gunicorn (and Celery) stopped at the end."""
    phases_bodies, singles, warmup_single, warmup_batch, submitted = payload_sets
    database_url = pg_url(database)
    redis_scratch = RedisScratch(args.redis_db)
    port = free_port()
    # scratch_database has put DATABASE_URL, the settings, DEBUG off, the log
    # level and a throw-away signing key in the environment; the server gets
    # Redis too (the cache, and the broker with --celery).
    # The per-key rate limit stays on (its count in Redis is part of every
    # request's cost) but high enough never to refuse: the single phase sends
    # 4,000 requests with one key in about a minute, over the default 600/m.
    env = {
        **os.environ,
        "REDIS_URL": redis_scratch.url,
        "CACHE_KEY_PREFIX": database,
        "WORKBENCH_BASE_URL": f"http://127.0.0.1:{port}",
        "API_RATE_PER_KEY": "10000000/m",
    }
    log = results_dir() / "ingest-gunicorn.log"
    server = gunicorn(env, port, args.workers, args.threads, log)
    workers = celery(env, 2, tmp / "celerybeat-schedule", log.with_name("ingest-celery.log"))
    sequencer = Sequencer(env, tmp / "merge-delays.json", log.with_name("ingest-sequencer.log"))
    figures: dict = {
        "machine": info,
        "server": {
            "command": server_desc,
            "workers": args.workers,
            "threads": args.threads,
            "celery": args.celery,
        },
        "database": database,
        "targets": {
            "scaling_2_over_1": TARGET_SCALING,
            "batch_over_peer": TARGET_OVER_PEER,
            "single_p95_ms": TARGET_SINGLE_P95_MS,
        },
    }
    try:
        print(f"database {database}: migrating ...", flush=True)
        manage(env, "migrate", "--verbosity", "0")
        key = (
            manage(
                env,
                "create_ai_system",
                yaml.safe_load(DEMO_CLAIMS_POLICY.read_text())["system"],
                "--name",
                "Bench",
                "--kind",
                "claim_decision",
            )
            .strip()
            .splitlines()[-1]
        )
        print(manage(env, "load_policy", str(DEMO_CLAIMS_POLICY)).strip())

        if args.celery:
            workers.start(interval=0.5)
            print("celery worker and beat running", flush=True)
        server.start()
        print(f"gunicorn answers at {server.url}", flush=True)
        sequencer.start()  # the warm-up's events integrated before the phases (delays dropped)
        run_singles(server.url, key, warmup_single, SINGLE_CLIENTS)
        run_batches(server.url, key, warmup_batch, 2)
        time.sleep(1)
        sequencer.stop()

        figures["batch"] = []
        for clients, bodies in zip(args.client_counts, phases_bodies, strict=True):
            print(f"batch: {args.cases:,} cases, {clients} client(s) ...", flush=True)
            sequencer.start()
            result = run_batches(server.url, key, bodies, clients)
            result["merge_delay"] = sequencer.stop()
            figures["batch"].append(result)
            print(
                f"  {result['cases_per_s']:,.0f} cases/s, routed {result['routed']}, "
                f"cpu {result['cpu']}, merge delay {result['merge_delay']}",
                flush=True,
            )
            if result["error_count"] or result["created"] != args.cases:
                print(f"  problems: {result['statuses']}, {result['error_count']} failed batches")
                print(server_errors(log))

        print(f"single: {args.single:,} requests from {SINGLE_CLIENTS} clients ...", flush=True)
        sequencer.start()
        figures["single"] = run_singles(server.url, key, singles[: args.single], SINGLE_CLIENTS)
        figures["single"]["merge_delay"] = sequencer.stop()
        print(f"single: {SINGLE_ALONE} requests from 1 client ...", flush=True)
        sequencer.start()
        figures["single_alone"] = run_singles(server.url, key, singles[args.single :], 1)
        figures["single_alone"]["merge_delay"] = sequencer.stop()
        print(
            f"  p50 {figures['single']['p50_ms']} ms, p95 {figures['single']['p95_ms']} ms, "
            f"{figures['single']['req_per_s']:,.0f} req/s, cpu {figures['single']['cpu']}, "
            f"merge delay {figures['single']['merge_delay']}",
            flush=True,
        )
        if figures["single"]["created"] != args.single:
            print(f"  problems: {figures['single']['statuses']}")
            print(server_errors(log))
        server.stop()
        workers.stop()
        manage(env, "trail_checkpoint")  # integrates what the sequencer left, and signs

        print("COPY: the same rows, straight into PostgreSQL ...", flush=True)
        try:
            figures["copy"] = measure_copy(database_url, "CLM-B1-")
        except psycopg.Error as exc:  # a schema the COPY step does not know yet
            print(f"  COPY step failed: {exc}")
            figures["copy"] = {"error": str(exc)}

        with psycopg.connect(database_url) as conn:
            count = conn.execute("SELECT count(*) FROM reviews_case").fetchone()[0]
            events = conn.execute("SELECT count(*) FROM workbench_trailevent").fetchone()[0]
        manage(env, "trail_checkpoint")
        started = time.perf_counter()
        verify = subprocess.run(
            [PYTHON, MANAGE, "trail_verify"], env=env, cwd=ROOT, capture_output=True, text=True
        )
        verify_seconds = time.perf_counter() - started
        figures["verify"] = {
            "cases_stored": count,
            "cases_submitted": submitted,
            "count_ok": count == submitted,
            "trail_events": events,
            "trail_verify_ok": verify.returncode == 0,
            "trail_verify_output": (verify.stdout + verify.stderr).strip(),
            "trail_verify_seconds_incl_startup": round(verify_seconds, 2),
        }
    finally:
        server.stop()
        workers.stop()
        sequencer.stop()
        redis_scratch.cleanup()
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
