"""Intake throughput and latency against gunicorn on PostgreSQL.

Not a test: it prints figures and writes them to bench/results/ingest.json.

    .venv/bin/python bench/ingest.py            # 50,000 cases per batch phase
    .venv/bin/python bench/ingest.py --quick    # 5,000 cases, 1,000 single requests
    .venv/bin/python bench/ingest.py --celery   # with a Celery worker and beat

What it does, all on loopback, in one run:

1. creates a scratch database ``workbench_bench_<random>``, migrates it,
   creates the AI system ``bench-claims`` with ``manage.py create_ai_system``
   and publishes a claims policy with ``manage.py load_policy``;
2. starts gunicorn on a free port and waits until it answers; with
   ``--celery`` also a Celery worker and beat, as the Procfile runs them
   (without it nothing consumes the broker until the end of the run);
3. batch: POSTs ``--cases`` claim cases to /api/v1/cases/batch in batches of
   1,000 with one client, then ``--cases`` more with two concurrent clients
   (validation, routing, subjects, review tasks and the hash-chained trail
   all included) and reports cases/s;
4. single: 8 threads, each with its own ``requests.Session``, POST ``--single``
   cases one at a time to /api/v1/cases; p50/p95/p99 latency and req/s;
5. the physical limit: PostgreSQL ``COPY`` (psycopg3 ``cursor.copy()``) of the
   very rows the first batch phase stored, into ``LIKE reviews_case INCLUDING
   ALL`` (same columns and indexes, logged), rows/s; and the full footprint of
   a case (case + 2 trail events + review task + subject rows) the same way;
6. checks the case count and runs ``manage.py trail_verify``;
7. stops gunicorn and drops the database, whatever happened.
"""

import argparse
import itertools
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import requests
import yaml
from _common import (
    ROOT,
    CpuSampler,
    Sequencer,
    machine,
    pg_url,
    pg_version,
    print_machine,
    scratch_database,
    table,
    write_results,
)

PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
CELERY = str(ROOT / ".venv" / "bin" / "celery")
MANAGE = str(ROOT / "manage.py")
CARC_CSV = ROOT / "data" / "claims" / "carc_claim_adjustment_reason_codes.csv"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
BATCH_SIZE = 1000
SINGLE_CLIENTS = 8

TARGET_BATCH = 3000.0  # cases/s
TARGET_SINGLE_P95_MS = 25.0

# The tests' CLAIMS_POLICY (tests/factories.py) for the bench system.
POLICY = {
    "system": "bench-claims",
    "outcomes": ["approve", "deny", "partial"],
    "adverse_outcomes": ["deny", "partial"],
    "appeal_window_days": 184,
    "qa_sample_rate": 0.05,
    "default_queue": "claims-review",
    "queues": [
        {"slug": "claims-review", "name": "Claims review", "sla_hours": 48},
        {"slug": "senior-review", "name": "Senior review", "sla_hours": 24, "reviews_required": 2},
    ],
    "rules": [
        {
            "name": "large-amount",
            "when": {"field": "metadata.amount", "op": "gt", "value": 5000},
            "queue": "senior-review",
            "priority": 5,
        },
        {
            "name": "adverse-needs-human",
            "when": {"outcome_in": ["deny", "partial"]},
            "queue": "claims-review",
        },
        {"name": "low-confidence", "when": {"confidence_below": 0.8}, "queue": "claims-review"},
    ],
}

