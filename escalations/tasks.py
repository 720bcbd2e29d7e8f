from celery import shared_task

from escalations.services import tasks_escalate_overdue


@shared_task(name="escalations.tasks.deadlines_escalate", time_limit=120, soft_time_limit=100)
def deadlines_escalate() -> int:
    """Move tasks past their due time to the supervisors (beat, every minute)."""
    return tasks_escalate_overdue()
