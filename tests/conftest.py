import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings

from tests import factories

SERVICES_RUN = os.environ.get("WORKBENCH_TEST_SERVICES") == "1"


def pytest_configure(config):
    # The services run must really be on PostgreSQL and Redis: a fallback to
    # the embedded default would pass for the wrong reasons.
    if SERVICES_RUN:
        engine = settings.DATABASES["default"]["ENGINE"]
        cache = settings.CACHES["default"]["BACKEND"]
        if "postgresql" not in engine or "redis" not in cache.lower():
            raise pytest.UsageError(f"services run without services: {engine}, {cache}")


def pytest_collection_modifyitems(config, items):
    postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    broker = not settings.CELERY_TASK_ALWAYS_EAGER
    for item in items:
        if config.getoption("-m"):
            continue
        if "postgres" in item.keywords and not postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL)"))
        if "services" in item.keywords and not broker:
            item.add_marker(pytest.mark.skip(reason="needs the Celery broker (REDIS_URL)"))


# The demo's people: a reviewer, an appeal reviewer, a supervisor.
@pytest.fixture
def alice(db):
    return factories.UserFactory(username="rev.alice", role="reviewer")


@pytest.fixture
def carol(db):
    return factories.UserFactory(username="appeal.carol", role="appeal_reviewer")


@pytest.fixture
def sam(db):
    return factories.UserFactory(username="sup.sam", role="supervisor")


@pytest.fixture
def system(db):
    return factories.system_with_policy()


@pytest.fixture
def chat_system(db):
    return factories.system_with_policy(factories.SUPPORT_POLICY)


@pytest.fixture
def api_client(system):

    return factories.api_client(system)


@pytest.fixture(autouse=True)
def _sqlite_trail_triggers_step_aside_for_flush(request):
    """Django empties the database after each transactional test with DELETE,
    which SQLite's append-only trail triggers refuse (and which the queue
    count triggers would count). They are dropped for that flush, and put
    back at the start of every later test that uses the database (inside a
    plain test's transaction, so rolled back with it: still missing for the
    next flush). (PostgreSQL empties tables with TRUNCATE, which these
    triggers do not see.)"""
    marker = request.node.get_closest_marker("django_db")
    transactional = (
        "transactional_db" in request.fixturenames
        or "live_server" in request.fixturenames
        or (marker is not None and marker.kwargs.get("transaction"))
    )
    uses_db = transactional or marker is not None or "db" in request.fixturenames
    if not uses_db or settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        yield
        return
    import importlib

    # Set up before, and torn down (for a transactional test: flushed) after this.
    request.getfixturevalue("transactional_db" if transactional else "db")

    from django.db import connection

    modules = [
        importlib.import_module("workbench.migrations.0002_roles_and_trail_triggers"),
        importlib.import_module("reviews.migrations.0005_queue_counts"),
    ]
    with connection.cursor() as cursor:
        for triggers in modules:
            for statement in triggers.SQLITE_TRIGGERS:
                cursor.execute(
                    statement.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1)
                )
    yield
    if not transactional:
        return
    with connection.cursor() as cursor:
        for triggers in modules:
            for statement in triggers.SQLITE_DROP:
                cursor.execute(statement)


# --- A webhook receiver, shared by the outbox and the browser tests ------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"


@dataclass
class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that records what it is sent."""

    url: str
    status: int = 200
    received: list[Received] = field(default_factory=list)


class _ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        receiver.received.append(
            Received(self.path, dict(self.headers.items()), body, self.command)
        )
        no_body = receiver.status in (204, 304)  # these answers must carry no body
        answer = b"" if no_body else b"thanks" if receiver.status < 300 else b"receiver says no"
        self.send_response(receiver.status)
        if not no_body:
            self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def receiver():
    """A webhook endpoint on a free port; answers 200 unless told otherwise
    (``receiver.status``). Closed at teardown."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ReceiverHandler)
    server.receiver = Receiver(url=f"http://127.0.0.1:{server.server_port}/hooks/workbench")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server.receiver
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def _trail_integrated_when_a_test_reads_it(monkeypatch):
    """PostgreSQL: trail events get their ``seq`` from the sequencer, after
    their change commits (DESIGN §6), and no sequencer process runs beside
    the tests. A test that reads ``TrailEvent`` or ``TrailHead`` through the
    ORM first integrates what is pending (``trail_integrate``, the readers'
    read-your-writes wait), as if it were a reader that shows the chain.

    Only queries made by test code do: the application's own readers must
    wait for themselves (a missing wait fails their tests)."""
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        yield
        return
    import sys

    from workbench.models import TrailEvent, TrailHead
    from workbench.services import trail_integrate

    def from_test_code() -> bool:
        frame = sys._getframe(2)
        while frame is not None:
            name = frame.f_globals.get("__name__", "")
            if not name.startswith("django.") and name != __name__:
                return name.startswith("tests.") or name == "tests"
            frame = frame.f_back
        return False

    from django.db.models import QuerySet

    class Integrating(QuerySet):
        """Integrates before every query that test code makes."""

        def _integrate(self):
            if from_test_code():
                trail_integrate()

        def _fetch_all(self):
            if self._result_cache is None:
                self._integrate()
            super()._fetch_all()

        def iterator(self, *args, **kwargs):
            self._integrate()
            return super().iterator(*args, **kwargs)

    for method in ("count", "exists", "aggregate", "update", "delete", "contains"):

        def wrapped(self, *args, _name=method, **kwargs):
            self._integrate()
            return getattr(QuerySet, _name)(self, *args, **kwargs)

        setattr(Integrating, method, wrapped)

    for model in (TrailEvent, TrailHead):
        manager = model._default_manager
        monkeypatch.setattr(
            manager,
            "get_queryset",
            lambda model=model, manager=manager: Integrating(model, using=manager._db),
        )
    yield