# Common professional/outpatient procedure codes (CPT/HCPCS) with plain descriptions.
PROCEDURES = [
    ("99213", "Office visit, established patient, low complexity", 95, 180),
    ("99214", "Office visit, established patient, moderate complexity", 130, 260),
    ("99285", "Emergency department visit, high severity", 450, 1900),
    ("71046", "Chest X-ray, 2 views", 40, 160),
    ("80053", "Comprehensive metabolic panel", 15, 90),
    ("85025", "Complete blood count with differential", 10, 60),
    ("93000", "Electrocardiogram with interpretation", 20, 120),
    ("97110", "Therapeutic exercise, each 15 minutes", 30, 95),
    ("73721", "MRI lower extremity joint without contrast", 400, 2600),
    ("70450", "CT head without contrast", 250, 1800),
    ("45378", "Diagnostic colonoscopy", 700, 3800),
    ("29881", "Knee arthroscopy with meniscectomy", 2200, 9500),
    ("27447", "Total knee arthroplasty", 12000, 38000),
    ("J1100", "Dexamethasone sodium phosphate injection, 1 mg", 5, 40),
    ("G0439", "Annual wellness visit, subsequent", 120, 210),
]
GIVEN = [
    "Ana",
    "Ben",
    "Chloe",
    "Dmitri",
    "Emeka",
    "Fatima",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemal",
    "Lena",
    "Mateo",
    "Nadia",
    "Olu",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
]
FAMILY = [
    "Ruiz",
    "Okafor",
    "Nguyen",
    "Schmidt",
    "Haddad",
    "Kowalski",
    "Tanaka",
    "Silva",
    "Dubois",
    "Murphy",
    "Andersen",
    "Rossi",
    "Cohen",
    "Patel",
    "Johansson",
    "Moreau",
]


def carc_codes() -> list[tuple[str, str]]:
    import csv

    with open(CARC_CSV, newline="") as f:
        return [(row["code"], row["description"]) for row in csv.DictReader(f)]


class Payloads:
    """Claim decisions built like tests/factories.py claim_payload, around real
    CARC codes, with outcome, confidence and amount varied so routing splits:
    about a third is finalized by the AI, the rest goes to the two queues."""

    def __init__(self, members: int, seed: int = 20261122):
        self.rng = random.Random(seed)
        self.carc = carc_codes()
        self.members = members

    def case(self, external_id: str) -> dict:
        rng = self.rng
        roll = rng.random()
        outcome = "approve" if roll < 0.65 else "deny" if roll < 0.88 else "partial"
        if outcome == "approve":
            confidence = round(rng.uniform(0.70, 0.995), 3)
        else:
            confidence = round(rng.uniform(0.45, 0.99), 3)
        lines = []
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            code, description, low, high = rng.choice(PROCEDURES)
            lines.append(
                {
                    "code": code,
                    "description": description,
                    "amount": round(rng.uniform(low, high), 2),
                    "reason_codes": [],
                }
            )
        amount = round(sum(line["amount"] for line in lines), 2)
        reasons = []
        if outcome != "approve":
            for _ in range(rng.choice((1, 1, 2))):
                code, text = rng.choice(self.carc)
                group = rng.choice(("CO", "CO", "PR", "OA"))
                reasons.append({"code": f"{group}-{code}", "text": text[:1000]})
            for line in lines:
                line["reason_codes"] = [r["code"] for r in reasons]
        summary = reasons[0]["text"][:2000] if reasons else "Approved as billed"
        member = rng.randrange(self.members)
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        return {
            "external_id": external_id,
            "kind": "claim_decision",
            "subject": {
                "reference": f"MBR-{member:06d}",
                "name": f"{given} {family}",
                "email": f"{given.lower()}.{family.lower()}{member}@example.org",
                "locale": "en",
            },
            "model": {"name": "claims-triage", "version": "2026.11.1"},
            "input": {
                "claim": {
                    "id": f"C{external_id}",
                    "type": rng.choice(("professional", "professional", "institutional")),
                    "place_of_service": rng.choice(("11", "21", "22", "23")),
                    "diagnosis": rng.choice(
                        ("M17.11", "J18.9", "E11.9", "I10", "R07.9", "S83.241A")
                    ),
                },
                "lines": lines,
            },
            "output": {"outcome": outcome, "summary": summary, "reasons": reasons},
            "confidence": confidence,
            "explanation": "top features: procedure code, diagnosis pointer, prior authorization",
            "metadata": {"amount": amount, "lines": len(lines)},
        }


# --- Server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [PYTHON, MANAGE, *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


