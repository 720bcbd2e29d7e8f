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
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from escalations.forms import (
    QueueMembersForm,
    SystemSwitchForm,
    TaskReassignForm,
)
from escalations.selectors import (
    supervisor_board,
    tasks_due_soon,
)
from escalations.services.supervision import task_reassign, task_release_by_supervisor
from reviews.access import systems_overseen
from reviews.models import Queue, ReviewTask
from reviews.services.assignment import KIND_ROLES
from reviews.services.queue_members import queue_members_set
from workbench.errors import NotFound, WorkbenchError
from workbench.models import Role
from workbench.services import Actor, ai_system_set_stopped
from workbench.web import redirect_to, role_required


@login_required
@require_GET
@role_required(Role.SUPERVISOR)
def supervisor(request):
    return _board(request)


@login_required
@require_POST
@role_required(Role.SUPERVISOR)
def task_reassign_view(request, task_id: int):
    form = TaskReassignForm(request.POST)
    if not form.is_valid():
        return _board(request, errors={("task", task_id): _first_error(form)}, status=422)
    try:
        task = task_reassign(task_id=task_id, to_user=form.cleaned_data["to_user"], by=request.user)
    except NotFound:
        raise Http404("no such task") from None  # not one of their board's: says nothing more
    except WorkbenchError as error:
        return _board(request, errors={("task", task_id): error.message}, status=error.status)
    messages.success(request, f"{task.case.reference} is now with {task.assignee.get_username()}.")
    return _back(request, task)


@login_required
@require_POST
@role_required(Role.SUPERVISOR)
def task_release_view(request, task_id: int):
    try:
        task = task_release_by_supervisor(task_id=task_id, by=request.user)
    except NotFound:
        raise Http404("no such task") from None
    except WorkbenchError as error:
        return _board(request, errors={("task", task_id): error.message}, status=error.status)
    messages.success(request, f"Released {task.case.reference}: it is back in {task.queue.name}.")
    return _back(request, task)


@login_required
@require_POST
@role_required(Role.SUPERVISOR)
def system_switch(request, slug: str):
    system = get_object_or_404(systems_overseen(user=request.user), slug=slug)
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


@login_required
@require_http_methods(["GET", "POST"])
@role_required(Role.SUPERVISOR)
def queue_members(request, queue_id: int):
    """The members of a queue on the supervisor's board: when it lists
    some, only they see and work it; none, everyone with its role."""
    queue = get_object_or_404(
        Queue.objects.select_related("system").filter(
            system__in=systems_overseen(user=request.user)
        ),
        pk=queue_id,
    )
    form = QueueMembersForm(request.POST or None, queue=queue)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                members = queue_members_set(
                    queue=queue,
                    users=list(form.cleaned_data["members"]),
                    actor=Actor.user(request.user),
                )
            except WorkbenchError as error:
                form.add_error("members", error.message)
                status = error.status
            else:
                who = ", ".join(members) if members else f"everyone with the {queue.role} role"
                messages.success(request, f"{queue.name} is now worked by {who}.")
                return redirect("escalations:supervisor")
        else:
            status = 422
    return render(
        request, "escalations/queue_members.html", {"queue": queue, "form": form}, status=status
    )


def _first_error(form) -> str:
    return next(iter(form.errors.values()))[0]


def _back(request, task=None):
    if task is not None and request.POST.get("back") == "case":
        # Acted from the case page: back to it.
        return redirect_to(request, reverse("reviews:case", args=[task.case.reference]))
    if request.htmx:
        return _board(request)
    return redirect("escalations:supervisor")


def _board(request, *, errors: dict | None = None, status: int = 200):
    errors = errors or {}
    now = timezone.now()
    board = supervisor_board(user=request.user, now=now)
    attention = []
    for task in board.attention:
        excluded = {user.pk for user in task.excluded.all()}
        members = board.members.get(task.queue_id)
        roles = sorted({task.queue.role, KIND_ROLES.get(task.kind, task.queue.role)})
        people = dict(pair for role in roles for pair in board.people.get(role, []))
        candidates = [
            (pk, username)
            for pk, username in sorted(people.items(), key=lambda pair: pair[1])
            if pk not in excluded and pk != task.assignee_id and (not members or pk in members)
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
        "due_soon": tasks_due_soon(now=now, systems=systems_overseen(user=request.user)),
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
