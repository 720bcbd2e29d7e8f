"""Trail export and offline verification: events/s and peak memory.

Not a test: it prints figures and writes bench/results/export.json.

    .venv/bin/python -m bench.export              # 1,000,000 events
    .venv/bin/python -m bench.export --quick      # 200,000 events
    .venv/bin/python -m bench.export --runs 3     # the steps 3 times on one database

On a fresh PostgreSQL database (``workbench_bench_export_<random>``, dropped
at the end) it appends ``--events`` intake-shaped events (``bench.trail``'s
``entries_for``) through ``trail_append_many``; checkpoints, with their Merkle
roots, are signed inline every 1,000 events (Celery is eager: no REDIS_URL).
Then, each in its own process, timed with its peak RSS (``getrusage`` of the
child):

1. **the physical limit**: ``COPY (SELECT body, prev_hash, hash FROM trail ORDER
   BY seq) TO STDOUT`` read to the end by psycopg, no processing;
2. ``manage.py trail_export`` of the whole trail to a bundle (a ``range``
   bundle: every event, checkpoints, manifest; streamed, deflated);
3. ``manage.py trail_export --case <one case>``: a ``filtered`` bundle, whose
   cost is the Merkle tree over every event hash up to the newest checkpoint;
4. ``python -m workbench.verify`` of the whole-trail bundle.

Targets (issue #5): export >= 100,000 events/s with RSS under 200 MB; verify
>= 200,000 events/s.
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import (
    ROOT,
    arguments,
    machine,
    parse,
    print_machine,
    scratch_database,
    shown,
    table,
    write_results,
)
from bench.trail import entries_for

EXPORT_TARGET, VERIFY_TARGET, RSS_TARGET_MB = 100_000, 200_000, 200
CHUNK = 5_000


def child(argv: list[str], env: dict, out: Path) -> tuple[float, float, str]:
    """Run ``argv``; its wall time, its own peak RSS in MB (``wait4``), and its output."""
    started = time.perf_counter()
    with open(out, "w+") as log:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{output[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, output


def main(argv: list[str] | None = None) -> int:
    parser = arguments(
        __doc__,
        {"events": (1_000_000, 200_000, "events to append (default 1,000,000)")},
        quick_help="200,000 events",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="measure the steps this many times on the one database (default 1)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and files")
    args = parse(parser, argv)
    events = args.events

    info = machine()
    print_machine(info)
    with scratch_database("export", keep=args.keep):
        tmp = Path(tempfile.mkdtemp(prefix="workbench-bench-export-files-"))
        try:
            figures = run(events, dict(os.environ), tmp, info, args.runs)
        finally:
            if args.keep:
                print(f"kept {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    path = write_results("export.json", figures)
    print(f"\nfigures written to {shown(path)}")
    return 0


def run(events: int, env: dict, tmp: Path, info: dict, runs: int = 1) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from workbench.models import TrailEvent
    from workbench.services.trail import trail_append_many

    call_command("migrate", verbosity=0)
    rng = random.Random(20261122)
    print(f"appending {events:,} events ...", flush=True)
    started = time.perf_counter()
    appended = 0
    while appended < events:
        count = min(CHUNK, events - appended)
        with transaction.atomic():
            trail_append_many(entries_for(appended, count, rng))
        appended += count
    print(f"  appended in {time.perf_counter() - started:.0f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE workbench_trailevent")
    one_case = TrailEvent.objects.filter(seq=events // 2).values_list("case", flat=True).get()
    connection.close()

    figures = {"machine": info, "events": events}
    measured = []
    for run_number in range(1, runs + 1):
        if runs > 1:
            print(f"run {run_number} of {runs}:", flush=True)
        steps, rows = measure(events, env, tmp, one_case)
        measured.append(steps)
        print()
        print(table(rows, ("step", "events/s", "peak RSS MB", "target", "size")))
    # The steps' figures are the last run's; with --runs, every run is in "runs".
    figures.update(measured[-1])
    if runs > 1:
        figures["runs"] = measured
    return figures


def measure(events: int, env: dict, tmp: Path, one_case: str) -> tuple[dict, list]:
    """Each step once, in its own process: COPY, the exports, the verifier."""
    python = sys.executable
    rows, figures = [], {}

    copy = (
        "import os, psycopg\n"
        "n = 0\n"
        "with psycopg.connect(os.environ['DATABASE_URL']) as conn:\n"
        "    with conn.cursor().copy('COPY (SELECT body, prev_hash, hash FROM "
        "workbench_trailevent ORDER BY seq) TO STDOUT') as copy:\n"
        "        for block in copy: n += len(block)\n"
        "print(n)\n"
    )
    seconds, rss, _ = child([python, "-c", copy], env, tmp / "copy.log")
    figures["copy_limit"] = {"seconds": seconds, "events_per_s": events / seconds, "rss_mb": rss}
    rows.append(("COPY out (the limit)", f"{events / seconds:,.0f}", f"{rss:,.0f}", "", ""))

    bundle = tmp / "trail.zip"
    argv = [python, "manage.py", "trail_export", "-o", str(bundle)]
    seconds, rss, _ = child(argv, env, tmp / "export.log")
    rate = events / seconds
    figures["export_range"] = {
        "seconds": seconds,
        "events_per_s": rate,
        "rss_mb": rss,
        "bytes": bundle.stat().st_size,
        "ratio_to_copy": rate / figures["copy_limit"]["events_per_s"],
    }
    rows.append(
        (
            "trail_export (whole trail)",
            f"{rate:,.0f}",
            f"{rss:,.0f}",
            f">= {EXPORT_TARGET:,}/s, < {RSS_TARGET_MB} MB",
            f"{bundle.stat().st_size / 1e6:,.0f} MB",
        )
    )

    filtered = tmp / "case.zip"
    argv = [python, "manage.py", "trail_export", "--case", one_case, "-o", str(filtered)]
    seconds, rss, _ = child(argv, env, tmp / "export-case.log")
    figures["export_case"] = {"seconds": seconds, "rss_mb": rss, "tree_leaves": events}
    rows.append(
        (f"trail_export --case (tree of {events:,})", f"{seconds:.1f} s", f"{rss:,.0f}", "", "")
    )

    if (ROOT / "workbench" / "verify.py").exists():
        verify = [python, "-m", "workbench.verify"]
        seconds, rss, _ = child([*verify, str(bundle)], env, tmp / "verify.log")
        rate = events / seconds
        figures["verify"] = {"seconds": seconds, "events_per_s": rate, "rss_mb": rss}
        target = f">= {VERIFY_TARGET:,}/s"
        rows.append(("python -m workbench.verify", f"{rate:,.0f}", f"{rss:,.0f}", target, ""))
        seconds, rss, _ = child([*verify, str(filtered)], env, tmp / "verify-case.log")
        figures["verify_case"] = {"seconds": seconds, "rss_mb": rss}
        rows.append(("  the case bundle", f"{seconds:.2f} s", f"{rss:,.0f}", "", ""))
    return figures, rows


if __name__ == "__main__":
    raise SystemExit(main())
