"""Shared helpers for the benchmarks: the machine, scratch PostgreSQL databases,
figures written as JSON. Not a test module; nothing here is imported by the app."""

import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


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
    import subprocess

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


def pg_database_create(prefix: str) -> str:
    """A fresh, empty database named ``<prefix>_<random>``; returns its name."""
    name = f"{prefix}_{secrets.token_hex(4)}"
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
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / filename
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


@contextmanager
def scratch_database(prefix: str, *, keep: bool = False, sqlite: bool = False):
    """A fresh PostgreSQL database and a temporary directory, with the
    environment Django needs to use them (no Redis: Celery eager; DEBUG off;
    a throw-away trail signing key). Yields the database name; drops both at
    the end unless ``keep``. With ``sqlite``, a SQLite file in the temporary
    directory instead (yields its path)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    if sqlite:
        database = str(tmp / "bench.sqlite3")
        url = f"sqlite:///{database}"
    else:
        database = pg_database_create(prefix.replace("-", "_"))
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


def results_merge(filename: str, key: str, figures: dict) -> Path:
    """Put ``figures`` under ``key`` in ``bench/results/<filename>``, keeping
    the other keys' figures (runs of other sizes or modes)."""
    merged = {}
    existing = RESULTS / filename
    if existing.exists():
        try:
            merged = json.loads(existing.read_text())
        except ValueError:
            merged = {}
    merged[key] = figures
    path = write_results(filename, merged)
    print(f"\nfigures written to {path.relative_to(ROOT)}")
    return path


class Sequencer:
    """The trail's sequencer as in the Procfile (``manage.py trail_sequencer``),
    one run per phase: ``stop`` returns the merge delays (commit to seq) it
    measured in that phase."""

    def __init__(self, env: dict, out: Path, log: Path):
        self.env, self.out, self.log = env, out, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.out.unlink(missing_ok=True)
        self.logfile = open(self.log, "a")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "trail_sequencer",
                "--delays-out",
                str(self.out),
            ],
            env=self.env,
            cwd=ROOT,
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        time.sleep(2)  # Django set up, listening

    def stop(self) -> dict:
        if self.process is None or self.process.poll() is not None:
            return {}
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.logfile.close()
        self.process = None
        try:
            delays = sorted(json.loads(self.out.read_text()))
        except (OSError, ValueError):
            return {}

        def ms(p: float) -> float | None:
            if not delays:
                return None
            k = (len(delays) - 1) * p / 100
            lo, hi = int(k), min(int(k) + 1, len(delays) - 1)
            return round((delays[lo] + (delays[hi] - delays[lo]) * (k - lo)) * 1000, 1)

        return {
            "changes": len(delays),
            "p50_ms": ms(50),
            "p99_ms": ms(99),
            "max_ms": round(delays[-1] * 1000, 1) if delays else None,
        }
