"""Recomputing the live chain: ``trail_verify``."""

import base64
import hashlib
import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from django.db import DataError, connection, transaction

from workbench.models import Checkpoint, TrailEvent, TrailHead
from workbench.services.merkle import (
    frontier_extend_leaves,
    frontier_root,
    leaf_hash,
)
from workbench.services.trail.append import GENESIS_HASH
from workbench.services.trail.checkpoints import checkpoint_message, tree_message
from workbench.services.trail.keys import trail_public_keys
from workbench.services.trail.sequencer import trail_integrate


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
    trail_integrate()  # every event committed before now, in the chain
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
