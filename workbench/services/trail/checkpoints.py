"""Signed checkpoints of the chain head and its Merkle tree."""

import base64
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from workbench.models import Checkpoint, TrailEvent, TrailHead
from workbench.services.merkle import (
    frontier_dump,
    frontier_extend,
    frontier_load,
    frontier_root,
)
from workbench.services.trail.append import Actor, trail_append
from workbench.services.trail.keys import trail_key_id, trail_signing_key
from workbench.services.trail.sequencer import trail_integrate


def checkpoint_message(seq: int, digest: str) -> bytes:
    """The signed message (contract): the ASCII text ``"<seq>:<hash>"``."""
    return f"{seq}:{digest}".encode("ascii")


def trail_checkpoint(*, now: datetime | None = None, sign_head: bool = False) -> list[Checkpoint]:
    """Sign every 1,000th event not signed yet, and the head when the last
    signature is older than an hour (or at once with ``sign_head``, as an
    export does). Each checkpoint signs ``"<seq>:<hash>"`` and the Merkle
    root of the event hashes up to it (docs/bundle.md). Safe to run
    concurrently (unique ``seq``)."""
    trail_integrate()  # sign the chain as it stands with every committed event
    now = now or timezone.now()
    every = settings.TRAIL_CHECKPOINT_EVERY
    last = Checkpoint.objects.order_by("-seq").first()
    if last is not None and last.key_id != trail_key_id():
        _key_change_record(last)
        trail_integrate()  # the change's event, on PostgreSQL
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
