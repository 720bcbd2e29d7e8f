"""The supervisor's screen (DESIGN §1): queue health and deadlines, claimed
and overdue tasks to reassign or release, open escalations, and the AI
systems' kill switch.

Only supervisors see it; anyone else gets 404. Each action posts to its own
URL, calls one service and comes back to the board: a redirect without
JavaScript, the board fragment with htmx.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from reviews.forms import SystemSwitchForm, TaskReassignForm
from reviews.models import ReviewTask
from reviews.selectors import supervisor_board, user_roles
from reviews.services.tasks import task_reassign, task_release_by_supervisor
from workbench.errors import WorkbenchError
from workbench.models import AISystem, Role
from workbench.services import Actor, ai_system_set_stopped


def _require_supervisor(request) -> None:
    if Role.SUPERVISOR not in user_roles(user=request.user):
        raise Http404("no such page")


@login_required
@require_GET
def supervisor(request):
    _require_supervisor(request)
    return _board(request)


@login_required
@require_POST
def task_reassign_view(request, task_id: int):
    _require_supervisor(request)
    form = TaskReassignForm(request.POST)
    if not form.is_valid():
        return _board(request, errors={("task", task_id): _first_error(form)}, status=422)
    try:
        task = task_reassign(task_id=task_id, to_user=form.cleaned_data["to_user"], by=request.user)
    except WorkbenchError as error:
        return _board(request, errors={("task", task_id): error.message}, status=error.status)
    messages.success(request, f"{task.case.reference} is now with {task.assignee.get_username()}.")
    return _back(request)


@login_required
@require_POST
def task_release_view(request, task_id: int):
    _require_supervisor(request)
    try:
        task = task_release_by_supervisor(task_id=task_id, by=request.user)
    except WorkbenchError as error:
        return _board(request, errors={("task", task_id): error.message}, status=error.status)
    messages.success(request, f"Released {task.case.reference}: it is back in {task.queue.name}.")
    return _back(request)


@login_required
@require_POST
def system_switch(request, slug: str):
    _require_supervisor(request)
    system = get_object_or_404(AISystem, slug=slug)
    form = SystemSwitchForm(request.POST)
    if not form.is_valid():
        return _board(request, errors={("system", slug): _first_error(form)}, status=422)
    stopped = form.cleaned_data["stopped"]
    try:
        system = ai_system_set_stopped(
            system=system,
            stopped=stopped,
            reason=form.cleaned_data["reason"],
            actor=Actor.user(request.user),
        )
    except WorkbenchError as error:
        return _board(request, errors={("system", slug): error.message}, status=error.status)
    if system.stopped:
        messages.warning(request, f"Stopped {system.name}: every case it sends goes to a person.")
    else:
        messages.success(request, f"Restarted {system.name}: its policy routes its cases again.")
    return _back(request)


def _first_error(form) -> str:
    return next(iter(form.errors.values()))[0]


def _back(request):
    if request.htmx:
        return _board(request)
    return redirect("escalations:supervisor")


def _board(request, *, errors: dict | None = None, status: int = 200):
    errors = errors or {}
    now = timezone.now()
    board = supervisor_board(now=now)
    attention = []
    for task in board.attention:
        excluded = {user.pk for user in task.excluded.all()}
        candidates = [
            (pk, username)
            for pk, username in board.people.get(task.queue.role, [])
            if pk not in excluded and pk != task.assignee_id
        ]
        attention.append(
            {
                "task": task,
                "candidates": candidates,
                "overdue": task.due_at < now,
                "error": errors.pop(("task", task.pk), ""),
            }
        )
    systems = [
        {"system": system, "error": errors.pop(("system", system.slug), "")}
        for system in board.systems
    ]
    context = {
        "board": board,
        "attention": attention,
        "systems": systems,
        "supervisor_queues": [q for q in board.queues if q.role == Role.SUPERVISOR],
        # Errors without a row on the board (e.g. a task that is done by now).
        "other_errors": list(errors.values()),
        "now": now,
        "claimed": ReviewTask.Status.CLAIMED,
        # A full page shows messages in base.html; the htmx fragment shows its own.
        "fragment": bool(request.htmx),
    }
    template = (
        "escalations/supervisor.html#board" if request.htmx else "escalations/supervisor.html"
    )
    return render(request, template, context, status=status)
