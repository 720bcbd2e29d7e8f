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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

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


# --- What each benchmark measures ------------------------------------------------------------


@dataclass
class Figure:
    label: str
    unit: str
    value: Callable[[dict], float | None]
    higher_is_better: bool = True
    target: float | None = None
    target_text: str = ""
    baseline: Callable[[dict], float | None] | None = None
    strict: bool = False  # the target is "<" / ">", not "<=" / ">="

    def met(self, value: float) -> bool:
        if self.higher_is_better:
            return value > self.target if self.strict else value >= self.target
        return value < self.target if self.strict else value <= self.target


@dataclass
class Bench:
    name: str
    module: str  # run as python -m <module>
    results: str  # file in bench/results/
    key: Callable[[bool], str | None]  # quick -> key in a merged results file
    figures: list[Figure]
    baseline_text: str
    size: Callable[[dict], str]
    target_size: str
    args: list[str] = field(default_factory=list)
    quick_args: list[str] = field(default_factory=lambda: ["--quick"])
    builds_once: bool = False  # takes --runs: one database, measured N times
    checks: Callable[[dict], bool] | None = None
    checks_text: str = ""


def dig(*path):
    """A getter for a nested value; None where any step is missing."""

    def get(entry: dict):
        node = entry
        for step in path:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    return get


PAGES = (
    "queue page /",
    "case page, held (decision form)",
    "case page, open",
    "case page, decided",
)
DASHBOARD_RANGES = ("last 30 days (default)", "last 365 days")

