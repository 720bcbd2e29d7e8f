"""What every benchmark shares: the argument skeleton, the machine, scratch
databases, percentiles, the results table and figures written as JSON. The
processes a bench starts (gunicorn, Celery) are in ``bench.processes``. Not a
test module; nothing here is imported by the app.

Run a bench from the repository's root as a module: ``python -m bench.claim``.
"""

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"  # the default of --output
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# The policy the benches publish for claims: the demo's, read by the server as a file.
DEMO_CLAIMS_POLICY = ROOT / "reviews" / "demo" / "claims-ai.yaml"
# Scratch databases are named <prefix>_<bench>_<random>; --database changes the prefix.
DATABASE_PREFIX = os.environ.get("BENCH_DATABASE_PREFIX", "workbench_bench")


# --- Arguments -----------------------------------------------------------------------------


def arguments(doc: str, sizes: dict[str, tuple[int, int, str]], quick_help: str):
    """The parser every bench starts from: its sizes (``--name``: default,
    size under ``--quick``, help), ``--quick``, ``--database`` (the scratch
    database's name prefix) and ``--output`` (the directory the figures go
    to). The bench adds its own options, then calls ``parse``."""
    script = Path(sys.argv[0])
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.{script.stem}" if script.parent == ROOT / "bench" else None,
        description=doc.split("\n\n")[0],
    )
    for name, (default, _, help_text) in sizes.items():
        parser.add_argument(f"--{name}", type=int, default=default, help=help_text)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument(
        "--database",
        default=DATABASE_PREFIX,
        metavar="PREFIX",
        help=f"scratch database names start with PREFIX_ (default {DATABASE_PREFIX}; "
        "or BENCH_DATABASE_PREFIX)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        metavar="DIR",
        help="where the figures (JSON) and logs go (default bench/results)",
    )
    parser.set_defaults(quick_sizes={name: quick for name, (_, quick, _) in sizes.items()})
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse; ``--quick`` sets the quick sizes; ``--database`` and ``--output``
    take effect for ``scratch_database``, ``write_results`` and the like."""
    global DATABASE_PREFIX, RESULTS
    args = parser.parse_args(argv)
    if args.quick:
        for name, size in args.quick_sizes.items():
            setattr(args, name.replace("-", "_"), size)
    DATABASE_PREFIX = args.database
    RESULTS = args.output.resolve()
    return args


def results_dir() -> Path:
    """The directory figures, logs and profiles go to (``--output``)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# --- Percentiles ---------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """The ``p``-th percentile of sorted values, interpolated between the two
    nearest ranks (NaN when there are none)."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


# --- The machine ---------------------------------------------------------------------------


def machine() -> dict:
    info = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    info["code"] = code_version()
    info["calibration"] = calibrate()
    info["loadavg_at_start"] = os.getloadavg()
    return info


def code_version() -> str:
    """The commit measured, with ``-dirty`` when the working tree has changes."""

    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def calibrate() -> dict:
    """How fast this machine runs plain Python right now, to compare runs across
    machines: a 5M-iteration loop (~0.15-0.25 s on a current desktop core) and
    SHA-256 of 200-byte messages (the trail's inner loop)."""
    import hashlib

    cpu = CpuSampler()
    started = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    loop = time.perf_counter() - started
    started = time.perf_counter()
    message = b"x" * 200
    for _ in range(200_000):
        hashlib.sha256(message).hexdigest()
    sha = time.perf_counter() - started
    return {
        "python_loop_5m_s": round(loop, 3),
        "sha256_200b_per_s": round(200_000 / sha),
        "cpu_during": cpu.stop(),
    }


class CpuSampler:
    """System-wide CPU shares between start and stop, from /proc/stat: busy
    (user+system), idle (incl. iowait) and steal (taken by the hypervisor)."""

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read() -> list[int] | None:
        try:
            with open("/proc/stat") as f:
                return [int(v) for v in f.readline().split()[1:]]
        except OSError:
            return None

    def stop(self) -> dict:
        end = self._read()
        if not end or not self.start:
            return {}
        d = [b - a for a, b in zip(self.start, end, strict=False)]
        user, nice, system, idle, iowait, irq, softirq, steal = (d + [0] * 8)[:8]
        total = sum(d[:8]) or 1
        return {
            "busy_pct": round(100 * (user + nice + system + irq + softirq) / total, 1),
            "idle_pct": round(100 * (idle + iowait) / total, 1),
            "iowait_pct": round(100 * iowait / total, 1),
            "steal_pct": round(100 * steal / total, 1),
        }


