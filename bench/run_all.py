"""Every benchmark, several runs each, compared with its targets in docs/performance.md.

Not a test: it runs the benchmarks (``python -m bench.<name>``) one after the other, reads the
figures they write to ``bench/results/*.json`` and writes a report.

    .venv/bin/python -m bench.run_all                     # 3 runs of each, full sizes (hours)
    .venv/bin/python -m bench.run_all --quick --runs 1    # smoke test: small sizes, minutes
    .venv/bin/python -m bench.run_all --only claim,pages --runs 5

The benchmarks (bench/README.md has what each does and why):

- ``bench.ingest --celery``: intake over HTTP, gunicorn with a Celery worker and
  beat as in production, PostgreSQL and Redis; the limit is PostgreSQL COPY of
  everything a case writes;
- ``bench.trail``: trail append and ``trail_verify``; the limit is the same
  per-event checks in a bare psycopg loop fed by COPY;
- ``bench.claim``: claim next with 16 reviewers; the limit is a bare
  ``SKIP LOCKED`` loop on a plain table of the same rows;
- ``bench.pages``: the reviewer's pages at a million cases; the database's part
  is the SQL time per request;
- ``bench.export``: trail export (the limit: COPY of the trail out of
  PostgreSQL) and the offline verifier;
- ``bench.dashboard``: the compliance dashboard at a million cases.

Benchmarks that build a large database once (pages, export, dashboard) get
``--runs N`` and measure N times on it; the others (whose measurement
consumes what they build, or which start their own servers) run N times. Each
figure's median, min and max over the runs is reported with the limit the
same run measured and the ratio of the two (for a rate, figure / limit; for
a time, limit / figure: how close to the limit, 100% being at it).

The in-process benchmarks run Celery eagerly (no broker), as they always
have: their figures include the checkpoint signing inline. Needs PostgreSQL
(``BENCH_PG_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``)
and Redis at 127.0.0.1:6379 (ingest). Everything on loopback; every
benchmark drops its scratch database and stops its servers at its end.
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.catalog import BENCHES, Bench, Figure, runs_of
from bench.harness import (
    DATABASE_PREFIX,
    PG_ADMIN_URL,
    RESULTS,
    ROOT,
    code_version,
    machine,
    pg_version,
    print_machine,
)

OUTPUT = ROOT / "docs" / "performance.md"
MISSES_BEGIN, MISSES_END = "<!-- misses:begin -->", "<!-- misses:end -->"
MISSES_PLACEHOLDER = (
    "_For the maintainer: a profile of each miss (where the time goes: cProfile or "
    "pyinstrument of the service, `EXPLAIN (ANALYZE, BUFFERS)` of its queries, the "
    "`pg_stat_activity` samples the bench records), what was tried and what is next._"
)
RUN_TIMEOUT = {False: 4 * 3600, True: 1800}  # seconds per bench process: full, quick


# --- Running -------------------------------------------------------------------------------


def preflight() -> list[str]:
    problems = []
    try:
        pg_version()
    except Exception as exc:  # noqa: BLE001 (reported, whatever it is)
        problems.append(f"PostgreSQL at {PG_ADMIN_URL}: {exc}")
    try:
        import redis

        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"Redis at 127.0.0.1:6379: {exc}")
    return problems


def stream(argv: list[str], log: Path, prefix: str, timeout: float) -> int:
    """Run ``argv``, echoing its output with ``prefix`` and keeping it in ``log``.
    Past ``timeout``, or on Ctrl-C, it gets SIGINT (its ``finally`` blocks drop
    its database and stop its servers), then SIGKILL a minute later."""
    with open(log, "w") as out:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: gunicorn, celery and all
        )

        def interrupt():
            try:
                os.killpg(process.pid, signal.SIGINT)
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        def too_long():
            print(f"{prefix}still running after {timeout:.0f} s: interrupting it", flush=True)
            interrupt()

        watchdog = threading.Timer(timeout, too_long)
        watchdog.daemon = True
        watchdog.start()
        try:
            for line in process.stdout:
                out.write(line)
                print(f"{prefix}{line}", end="", flush=True)
            return process.wait()
        except KeyboardInterrupt:
            interrupt()
            raise
        finally:
            watchdog.cancel()


def results_entry(bench: Bench, quick: bool, since: float) -> dict | None:
    """The bench's figures if its results file was written after ``since``."""
    path = RESULTS / bench.results
    if not path.exists() or path.stat().st_mtime < since:
        return None
    data = json.loads(path.read_text())
    key = bench.key(quick)
    return data.get(key) if key is not None else data


