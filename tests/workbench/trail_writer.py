"""One writing process for the sequencer's ordering/loss tests:
``python -m tests.workbench.trail_writer WRITER CHANGES SEED [ROLLBACK_RATE]``.

Each change inserts a row into ``trail_test_change`` (made by the test) and
records one trail event for it, in one transaction, with random sleeps
inside it; a share of the changes roll back on purpose. Now and then the
writer reads the chain as a reader would (``trail_integrate``). Prints one
JSON line per change: writer, number, "committed" (true, false, or null
when the commit itself failed: the outcome is not known to the writer),
and the monotonic clock (shared by the machine's processes) before the
transaction began and after it ended."""

import json
import random
import sys
import time

import django


class Rollback(Exception):
    pass


def main(writer: int, changes: int, seed: int, rollback_rate: float) -> None:
    django.setup()
    from django.db import DatabaseError, InterfaceError, connection, transaction

    from workbench.services import Actor, trail_append, trail_integrate

    rng = random.Random(seed)
    actor = Actor.workbench(f"writer-{writer}")
    for number in range(changes):
        started = time.monotonic_ns()
        committed = True
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "INSERT INTO trail_test_change (writer, number) VALUES (%s, %s)",
                        [writer, number],
                    )
                time.sleep(rng.random() * 0.01)
                trail_append(action="test.change", actor=actor, data={"w": writer, "n": number})
                time.sleep(rng.random() * 0.01)
                if rng.random() < rollback_rate:
                    raise Rollback
        except Rollback:
            committed = False
        except (DatabaseError, InterfaceError):
            committed = None  # the session was killed: committed or not, unknown here
            connection.close()
        ended = time.monotonic_ns()
        line = {"w": writer, "n": number, "committed": committed, "start": started, "end": ended}
        print(json.dumps(line), flush=True)
        if rng.random() < 0.1:
            try:
                trail_integrate()
            except (DatabaseError, InterfaceError):
                connection.close()


if __name__ == "__main__":
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else 0.25
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), rate)