BENCHES = [
    Bench(
        name="ingest",
        module="bench.ingest",
        results="ingest.json",
        key=lambda quick: None,
        args=["--celery"],
        figures=[
            Figure(
                "batch of 1,000, 1 client",
                "cases/s",
                dig("batch", 0, "cases_per_s"),
                target=3000,
                target_text=">= 3,000 cases/s",
                baseline=dig("copy", "full_footprint", "cases_per_s"),
            ),
            Figure(
                "batch of 1,000, 2 clients",
                "cases/s",
                dig("batch", 1, "cases_per_s"),
                target=3000,
                target_text=">= 3,000 cases/s",
                baseline=dig("copy", "full_footprint", "cases_per_s"),
            ),
            Figure(
                "single case, 8 clients: p95",
                "ms",
                dig("single", "p95_ms"),
                higher_is_better=False,
                target=25,
                target_text="<= 25 ms",
            ),
            Figure("single case, 8 clients: rate", "req/s", dig("single", "req_per_s")),
            Figure(
                "COPY of the case rows alone (for comparison)",
                "rows/s",
                dig("copy", "cases_only", "rows_per_s"),
            ),
        ],
        baseline_text="PostgreSQL COPY of everything a case writes (case, 2 trail events, "
        "review task, subject), cases/s, of the rows the 1-client phase stored",
        size=lambda e: (
            f"{dig('batch', 0, 'cases')(e) or 0:,} cases per batch phase, "
            f"{dig('single', 'requests')(e) or 0:,} single requests; "
            f"{dig('server', 'command')(e)}"
        ),
        target_size="any size (the full run: 50,000 cases per phase, 4,000 single requests)",
        checks=lambda e: bool(dig("verify", "count_ok")(e) and dig("verify", "trail_verify_ok")(e)),
        checks_text="every case stored, trail_verify ok",
    ),
    Bench(
        name="trail",
        module="bench.trail",
        results="trail.json",
        key=lambda quick: "postgresql",
        figures=[
            Figure(
                "trail_verify",
                "events/s",
                dig("verify_events_per_s_best"),
                target=200_000,
                target_text=">= 200,000 events/s",
                baseline=dig("what_if_verify_in_sql", "python_copy_hash_link_seq", "events_per_s"),
            ),
            Figure(
                "append (trail_append_many, chunks of 5,000)",
                "events/s",
                dig("append_events_per_s"),
            ),
        ],
        baseline_text="the same per-event checks (seq, link, SHA-256) in a bare psycopg loop "
        "fed by COPY, no ORM, no checkpoints",
        size=lambda e: f"{e.get('events_appended', 0):,} events",
        target_size="300,000 events",
        checks=lambda e: bool(e.get("verify_ok")),
        checks_text="trail_verify ok over the whole chain",
    ),
    Bench(
        name="claim",
        module="bench.claim",
        results="claim.json",
        key=lambda quick: f"threads-{10_000 if quick else 100_000}",
        figures=[
            Figure(
                "task_claim_next, 16 threads",
                "claims/s",
                dig("service", "claims_per_s"),
                target=1000,
                target_text=">= 1,000 claims/s",
                baseline=dig("skip_locked_limit", "claims_per_s"),
            ),
            Figure(
                "one claim, p95",
                "ms",
                dig("service", "p95_ms"),
                higher_is_better=False,
                target=10,
                target_text="<= 10 ms",
                baseline=dig("skip_locked_limit", "p95_ms"),
            ),
            Figure(
                "double claims",
                "",
                dig("checks", "double_claims"),
                higher_is_better=False,
                target=0,
                target_text="0",
            ),
            Figure("one reviewer alone", "claims/s", dig("one_reviewer", "claims_per_s")),
        ],
        baseline_text="a bare `UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED)` loop "
        "on a plain table of the same rows, 16 threads",
        size=lambda e: f"{e.get('tasks', 0):,} open tasks, {e.get('reviewers')} {e.get('mode')}",
        target_size="100,000 tasks",
        checks=lambda e: bool(dig("checks", "ok")(e)),
        checks_text="no double claim, every task claimed once by its worker, trail_verify ok",
    ),
    Bench(
        name="pages",
        module="bench.pages",
        results="pages.json",
        key=lambda quick: str(100_000 if quick else 1_000_000),
        builds_once=True,
        figures=[
            Figure(
                f"{page}: p95",
                "ms",
                dig("pages", page, "p95_ms"),
                higher_is_better=False,
                target=50,
                target_text="<= 50 ms",
                baseline=dig("pages", page, "queries", "sql_ms_per_request_mean"),
            )
            for page in PAGES
        ],
        baseline_text="the SQL time of a request (Django's timing of its queries, mean)",
        size=lambda e: f"{dig('setup', 'cases')(e) or 0:,} cases",
        target_size="1,000,000 cases",
        checks=lambda e: bool(e.get("ok")),
        checks_text="every request answered 200",
    ),
    Bench(
        name="export",
        module="bench.export",
        results="export.json",
        key=lambda quick: None,
        builds_once=True,
        figures=[
            Figure(
                "trail_export, whole trail",
                "events/s",
                dig("export_range", "events_per_s"),
                target=100_000,
                target_text=">= 100,000 events/s",
                baseline=dig("copy_limit", "events_per_s"),
            ),
            Figure(
                "trail_export, peak RSS",
                "MB",
                dig("export_range", "rss_mb"),
                higher_is_better=False,
                target=200,
                target_text="< 200 MB",
                strict=True,
            ),
            Figure(
                "python -m workbench.verify, whole trail",
                "events/s",
                dig("verify", "events_per_s"),
                target=200_000,
                target_text=">= 200,000 events/s",
            ),
            Figure(
                "trail_export --case (Merkle tree)",
                "s",
                dig("export_case", "seconds"),
                higher_is_better=False,
            ),
            Figure("verify of the case bundle", "s", dig("verify_case", "seconds"), False),
        ],
        baseline_text="COPY of the trail's bodies and hashes out of PostgreSQL, read to the end",
        size=lambda e: f"{e.get('events', 0):,} events",
        target_size="1,000,000 events",
    ),
    Bench(
        name="dashboard",
        module="bench.dashboard",
        results="dashboard.json",
        key=lambda quick: str(100_000 if quick else 1_000_000),
        builds_once=True,
        figures=[
            *(
                Figure(
                    f"/compliance/, {label}: p95",
                    "ms",
                    dig("pages", label, "p95_ms"),
                    higher_is_better=False,
                    target=300,
                    target_text="<= 300 ms",
                )
                for label in DASHBOARD_RANGES
            ),
            Figure("rollup update (one beat run)", "events/s", dig("rollup", "events_per_second")),
        ],
        baseline_text="none measured",
        size=lambda e: f"{dig('made', 'cases')(e) or 0:,} cases",
        target_size="1,000,000 cases",
        checks=lambda e: bool(dig("rollup", "lazy_caught_up")(e)),
        checks_text="a dashboard request catches up with the trail itself",
    ),
]


def runs_of(entry: dict) -> list[dict]:
    """A results entry as one entry per run: where a bench measured several
    times on one database, each run's timings in place of the last run's."""
    if isinstance(entry.get("runs"), list):  # export.py
        return [{**entry, **run} for run in entry["runs"]]
    pages = entry.get("pages")
    if isinstance(pages, dict) and any("runs" in page for page in pages.values()):
        count = max(len(page.get("runs", [])) for page in pages.values())
        return [
            {
                **entry,
                "pages": {
                    name: {**page, **page["runs"][i]} if i < len(page.get("runs", [])) else page
                    for name, page in pages.items()
                },
            }
            for i in range(count)
        ]
    return [entry]


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
