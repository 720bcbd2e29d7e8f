"""Recording trail events in the change's transaction (DESIGN §6).

``trail_append`` / ``trail_append_many`` are the only code that inserts trail
events."""

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from workbench.db import bulk_insert
from workbench.errors import WorkbenchError
from workbench.models import TrailEvent, TrailHead

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who caused an event: ``system``, ``user``, ``customer`` or ``workbench``."""

    type: str
    id: str

    @classmethod
    def system(cls, slug: str) -> "Actor":
        return cls("system", slug)

    @classmethod
    def user(cls, user) -> "Actor":
        return cls("user", user.get_username())

    @classmethod
    def customer(cls, subject_reference: str) -> "Actor":
        return cls("customer", subject_reference)

    @classmethod
    def workbench(cls, name: str = "workbench") -> "Actor":
        return cls("workbench", name)

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id}


@dataclass(frozen=True)
class TrailEntry:
    action: str
    actor: Actor
    case: str | None = None
    system: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def format_at(moment: datetime) -> str:
    """The one textual form of an event time: UTC, microseconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


def _lock_head() -> TrailHead:
    # SELECT ... FOR UPDATE on the single head row: the lock every appender
    # queues on. (On SQLite, the one user of this, the IMMEDIATE transaction
    # already holds the write lock; PostgreSQL locks it in workbench_trail_chain.)
    head = TrailHead.objects.select_for_update().filter(id=1).first()
    if head is None:
        TrailHead.objects.bulk_create([TrailHead(id=1)], ignore_conflicts=True)
        head = TrailHead.objects.select_for_update().get(id=1)
    return head


def _require_transaction() -> None:
    if not connection.in_atomic_block:
        raise WorkbenchError(
            "trail events must be written inside the transaction of the change",
            "trail_outside_transaction",
        )


@dataclass(frozen=True)
class PreparedEntry:
    """An event canonicalized but for its ``seq``: the body is
    ``head + str(seq) + tail``. RFC 8785 sorts an object's members by name,
    and ``seq`` comes second to last (before ``system``), so the expensive part,
    canonicalizing ``data``, is done before the chain head is locked."""

    head: bytes
    tail: bytes

    def body(self, seq: int) -> bytes:
        return self.head + str(seq).encode() + self.tail


SAFE_INTEGER = 2**53 - 1  # RFC 8785 numbers are IEEE doubles


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only strings, safe integers, booleans, None,
    lists and objects with ASCII keys: the values for which RFC 8785 and the
    standard library's sorted, compact JSON write the same bytes (the same
    escapes, in lower-case hex; keys in the same order)."""
    if value is None or isinstance(value, str | bool):
        return True
    if isinstance(value, int):
        return -SAFE_INTEGER <= value <= SAFE_INTEGER
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(
            isinstance(key, str) and key.isascii() and _plain(item) for key, item in value.items()
        )
    return False


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of ``value``. The ``rfc8785`` package is pure
    Python and took a third of a millisecond per event, as much as the rest
    of a claim's Python; for plain values (``_plain``) the standard
    library's C encoder gives the same bytes, and the package does the rest
    (floats, big integers, unusual keys). A lone surrogate cannot be encoded
    and goes to the package too, which refuses it."""
    if _plain(value):
        try:
            return json.dumps(
                value, ensure_ascii=False, separators=(",", ":"), sort_keys=True
            ).encode()
        except UnicodeEncodeError:
            pass
    return rfc8785.dumps(value)


def trail_prepare(entries: list[TrailEntry]) -> list[PreparedEntry]:
    """Canonicalize events ahead of appending them; no database, no lock."""
    dumps = canonical_json
    at = dumps(format_at(timezone.now()))
    return [
        PreparedEntry(
            head=b'{"action":%s,"actor":%s,"at":%s,"case":%s,"data":%s,"seq":'
            % (
                dumps(entry.action),
                dumps(entry.actor.as_dict()),
                at,
                dumps(entry.case),
                dumps(entry.data),
            ),
            tail=b',"system":%s}' % dumps(entry.system),
        )
        for entry in entries
    ]


