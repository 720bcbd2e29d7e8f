"""Reads of the core: the trail."""

import json
from dataclasses import dataclass

from workbench.models import Checkpoint, TrailEvent, TrailHead
from workbench.services.merkle import MerkleTree
from workbench.services.trail import trail_integrate


def trail_event_as_dict(event: TrailEvent) -> dict:
    """The event as exported (DESIGN §6): its body plus the two hashes."""
    return {**json.loads(event.body), "prev_hash": event.prev_hash, "hash": event.hash}


def trail_events_after(*, after: int, limit: int) -> list[dict]:
    trail_integrate()  # read your writes (DESIGN §6)
    events = TrailEvent.objects.filter(seq__gt=after).order_by("seq")[:limit]
    return [trail_event_as_dict(event) for event in events]


def trail_head() -> dict:
    trail_integrate()  # read your writes (DESIGN §6)
    head = TrailHead.objects.filter(id=1).first() or TrailHead()
    checkpoint = Checkpoint.objects.order_by("-seq").first()
    return {
        "seq": head.seq,
        "hash": head.hash,
        "checkpoint": (
            {
                "seq": checkpoint.seq,
                "hash": checkpoint.hash,
                "signature": checkpoint.signature,
                "key_id": checkpoint.key_id,
            }
            if checkpoint
            else None
        ),
    }


@dataclass
class SystemTrailPage:
    """One system's events, each with its inclusion proof against ``checkpoint``."""

    events: list[dict]  # as exported, plus "proof": {"tree_size", "path"}
    checkpoint: Checkpoint | None  # the latest with a Merkle tree; None: nothing signed yet
    more: bool  # more of the system's events up to the checkpoint


def trail_events_of_system(*, system: str, after: int, limit: int) -> SystemTrailPage:
    """The events of ``system`` after ``after`` up to the latest checkpoint
    with a tree, each with its RFC 9162 audit path in that tree (as a
    filtered bundle proves its events, docs/bundle.md): what a compliance
    key limited to one system reads. Events after that checkpoint wait for
    the next one (every 1,000 events or hourly).

    The tree is built over every event hash up to the checkpoint for each
    page: about a second per million events."""
    trail_integrate()  # read your writes (DESIGN §6)
    checkpoint = Checkpoint.objects.exclude(tree_root="").order_by("-seq").first()
    if checkpoint is None:
        return SystemTrailPage([], None, False)
    rows = list(
        TrailEvent.objects.filter(system=system, seq__gt=after, seq__lte=checkpoint.seq).order_by(
            "seq"
        )[: limit + 1]
    )
    more, rows = len(rows) > limit, rows[:limit]
    events = [trail_event_as_dict(event) for event in rows]
    if events:
        hashes = (
            TrailEvent.objects.filter(seq__lte=checkpoint.seq)
            .order_by("seq")
            .values_list("hash", flat=True)
        )
        tree = MerkleTree(bytes.fromhex(digest) for digest in hashes.iterator(20_000))
        for event in events:
            path = [node.hex() for node in tree.path(event["seq"] - 1)]
            event["proof"] = {"tree_size": checkpoint.seq, "path": path}
    return SystemTrailPage(events, checkpoint, more)
