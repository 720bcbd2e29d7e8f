"""The decision trail: one global, append-only, hash-chained log (DESIGN §6).

``trail_append`` / ``trail_append_many`` are the only code that inserts trail
events. They run inside the transaction of the change they record and lock the
chain head, so concurrent writers queue up: no gaps in ``seq``, no forks.
On PostgreSQL the database numbers and hashes the events itself
(``workbench_trail_chain``, migration 0006), at once or while the transaction
commits; on SQLite this module does.
"""

import base64
import hashlib
import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from django.conf import settings
from django.db import DataError, connection, transaction
from django.utils import timezone

from workbench.db import bulk_insert
from workbench.errors import WorkbenchError
from workbench.models import Checkpoint, TrailEvent, TrailHead
from workbench.services.merkle import (
    frontier_dump,
    frontier_extend,
    frontier_extend_leaves,
    frontier_load,
    frontier_root,
    leaf_hash,
)

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
    """Append events in order, in the caller's transaction. Returns them saved.

    However chained, the chain head stays locked until the transaction ends;
    a writer with much to write calls ``trail_prepare`` first and appends
    last, to hold it briefly.

    ``at_commit=True`` is for a hot service that opens its own transaction
    and does not read the events back: on PostgreSQL, when its ``atomic``
    block is the outermost (it will commit on leaving it), the events are
    chained while the transaction commits, so the head is locked only for
    the chaining and the WAL flush; the call then returns None, as ``seq``
    and hashes are not known yet. Nested in a caller's transaction (a
    service called by another, a test), they are chained at once as usual,
    so that the caller can read them.
    """
    _require_transaction()
    if not entries:
        return []
    if isinstance(entries[0], TrailEntry):
        entries = trail_prepare(entries)
    if connection.vendor != "postgresql":
        return _chain_here(entries)
    if at_commit and len(connection.atomic_blocks) == 1:
        _chain_at_commit(entries)
        return None
    return _chain_now_in_postgresql(entries)


def _chain_here(entries: list[PreparedEntry]) -> list[TrailEvent]:
    """Chain in Python, under the head lock (SQLite)."""
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
    _checkpoint_after_commit_if_crossed(head.seq, seq)
    return events


def _as_json(entries: list[PreparedEntry]) -> str:
    """The events for ``workbench_trail_chain``: a JSON array of [head, tail]."""
    return json.dumps(
        [[entry.head.decode(), entry.tail.decode()] for entry in entries], ensure_ascii=False
    )


def _chain_now_in_postgresql(entries: list[PreparedEntry]) -> list[TrailEvent]:
    """One statement locks the head, chains, inserts and moves the head
    (``workbench_trail_chain``, migration 0006)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM workbench_trail_chain(%s::json)", [_as_json(entries)])
        rows = cursor.fetchall()
    events = [
        TrailEvent(seq=seq, body=entry.body(seq).decode(), prev_hash=prev, hash=digest)
        for entry, (seq, prev, digest) in zip(entries, rows, strict=True)
    ]
    _checkpoint_after_commit_if_crossed(events[0].seq - 1, events[-1].seq)
    return events


def _chain_at_commit(entries: list[PreparedEntry]) -> None:
    """Queue the events for the deferred trigger that chains them during
    COMMIT (migration 0006): no lock now, and none held across a round trip.

    The head read here (no lock) tells roughly where the events will land:
    when they cross a multiple of ``TRAIL_CHECKPOINT_EVERY`` the checkpoint
    task is enqueued after the commit. Writers committing in between move
    the head on, so a crossing can go unnoticed; the next one, or the beat
    every minute, then signs it (``trail_checkpoint`` signs every due
    multiple, not just the latest)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO workbench_trailpending (events) VALUES (%s::json) "
            "RETURNING (SELECT seq FROM workbench_trailhead WHERE id = 1)",
            [_as_json(entries)],
        )
        (seen,) = cursor.fetchone()
    seen = seen or 0
    _checkpoint_after_commit_if_crossed(seen, seen + len(entries))