class Gunicorn:
    def __init__(self, env: dict, port: int, workers: int, threads: int, log: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.command = [
            GUNICORN,
            "workbench.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--timeout",
            "300",
            "--graceful-timeout",
            "5",
        ]
        if threads > 1:
            self.command += ["-k", "gthread", "--threads", str(threads)]
        self.env, self.log = env, log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        self.logfile = open(self.log, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=ROOT,
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/api/v1/openapi.json", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer in {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # its own session: the arbiter and workers
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self.logfile.close()


class Celery:
    """A Celery worker and beat as in the Procfile (``--celery``): checkpoint
    signing, the outbox and the rollups run beside the web workers, as in
    production, instead of not at all until the end of the run."""

    def __init__(self, env: dict, concurrency: int, schedule: Path, log: Path):
        self.commands = [
            [CELERY, "-A", "workbench", "worker", "--loglevel", "WARNING",
             "--concurrency", str(concurrency)],
            [CELERY, "-A", "workbench", "beat", "--loglevel", "WARNING",
             "--schedule", str(schedule)],
        ]  # fmt: skip
        self.env, self.log = env, log
        self.processes: list[subprocess.Popen] = []

    def start(self, timeout: float = 60) -> None:
        self.logfile = open(self.log, "w")  # noqa: SIM115
        for command in self.commands:
            self.processes.append(
                subprocess.Popen(
                    command,
                    env=self.env,
                    cwd=ROOT,
                    stdout=self.logfile,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        # Ready when the worker answers a ping (the broker is the bench's Redis).
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"celery exited:\n{self.log.read_text()[-3000:]}")
            ping = subprocess.run(
                [CELERY, "-A", "workbench", "inspect", "ping", "--timeout", "1"],
                env=self.env,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if ping.returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the celery worker did not answer in {timeout:.0f} s")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        if self.processes:
            self.logfile.close()
        self.processes = []


# --- Load ---------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


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


def server_errors(log: Path, lines: int = 40) -> str:
    """The tail of gunicorn's log without its INFO chatter: tracebacks of 500s."""
    text = [line for line in log.read_text().splitlines() if "[INFO]" not in line and line.strip()]
    return "\n".join(text[-lines:])


# --- COPY: the physical limit ------------------------------------------------------------


def columns(conn, table_name: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position",
        (table_name,),
    ).fetchall()
    return [f'"{name}"' for (name,) in rows]


def copy_out(conn, table_name: str, where: str) -> tuple[list[str], bytes, int]:
    cols = columns(conn, table_name)
    data = bytearray()
    with (
        conn.cursor() as cur,
        cur.copy(
            f"COPY (SELECT {', '.join(cols)} FROM {table_name} WHERE {where}) TO STDOUT"
        ) as copy,
    ):
        for chunk in copy:
            data += chunk
    return cols, bytes(data), data.count(b"\n")


def copy_in(conn, target: str, cols: list[str], data: bytes) -> None:
    sql = f"COPY {target} ({', '.join(cols)}) FROM STDIN"
    with conn.cursor() as cur, cur.copy(sql) as copy:
        view = memoryview(data)
        for start in range(0, len(data), 1 << 20):
            copy.write(view[start : start + (1 << 20)])


def measure_copy(database_url: str, phase_prefix: str) -> dict:
    """COPY the rows the first batch phase stored into LIKE copies (same columns,
    indexes and constraints, logged), timing the COPY and its commit."""
    case_filter = f"external_id LIKE '{phase_prefix}%'"
    sources = {
        "reviews_case": case_filter,
        "workbench_trailevent": (
            f'"case" IN (SELECT reference FROM reviews_case WHERE {case_filter})'
        ),
        "reviews_reviewtask": f"case_id IN (SELECT id FROM reviews_case WHERE {case_filter})",
        "reviews_subject": f"id IN (SELECT subject_id FROM reviews_case WHERE {case_filter})",
    }
    out = {}
    with psycopg.connect(database_url) as conn:
        dumps = {name: copy_out(conn, name, where) for name, where in sources.items()}
        conn.commit()
        for name in sources:
            conn.execute(f"CREATE TABLE bench_{name} (LIKE {name} INCLUDING ALL)")
            conn.execute(f"CREATE TABLE bench2_{name} (LIKE {name} INCLUDING ALL)")
        conn.commit()
        conn.execute("CHECKPOINT")

        cols, data, rows = dumps["reviews_case"]
        started = time.perf_counter()
        copy_in(conn, "bench_reviews_case", cols, data)
        conn.commit()
        seconds = time.perf_counter() - started
        out["cases_only"] = {
            "rows": rows,
            "megabytes": round(len(data) / 1e6, 1),
            "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds, 1),
        }
        conn.execute("CHECKPOINT")

        # The same rows as Python values (dicts for jsonb), written with
        # copy.write_row: what an app-side COPY would pay for formatting too.
        cols = columns(conn, "reviews_case")
        types = [
            t
            for (t,) in conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'reviews_case'::regclass AND attnum > 0 AND NOT attisdropped "
                "AND attgenerated = '' ORDER BY attnum"
            ).fetchall()
        ]
        values = conn.execute(
            f"SELECT {', '.join(cols)} FROM reviews_case WHERE {case_filter}"
        ).fetchall()
        conn.execute("CREATE TABLE bench3_reviews_case (LIKE reviews_case INCLUDING ALL)")
        conn.commit()
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        sql = f"COPY bench3_reviews_case ({', '.join(cols)}) FROM STDIN"
        with conn.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types([t.split("(")[0] for t in types])
            for row in values:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started
        out["cases_write_row"] = {
            "rows": len(values),
            "seconds": round(seconds, 3),
            "rows_per_s": round(len(values) / seconds, 1),
        }
        conn.execute("DROP TABLE bench3_reviews_case")
        conn.commit()
        conn.execute("CHECKPOINT")

        started = time.perf_counter()
        for name, (cols, data, _) in dumps.items():
            copy_in(conn, f"bench2_{name}", cols, data)
        conn.commit()
        seconds = time.perf_counter() - started
        out["full_footprint"] = {
            "rows": {name: dumps[name][2] for name in dumps},
            "megabytes": round(sum(len(d[1]) for d in dumps.values()) / 1e6, 1),
            "seconds": round(seconds, 3),
            "cases_per_s": round(rows / seconds, 1),
        }
        for name in sources:
            conn.execute(f"DROP TABLE bench_{name}")
            conn.execute(f"DROP TABLE bench2_{name}")
        conn.commit()
    return out


# --- Redis scratch database ------------------------------------------------------------------


class RedisScratch:
    """The bench's Celery broker and cache live in one Redis database; at the end
    the keys the run created there are deleted (and only those)."""

    def __init__(self, db: int):
        import redis

        self.url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
        self.client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        self.before = set(self.client.scan_iter(count=1000))

    def cleanup(self) -> int:
        created = [k for k in self.client.scan_iter(count=1000) if k not in self.before]
        if created:
            self.client.delete(*created)
        return len(created)


# --- Main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases", type=int, default=50_000, help="cases per batch phase (default 50,000)"
    )
    parser.add_argument(
        "--single", type=int, default=4_000, help="single-case requests (default 4,000)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="5,000 cases and 1,000 single requests"
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
    args = parser.parse_args()
    if args.quick:
        args.cases, args.single = 5_000, 1_000
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
    phases_bodies = []
    for phase in range(len(client_counts)):
        prefix = f"CLM-B{phase + 1}-"
        cases = [payloads.case(f"{prefix}{i:07d}") for i in range(args.cases)]
        phases_bodies.append(
            [
                json.dumps({"cases": cases[i : i + BATCH_SIZE]}).encode()
                for i in range(0, len(cases), BATCH_SIZE)
            ]
        )
    singles = [json.dumps(payloads.case(f"CLM-S-{i:07d}")).encode() for i in range(args.single)]
    warmup_single = [json.dumps(payloads.case(f"CLM-W-{i:07d}")).encode() for i in range(32)]
    warmup_batch = [
        json.dumps({"cases": [payloads.case(f"CLM-WB{b}-{i:04d}") for i in range(100)]}).encode()
        for b in range(4)
    ]
    submitted = total_batch + args.single + 32 + 400
    payload_sets = (phases_bodies, singles, warmup_single, warmup_batch, submitted)

    with (
        scratch_database("workbench-bench", keep=args.keep) as database,
        tempfile.TemporaryDirectory(prefix="workbench-bench-ingest-") as tmp,
    ):
        figures = run(args, info, server_desc, database, Path(tmp), payload_sets)

    figures["machine"]["loadavg_at_end"] = os.getloadavg()
    report(figures)
    path = write_results("ingest.json", figures)
    print(f"\nfigures written to {path.relative_to(ROOT)}")
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
    log = ROOT / "bench" / "results" / "ingest-gunicorn.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    server = Gunicorn(env, port, args.workers, args.threads, log)
    celery = Celery(env, 2, tmp / "celerybeat-schedule", log.with_name("ingest-celery.log"))
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
        "targets": {"batch_cases_per_s": TARGET_BATCH, "single_p95_ms": TARGET_SINGLE_P95_MS},
    }
    try:
        print(f"database {database}: migrating ...", flush=True)
        manage(env, "migrate", "--verbosity", "0")
        key = (
            manage(
                env,
                "create_ai_system",
                "bench-claims",
                "--name",
                "Bench",
                "--kind",
                "claim_decision",
            )
            .strip()
            .splitlines()[-1]
        )
        policy_file = tmp / "bench-claims-policy.yaml"
        policy_file.write_text(yaml.safe_dump(POLICY, sort_keys=False))
        print(manage(env, "load_policy", str(policy_file)).strip())

        if args.celery:
            celery.start()
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
        figures["single"] = run_singles(server.url, key, singles, SINGLE_CLIENTS)
        figures["single"]["merge_delay"] = sequencer.stop()
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
        celery.stop()
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
        celery.stop()
        sequencer.stop()
        redis_scratch.cleanup()
    return figures


def report(figures: dict) -> None:
    copy = figures["copy"]
    if "error" in copy:  # keep the rest of the report
        nan = float("nan")
        copy = {
            "cases_only": {"rows": 0, "rows_per_s": nan, "megabytes": nan},
            "cases_write_row": {"rows_per_s": nan},
            "full_footprint": {"cases_per_s": nan, "megabytes": nan},
        }
    copy_rate = copy["cases_only"]["rows_per_s"]
    footprint_rate = copy["full_footprint"]["cases_per_s"]
    rows = []
    for phase in figures["batch"]:
        rate = phase["cases_per_s"]
        rows.append(
            (
                f"batch, {phase['clients']} client(s), {phase['cases']:,} cases",
                f"{rate:,.0f} cases/s",
                f"p50 {phase['batch_p50_ms']:,.0f} ms per 1,000",
                f">= {TARGET_BATCH:,.0f} cases/s",
                "PASS" if rate >= TARGET_BATCH else "MISS",
            )
        )
    single = figures["single"]
    rows.append(
        (
            f"single, {single['clients']} clients, {single['requests']:,} req",
            f"{single['req_per_s']:,.0f} req/s",
            f"p50 {single['p50_ms']} / p95 {single['p95_ms']} / p99 {single['p99_ms']} ms",
            f"p95 <= {TARGET_SINGLE_P95_MS:.0f} ms",
            "PASS" if single["p95_ms"] <= TARGET_SINGLE_P95_MS else "MISS",
        )
    )
    rows.append(
        (
            f"COPY reviews_case, {copy['cases_only']['rows']:,} rows",
            f"{copy_rate:,.0f} rows/s",
            f"{copy['cases_only']['megabytes']} MB",
            "",
            "",
        )
    )
    rows.append(
        (
            "COPY reviews_case from Python rows (write_row)",
            f"{copy['cases_write_row']['rows_per_s']:,.0f} rows/s",
            "formatting in psycopg",
            "",
            "",
        )
    )
    rows.append(
        (
            "COPY full footprint (case+events+task+subject)",
            f"{footprint_rate:,.0f} cases/s",
            f"{copy['full_footprint']['megabytes']} MB",
            "",
            "",
        )
    )
    best = max(phase["cases_per_s"] for phase in figures["batch"])
    figures["ratios"] = {
        "batch_best_over_copy_cases": round(best / copy_rate, 3),
        "batch_best_over_copy_footprint": round(best / footprint_rate, 3),
    }
    verify = figures["verify"]
    print()
    print(f"server: {figures['server']['command']}; {figures['machine']['cpus']} cores")
    print(table(rows, ("measure", "rate", "detail", "target", "")))
    print()
    ratios = figures["ratios"]
    print(
        f"ingest / COPY: {ratios['batch_best_over_copy_cases']:.1%} of COPY of the case rows, "
        f"{ratios['batch_best_over_copy_footprint']:.1%} of COPY of everything a case writes"
    )
    print(
        f"cases stored {verify['cases_stored']:,} of {verify['cases_submitted']:,} submitted: "
        f"{'OK' if verify['count_ok'] else 'MISMATCH'}; "
        f"trail_verify: {verify['trail_verify_output']}"
    )


if __name__ == "__main__":
    sys.exit(main())
