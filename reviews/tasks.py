from celery import shared_task

from reviews.services.assignment import queue_task_counts_fold, task_leases_expire


@shared_task(name="reviews.tasks.leases_expire", time_limit=60, soft_time_limit=50)
def leases_expire():
    """Return tasks whose lease ran out to their queues (beat, every minute)."""
    return task_leases_expire()


@shared_task(name="reviews.tasks.queue_counts_fold", time_limit=60, soft_time_limit=50)
def queue_counts_fold():
    """Fold the queue counts' per-connection rows (beat, every minute)."""
    return queue_task_counts_fold()