def run_bench(
    bench: Bench, *, runs: int, quick: bool, logs: Path, database: str = DATABASE_PREFIX
) -> dict:
    argv = [sys.executable, "-m", bench.module, *bench.args]
    if quick:
        argv += bench.quick_args
    processes = 1 if bench.builds_once else runs
    if bench.builds_once:
        argv += ["--runs", str(runs)]
    shown = ["python", *argv[1:]]
    if database != DATABASE_PREFIX:
        argv += ["--database", database]
    record = {"argv": shown, "processes": [], "runs": []}
    for n in range(1, processes + 1):
        label = f"{bench.name} {n}/{processes}" if processes > 1 else bench.name
        print(f"\n=== {label}: {' '.join(shown)}", flush=True)
        since = time.time()
        started = time.monotonic()
        log = logs / f"run_all-{bench.name}-{n}.log"
        code = stream(argv, log, f"[{label}] ", RUN_TIMEOUT[quick])
        seconds = time.monotonic() - started
        entry = results_entry(bench, quick, since)
        record["processes"].append(
            {
                "exit_code": code,
                "seconds": round(seconds, 1),
                "log": str(log.relative_to(ROOT)),
                "results_written": entry is not None,
            }
        )
        if entry is None:
            print(f"[{label}] no figures written (exit code {code})", flush=True)
            continue
        for each in runs_of(entry):
            record["runs"].append(
                {
                    "size": bench.size(each),
                    "figures": {
                        f.label: {
                            "value": f.value(each),
                            "baseline": f.baseline(each) if f.baseline else None,
                        }
                        for f in bench.figures
                    },
                    "checks_ok": bench.checks(each) if bench.checks else None,
                    "machine": {
                        k: each.get("machine", {}).get(k)
                        for k in ("code", "calibration", "loadavg_at_start", "loadavg_at_end")
                    },
                }
            )
    return record


# --- Summarising ---------------------------------------------------------------------------


def ratio(figure: Figure, value: float | None, baseline: float | None) -> float | None:
    """How close to the limit: rate / limit, or limit / time."""
    if value is None or baseline is None or value <= 0 or baseline <= 0:
        return None
    return value / baseline if figure.higher_is_better else baseline / value


def summarise(bench: Bench, record: dict) -> list[dict]:
    rows = []
    for figure in bench.figures:
        values, baselines, ratios = [], [], []
        for run in record["runs"]:
            got = run["figures"][figure.label]
            if got["value"] is None:
                continue
            values.append(got["value"])
            if got["baseline"] is not None:
                baselines.append(got["baseline"])
            r = ratio(figure, got["value"], got["baseline"])
            if r is not None:
                ratios.append(r)
        row = {"figure": figure, "runs": len(values)}
        if values:
            row.update(
                median=statistics.median(values),
                min=min(values),
                max=max(values),
                baseline=statistics.median(baselines) if baselines else None,
                ratio=statistics.median(ratios) if ratios else None,
            )
            if figure.target is not None:
                row["met"] = figure.met(row["median"])
        rows.append(row)
    return rows


def number(value: float | None) -> str:
    if value is None:
        return "—"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if value == int(value):
        return f"{value:.0f}"
    return f"{value:.2f}"


def with_unit(value: float | None, unit: str) -> str:
    text = number(value)
    return f"{text} {unit}" if unit and value is not None else text


