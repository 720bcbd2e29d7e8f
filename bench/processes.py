"""The processes a bench starts beside itself: gunicorn, a Celery worker and
beat, and ``manage.py`` commands. Each server runs in a session of its own;
``Service.start`` waits until it is ready, ``Service.stop`` sends SIGTERM to
its leader (gunicorn's arbiter, Celery's main process: they stop their own
children), then SIGKILL to the whole group if it has not ended in time.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import ROOT

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379

# The tools of the Python that runs the bench (the project's venv).
PYTHON = sys.executable
BIN = Path(sys.executable).parent
GUNICORN = str(BIN / "gunicorn")
CELERY = str(BIN / "celery")
MANAGE = str(ROOT / "manage.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict, *args: str) -> str:
    """``manage.py <args>`` in a child process; its output, or RuntimeError."""
    done = subprocess.run(
        [PYTHON, MANAGE, *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


class Service:
    """One or more long-running commands with one log, started together,
    ready when ``ready()`` says so, stopped together."""

    def __init__(
        self,
        name: str,
        commands: list[list[str]],
        env: dict,
        log: Path,
        ready: Callable[[], bool],
        stop_timeout: float = 15,
    ):
        self.name, self.commands, self.env, self.log = name, commands, env, log
        self.ready, self.stop_timeout = ready, stop_timeout
        self.processes: list[subprocess.Popen] = []

    def start(self, timeout: float = 60, interval: float = 0.2) -> None:
        self.logfile = open(self.log, "w")  # noqa: SIM115 (closed by stop)
        for command in self.commands:
            self.processes.append(
                subprocess.Popen(
                    command,
                    env=self.env,
                    cwd=ROOT,
                    stdout=self.logfile,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own group: the leader and its children
                )
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            if self.ready():
                return
            time.sleep(interval)
        raise RuntimeError(f"{self.name} did not answer in {timeout:.0f} s")

    def stop(self) -> None:
        running = [p for p in self.processes if p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(self.stop_timeout)
        for process in self.processes:  # whatever is left of each group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            if process.poll() is None:
                process.wait(5)
        if self.processes:
            self.logfile.close()
        self.processes = []


def gunicorn(env: dict, port: int, workers: int, threads: int, log: Path) -> Service:
    """gunicorn serving ``workbench.wsgi`` on 127.0.0.1:``port``; ready when
    the API's OpenAPI document answers."""
    import requests

    url = f"http://127.0.0.1:{port}"
    command = [
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
        command += ["-k", "gthread", "--threads", str(threads)]

    def ready() -> bool:
        try:
            return requests.get(f"{url}/api/v1/openapi.json", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    service = Service("gunicorn", [command], env, log, ready, stop_timeout=15)
    service.url = url
    return service


def celery(env: dict, concurrency: int, schedule: Path, log: Path) -> Service:
    """A Celery worker and beat as in the Procfile: checkpoint signing, the
    outbox and the rollups run beside the web workers, as in production. Ready
    when the worker answers a ping (the broker is the bench's Redis)."""
    commands = [
        [CELERY, "-A", "workbench", "worker", "--loglevel", "WARNING",
         "--concurrency", str(concurrency)],
        [CELERY, "-A", "workbench", "beat", "--loglevel", "WARNING",
         "--schedule", str(schedule)],
    ]  # fmt: skip

    def ready() -> bool:
        ping = subprocess.run(
            [CELERY, "-A", "workbench", "inspect", "ping", "--timeout", "1"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        return ping.returncode == 0

    return Service("celery", commands, env, log, ready, stop_timeout=30)


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
                PYTHON,
                MANAGE,
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


def server_errors(log: Path, lines: int = 40) -> str:
    """The tail of gunicorn's log without its INFO chatter: tracebacks of 500s."""
    text = [line for line in log.read_text().splitlines() if "[INFO]" not in line and line.strip()]
    return "\n".join(text[-lines:])


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