def print_machine(info: dict) -> None:
    print(
        f"machine: {info['cpus']} cores ({info.get('cpu_model', '?')}), "
        f"{info.get('memory_gib', '?')} GiB, {info['platform']}, Python {info['python']}; "
        f"code {info.get('code')}"
    )
    cal = info.get("calibration", {})
    print(
        f"calibration: 5M-iteration Python loop {cal.get('python_loop_5m_s')} s, "
        f"SHA-256(200 B) {cal.get('sha256_200b_per_s', 0):,}/s, "
        f"steal {cal.get('cpu_during', {}).get('steal_pct')}%; "
        f"load average at start {', '.join(f'{x:.2f}' for x in info['loadavg_at_start'])}"
    )


def pg_admin():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True)


def pg_database_create(name: str = "") -> str:
    """A fresh, empty database named ``<prefix>_<name>_<random>`` (``--database``
    is the prefix); returns its name."""
    name = "_".join(p for p in (DATABASE_PREFIX, name, secrets.token_hex(4)) if p)
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def pg_database_drop(name: str) -> None:
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def pg_version() -> str:
    with pg_admin() as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def write_results(filename: str, figures: dict) -> Path:
    path = results_dir() / filename
    path.write_text(json.dumps(figures, indent=2, sort_keys=False) + "\n")
    return path


def table(rows: list[tuple], headers: tuple) -> str:
    cells = [tuple(str(c) for c in row) for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fail(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr)


def load_report(info: dict) -> None:
    """The load average at the start and now (the end of the run)."""
    print(
        "load average at start "
        + ", ".join(f"{x:.2f}" for x in info["loadavg_at_start"])
        + ", at end "
        + ", ".join(f"{x:.2f}" for x in info["loadavg_at_end"])
    )


# --- Scratch databases ---------------------------------------------------------------------


@contextmanager
def scratch_database(name: str, *, keep: bool = False, sqlite: bool = False):
    """A fresh PostgreSQL database ``<prefix>_<name>_<random>`` and a temporary
    directory, with the
    environment Django needs to use them (no Redis: Celery eager; DEBUG off;
    a throw-away trail signing key). Yields the database name; drops both at
    the end unless ``keep``. With ``sqlite``, a SQLite file in the temporary
    directory instead (yields its path)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"workbench-bench-{name or 'ingest'}-"))
    if sqlite:
        database = str(tmp / "bench.sqlite3")
        url = f"sqlite:///{database}"
    else:
        database = pg_database_create(name)
        url = pg_url(database)
    os.environ.pop("REDIS_URL", None)
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="workbench.settings.local",
        DJANGO_DEBUG="false",
        LOG_LEVEL="WARNING",
        TRAIL_SIGNING_KEY_FILE=str(tmp / "trail-signing-key.pem"),
    )
    try:
        yield database
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 (Django may not be set up yet)
            pass
        if keep:
            print(f"kept database {database}")
        elif not sqlite:
            pg_database_drop(database)
        if not (keep and sqlite):
            shutil.rmtree(tmp, ignore_errors=True)


def demo_system_create(spec=None):
    """The demo's AI system ``spec`` (default: the claims system) with the
    demo's policy published, as ``reviews.demo.demo_load`` makes it, without
    the demo's users, reason codes and cases. Returns the system."""
    from reviews.demo import CLAIMS
    from reviews.management.commands.load_policy import policy_read
    from reviews.services import policy_publish
    from workbench.services import Actor, ai_system_create

    spec = spec or CLAIMS
    actor = Actor.workbench("bench")
    system = ai_system_create(
        slug=spec.slug, name=spec.name, kind=spec.kind, intended_purpose=spec.purpose, actor=actor
    )
    policy_publish(document=policy_read(spec.policy_file), actor=actor)
    return system


# --- Results -------------------------------------------------------------------------------


def results_merge(filename: str, key: str, figures: dict) -> Path:
    """Put ``figures`` under ``key`` in ``<output>/<filename>``, keeping
    the other keys' figures (runs of other sizes or modes)."""
    merged = {}
    existing = results_dir() / filename
    if existing.exists():
        try:
            merged = json.loads(existing.read_text())
        except ValueError:
            merged = {}
    merged[key] = figures
    path = write_results(filename, merged)
    print(f"\nfigures written to {shown(path)}")
    return path
