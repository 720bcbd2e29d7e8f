from celery import shared_task

from workbench.services import outbox_deliver as outbox_deliver_service
from workbench.services import outbox_sweep as outbox_sweep_service
from workbench.services import trail_checkpoint as trail_checkpoint_service


@shared_task(name="workbench.tasks.trail_checkpoint", time_limit=120, soft_time_limit=100)
def trail_checkpoint():
    """Sign the chain's due checkpoints (beat, every minute; and after appends)."""
    return [checkpoint.seq for checkpoint in trail_checkpoint_service()]


# Retries are not Celery's: a failed try is recorded and rescheduled in the
# outbox row, and the sweep enqueues it again when due. The hard time limit
# stays below the service's CLAIM_LEASE (2 min), so no other worker claims a
# message while this one may still be sending it.
@shared_task(name="workbench.tasks.outbox_deliver", time_limit=60, soft_time_limit=45)
def outbox_deliver(message_id: int) -> str:
    """Deliver one outbox message if it is pending and due (after its commit; by the sweep)."""
    return outbox_deliver_service(message_id=message_id).status


@shared_task(name="workbench.tasks.outbox_deliver_many", time_limit=60, soft_time_limit=50)
def outbox_deliver_many(message_ids: list[int]) -> int:
    """Enqueue one delivery per message of a batch (intake, deadlines), so that
    the request that wrote them pushed one task, not one per message."""
    from workbench.services.outbox import outbox_fan_out

    return outbox_fan_out(message_ids=message_ids)


@shared_task(name="workbench.tasks.outbox_sweep", time_limit=60, soft_time_limit=50)
def outbox_sweep() -> int:
    """Enqueue delivery of every due outbox message (beat, every 30 s)."""
    return len(outbox_sweep_service())


# Exports can be long: a generous limit, and no retry (a failed export is
# marked failed, with its error, and can be asked for again). It stays below
# the broker's visibility timeout (CELERY_VISIBILITY_TIMEOUT, an hour), or a
# running export would be handed to a second worker.
@shared_task(name="workbench.tasks.trail_export_run", time_limit=3000, soft_time_limit=2900)
def trail_export_run(export_id: str) -> str:
    """Write one trail export's file (after its request committed)."""
    from workbench.services.export import export_run

    return export_run(export_id=export_id).status


@shared_task(name="workbench.tasks.exports_expire", time_limit=300, soft_time_limit=280)
def exports_expire() -> int:
    """Delete the files of old background exports (beat, hourly)."""
    from workbench.services.export import exports_expire as exports_expire_service

    return len(exports_expire_service())


# Safe to overlap: the update locks its cursor row, so a second run waits and
# then finds nothing (or only what arrived since) to count.
@shared_task(name="workbench.tasks.metrics_rollup", time_limit=300, soft_time_limit=280)
def metrics_rollup() -> int:
    """Count new trail events into the compliance rollups (beat, every minute)."""
    from workbench.metrics import metrics_rollup_update

    return metrics_rollup_update().events
