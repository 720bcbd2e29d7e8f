"""The sequencer killed mid-integration, and writers' PostgreSQL sessions
killed mid-commit (issue #15): nothing lost, nothing duplicated, the chain
verifies."""

import json
import signal
import time

import pytest
from django.db import connection, transaction

from tests.workbench.test_sequencer_processes import (
    assert_chain_holds_the_committed_changes,
    change_table,  # noqa: F401 (a fixture)
    outcomes,
    sequencer,
    writers,
)
from workbench.models import TrailEvent
from workbench.services import Actor, TrailEntry, trail_append_many, trail_integrate, trail_verify

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ACTOR = Actor.workbench("tests")


def integration_running() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND query LIKE '%%workbench_trail_integrate(%%' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] > 0


def test_a_sequencer_killed_mid_integration_loses_and_duplicates_nothing():
    # A backlog big enough that one integration takes a while: 400 changes of 500 events.
    for change in range(400):
        with transaction.atomic():
            trail_append_many(
                [TrailEntry("test.filler", ACTOR, data={"c": change, "i": i}) for i in range(500)]
            )
    process = sequencer(sweep="5")
    deadline = time.monotonic() + 60
    while not integration_running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert integration_running(), "the sequencer never started integrating"
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)
    # Its session ends without COMMIT: the transaction rolls back whole.
    deadline = time.monotonic() + 60
    while integration_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM workbench_trailevent")
        chained = cursor.fetchone()[0]
        cursor.execute(
            "SELECT coalesce(sum(json_array_length(events::json)), 0) FROM workbench_trailpending"
        )
        pending = cursor.fetchone()[0]
    assert chained + pending == 200_000  # all there, in the chain or still waiting
    assert chained % 500 == 0  # whole changes only
    trail_integrate()
    seen = set()
    for body in TrailEvent.objects.values_list("body", flat=True).iterator(20_000):
        data = json.loads(body)["data"]
        seen.add((data["c"], data["i"]))
    assert len(seen) == TrailEvent.objects.count() == 200_000
    assert trail_verify().ok


def test_writers_sessions_killed_mid_commit_lose_and_duplicate_nothing(change_table):  # noqa: F811
    """The writers' PostgreSQL sessions are terminated at random while they
    write and commit, beside a running sequencer (also terminated): a change
    whose commit failed either committed with its event or left neither."""
    running = sequencer()
    procs = writers(4, 80, rollback_rate=0.1)
    killed = 0
    try:
        deadline = time.monotonic() + 120
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.15)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name = '' AND state <> 'idle' "
                    "ORDER BY random() LIMIT 1"
                )
                killed += len(cursor.fetchall())
        lines = outcomes(procs)
    finally:
        running.send_signal(signal.SIGTERM)
        running.communicate(timeout=30)
    assert killed > 5
    assert any(line["committed"] is None for line in lines)  # some commits were cut
    assert_chain_holds_the_committed_changes(lines)
