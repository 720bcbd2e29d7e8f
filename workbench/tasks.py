from celery import shared_task

from workbench.services import trail_checkpoint as trail_checkpoint_service


@shared_task(name="workbench.tasks.trail_checkpoint", time_limit=120, soft_time_limit=100)
def trail_checkpoint():
    """Sign the chain's due checkpoints (beat, every minute; and after appends)."""
    return [checkpoint.seq for checkpoint in trail_checkpoint_service()]