def trail_append_many(
    entries: list[TrailEntry] | list[PreparedEntry], *, at_commit: bool = False
) -> list[TrailEvent] | None:
    """Record events in order, in the caller's transaction (DESIGN §6).

    On PostgreSQL the events go into the pending table and nothing else: no
    head lock, no chain work. They take their ``seq`` and hashes when the
    sequencer integrates them after the commit (``trail_integrate``), so the
    call returns None; a reader that shows the chain calls
    ``trail_integrate()`` first. On SQLite (the embedded default, with no
    sequencer) they are chained at once, in this transaction, and returned
    saved. ``at_commit`` is accepted for callers written for the previous
    chaining and changes nothing.
    """
    _require_transaction()
    if not entries:
        return []
    if isinstance(entries[0], TrailEntry):
        entries = trail_prepare(entries)
    if connection.vendor != "postgresql":
        return _chain_here(entries)
    _pending_record(entries)
    read_state.synced = False  # this request's later reads wait for these
    return None


def _chain_here(entries: list[PreparedEntry]) -> list[TrailEvent]:
    """Chain in Python, under the head lock, in the change's transaction
    (SQLite: the IMMEDIATE transaction already holds the write lock)."""
    head = _lock_head()
    seq, prev = head.seq, head.hash
    events = []
    for entry in entries:
        seq += 1
        body = entry.body(seq)
        digest = event_hash(prev, body)
        events.append(TrailEvent(seq=seq, body=body.decode(), prev_hash=prev, hash=digest))
        prev = digest
    bulk_insert(events)
    TrailHead.objects.filter(id=1).update(seq=seq, hash=prev)
    checkpoint_after_commit_if_crossed(head.seq, seq)
    return events


def _as_json(entries: list[PreparedEntry]) -> str:
    """The events as the pending table holds them: a JSON array of [head, tail]."""
    return json.dumps(
        [[entry.head.decode(), entry.tail.decode()] for entry in entries], ensure_ascii=False
    )


NOTIFY_CHANNEL = "workbench_trail"


class _ReadState(threading.local):
    """Per thread: whether this request has waited for the chain already
    (``trail_integrate``), and has written no event since."""

    in_request = False
    synced = False


read_state = _ReadState()


_last_notify = [0.0]  # this process's last NOTIFY (time.monotonic)


def _notify_due() -> bool:
    """Whether this writer's transaction NOTIFYs the sequencer: at most once
    per ``TRAIL_NOTIFY_INTERVAL_SECONDS`` per process (0: every one; below
    0: never). A NOTIFY serializes the commits of the transactions that send
    one (PostgreSQL takes a database-wide lock from its pre-commit to its
    end, WAL flush included): measured with every claim notifying, 11 of 16
    claimers waited on it, 280 claims/s instead of about 1,000. Once in a
    while is enough: it wakes an idle sequencer, and a busy one comes back
    by itself (``trail_sequencer_run``)."""
    interval = settings.TRAIL_NOTIFY_INTERVAL_SECONDS
    if interval < 0:
        return False
    now = time.monotonic()
    if now - _last_notify[0] < interval:
        return False
    _last_notify[0] = now
    return True


def _pending_record(entries: list[PreparedEntry]) -> None:
    """One row, one round trip. ``recorded_at`` is the clock now (not the
    transaction's start): the merge delay counts from about the commit.
    The NOTIFY, now and then (``_notify_due``), is delivered when the
    transaction commits and wakes the sequencer; its sweep finds the rest."""
    if _notify_due():
        sql = (
            "WITH recorded AS (INSERT INTO workbench_trailpending (events, recorded_at) "
            "VALUES (%s, clock_timestamp()) RETURNING id) "
            f"SELECT pg_notify('{NOTIFY_CHANNEL}', '') FROM recorded"
        )
    else:
        sql = (
            "INSERT INTO workbench_trailpending (events, recorded_at) "
            "VALUES (%s, clock_timestamp())"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_as_json(entries)])


def checkpoint_after_commit_if_crossed(before: int, after: int) -> None:
    every = settings.TRAIL_CHECKPOINT_EVERY
    if before // every != after // every:
        # Robust: the events have committed; a broker that is down must not
        # make their writer's request fail. Beat signs the checkpoint later.
        transaction.on_commit(_enqueue_checkpoint, robust=True)


def _enqueue_checkpoint() -> None:
    from workbench.tasks import trail_checkpoint  # the task module imports this one

    trail_checkpoint.delay()


def trail_append(
    *,
    action: str,
    actor: Actor,
    case: str | None = None,
    system: str | None = None,
    data: dict[str, Any] | None = None,
    at_commit: bool = False,
) -> TrailEvent | None:
    """Append one event recording a state change, in that change's transaction.
    Returns it saved, or None when the sequencer will chain it (``trail_append_many``)."""
    events = trail_append_many(
        [TrailEntry(action=action, actor=actor, case=case, system=system, data=data or {})],
        at_commit=at_commit,
    )
    return events[0] if events else None
