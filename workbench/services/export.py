"""Exports of the decision trail: the verifiable bundle (docs/bundle.md,
DESIGN §6), and the events alone as JSON lines or CSV.

Everything streams: events are read in chunks and written out as they come,
so memory stays flat whatever the size. The one exception is a filtered
bundle's Merkle tree (about 64 bytes per event of the whole trail), needed to
prove each event on its own.
"""

import csv
import hashlib
import io
import json
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone
from stream_zip import ZIP_64, stream_zip

from workbench.errors import Invalid
from workbench.models import Checkpoint, TrailEvent, TrailExport
from workbench.services.merkle import MerkleTree
from workbench.services.trail import (
    format_at,
    trail_append,
    trail_checkpoint,
    trail_integrate,
    trail_key_id,
    trail_public_key_pem,
)

CHUNK = 5_000
VERIFY_MD = Path(__file__).resolve().parent.parent / "templates_bundle" / "VERIFY.md"
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ExportFilters:
    """What to export: a date range (UTC days, both included), an AI system,
    a case. No system and no case: a contiguous ``range`` bundle; otherwise a
    ``filtered`` one, each event with its Merkle proof."""

    date_from: date | None = None
    date_to: date | None = None
    system: str | None = None
    case: str | None = None
    cases: tuple[str, ...] = ()  # several cases (a data subject's)

    def __post_init__(self):
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise Invalid(
                "the date range ends before it starts",
                "bad_range",
                fields=[{"path": "to", "message": "choose a date on or after the start"}],
            )

    @property
    def kind(self) -> str:
        return "filtered" if self.system or self.case or self.cases else "range"

    def as_dict(self) -> dict:
        return {
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "system": self.system or None,
            "case": self.case or None,
            **({"cases": list(self.cases)} if self.cases else {}),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ExportFilters":
        return cls(
            date_from=date.fromisoformat(data["from"]) if data.get("from") else None,
            date_to=date.fromisoformat(data["to"]) if data.get("to") else None,
            system=data.get("system") or None,
            case=data.get("case") or None,
            cases=tuple(data.get("cases") or ()),
        )

    def events(self):
        """The matching events, by ``seq``."""
        events = TrailEvent.objects.all()
        if self.date_from:
            events = events.filter(at__gte=_day_start(self.date_from))
        if self.date_to:
            events = events.filter(at__lt=_day_start(self.date_to + timedelta(days=1)))
        if self.system:
            events = events.filter(system=self.system)
        if self.case:
            events = events.filter(case=self.case)
        if self.cases:
            events = events.filter(case__in=self.cases)
        return events.order_by("seq")


def _day_start(day: date) -> str:
    return format_at(datetime.combine(day, time(), tzinfo=UTC))


@dataclass
class ExportPlan:
    """The seqs an export covers, fixed before it starts (the trail grows meanwhile)."""

    filters: ExportFilters
    first_seq: int | None
    last_seq: int | None
    count: int
    checkpoints: list[Checkpoint] = field(default_factory=list)
    # A filtered export takes the matching events up to the checkpoint it
    # proves them against; events appended after the plan are not in it.
    limit_seq: int | None = None

    @property
    def kind(self) -> str:
        return self.filters.kind

    def events(self):
        if self.first_seq is None:
            return TrailEvent.objects.none()
        if self.kind == "range":
            return TrailEvent.objects.filter(
                seq__gte=self.first_seq, seq__lte=self.last_seq
            ).order_by("seq")
        return self.filters.events().filter(seq__lte=self.limit_seq)


def export_plan(filters: ExportFilters, *, sign_head: bool = True) -> ExportPlan:
    """Sign the head, so that every event has a checkpoint at or after it; then
    fix the range. A range bundle ends at the first checkpoint at or after the
    last event asked for; a filtered bundle proves its events against the
    newest checkpoint."""
    trail_integrate()  # every event committed before the export began
    if sign_head:
        trail_checkpoint(sign_head=True)
    # A bundle carries one public key: the current one. Checkpoints signed
    # with a retired key are left out (the chain still runs through their
    # events, up to a checkpoint of the current key).
    signed = Checkpoint.objects.filter(key_id=trail_key_id())
    newest = signed.order_by("-seq").first()
    if filters.kind == "filtered":
        limit = newest.seq if newest else 0
        matching = filters.events().filter(seq__lte=limit)
        bounds = matching.aggregate(first=Min("seq"), last=Max("seq"))
        count = matching.count() if bounds["first"] is not None else 0
        return ExportPlan(
            filters, bounds["first"], bounds["last"], count, [newest] if newest else [], limit
        )
    bounds = filters.events().aggregate(first=Min("seq"), last=Max("seq"))
    if bounds["first"] is None or newest is None:
        return ExportPlan(filters, None, None, 0)
    end = signed.filter(seq__gte=bounds["last"]).order_by("seq").first()
    last = end.seq if end else newest.seq
    checkpoints = list(signed.filter(seq__gte=bounds["first"], seq__lte=last).order_by("seq"))
    return ExportPlan(filters, bounds["first"], last, last - bounds["first"] + 1, checkpoints)


# --- Lines -----------------------------------------------------------------------------------


def event_line(body: str, prev_hash: str, digest: str) -> bytes:
    """The event as exported: its canonical body with ``hash`` and
    ``prev_hash`` put in their RFC 8785 place, just before ``seq`` (the
    last top-level member but ``system``). Taking that text out again gives
    the hashed body, byte for byte."""
    cut = body.rindex(',"seq":') + 1
    return f'{body[:cut]}"hash":"{digest}","prev_hash":"{prev_hash}",{body[cut:]}\n'.encode()


def _rows(plan: ExportPlan) -> Iterator[tuple[int, str, str, str]]:
    rows = plan.events().values_list("seq", "body", "prev_hash", "hash")
    yield from rows.iterator(CHUNK)


def _lines(plan: ExportPlan, progress: Progress | None) -> Iterator[bytes]:
    # The hot loop of every export: event_line inlined, and a batch of lines
    # joined and encoded at once.
    rows = plan.events().values_list("body", "prev_hash", "hash").iterator(CHUNK)
    batch, done = [], 0
    append = batch.append
    for body, prev_hash, digest in rows:
        cut = body.rindex(',"seq":') + 1
        append(f'{body[:cut]}"hash":"{digest}","prev_hash":"{prev_hash}",{body[cut:]}\n')
        if len(batch) == CHUNK:
            done += CHUNK
            yield "".join(batch).encode()
            batch.clear()
            if progress:
                progress(done)
    if batch:
        done += len(batch)
        yield "".join(batch).encode()
    if progress:
        progress(done)


def trail_events_jsonl(plan: ExportPlan, *, progress: Progress | None = None) -> Iterator[bytes]:
    """The events as JSON lines (the same lines as a bundle's ``events.jsonl``)."""
    return _lines(plan, progress)


CSV_COLUMNS = ["seq", "at", "action", "case", "system", "actor_type", "actor_id", "data"]
CSV_COLUMNS += ["prev_hash", "hash"]


def _cell(value) -> str:
    """A spreadsheet must not run text as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def trail_events_csv(plan: ExportPlan, *, progress: Progress | None = None) -> Iterator[bytes]:
    """The events as CSV, one row each; ``data`` as JSON text."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    done = 0
    for seq, body, prev_hash, digest in _rows(plan):
        event = json.loads(body)
        actor = event.get("actor") or {}
        data = json.dumps(event.get("data"), ensure_ascii=False, sort_keys=True)
        row = [seq, event["at"], event["action"], event.get("case"), event.get("system")]
        row += [actor.get("type"), actor.get("id"), data, prev_hash, digest]
        writer.writerow([_cell(value) for value in row])
        done += 1
        if done % 1_000 == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
            if progress and done % CHUNK == 0:
                progress(done)
    yield out.getvalue().encode()
    if progress:
        progress(done)


# --- The bundle ------------------------------------------------------------------------------


def _checkpoint_line(checkpoint: Checkpoint) -> bytes:
    return (
        json.dumps(
            {
                "seq": checkpoint.seq,
                "hash": checkpoint.hash,
                "signature": checkpoint.signature,
                "key_id": checkpoint.key_id,
                "tree_size": checkpoint.seq if checkpoint.tree_root else None,
                "tree_root": checkpoint.tree_root,
                "tree_signature": checkpoint.tree_signature,
            }
        )
        + "\n"
    ).encode()


def _proofs(plan: ExportPlan) -> Iterator[bytes]:
    """One audit path per event, against the plan's checkpoint. The tree is
    built once over the event hashes up to it."""
    checkpoint = plan.checkpoints[0]
    hashes = (
        TrailEvent.objects.filter(seq__lte=checkpoint.seq)
        .order_by("seq")
        .values_list("hash", flat=True)
    )
    tree = MerkleTree(bytes.fromhex(h) for h in hashes.iterator(CHUNK * 4))
    buffer = []
    for seq in plan.events().values_list("seq", flat=True).iterator(CHUNK):
        path = [node.hex() for node in tree.path(seq - 1)]
        buffer.append(json.dumps({"seq": seq, "tree_size": checkpoint.seq, "path": path}) + "\n")
        if len(buffer) == 1_000:
            yield "".join(buffer).encode()
            buffer = []
    if buffer:
        yield "".join(buffer).encode()


class _ThreadedDeflate:
    """A raw-deflate ``compressobj`` (level 1) that compresses in a helper
    thread, one chunk behind. zlib releases the GIL, so the next lines are
    built while the last ones are compressed: two cores instead of one. The
    output keeps its order (deflate allows ``compress`` to return less, and
    later more); one thread per stream keeps the calls sequential."""

    def __init__(self, executor: ThreadPoolExecutor):
        self._zlib = zlib.compressobj(wbits=-zlib.MAX_WBITS, level=1)
        self._executor = executor
        self._pending: deque[Future] = deque()

    def compress(self, data: bytes) -> bytes:
        self._pending.append(self._executor.submit(self._zlib.compress, data))
        out = []
        while len(self._pending) > 1 or (self._pending and self._pending[0].done()):
            out.append(self._pending.popleft().result())
        return b"".join(out)

    def flush(self) -> bytes:
        out = [future.result() for future in self._pending]
        self._pending.clear()
        out.append(self._zlib.flush())
        return b"".join(out)


class _Digests:
    """SHA-256 and size of each member as it streams past, for the manifest."""

    def __init__(self):
        self.files: dict[str, dict] = {}

    def through(self, name: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
        digest, size = hashlib.sha256(), 0
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            yield chunk
        self.files[name] = {"sha256": digest.hexdigest(), "bytes": size}


def trail_bundle(plan: ExportPlan, *, progress: Progress | None = None) -> Iterator[bytes]:
    """The bundle as zip bytes, streamed (docs/bundle.md)."""
    now = timezone.now()
    digests = _Digests()
    members = [("events.jsonl", _lines(plan, progress))]
    members.append(("checkpoints.jsonl", map(_checkpoint_line, plan.checkpoints)))
    if plan.kind == "filtered" and plan.count:
        members.append(("proofs.jsonl", _proofs(plan)))
    members.append(("public_key.pem", [trail_public_key_pem().encode()]))
    members.append(("VERIFY.md", [VERIFY_MD.read_bytes()]))

    def manifest() -> Iterator[bytes]:
        # Evaluated when the zip reaches it: after every other member streamed.
        yield json.dumps(
            {
                "format": "workbench-trail-bundle",
                "version": 1,
                "kind": plan.kind,
                "created_at": format_at(now),
                "filters": plan.filters.as_dict(),
                "range": {"first_seq": plan.first_seq, "last_seq": plan.last_seq},
                "count": plan.count,
                "key_id": trail_key_id(),
                "files": digests.files,
            },
            indent=2,
        ).encode()

    files = [(name, now, 0o644, ZIP_64, digests.through(name, chunks)) for name, chunks in members]
    files.append(("manifest.json", now, 0o644, ZIP_64, manifest()))
    # Deflate at level 1 (JSON lines still shrink about fourfold), in a
    # helper thread: see _ThreadedDeflate.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deflate") as executor:
        yield from stream_zip(files, get_compressobj=lambda: _ThreadedDeflate(executor))


def export_file_name(plan: ExportPlan, fmt: str) -> str:
    parts = ["workbench-trail"]
    filters = plan.filters
    if filters.system:
        parts.append(filters.system)
    if filters.case:
        parts.append(filters.case)
    if filters.date_from or filters.date_to:
        parts.append(f"{filters.date_from or 'start'}_{filters.date_to or 'now'}")
    extension = {"bundle": "zip", "jsonl": "jsonl", "csv": "csv"}[fmt]
    return "-".join(parts) + f".{extension}"


def export_stream(plan: ExportPlan, fmt: str, *, progress: Progress | None = None):
    """The chosen format's bytes."""
    writers = {"bundle": trail_bundle, "jsonl": trail_events_jsonl, "csv": trail_events_csv}
    return writers[fmt](plan, progress=progress)


__all__ = [
    "ExportFilters",
    "ExportPlan",
    "event_line",
    "export_file_name",
    "export_path",
    "export_plan",
    "export_record",
    "export_run",
    "export_start",
    "export_stream",
    "trail_bundle",
    "trail_events_csv",
    "trail_events_jsonl",
]


# --- Exports made in Celery ---------------------------------------------------------------


def export_start(*, filters: ExportFilters, fmt: str, user, actor) -> TrailExport:
    """Record an export to make in the background; the task starts after the commit."""
    from workbench.tasks import trail_export_run  # the task module imports this one

    with transaction.atomic():
        export = TrailExport.objects.create(
            requested_by=user, format=fmt, filters=filters.as_dict()
        )
        trail_append(
            action="trail.export_requested",
            actor=actor,
            data={"export": str(export.id), "format": fmt, "filters": filters.as_dict()},
        )
        # Robust: with the broker down the request is still recorded; it shows
        # as queued, and can be asked for again.
        transaction.on_commit(lambda: trail_export_run.delay(str(export.id)), robust=True)
    return export


def export_run(*, export_id) -> TrailExport:
    """Write the export's file under ``EXPORT_ROOT``, noting progress as it goes."""
    export = TrailExport.objects.get(pk=export_id)
    if export.status == TrailExport.Status.DONE:
        return export
    plan = export_plan(ExportFilters.from_dict(export.filters))
    root = Path(settings.EXPORT_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    name = export_file_name(plan, export.format)
    path = root / f"{export.id}-{name}"
    TrailExport.objects.filter(pk=export.pk).update(
        status=TrailExport.Status.RUNNING, total=plan.count, done=0, file_name=name
    )

    def progress(done: int) -> None:
        TrailExport.objects.filter(pk=export.pk).update(done=done)

    try:
        with open(path, "wb") as out:
            for chunk in export_stream(plan, export.format, progress=progress):
                out.write(chunk)
    except Exception as exc:
        path.unlink(missing_ok=True)
        TrailExport.objects.filter(pk=export.pk).update(
            status=TrailExport.Status.FAILED, error=str(exc)[:500], finished_at=timezone.now()
        )
        raise
    TrailExport.objects.filter(pk=export.pk).update(
        status=TrailExport.Status.DONE,
        done=plan.count,
        size=path.stat().st_size,
        finished_at=timezone.now(),
    )
    export.refresh_from_db()
    return export


def export_path(export) -> Path:
    return Path(settings.EXPORT_ROOT) / f"{export.id}-{export.file_name}"


def exports_expire(*, now: datetime | None = None) -> list[TrailExport]:
    """Delete the files of exports written more than ``EXPORT_RETENTION_DAYS``
    ago, and mark those exports expired (beat, hourly). A bundle handed to
    an auditor is theirs to keep; the server keeps no copy for long."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.EXPORT_RETENTION_DAYS)
    expired = list(
        TrailExport.objects.filter(status=TrailExport.Status.DONE, finished_at__lt=cutoff)
    )
    for export in expired:
        export_path(export).unlink(missing_ok=True)
        TrailExport.objects.filter(pk=export.pk).update(status=TrailExport.Status.EXPIRED)
    return expired


def export_record(*, plan: ExportPlan, fmt: str, actor) -> None:
    """Record in the trail that someone exported it (a streamed export)."""
    with transaction.atomic():
        trail_append(
            action="trail.exported",
            actor=actor,
            data={
                "format": fmt,
                "filters": plan.filters.as_dict(),
                "first_seq": plan.first_seq,
                "last_seq": plan.last_seq,
                "count": plan.count,
            },
        )
