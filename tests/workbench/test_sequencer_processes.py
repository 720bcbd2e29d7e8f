"""The sequencer under concurrent writing processes (issue #15): writers
with random sleeps and rollbacks, two sequencer processes beside them, and
readers integrating too. Afterwards the chain has no gap and no fork, every
committed change has exactly one event, no rolled-back change has one, and
a change that began after another had committed comes after it."""

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from workbench.models import TrailEvent
from workbench.services import trail_integrate, trail_verify

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def database_url() -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def process_env() -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "workbench.settings.test",
    }


@pytest.fixture
def change_table():
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE trail_test_change (writer int, number int, PRIMARY KEY (writer, number))"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE trail_test_change")


def sequencer(sweep: str = "0.05") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "trail_sequencer", "--sweep", sweep],
        cwd=ROOT,
        env=process_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def writers(count: int, changes: int, rollback_rate: float = 0.25) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.workbench.trail_writer",
                str(w),
                str(changes),
                str(1000 + w),
                str(rollback_rate),
            ],
            cwd=ROOT,
            env=process_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(count)
    ]


def outcomes(processes: list[subprocess.Popen], timeout: float = 300) -> list[dict]:
    lines = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, err
        lines += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return lines


def assert_chain_holds_the_committed_changes(lines: list[dict]) -> None:
    """The properties, on what the writers reported and what is in the database."""
    trail_integrate()
    result = trail_verify()
    assert result.ok, result.problem  # no gap, no fork: seq 1..n, each linking the one before
    with connection.cursor() as cursor:
        cursor.execute("SELECT writer, number FROM trail_test_change")
        rows = {tuple(row) for row in cursor.fetchall()}
        cursor.execute("SELECT count(*) FROM workbench_trailpending")
        assert cursor.fetchone() == (0,)
    seq_of: dict[tuple, list[int]] = {}
    for seq, body in TrailEvent.objects.filter(action="test.change").values_list("seq", "body"):
        data = json.loads(body)["data"]
        seq_of.setdefault((data["w"], data["n"]), []).append(seq)
    # Every change in the database has exactly one event, and every event its change.
    assert set(seq_of) == rows
    assert all(len(seqs) == 1 for seqs in seq_of.values())
    reported = {(line["w"], line["n"]): line for line in lines}
    for key, line in reported.items():
        if line["committed"] is True:
            assert key in rows, key
        elif line["committed"] is False:
            assert key not in rows, key
    # Commit order: a change that began after another ended comes after it.
    done = sorted(
        (line for line in lines if (line["w"], line["n"]) in rows), key=lambda line: line["end"]
    )
    for first in done:
        first_seq = seq_of[(first["w"], first["n"])][0]
        for second in done:
            if second["start"] > first["end"]:
                assert seq_of[(second["w"], second["n"])][0] > first_seq, (first, second)


def test_concurrent_writers_with_rollbacks_keep_every_committed_change_once_in_order(
    change_table,
):
    sequencers = [sequencer(), sequencer()]
    try:
        lines = outcomes(writers(6, 60))
    finally:
        for process in sequencers:
            process.send_signal(signal.SIGTERM)
        for process in sequencers:
            process.communicate(timeout=30)
    counts = Counter(line["committed"] for line in lines)
    assert counts[True] > 150 and counts[False] > 30, counts  # both kinds, plenty
    assert_chain_holds_the_committed_changes(lines)
