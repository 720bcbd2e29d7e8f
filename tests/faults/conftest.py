"""The fault tests' machinery: a Redis of their own that they may kill, the
web app (gunicorn) and Celery workers as real processes on it, and a webhook
receiver that holds a delivery until told to answer.

The machine's shared Redis is never touched: these tests kill and restart
their broker, and a worker restoring unacknowledged messages restores those
of every queue in the database (kombu keeps one index of them), which on a
shared Redis would hand other runs' tasks out twice.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

import kombu.pools
import psycopg
import pytest
import redis
import requests
from django.conf import settings
from django.db import transaction

from reviews.services.assignment import task_claim_next
from reviews.services.decisions import DecisionInput, decision_record
from tests.conftest import Receiver, _ReceiverHandler
from tests.reviews.test_concurrency import ROOT, database_url
from workbench.celery import app
from workbench.models import TrailHead
from workbench.services import Actor, TrailEntry, trail_append_many, trail_integrate

# A killed worker's unacknowledged task goes to the next worker this many
# seconds after it was handed out (production: an hour).
VISIBILITY_TIMEOUT = 2


def decide_next(reviewer) -> int:
    """Claim the next claims-review task and agree with the AI, through the
    services (the webhook is enqueued after the commit); return the case id."""
    task = task_claim_next(user=reviewer, queue_slug="claims-review")
    decision_record(
        task_id=task.pk,
        user=reviewer,
        fencing_token=task.fencing_token,
        decision=DecisionInput("agree"),
        idempotency_key=uuid.uuid4().hex,
    )
    return task.case_id


def fill_trail_to(seq: int) -> None:
    """Append filler events until the chain's head is at ``seq``."""
    head = TrailHead.objects.get(id=1).seq
    with transaction.atomic():
        trail_append_many([TrailEntry("test.filler", Actor.workbench("tests"))] * (seq - head))
    trail_integrate()  # PostgreSQL: as the sequencer would, at once


def other_connection() -> psycopg.Connection:
    """A connection to the test database of its own, outside Django."""
    db = settings.DATABASES["default"]
    return psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, *, timeout: float, what: str, interval: float = 0.1):
    """Poll ``condition`` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(interval)
    return result


class RedisServer:
    """A ``redis-server`` that keeps nothing on disk: killed, it loses every
    message it held, as a crashed Redis without persistence does."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        with open(self.directory / "redis.log", "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.answers, timeout=10, what="the private Redis")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


@contextmanager
def broker_of_this_process(url: str):
    """Point this process's Celery app at ``url``: what the services enqueue
    after their commits goes there. The pools hold connections to the old
    broker; they are closed and made again."""

    def reset():
        kombu.pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    before = app.conf.broker_url
    reset()
    app.conf.broker_url = url
    try:
        yield
    finally:
        reset()
        app.conf.broker_url = before


@pytest.fixture
def broker(transactional_db, tmp_path):
    """A private Redis, and this process's Celery app publishing to it."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        with broker_of_this_process(server.url):
            yield server
    finally:
        server.kill()


def process_env(redis_url: str) -> dict[str, str]:
    """The environment of an app process: the test database, the given
    Redis as broker and cache, the run's queue and signing key."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "workbench.settings.test",
        "WORKBENCH_TEST_RUN": settings.CELERY_TASK_DEFAULT_QUEUE.removeprefix("workbench-test-"),
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "TRAIL_SIGNING_KEY": settings.TRAIL_SIGNING_KEY,
    }
    env.pop("CELERY_BROKER_URL", None)
    return env


class AppProcess:
    """One process of the app in a process group of its own, its output in a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], directory: Path):
        self.name = name
        self.log = directory / f"{name}-{uuid.uuid4().hex[:6]}.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: the process and its children, with no
        chance to finish, acknowledge or roll back anything."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM (a worker's warm shutdown: it finishes its tasks), then SIGKILL.
        To the leader only: Celery's pool processes take SIGTERM as the
        default (they die at once, mid-task); the leader stops them in turn."""
        if self.alive():
            os.kill(self.process.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        self.kill()


class Worker(AppProcess):
    def __init__(self, env: dict[str, str], directory: Path):
        argv = [sys.executable, "-m", "celery", "-A", "workbench", "worker"]
        argv += ["--loglevel", "INFO", "--concurrency", "1"]
        argv += ["--hostname", f"faults-{uuid.uuid4().hex[:8]}@%h"]
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        super().__init__("worker", argv, env, directory)

    def wait_ready(self) -> None:
        wait_for(self._ready, timeout=60, what="the Celery worker to start")

    def _ready(self) -> bool:
        if not self.alive():
            raise AssertionError(f"the worker exited:\n{self.output()}")
        return " ready." in self.output()

    def pool_processes(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]


class WebServer(AppProcess):
    def __init__(self, env: dict[str, str], directory: Path, workers: int = 2, threads: int = 4):
        self.url = f"http://127.0.0.1:{free_port()}"
        argv = [sys.executable, "-m", "gunicorn", "workbench.wsgi"]
        argv += ["--bind", self.url.removeprefix("http://"), "--workers", str(workers)]
        argv += ["--threads", str(threads), "--graceful-timeout", "10"]
        super().__init__("web", argv, env, directory)

    def wait_ready(self) -> None:
        wait_for(self._ready, timeout=60, what="gunicorn to answer")

    def _ready(self) -> bool:
        if not self.alive():
            raise AssertionError(f"gunicorn exited:\n{self.output()}")
        try:
            with requests.get(f"{self.url}/healthz", timeout=2) as response:
                return response.status_code == 200
        except requests.RequestException:
            return False


@pytest.fixture
def processes(transactional_db, tmp_path):
    """Start app processes with ``processes.worker(redis_url)`` and
    ``processes.web(redis_url)``; all are stopped at teardown, before the
    database is emptied."""

    class Processes:
        def __init__(self):
            self.started: list[AppProcess] = []

        def worker(self, redis_url: str) -> Worker:
            return self._started(Worker(process_env(redis_url), tmp_path))

        def web(self, redis_url: str, **options) -> WebServer:
            return self._started(WebServer(process_env(redis_url), tmp_path, **options))

        def _started(self, process):
            self.started.append(process)
            process.wait_ready()
            return process

    started = Processes()
    yield started
    for process in started.started:
        process.stop()


# --- A receiver that holds a delivery -------------------------------------------------------


@dataclass
class HoldingReceiver(Receiver):
    """Holds every request until ``released`` is set; ``arrived`` tells that
    one came in."""

    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)


class _HoldingHandler(_ReceiverHandler):
    def do_POST(self):
        receiver = self.server.receiver
        receiver.arrived.set()
        receiver.released.wait(60)
        # A sender killed while it waited hears no answer: writing it fails.
        with suppress(OSError):
            super().do_POST()


@pytest.fixture
def holding_receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HoldingHandler)
    server.receiver = HoldingReceiver(url=f"http://127.0.0.1:{server.server_port}/hooks/workbench")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server.receiver
    server.receiver.released.set()
    server.shutdown()
    server.server_close()
    thread.join()