def markdown(summary: dict, info: dict, args, started: str, seconds: float) -> str:
    lines = ["# Performance", ""]
    if args.quick:
        lines += [
            "> **Smoke run at small sizes (`--quick`)**: below the sizes the targets are",
            "> set for, on a machine shared with other work. Not figures of record: the",
            "> maintainer replaces them with `python -m bench.run_all` on a quiet machine.",
            "",
        ]
    cal = info.get("calibration", {})
    lines += [
        f"Written by `python -m bench.run_all` ({' '.join(sys.argv[1:]) or 'no options'}) on "
        f"{started}, in {seconds / 60:.0f} min. Each figure: the median, min and max of "
        f"{args.runs} run(s); the **limit** is what the same run measured as the physical "
        "limit of that work, and the **ratio** how close the figure came to it (rate / limit, "
        "or limit / time; the median of the runs' ratios). Met or missed is judged on the "
        "median. How each bench works and what it found before: `bench/README.md`.",
        "",
        "Regenerate with `.venv/bin/python -m bench.run_all` (3 runs of each at full size, "
        "on a quiet machine; `--runs`, `--only`); the notes under Misses are kept.",
        "",
        "## The machine",
        "",
        f"- {info.get('cpus')} cores ({info.get('cpu_model', '?')}), "
        f"{info.get('memory_gib', '?')} GiB; {info.get('platform')}; Python {info.get('python')}; "
        f"PostgreSQL {info.get('postgresql', '?')}",
        f"- commit `{info.get('code')}`",
        f"- calibration at the start: 5M-iteration Python loop {cal.get('python_loop_5m_s')} s, "
        f"SHA-256 of 200 B {cal.get('sha256_200b_per_s', 0):,}/s, steal "
        f"{cal.get('cpu_during', {}).get('steal_pct')}%; load average "
        + ", ".join(f"{x:.2f}" for x in info.get("loadavg_at_start", ())),
    ]
    commits = sorted(
        {run["machine"]["code"] for r in summary.values() for run in r["runs"]} - {None}
    )
    if commits and commits != [info.get("code")]:
        lines.append(
            "- the benches measured "
            + ", ".join(f"`{c}`" for c in commits)
            + " (the work tree changed during the run)"
        )
    loops = [
        run["machine"]["calibration"]["python_loop_5m_s"]
        for record in summary.values()
        for run in record["runs"]
        if (run["machine"].get("calibration") or {}).get("python_loop_5m_s") is not None
    ]
    if loops:
        lines.append(
            f"- each bench calibrates at its start: the Python loop took {min(loops)}–"
            f"{max(loops)} s across the runs (compare runs by it: a slower loop, a busier machine)"
        )
    loads = [
        max(run["machine"].get("loadavg_at_start") or [0])
        for record in summary.values()
        for run in record["runs"]
    ]
    if loads:
        lines.append(f"- load average at the benches' starts: up to {max(loads):.2f}")
    misses = []
    for bench in BENCHES:
        record = summary.get(bench.name)
        if record is None:
            continue
        rows = summarise(bench, record)
        sizes = sorted({run["size"] for run in record["runs"]})
        lines += ["", f"## {bench.name}", ""]
        lines.append(f"`{' '.join(record['argv'])}`; {len(record['runs'])} run(s)")
        lines.append("")
        lines.append(f"- measured: {'; '.join(sizes) or 'nothing'}")
        lines.append(f"- the targets are set for: {bench.target_size}")
        lines.append(f"- limit: {bench.baseline_text}")
        failed = [p for p in record["processes"] if not p["results_written"]]
        if failed:
            lines.append(
                f"- **{len(failed)} of {len(record['processes'])} process(es) wrote no figures** "
                f"(exit codes {', '.join(str(p['exit_code']) for p in failed)}; logs: "
                + ", ".join(f"`{p['log']}`" for p in failed)
                + ")"
            )
        if bench.checks:
            ok = sum(1 for run in record["runs"] if run["checks_ok"])
            lines.append(
                f"- checks ({bench.checks_text}): ok in {ok} of {len(record['runs'])} run(s)"
            )
        lines += [
            "",
            "| figure | median | min | max | limit | ratio | target | |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            figure = row["figure"]
            verdict = ""
            if "met" in row:
                verdict = "met" if row["met"] else "**missed**"
                if not row["met"]:
                    misses.append((bench, row))
            lines.append(
                "| "
                + " | ".join(
                    [
                        figure.label,
                        with_unit(row.get("median"), figure.unit),
                        number(row.get("min")),
                        number(row.get("max")),
                        with_unit(row.get("baseline"), figure.unit),
                        f"{row['ratio']:.1%}" if row.get("ratio") is not None else "—",
                        figure.target_text or "—",
                        verdict,
                    ]
                )
                + " |"
            )
    lines += ["", "## Misses", ""]
    if misses:
        for bench, row in misses:
            figure = row["figure"]
            lines.append(
                f"- **{bench.name}, {figure.label}**: median "
                f"{with_unit(row['median'], figure.unit)} (target {figure.target_text})"
                + (f", {row['ratio']:.1%} of the limit" if row.get("ratio") is not None else "")
            )
    else:
        lines.append("None: every figure with a target met it.")
    lines += ["", MISSES_BEGIN, kept_misses_notes(args.output), MISSES_END, ""]
    return "\n".join(lines)


def kept_misses_notes(path: Path) -> str:
    """What the maintainer wrote between the markers last time, or the placeholder."""
    if path.exists():
        found = re.search(
            re.escape(MISSES_BEGIN) + r"\n(.*?)\n?" + re.escape(MISSES_END),
            path.read_text(),
            re.DOTALL,
        )
        if found and found.group(1).strip():
            return found.group(1).strip()
    return MISSES_PLACEHOLDER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each benchmark (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="each benchmark's small sizes: a smoke test"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated benchmarks to run ("
        + ", ".join(b.name for b in BENCHES)
        + "; default all)",
    )
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help="the report (default docs/performance.md)"
    )
    parser.add_argument(
        "--database",
        default=DATABASE_PREFIX,
        metavar="PREFIX",
        help="passed to each benchmark: its scratch database names start with PREFIX_",
    )
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHES if not args.only or b.name in args.only.split(",")]
    if args.only and len(chosen) != len(args.only.split(",")):
        parser.error(f"--only: choose among {', '.join(b.name for b in BENCHES)}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    problems = preflight()
    if problems:
        print("\n".join(f"run_all: {p}" for p in problems), file=sys.stderr)
        return 2

    info = machine()
    info["postgresql"] = pg_version()
    print_machine(info)
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    started = time.monotonic()
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {}
    for bench in chosen:
        summary[bench.name] = run_bench(
            bench, runs=args.runs, quick=args.quick, logs=RESULTS, database=args.database
        )
    seconds = time.monotonic() - started
    info["loadavg_at_end"] = os.getloadavg()
    info["code_at_end"] = code_version()

    report = markdown(summary, info, args, started_at, seconds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    (RESULTS / "run_all.json").write_text(
        json.dumps(
            {"machine": info, "quick": args.quick, "runs": args.runs, "benches": summary},
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(f"\n{report}")
    print(f"written to {args.output} and bench/results/run_all.json in {seconds / 60:.1f} min")
    produced = all(record["runs"] for record in summary.values())
    return 0 if produced else 1


if __name__ == "__main__":
    raise SystemExit(main())
