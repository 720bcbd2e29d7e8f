"""Health endpoints for load balancers and orchestrators.

``/healthz`` (liveness): the process answers; it touches nothing else, so a
slow database does not get healthy web processes restarted. ``/readyz``
(readiness): the database answers, the Celery broker answers, the
trail's head row agrees with its last event and no event has waited too
long for its seq; 503 with the failing check
otherwise, so traffic goes elsewhere until it recovers.
"""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from workbench.http import client_ip
from workbench.models import TrailEvent, TrailHead
from workbench.services import trail_merge_delay

BROKER_TIMEOUT = 2  # seconds


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    checks = {
        "database": _database(),
        "broker": _broker(),
        "trail": _trail(),
        "trail_merge_delay": _merge_delay(),
    }
    ready = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 (any failure means not ready)
        return f"error: {type(exc).__name__}"
    return "ok"


def _broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "ok"  # the embedded default: tasks run in the web process
    from workbench.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        return f"error: {type(exc).__name__}"
    return "ok"


def _trail() -> str:
    """The head names the last event (the last step of every append)."""
    try:
        head = TrailHead.objects.filter(id=1).first()
        last = TrailEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    except Exception as exc:  # noqa: BLE001
        return f"error: {type(exc).__name__}"
    if last is None:
        return "ok" if head is None or head.seq == 0 else "error: head without events"
    if head is None or (head.seq, head.hash) != last:
        return "error: the head does not name the last event"
    return "ok"


def _merge_delay() -> str:
    """No change has waited longer than ``TRAIL_MERGE_DELAY_MAX_SECONDS``
    for its trail events' ``seq`` (the sequencer is keeping up)."""
    try:
        waited = trail_merge_delay()
    except Exception as exc:  # noqa: BLE001
        return f"error: {type(exc).__name__}"
    if waited > settings.TRAIL_MERGE_DELAY_MAX_SECONDS:
        return f"error: an event has waited {waited:.1f} s for its seq"
    return "ok"


@never_cache
@require_GET
def metrics(request):
    """Prometheus metrics (django-prometheus, and the queue gauges of
    ``reviews.prometheus``), for the scraper's addresses only: everyone else
    gets 404."""
    from django.http import Http404
    from django_prometheus.exports import ExportToDjangoView

    if client_ip(request) not in settings.METRICS_ALLOWED_IPS:
        raise Http404("no such page")
    return ExportToDjangoView(request)
