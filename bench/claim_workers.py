"""The claiming workers of ``bench.claim``: N reviewers (threads or forked
processes) started together at a barrier, the bare ``SKIP LOCKED`` loop and
the service loop, the ``pg_stat_activity`` sampler, one reviewer alone (and
under cProfile), and the figures of a phase."""

import multiprocessing
import threading
import time
from collections import Counter

from bench.harness import CpuSampler, percentile, results_dir, shown

QUEUE = "claims-review"
SKIP_LOCKED_CLAIM = """
UPDATE bench_claim SET status = 'claimed', assignee = %s
WHERE id = (
    SELECT id FROM bench_claim WHERE status = 'open'
    ORDER BY priority DESC, due_at, id
    LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING id
"""


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
    """Measurement only: time each claim's COMMIT. On PostgreSQL the claim's
    ``case.claimed`` event is chained during its commit (a deferred trigger,
    workbench migration 0006), so the commit is where the chain head's row
    lock is waited for and held, with the WAL flush; the client cannot tell
    the two apart (``pg_activity`` shows the waiting). The share of the phase
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
    from reviews.services.assignment import task_claim_next
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
    from reviews.services.assignment import task_claim_next
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
    from reviews.services.assignment import task_claim_next
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
    path = results_dir() / "cprofile-claim.txt"
    path.write_text(out.getvalue())
    print(
        f"cProfile of {len(ids)} claims ({seconds / max(1, len(ids)) * 1000:.1f} ms each under "
        f"the profiler) in {shown(path)}"
    )
    return {"claims": len(ids), "seconds": round(seconds, 3), "file": str(path)}, ids
