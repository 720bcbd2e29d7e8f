"""Decision-trail append and verify rates, in-process.

Not a test: it prints figures and merges them into bench/results/trail.json.

    .venv/bin/python -m bench.trail                     # PostgreSQL, 300,000 events
    .venv/bin/python -m bench.trail --sqlite            # SQLite
    .venv/bin/python -m bench.trail --quick             # 50,000 events

On a fresh database (PostgreSQL ``workbench_bench_trail_<random>`` at
127.0.0.1:5432, dropped at the end; or a SQLite file in a temporary
directory) it runs the migrations, appends ``--events`` events through
``workbench.services.trail.trail_append_many`` in chunks of 5,000, each chunk
in its own ``transaction.atomic()``, and reports the append rate. Then it times
``trail_verify()`` over the whole chain (hashes, body/column agreement,
checkpoint signatures) and checks that it says ok.

The events look like intake's: pairs of ``case.received`` / ``case.routed``
with the same data shapes. Without REDIS_URL Celery runs eagerly, so the
checkpoint signing that follows every 1,000th event happens inline, inside
the append timing (in production a worker does it).
"""

import random
import time

from bench.harness import (
    CpuSampler,
    arguments,
    machine,
    parse,
    print_machine,
    results_dir,
    results_merge,
    scratch_database,
    table,
)

TARGET_VERIFY = 200_000.0  # events/s
CHUNK = 5_000
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def main(argv: list[str] | None = None) -> int:
    parser = arguments(
        __doc__,
        {"events": (300_000, 50_000, "events to append (default 300,000)")},
        quick_help="50,000 events",
    )
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument(
        "--verify-runs", type=int, default=2, help="times to run trail_verify (default 2)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run trail_verify once under cProfile and print where the time goes",
    )
    args = parse(parser, argv)

    info = machine()
    print_machine(info)
    with scratch_database("trail", sqlite=args.sqlite):
        figures = run(args, info)
    results_merge("trail.json", figures["database"], figures)
    return 0 if figures["verify_ok"] else 1


def entries_for(start: int, count: int, rng: random.Random):
    """``count`` events shaped like intake's (reviews/services/intake.py
    _intake_events), two per case."""
    from workbench.services.trail import Actor, TrailEntry

    actor = Actor.system("bench-claims")
    out = []
    for n in range(start, start + count, 2):
        reference = (
            "WB-"
            + "".join(rng.choice(ALPHABET) for _ in range(4))
            + "-"
            + "".join(rng.choice(ALPHABET) for _ in range(4))
        )
        outcome = rng.choice(("approve", "approve", "deny", "partial"))
        confidence = round(rng.uniform(0.45, 0.995), 3)
        amount = round(rng.uniform(20, 9000), 2)
        digest = f"{rng.getrandbits(256):064x}"
        received = {
            "external_id": f"CLM-T-{n // 2:07d}",
            "kind": "claim_decision",
            "subject": f"MBR-{rng.randrange(100000):06d}",
            "model": {"name": "claims-triage", "version": "2026.11.1"},
            "outcome": outcome,
            "reason_codes": [] if outcome == "approve" else [f"CO-{rng.randrange(1, 300)}"],
            "confidence": confidence,
            "body_sha256": digest,
        }
        large, adverse, low = amount > 5000, outcome != "approve", confidence < 0.8
        rule = (
            "large-amount"
            if large
            else "adverse-needs-human"
            if adverse
            else "low-confidence"
            if low
            else None
        )
        routed = {
            "status": "pending_review" if rule else "finalized",
            "reason": f"rule {rule} matched" if rule else "no rule matched",
            "rule": rule,
            "queue": ("senior-review" if large else "claims-review") if rule else None,
            "task": "review" if rule else None,
            "policy_version": 1,
            "matched": [
                name
                for name, hit in (
                    ("large-amount", large),
                    ("adverse-needs-human", adverse),
                    ("low-confidence", low),
                )
                if hit
            ],
            "route_sha256": f"{rng.getrandbits(256):064x}",
        }
        if not rule:
            routed["final_outcome"] = outcome
            routed["decided_by"] = "ai"
        out.append(TrailEntry("case.received", actor, reference, "bench-claims", received))
        out.append(TrailEntry("case.routed", actor, reference, "bench-claims", routed))
    return out[:count]


