"""Reads of the core: the trail, the reporting line."""

import json
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import prefetch_related_objects

from workbench.models import Checkpoint, TrailEvent, TrailHead, User
from workbench.services.merkle import MerkleTree
from workbench.services.trail import trail_integrate


def user_roles(*, user: User) -> set[str]:
    """The user's role names. Prefetches the groups once, so that
    ``User.has_role``, the claim and the navigation bar read the cache
    instead of asking the database again."""
    prefetch_related_objects([user], "groups")
    return {group.name for group in user.groups.all()}


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


# --- The reporting line ---------------------------------------------------------------------

REPORTING_DEPTH = 64  # no real organisation is deeper; a walk never goes further


def _manager_edges() -> dict[int, int | None]:
    return dict(User.objects.values_list("pk", "manager_id"))


def reporting_line(*, user_ids: Iterable[int]) -> set[int]:
    """``user_ids`` with everyone above any of them (their managers, their
    managers' managers, ...) and everyone below (reports, reports' reports,
    ...), transitively. One read of the manager column, then a walk that
    visits each person once (cycle-safe) and goes at most
    ``REPORTING_DEPTH`` levels each way."""
    start = {pk for pk in user_ids if pk is not None}
    if not start:
        return set()
    managers = _manager_edges()
    reports: dict[int, list[int]] = {}
    for pk, manager in managers.items():
        if manager is not None:
            reports.setdefault(manager, []).append(pk)
    found = set(start)
    # Up: each person's chain of managers.
    for pk in start:
        current, depth = managers.get(pk), 0
        while current is not None and depth < REPORTING_DEPTH:
            if current in found:  # its own line up is walked already (or a loop)
                break
            found.add(current)
            current, depth = managers.get(current), depth + 1
    # Down: everyone reporting, directly or not, to someone in ``start``.
    frontier, depth = list(start), 0
    seen = set(start)
    while frontier and depth < REPORTING_DEPTH:
        frontier = [r for pk in frontier for r in reports.get(pk, ()) if r not in seen]
        seen.update(frontier)
        depth += 1
    return found | seen


def manager_cycle(*, user_id: int | None, manager_id: int | None) -> bool:
    """Whether making ``manager_id`` the manager of ``user_id`` would close a
    loop: the user is the manager, or above them in their line."""
    if manager_id is None or user_id is None:
        return False
    if manager_id == user_id:
        return True
    managers = _manager_edges()
    current, depth, seen = managers.get(manager_id), 0, {manager_id}
    while current is not None and depth < REPORTING_DEPTH:
        if current == user_id:
            return True
        if current in seen:  # a loop already in the data, above: not through this user
            return False
        seen.add(current)
        current, depth = managers.get(current), depth + 1
    return False
