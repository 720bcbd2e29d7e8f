"""The queue counts' upkeep (``QueueTaskCount``)."""

from django.db import connection, transaction

FOLD_SQL = """
WITH folded AS (
    DELETE FROM reviews_queuetaskcount
    WHERE id IN (SELECT id FROM reviews_queuetaskcount WHERE slot <> 0 FOR UPDATE SKIP LOCKED)
    RETURNING queue_id, open, claimed
), merged AS (
    INSERT INTO reviews_queuetaskcount (queue_id, slot, open, claimed)
    SELECT queue_id, 0, sum(open), sum(claimed) FROM folded GROUP BY queue_id ORDER BY queue_id
    ON CONFLICT (queue_id, slot) DO UPDATE
    SET open = reviews_queuetaskcount.open + EXCLUDED.open,
        claimed = reviews_queuetaskcount.claimed + EXCLUDED.claimed
)
SELECT count(*) FROM folded
"""


def queue_task_counts_fold() -> int:
    """Fold the per-connection rows of the queue counts into one row per
    queue (PostgreSQL; see ``QueueTaskCount``), so that a queue's counts stay
    a sum of a few rows however many connections came and went. Rows of
    transactions still running are locked and left for the next fold; the
    slot-0 rows are written in queue order, so two folds cannot deadlock.
    Returns how many rows were folded. Derived data: no trail event."""
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(FOLD_SQL)
        return cursor.fetchone()[0]
