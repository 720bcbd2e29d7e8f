"""The trail's sequencer (DESIGN §6, workbench.services.trail.sequencer):
events recorded in the change's transaction, integrated after the commit."""

import hashlib
import json
import threading
import time
from datetime import timedelta

import pytest
import rfc8785
from django.db import connection, connections, transaction
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests import factories
from workbench.models import TrailEvent, TrailHead, TrailPending
from workbench.services import (
    Actor,
    TrailEntry,
    trail_append,
    trail_append_many,
    trail_integrate,
    trail_verify,
)
from workbench.services.trail import trail_sequencer_run

ACTOR = Actor.workbench("tests")
postgres = pytest.mark.postgres


def chain() -> list[tuple[int, str]]:
    """The chain as raw SQL sees it: no integration on the way."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, body FROM workbench_trailevent ORDER BY seq")
        return [(seq, json.loads(body)["action"]) for seq, body in cursor.fetchall()]


def pending_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM workbench_trailpending")
        return cursor.fetchone()[0]


@postgres
@pytest.mark.django_db(transaction=True)
def test_events_wait_in_the_pending_table_until_integrated_in_their_order():
    with transaction.atomic():
        assert trail_append(action="x.first", actor=ACTOR) is None
        assert chain() == []  # no head lock, no chain work
    with pytest.raises(RuntimeError), transaction.atomic():
        trail_append(action="x.lost", actor=ACTOR)
        raise RuntimeError("the change fails")
    with transaction.atomic():
        trail_append_many([TrailEntry("x.many", ACTOR, data={"n": n}) for n in range(3)])
        trail_append(action="x.last", actor=ACTOR)
    assert (chain(), pending_count()) == ([], 3)  # a row per call
    done = trail_integrate()
    assert (done.before, done.after, done.changes, done.events) == (0, 5, 3, 5)
    assert chain() == [(1, "x.first"), (2, "x.many"), (3, "x.many"), (4, "x.many"), (5, "x.last")]
    many = TrailEvent.objects.filter(action="x.many").order_by("seq")
    assert [json.loads(e.body)["data"] for e in many] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert pending_count() == 0
    assert TrailHead.objects.get().seq == 5
    assert trail_verify().ok
    assert trail_integrate().events == 0  # nothing pending: nothing done


@postgres
@pytest.mark.django_db(transaction=True)
def test_the_background_integrator_leaves_when_the_head_is_taken_and_a_reader_waits():
    with transaction.atomic():
        trail_append(action="x.one", actor=ACTOR)
    trail_integrate()
    with transaction.atomic():
        trail_append(action="x.two", actor=ACTOR)
    holding, release = threading.Event(), threading.Event()

    def hold_the_head():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT seq FROM workbench_trailhead WHERE id = 1 FOR UPDATE")
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_head)
    holder.start()
    assert holding.wait(10)
    try:
        assert trail_integrate(wait=False) is None  # taken: leaves at once
        assert chain() == [(1, "x.one")]
        threading.Timer(0.3, release.set).start()
        started = time.monotonic()
        assert trail_integrate().events == 1  # a reader waits for it
        assert time.monotonic() - started >= 0.25
    finally:
        release.set()
        holder.join(10)
    assert chain() == [(1, "x.one"), (2, "x.two")]


@postgres
@pytest.mark.django_db(transaction=True)
def test_an_integration_across_a_thousand_enqueues_the_checkpoint(
    django_capture_on_commit_callbacks,
):
    with transaction.atomic():
        trail_append_many([TrailEntry("x.n", ACTOR) for _ in range(999)])
    # Inside a block: its commit would run the callbacks and forget them.
    with transaction.atomic(), django_capture_on_commit_callbacks() as before:
        trail_integrate()
    with transaction.atomic():
        trail_append_many([TrailEntry("x.n", ACTOR) for _ in range(2)])
    with transaction.atomic(), django_capture_on_commit_callbacks() as after:
        trail_integrate()

    def checkpoints(callbacks):
        return [c for c in callbacks if getattr(c, "__name__", "") == "_enqueue_checkpoint"]

    assert (len(checkpoints(before)), len(checkpoints(after))) == (0, 1)
    assert TrailHead.objects.get().seq == 1001


@postgres
@pytest.mark.django_db(transaction=True)
def test_the_sequencer_process_integrates_when_a_writers_commit_notifies_it(settings):
    """The sweep is set to a minute: only the NOTIFY can wake it in time."""
    settings.TRAIL_NOTIFY_INTERVAL_SECONDS = 0  # every commit notifies
    stop = threading.Event()

    def run():
        try:
            trail_sequencer_run(stop=stop, sweep=60)
        finally:
            connections.close_all()

    sequencer = threading.Thread(target=run)
    sequencer.start()
    try:
        time.sleep(0.5)  # listening
        with transaction.atomic():
            trail_append(action="x.woken", actor=ACTOR)
        deadline = time.monotonic() + 10
        while chain() == [] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert chain() == [(1, "x.woken")]
        assert pending_count() == 0
    finally:
        stop.set()
        with transaction.atomic():  # wakes it to see the stop
            trail_append(action="x.bye", actor=ACTOR)
        sequencer.join(10)
    assert not sequencer.is_alive()


@postgres
@pytest.mark.django_db(transaction=True)
def test_readyz_fails_while_an_event_waits_past_the_threshold(settings):
    settings.TRAIL_MERGE_DELAY_MAX_SECONDS = 5
    TrailPending.objects.create(
        events=json.dumps(
            [
                [
                    '{"action":"x.old","actor":{},"at":"","case":null,"data":{},"seq":',
                    ',"system":null}',
                ]
            ]
        ),
        recorded_at=timezone.now() - timedelta(seconds=10),
    )
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["trail_merge_delay"].startswith("error: an event has waited")
    trail_integrate()
    response = Client().get("/readyz")
    assert response.json()["checks"]["trail_merge_delay"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_a_client_reads_its_own_writes_at_once(system):
    """Acceptance (issue #15): a case submitted and read straight away shows
    its events with their seq and hashes, and the hashes recompute. On
    PostgreSQL no sequencer runs here: the read integrates them itself."""
    client = factories.api_client(system)
    created = client.post(
        "/api/v1/cases", factories.claim_payload(), content_type="application/json"
    )
    assert created.status_code == 201, created.content
    reference = created.json()["reference"]
    shown = client.get(f"/api/v1/cases/{reference}")
    assert shown.status_code == 200, shown.content
    events = shown.json()["trail"]
    assert [e["action"] for e in events][:1] == ["case.received"] and len(events) >= 2
    for event in events:
        assert isinstance(event["seq"], int) and event["seq"] >= 1
        assert event.pop("proof", None) is None
        body = {k: v for k, v in event.items() if k not in ("hash", "prev_hash")}
        digest = hashlib.sha256(bytes.fromhex(event["prev_hash"]) + rfc8785.dumps(body))
        assert digest.hexdigest() == event["hash"]


# --- Ordering and loss: the property ---------------------------------------------------

changes = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=4),  # events in the change
        st.booleans(),  # committed (False: rolled back)
        st.booleans(),  # an integration runs after it
    ),
    min_size=1,
    max_size=25,
)


class Rollback(Exception):
    pass


@given(program=changes)
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_chain_holds_exactly_the_committed_changes_in_their_order(db, program):
    """However changes commit, roll back and interleave with integrations,
    the chain ends up with every committed change's events, once, in the
    order they were recorded; none of a rolled-back one; no gap; it verifies.
    (Each change is a savepoint of the test's transaction; on SQLite each is
    chained in its own transaction, on PostgreSQL by the integrations.)"""
    head = TrailHead.objects.filter(id=1).values_list("seq", flat=True).first() or 0
    expected = []
    for number, (size, committed, integrate) in enumerate(program):
        entries = [TrailEntry(f"p.{number}.{i}", ACTOR) for i in range(size)]
        try:
            with transaction.atomic():
                trail_append_many(entries)
                if not committed:
                    raise Rollback
        except Rollback:
            pass
        else:
            expected += [entry.action for entry in entries]
        if integrate:
            trail_integrate()
    trail_integrate()
    got = list(TrailEvent.objects.filter(seq__gt=head).order_by("seq").values_list("seq", "action"))
    assert [action for _, action in got] == expected
    assert [seq for seq, _ in got] == list(range(head + 1, head + 1 + len(expected)))
    if connection.vendor == "postgresql":
        assert pending_count() == 0
    result = trail_verify()
    assert result.ok, result.problem


def test_a_writer_notifies_the_sequencer_at_most_once_per_interval(settings, monkeypatch):
    from workbench.services.trail import append

    clock = [100.0]
    monkeypatch.setattr(append.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(append, "_last_notify", [0.0])
    settings.TRAIL_NOTIFY_INTERVAL_SECONDS = 0.2
    assert [append._notify_due(), append._notify_due()] == [True, False]
    clock[0] += 0.25
    assert append._notify_due()
    settings.TRAIL_NOTIFY_INTERVAL_SECONDS = 0
    assert [append._notify_due(), append._notify_due()] == [True, True]
    settings.TRAIL_NOTIFY_INTERVAL_SECONDS = -1
    assert not append._notify_due()
