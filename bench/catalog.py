"""What ``bench.run_all`` runs and reads: each benchmark's module, the
results file it writes, the figures taken from it with their targets and
limits, and how a results entry splits into runs."""

from collections.abc import Callable
from dataclasses import dataclass, field

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
                baseline=dig("copy", "full_footprint", "cases_per_s"),
            ),
            Figure(
                "batch of 1,000, 2 clients",
                "cases/s",
                dig("batch", 1, "cases_per_s"),
                baseline=dig("copy", "full_footprint", "cases_per_s"),
            ),
            Figure(
                "batch: 2 clients / 1 client",
                "x",
                dig("ratios", "batch_2_over_1"),
                target=1.6,
                target_text=">= 1.6x",
            ),
            Figure(
                "batch, 1 client / Label Studio import, 1 client",
                "x",
                dig("ratios", "batch_1_over_peer"),
                target=1.0,
                target_text=">= 1.0x",
            ),
            Figure(
                "batch, 2 clients / Label Studio import, 2 clients",
                "x",
                dig("ratios", "batch_2_over_peer"),
                target=1.0,
                target_text=">= 1.0x",
            ),
            Figure(
                "Label Studio import, 1 client", "items/s", dig("peer", "batch", 0, "items_per_s")
            ),
            Figure(
                "Label Studio import, 2 clients", "items/s", dig("peer", "batch", 1, "items_per_s")
            ),
            Figure(
                "single case, 8 clients: p95",
                "ms",
                dig("single", "p95_ms"),
                higher_is_better=False,
                target=40,
                target_text="<= 40 ms",
            ),
            Figure("single case, 8 clients: rate", "req/s", dig("single", "req_per_s")),
            Figure(
                "single case, 1 client: p95 / Label Studio's single import p95",
                "x",
                dig("ratios", "single_alone_p95_over_peer"),
                higher_is_better=False,
                target=1.0,
                target_text="< 1.0x",
                strict=True,
            ),
            Figure("single case, 1 client: p95", "ms", dig("single_alone", "p95_ms"), False),
            Figure(
                "Label Studio import, 1 item per request: p95",
                "ms",
                dig("peer", "single", "p95_ms"),
                False,
            ),
            Figure(
                "merge delay (commit to seq), p99, batch 2 clients",
                "ms",
                dig("batch", 1, "merge_delay", "p99_ms"),
                higher_is_better=False,
                target=1000,
                target_text="<= 1,000 ms",
            ),
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
                baseline=dig("skip_locked_limit", "claims_per_s"),
            ),
            Figure(
                "task_claim_next / bare SKIP LOCKED loop",
                "x",
                dig("ratio_service_over_skip_locked"),
                target=0.5,
                target_text=">= 0.5x",
            ),
            Figure(
                "one claim, p95",
                "ms",
                dig("service", "p95_ms"),
                higher_is_better=False,
                target=15,
                target_text="<= 15 ms",
                baseline=dig("skip_locked_limit", "p95_ms"),
            ),
            Figure(
                "merge delay (commit to seq), p99",
                "ms",
                dig("service", "merge_delay", "p99_ms"),
                higher_is_better=False,
                target=1000,
                target_text="<= 1,000 ms",
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