def run(args, info: dict) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from workbench.models import Checkpoint, TrailEvent
    from workbench.services.trail import trail_append_many, trail_verify

    vendor = connection.vendor
    print(f"database: {vendor} ({connection.settings_dict['NAME']}); migrating ...", flush=True)
    call_command("migrate", verbosity=0)
    before = TrailEvent.objects.count()

    rng = random.Random(20261122)
    appended, append_seconds = 0, 0.0
    cpu = CpuSampler()
    print(f"appending {args.events:,} events in chunks of {CHUNK:,} ...", flush=True)
    while appended < args.events:
        count = min(CHUNK, args.events - appended)
        entries = entries_for(appended, count, rng)  # built outside the timing
        started = time.perf_counter()
        with transaction.atomic():
            trail_append_many(entries)
        append_seconds += time.perf_counter() - started
        appended += count
    append_cpu = cpu.stop()
    total = TrailEvent.objects.count()
    checkpoints = Checkpoint.objects.count()
    append_rate = appended / append_seconds
    print(
        f"  {append_rate:,.0f} events/s ({append_seconds:.1f} s), {checkpoints} checkpoints, "
        f"cpu {append_cpu}"
    )

    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE workbench_trailevent")

    runs = []
    for n in range(args.verify_runs):
        cpu = CpuSampler()
        started = time.perf_counter()
        result = trail_verify()
        seconds = time.perf_counter() - started
        runs.append(
            {
                "seconds": round(seconds, 3),
                "events_per_s": round(result.checked / seconds, 1),
                "ok": result.ok,
                "checked": result.checked,
                "checkpoints": result.checkpoints,
                "problem": result.problem,
                "cpu": cpu.stop(),
            }
        )
        print(
            f"trail_verify run {n + 1}: ok={result.ok}, {result.checked:,} events, "
            f"{result.checkpoints} checkpoints, {seconds:.2f} s, "
            f"{result.checked / seconds:,.0f} events/s, cpu {runs[-1]['cpu']}",
            flush=True,
        )
    if args.profile:
        profile_verify(trail_verify, vendor)
    what_if = sql_verify_what_if(connection) if vendor == "postgresql" else None
    best = max(runs, key=lambda r: r["events_per_s"])
    verify_ok = all(r["ok"] and r["checked"] == total for r in runs)

    rows = [
        (
            f"append ({vendor}), chunks of {CHUNK:,}",
            f"{append_rate:,.0f} events/s",
            f"{appended:,} events in {append_seconds:.1f} s",
            "",
            "",
        ),
    ]
    for n, r in enumerate(runs, 1):
        rows.append(
            (
                f"trail_verify ({vendor}) run {n}",
                f"{r['events_per_s']:,.0f} events/s",
                f"{r['checked']:,} events, {r['checkpoints']} signatures, {r['seconds']:.2f} s",
                f">= {TARGET_VERIFY:,.0f} events/s",
                "PASS" if r["events_per_s"] >= TARGET_VERIFY else "MISS",
            )
        )
    print()
    print(table(rows, ("measure", "rate", "detail", "target", "")))
    print(f"verify ok: {verify_ok} (chain of {total:,} events, {before} from migrations)")
    return {
        "database": vendor,
        "machine": info,
        "events_appended": appended,
        "events_in_chain": total,
        "chunk": CHUNK,
        "append_seconds": round(append_seconds, 3),
        "append_events_per_s": round(append_rate, 1),
        "append_cpu": append_cpu,
        "checkpoints": checkpoints,
        "verify_runs": runs,
        "verify_events_per_s_best": best["events_per_s"],
        "verify_ok": verify_ok,
        "target_verify_events_per_s": TARGET_VERIFY,
        "what_if_verify_in_sql": what_if,
    }


