"""The sequencer: pending events take their place in the chain (DESIGN §6).

Writers record events in the pending table in their own transaction
(``trail_append_many``). ``trail_integrate`` locks the chain head, moves
every committed pending event into the chain in pending order (``seq``,
``prev_hash``, ``hash``, computed in the database by
``workbench_trail_integrate``, migration 0010), moves the head and deletes
the pending rows: one transaction, one WAL flush, for up to ``MAX_ROWS``
changes. Integrations run one at a time (the head row lock), so there is no
gap and no fork; a change that started after another committed has a higher
pending ``id``, and is visible to an integration only if that one is, so it
comes after it in the chain.

Two callers:

- readers that show ``seq``/``hash`` call ``trail_integrate()`` first: it
  waits for the head, so every event committed before the call has its
  ``seq`` when it returns (a client reads its own writes);
- the sequencer process (``manage.py trail_sequencer``, ``trail_sequencer_run``)
  calls ``trail_integrate(wait=False)``: if an integration is under way it
  leaves at once, that one or the next wake-up takes the events.

On SQLite (the embedded default) events are chained in the change's own
transaction, and there is never anything to integrate.
"""

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import connection, transaction
from prometheus_client import Histogram

from workbench.services.trail.append import (
    NOTIFY_CHANNEL,
    checkpoint_after_commit_if_crossed,
    read_state,
)

logger = logging.getLogger(__name__)

MAX_ROWS = 2000  # pending rows (changes) per integration

MERGE_DELAY = Histogram(
    "workbench_trail_merge_delay_seconds",
    "Time from a change's trail events being recorded (about its commit) to their seq",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
# The last delays measured in this process, for the bench (bench/trail_merge.py).
recent_delays: deque[float] = deque(maxlen=200_000)


@dataclass(frozen=True)
class Integration:
    """What integrations did: the head before and after, and the changes moved."""

    before: int = 0
    after: int = 0
    changes: int = 0

    @property
    def events(self) -> int:
        return self.after - self.before


def trail_integrate(
    *, wait: bool = True, max_rows: int = MAX_ROWS, checkpoints: bool = True
) -> Integration | None:
    """Move every committed pending event into the chain, in pending order.

    ``wait=True`` (readers): waits for the head if another integration holds
    it, then integrates what is pending; on return every event committed
    before the call has its ``seq`` and hashes. ``wait=False`` (the
    sequencer): None when the head is taken. Inside a caller's transaction
    the head stays locked until that ends, and the caller's own uncommitted
    events are integrated with the rest (they commit or roll back together).
    In a request, the first wait counts for the request's later reads,
    unless it records events meanwhile: a reader sees every event committed
    before its request began, and its own.
    ``checkpoints``: enqueue the checkpoint task after the commit when
    the head crosses a multiple of ``TRAIL_CHECKPOINT_EVERY`` (the sequencer
    process signs it itself instead).
    """
    if connection.vendor != "postgresql":
        return Integration()
    if wait and read_state.synced:
        return Integration()  # this request has waited, and written nothing since
    if wait and not _anything_pending():
        # Nothing deleted, so nothing a rollback could bring back: the rest
        # of the request reads with no wait (unless it records events).
        read_state.synced = read_state.in_request
        return Integration()
    done = None
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT * FROM workbench_trail_integrate(%s, %s)", [max_rows, wait])
            row = cursor.fetchone()
            if row is None:
                return done  # the head is taken (wait=False)
            before, after, waited, sizes = row
            if checkpoints:
                checkpoint_after_commit_if_crossed(before, after)
            if waited:
                transaction.on_commit(lambda waited=waited: _delays_observe(waited))
        done = Integration(
            done.before if done else before, after, (done.changes if done else 0) + len(waited)
        )
        if len(waited) < max_rows:
            return done


def _request_started(**kwargs) -> None:
    read_state.in_request, read_state.synced = True, False


def _request_finished(**kwargs) -> None:
    read_state.in_request, read_state.synced = False, False


request_started.connect(_request_started, dispatch_uid="trail_read_state_started")
request_finished.connect(_request_finished, dispatch_uid="trail_read_state_finished")


def _anything_pending() -> bool:
    """A row visible now is a change committed (or this transaction's own);
    none visible means every event committed before now is in the chain
    (an integration deletes its rows in the transaction that chains them)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM workbench_trailpending)")
        return cursor.fetchone()[0]


def _delays_observe(waited: list[float]) -> None:
    for delay in waited:
        MERGE_DELAY.observe(delay)
        recent_delays.append(delay)


def trail_merge_delay() -> float:
    """Seconds the oldest pending change has waited for its ``seq`` (0 when
    none waits): what ``/readyz`` checks against ``TRAIL_MERGE_DELAY_MAX_SECONDS``."""
    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(extract(epoch FROM clock_timestamp() - min(recorded_at)), 0) "
            "FROM workbench_trailpending"
        )
        return float(cursor.fetchone()[0])


def _listen_connection() -> psycopg.Connection:
    """A connection of its own, outside Django's, that only listens."""
    db = settings.DATABASES["default"]
    params = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
    }
    listen = psycopg.connect(
        autocommit=True, **{key: value for key, value in params.items() if value}
    )
    listen.execute(f"LISTEN {NOTIFY_CHANNEL}")
    return listen


def trail_sequencer_run(*, stop: threading.Event | None = None, sweep: float | None = None) -> None:
    """The sequencer process's loop: integrate, sign the checkpoints that are
    due, sleep until a writer's commit NOTIFYs (or ``sweep`` seconds pass).
    Runs until ``stop`` is set. A lost database connection is retried."""
    from workbench.services.trail.checkpoints import trail_checkpoint

    stop = stop or threading.Event()
    sweep = settings.TRAIL_SEQUENCER_SWEEP_SECONDS if sweep is None else sweep
    busy_sweep = min(sweep, settings.TRAIL_SEQUENCER_BUSY_SECONDS)
    every = settings.TRAIL_CHECKPOINT_EVERY
    listen = None
    last_checkpoint = 0.0
    while not stop.is_set():
        try:
            if listen is None:
                listen = _listen_connection()
            done = trail_integrate(wait=False, checkpoints=False)
            now = time.monotonic()
            crossed = done is not None and done.before // every != done.after // every
            if crossed or now - last_checkpoint >= 60:
                trail_checkpoint()
                last_checkpoint = now
            if done is not None and done.changes >= MAX_ROWS:
                continue  # more waiting: no sleep
            # Busy (it found events, or another integration had the head):
            # back soon, as writers notify only now and then; idle: the sweep.
            busy = done is None or done.changes > 0
            woken = False
            for _ in listen.notifies(timeout=busy_sweep if busy else sweep, stop_after=1):
                woken = True
            if woken:  # the other commits notified meanwhile are taken by this pass
                for _ in listen.notifies(timeout=0.001):
                    pass
        except (psycopg.Error, Exception) as error:  # noqa: BLE001 (the loop must go on)
            logger.warning("trail sequencer: %s; retrying", error)
            if listen is not None:
                listen.close()
                listen = None
            connection.close()
            stop.wait(1.0)
    if listen is not None:
        listen.close()
