"""Reads of the core: the trail."""

import json

from workbench.models import Checkpoint, TrailEvent, TrailHead


def trail_event_as_dict(event: TrailEvent) -> dict:
    """The event as exported (DESIGN §6): its body plus the two hashes."""
    return {**json.loads(event.body), "prev_hash": event.prev_hash, "hash": event.hash}


def trail_events_after(*, after: int, limit: int) -> list[dict]:
    events = TrailEvent.objects.filter(seq__gt=after).order_by("seq")[:limit]
    return [trail_event_as_dict(event) for event in events]


def trail_head() -> dict:
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