SQL_VERIFY_HASH_ONLY = """
SELECT count(*) AS checked,
       min(seq) FILTER (WHERE bad) AS first_bad
FROM (
    SELECT seq,
           hash <> encode(sha256(decode(prev_hash, 'hex') || convert_to(body, 'UTF8')), 'hex')
           OR prev_hash <> coalesce(lag(hash) OVER w, repeat('0', 64))
           OR seq <> coalesce(lag(seq) OVER w, 0) + 1 AS bad
    FROM workbench_trailevent
    WINDOW w AS (ORDER BY seq)
) t
"""


def sql_verify_what_if(connection) -> dict:
    """What-if, for comparison only: the per-event checks (seq follows on,
    prev_hash links, hash = SHA-256(prev || body)) done by PostgreSQL in one
    query. Checkpoint signatures and the head are not included."""
    out = {}
    for name, sql in (("sql_hash_link_seq", SQL_VERIFY_HASH_ONLY),):
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(sql)
            checked, first_bad = cursor.fetchone()
            seconds = time.perf_counter() - started
        rate = checked / seconds if seconds else 0
        print(
            f"what-if, per-event checks ({name}) in one PostgreSQL query: {checked:,} events, "
            f"first bad {first_bad}, {seconds:.2f} s, {rate:,.0f} events/s"
        )
        out[name] = {
            "checked": checked,
            "first_bad": first_bad,
            "seconds": round(seconds, 3),
            "events_per_s": round(rate, 1),
        }
    out.update(python_verify_what_if(connection))
    return out


def python_verify_what_if(connection) -> dict:
    """What-if, for comparison only: the same per-event checks as a plain
    psycopg loop over a server-side cursor (no ORM row building)."""
    import hashlib

    from django.db import transaction

    sql = "SELECT seq, prev_hash, hash, body FROM workbench_trailevent ORDER BY seq"
    sha256, fromhex = hashlib.sha256, bytes.fromhex
    started = time.perf_counter()
    expected, prev, bad = 1, "0" * 64, None
    with transaction.atomic():
        connection.ensure_connection()
        with connection.connection.cursor(name="bench_verify") as cursor:
            cursor.itersize = 20_000
            cursor.execute(sql)
            for seq, prev_hash, digest, body in cursor:
                if (
                    seq != expected
                    or prev_hash != prev
                    or sha256(fromhex(prev) + body.encode()).hexdigest() != digest
                ):
                    bad = seq
                    break
                prev, expected = digest, expected + 1
    seconds = time.perf_counter() - started
    out = {}

    def record(name: str, label: str) -> None:
        checked = expected - 1
        rate = checked / seconds if seconds else 0
        print(
            f"what-if, {label}: {checked:,} events, first bad {bad}, "
            f"{seconds:.2f} s, {rate:,.0f} events/s"
        )
        out[name] = {
            "checked": checked,
            "first_bad": bad,
            "seconds": round(seconds, 3),
            "events_per_s": round(rate, 1),
        }

    record("python_raw_hash_link_seq", "the same checks as a raw psycopg loop")

    # The same loop fed by COPY ... TO STDOUT (rows parsed by psycopg's C code)
    # instead of FETCH from a server-side cursor.
    started = time.perf_counter()
    expected, prev, bad = 1, "0" * 64, None
    with (
        connection.connection.cursor() as cursor,
        cursor.copy(f"COPY ({sql}) TO STDOUT") as copy,
    ):
        copy.set_types(["int8", "text", "text", "text"])
        for seq, prev_hash, digest, body in copy.rows():
            if (
                seq != expected
                or prev_hash != prev
                or sha256(fromhex(prev) + body.encode()).hexdigest() != digest
            ):
                bad = seq
                break
            prev, expected = digest, expected + 1
    connection.connection.commit()
    seconds = time.perf_counter() - started
    record("python_copy_hash_link_seq", "the same checks fed by COPY TO STDOUT")
    return out


def profile_verify(trail_verify, vendor: str) -> None:
    import cProfile
    import io
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    trail_verify()
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    (results_dir() / f"cprofile-trail-verify-{vendor}.txt").write_text(out.getvalue())
    print(out.getvalue())


if __name__ == "__main__":
    raise SystemExit(main())