def _checkpoint_after_commit_if_crossed(before: int, after: int) -> None:
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
    Returns it saved, or None when it is chained at commit (``trail_append_many``)."""
    events = trail_append_many(
        [TrailEntry(action=action, actor=actor, case=case, system=system, data=data or {})],
        at_commit=at_commit,
    )
    return events[0] if events else None


# --- Verification -------------------------------------------------------------------


@dataclass
class TrailVerification:
    ok: bool
    checked: int
    head_seq: int
    checkpoints: int = 0
    first_bad_seq: int | None = None
    problem: str = ""


def trail_verify(*, chunk_size: int = 20_000) -> TrailVerification:
    """Recompute the whole chain; name the first ``seq`` that does not hold.

    Checks, for each event: ``seq`` follows on, ``prev_hash`` is the previous
    hash and ``hash`` is SHA-256(prev || body); then the head row, every
    checkpoint signature and every checkpoint's Merkle root. (The queryable
    columns are generated from the body by the database, so they cannot
    disagree with it.) On PostgreSQL the per-event checks run in the
    database, in one query (``_CHAIN_SQL``): faster than fetching every body,
    and the same checks; outside a transaction, on a connection of its own
    while this one rebuilds the Merkle trees, so the two use two cores.
    """
    head = TrailHead.objects.filter(id=1).first() or TrailHead()
    checkpoints = {cp.seq: cp for cp in Checkpoint.objects.all()}
    public_keys = trail_public_keys()
    trees = None
    if connection.vendor != "postgresql":
        chain = None
    elif connection.in_atomic_block:  # another connection would not see this one's writes
        chain = _chain_in_sql(checkpoints, public_keys)
    else:
        with ThreadPoolExecutor(1) as pool:
            chained = pool.submit(_own_connection, _chain_in_sql, checkpoints, public_keys)
            trees = _trees_problem(checkpoints, public_keys, chunk_size)
            chain = chained.result()
    if chain is None:
        chain = _chain_in_python(checkpoints, public_keys, chunk_size)

    def bad(seq: int, problem: str) -> TrailVerification:
        return TrailVerification(False, chain.checked, head.seq, len(checkpoints), seq, problem)

    if chain.problem:
        return bad(chain.bad_seq, chain.problem)
    if head.seq != chain.last_seq or head.hash != chain.last_hash:
        return bad(
            min(head.seq, chain.last_seq + 1), "the chain head does not match the last event"
        )
    beyond = [seq for seq in checkpoints if seq > chain.last_seq]
    if beyond:
        return bad(min(beyond), "a checkpoint signs an event that is not in the trail")
    seq, problem = trees or _trees_problem(checkpoints, public_keys, chunk_size)
    if problem:
        return bad(seq, problem)
    return TrailVerification(True, chain.checked, head.seq, len(checkpoints))


def _own_connection(function, *args):
    try:
        return function(*args)
    finally:
        connection.close()  # this thread's


@dataclass
class _Chain:
    """The per-event pass: how far it got, and its first problem if any."""

    checked: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    bad_seq: int = 0
    problem: str = ""


def _chain_in_python(checkpoints: dict, public_keys: dict, chunk_size: int) -> _Chain:
    chain = _Chain()
    expected, prev = 1, GENESIS_HASH
    sha256, fromhex = hashlib.sha256, bytes.fromhex
    rows = TrailEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash", "body")
    for seq, prev_hash, digest, body in rows.iterator(chunk_size):
        if seq != expected:
            chain.bad_seq, chain.problem = (
                expected,
                f"event {expected} is missing (found {seq} next)",
            )
        elif prev_hash != prev:
            chain.bad_seq, chain.problem = seq, _LINK_PROBLEM
        elif sha256(fromhex(prev) + body.encode()).hexdigest() != digest:
            chain.bad_seq, chain.problem = seq, _HASH_PROBLEM
        elif seq in checkpoints:
            chain.problem = _checkpoint_problem(checkpoints[seq], digest, public_keys)
            chain.bad_seq = seq
        if chain.problem:
            return chain
        prev, expected, chain.checked = digest, expected + 1, chain.checked + 1
    chain.last_seq, chain.last_hash = expected - 1, prev
    return chain


_LINK_PROBLEM = "prev_hash does not match the hash of the event before"
_HASH_PROBLEM = "hash does not match the event's content"
# The first event that does not follow on, link or hash.
_CHAIN_SQL = """
SELECT seq, prev_seq, seq_ok, link_ok FROM (
    SELECT seq,
           lag(seq) OVER w AS prev_seq,
           seq = coalesce(lag(seq) OVER w, 0) + 1 AS seq_ok,
           prev_hash = coalesce(lag(hash) OVER w, %(genesis)s) AS link_ok,
           hash = encode(
               sha256(decode(prev_hash, 'hex') || convert_to(body, 'UTF8')), 'hex') AS hash_ok
    FROM workbench_trailevent
    WINDOW w AS (ORDER BY seq)
) events
WHERE NOT (seq_ok AND link_ok AND hash_ok)
ORDER BY seq
LIMIT 1
"""


def _chain_in_sql(checkpoints: dict, public_keys: dict) -> _Chain | None:
    """None when a ``prev_hash`` is not hex at all (the database refuses to
    decode it): only the Python pass can say where."""
    chain = _Chain()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CHAIN_SQL, {"genesis": GENESIS_HASH})
            first_bad = cursor.fetchone()
    except DataError:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, hash FROM workbench_trailevent ORDER BY seq DESC LIMIT 1")
        last = cursor.fetchone()
    if first_bad is not None:
        seq, prev_seq, seq_ok, link_ok = first_bad
        if not seq_ok:
            expected = (prev_seq or 0) + 1
            chain.bad_seq, chain.problem = (
                expected,
                f"event {expected} is missing (found {seq} next)",
            )
        else:
            chain.bad_seq, chain.problem = seq, _LINK_PROBLEM if not link_ok else _HASH_PROBLEM
    # The checkpoints before the first bad event (at it, the event's own problem is named).
    upto = chain.bad_seq - 1 if chain.problem else None
    signed = sorted(seq for seq in checkpoints if upto is None or seq <= upto)
    hashes = dict(TrailEvent.objects.filter(seq__in=signed).values_list("seq", "hash"))
    for seq in signed:
        if seq not in hashes:
            break  # beyond the last event: named by trail_verify
        problem = _checkpoint_problem(checkpoints[seq], hashes[seq], public_keys)
        if problem:
            chain.bad_seq, chain.problem = seq, problem
            break
    if chain.problem:
        chain.checked = chain.bad_seq - 1
    elif last is not None:
        chain.checked, chain.last_seq, chain.last_hash = last[0], last[0], last[1]
    return chain


def _trees_problem(checkpoints: dict, public_keys: dict, chunk_size: int) -> tuple[int, str]:
    """Recompute the Merkle root at each checkpoint that has one, from the
    event hashes, and its signature. (Its answer counts only when the chain
    pass found the hashes sound; a hash that is not hex stops it.)"""
    with_tree = sorted(seq for seq, cp in checkpoints.items() if cp.tree_root)
    if not with_tree:
        return 0, ""
    frontier, done = [], 0
    events = TrailEvent.objects.filter(seq__lte=with_tree[-1]).order_by("seq")
    hashes = events.values_list("hash", flat=True).iterator(chunk_size)
    leaves = (leaf_hash(bytes.fromhex(digest)) for digest in hashes)
    for seq in with_tree:
        try:
            frontier = frontier_extend_leaves(frontier, itertools.islice(leaves, seq - done))
        except ValueError:
            return seq, "an event hash before this checkpoint is not hex"
        done = seq
        checkpoint = checkpoints[seq]
        if frontier_root(frontier).hex() != checkpoint.tree_root:
            return seq, "checkpoint tree root does not match the event hashes"
        try:
            public_keys[checkpoint.key_id].verify(
                base64.b64decode(checkpoint.tree_signature),
                tree_message(seq, checkpoint.tree_root),
            )
        except (InvalidSignature, ValueError):
            return seq, "checkpoint tree signature does not verify"
    return 0, ""


def _checkpoint_problem(checkpoint: Checkpoint, digest: str, public_keys: dict) -> str:
    if checkpoint.hash != digest:
        return "checkpoint hash does not match the event"
    key = public_keys.get(checkpoint.key_id)
    if key is None:
        return f"checkpoint signed by an unknown key {checkpoint.key_id}"
    try:
        key.verify(
            base64.b64decode(checkpoint.signature), checkpoint_message(checkpoint.seq, digest)
        )
    except (InvalidSignature, ValueError):
        return "checkpoint signature does not verify"
    return ""


# --- Checkpoints --------------------------------------------------------------------


def checkpoint_message(seq: int, digest: str) -> bytes:
    """The signed message (contract): the ASCII text ``"<seq>:<hash>"``."""
    return f"{seq}:{digest}".encode("ascii")


@lru_cache(maxsize=4)
def _load_signing_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise WorkbenchError("TRAIL_SIGNING_KEY is not an Ed25519 private key", "bad_signing_key")
    return key


def trail_signing_key() -> Ed25519PrivateKey:
    """The checkpoint key: ``TRAIL_SIGNING_KEY``, or in development a key file made once."""
    pem = settings.TRAIL_SIGNING_KEY
    if not pem:
        path = settings.TRAIL_SIGNING_KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            new = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            path.write_bytes(new)
            path.chmod(0o600)
        pem = path.read_text()
    return _load_signing_key(pem)


def trail_public_key() -> Ed25519PublicKey:
    return trail_signing_key().public_key()


def trail_public_key_pem() -> str:
    return (
        trail_public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def trail_key_id() -> str:
    """Names the key a checkpoint used (``key_id``)."""
    return key_id(trail_public_key())


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def trail_public_keys() -> dict[str, Ed25519PublicKey]:
    """The keys checkpoints may be signed with, by ``key_id``: the current
    one and the retired ones (``TRAIL_RETIRED_PUBLIC_KEY_FILES``)."""
    keys = {trail_key_id(): trail_public_key()}
    for path in settings.TRAIL_RETIRED_PUBLIC_KEY_FILES:
        try:
            key = serialization.load_pem_public_key(Path(path).read_bytes())
        except (OSError, ValueError) as error:
            raise WorkbenchError(
                f"TRAIL_RETIRED_PUBLIC_KEY_FILES: cannot load {path} ({error})", "bad_retired_key"
            ) from None
        if not isinstance(key, Ed25519PublicKey):
            raise WorkbenchError(
                f"TRAIL_RETIRED_PUBLIC_KEY_FILES: {path} is not an Ed25519 public key",
                "bad_retired_key",
            )
        keys.setdefault(key_id(key), key)
    return keys


def trail_checkpoint(*, now: datetime | None = None, sign_head: bool = False) -> list[Checkpoint]:
    """Sign every 1,000th event not signed yet, and the head when the last
    signature is older than an hour (or at once with ``sign_head``, as an
    export does). Each checkpoint signs ``"<seq>:<hash>"`` and the Merkle
    root of the event hashes up to it (docs/bundle.md). Safe to run
    concurrently (unique ``seq``)."""
    now = now or timezone.now()
    every = settings.TRAIL_CHECKPOINT_EVERY
    last = Checkpoint.objects.order_by("-seq").first()
    if last is not None and last.key_id != trail_key_id():
        _key_change_record(last)
        sign_head = True
    head = TrailHead.objects.filter(id=1).first()
    if head is None or head.seq == 0:
        return []
    last_seq = last.seq if last else 0
    due = list(range((last_seq // every + 1) * every, head.seq + 1, every))
    stale = (
        sign_head
        or last is None
        or now - last.created_at >= timedelta(seconds=settings.TRAIL_CHECKPOINT_MAX_AGE_SECONDS)
    )
    if head.seq > last_seq and stale and head.seq not in due:
        due.append(head.seq)
    if not due:
        return []
    key, key_id = trail_signing_key(), trail_key_id()
    made = []
    # The tree grows from the last checkpoint's frontier (or from the first
    # event, for checkpoints made before trees existed).
    tree_seq, frontier = (last.seq, frontier_load(last.tree_frontier)) if last else (0, [])
    if last is not None and (not last.tree_frontier or last.tree_root == ""):
        tree_seq, frontier = 0, []
    for seq, digest in (
        TrailEvent.objects.filter(seq__in=due).order_by("seq").values_list("seq", "hash")
    ):
        hashes = (
            TrailEvent.objects.filter(seq__gt=tree_seq, seq__lte=seq)
            .order_by("seq")
            .values_list("hash", flat=True)
        )
        frontier = frontier_extend(frontier, (bytes.fromhex(h) for h in hashes.iterator(5000)))
        tree_seq = seq
        root = frontier_root(frontier).hex()
        made.append(
            Checkpoint(
                seq=seq,
                hash=digest,
                signature=base64.b64encode(key.sign(checkpoint_message(seq, digest))).decode(),
                key_id=key_id,
                tree_root=root,
                tree_signature=base64.b64encode(key.sign(tree_message(seq, root))).decode(),
                tree_frontier=frontier_dump(frontier),
            )
        )
    with transaction.atomic():
        Checkpoint.objects.bulk_create(made, ignore_conflicts=True)
    return made


def _key_change_record(last: Checkpoint) -> None:
    """The signing key was changed since ``last`` was signed: say so in the
    trail, once, so that the head moves and the new key signs it (an export
    ends on a checkpoint of the key its bundle carries)."""
    with transaction.atomic():
        Checkpoint.objects.select_for_update().filter(pk=last.pk).first()  # one at a time
        if TrailEvent.objects.filter(seq__gt=last.seq, action="trail.key_changed").exists():
            return
        trail_append(
            action="trail.key_changed",
            actor=Actor.workbench("checkpoint"),
            data={"previous_key_id": last.key_id, "key_id": trail_key_id()},
        )


def tree_message(size: int, root: str) -> bytes:
    """What a checkpoint's tree signature signs (docs/bundle.md)."""
    return f"tree:{size}:{root}".encode("ascii")
