"""The one Celery app. Tasks take ids and call services; the beat schedule lives here."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings.local")

app = Celery("workbench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "trail-checkpoint": {
        "task": "workbench.tasks.trail_checkpoint",
        "schedule": 60.0,
    },
    "leases-expire": {
        "task": "reviews.tasks.leases_expire",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "deadlines-escalate": {
        "task": "escalations.tasks.deadlines_escalate",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # The compliance dashboard's rollups; a run still queued at the next is redundant.
    "metrics-rollup": {
        "task": "workbench.tasks.metrics_rollup",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "queue-counts-fold": {
        "task": "reviews.tasks.queue_counts_fold",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "exports-expire": {
        "task": "workbench.tasks.exports_expire",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
    # The outbox's retry schedule and its catch-up for lost delivery tasks.
    # A sweep still queued when the next one is due is redundant: it expires.
    "outbox-sweep": {
        "task": "workbench.tasks.outbox_sweep",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
}
