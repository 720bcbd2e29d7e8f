"""The supervisor's screen (DESIGN §1): queue health and deadlines, claimed
and overdue tasks to reassign or release, open escalations, and the AI
systems' kill switch.

Only supervisors see it; anyone else gets 404. Each action posts to its own
URL, calls one service and comes back to the board: a redirect without
JavaScript, the board fragment with htmx.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import content_disposition_header
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from escalations.forms import AppealDecisionForm, AppealForm, SubjectAccessForm
from escalations.models import Appeal
from escalations.selectors import (
    AppealRules,
    appeal_for_staff,
    case_for_notice,
    notice_build,
    outcome_name,
    tasks_due_soon,
)
from escalations.services import (
    AppealRefused,
    appeal_decide,
    appeal_file,
    appeal_statement,
    appeal_statement_open,
)
from escalations.services.access import subject_access_export
from escalations.services.evidence import evidence_read
from reviews.display import case_input_view, case_output_view
from reviews.forms import SystemSwitchForm, TaskReassignForm
from reviews.models import ReviewTask
from reviews.selectors import (
    case_contests,
    case_decisions,
    case_outcome_choices,
    case_reason_choices,
    case_timeline,
    supervisor_board,
    user_roles,
)
from reviews.services.assignment import (
    KIND_ROLES,
    task_reassign,
    task_release,
    task_release_by_supervisor,
)
from reviews.services.notices import customer_language
from reviews.views import form_with_fresh_key, redirect_to
from workbench.errors import NotFound, WorkbenchError
from workbench.models import AISystem, Role
from workbench.services import Actor, ai_system_set_stopped
from workbench.views import require_compliance


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
        roles = sorted({task.queue.role, KIND_ROLES.get(task.kind, task.queue.role)})
        people = dict(pair for role in roles for pair in board.people.get(role, []))
        candidates = [
            (pk, username)
            for pk, username in sorted(people.items(), key=lambda pair: pair[1])
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
        "due_soon": tasks_due_soon(now=now),
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


# --- The customer's notice ------------------------------------------------------------------


def _notice_rate(group, request) -> str:
    return settings.NOTICE_RATE_POST if request.method == "POST" else settings.NOTICE_RATE_GET


@ratelimit(key="ip", rate=_notice_rate, method=ratelimit.ALL)
@require_http_methods(["GET", "POST"])
def notice(request, token: str):
    """The statement of reasons at the customer's link, and the appeal form.
    No login: the secret token in the link is the key. Any other token gets
    the same 404, whether or not a case exists."""
    try:
        case = case_for_notice(token=token)
    except NotFound:
        raise Http404("no such notice") from None
    with translation.override(_language(case.subject.locale)):
        if request.method == "POST":
            return _appeal_post(request, case)
        return _notice_page(request, case)


def _language(locale: str) -> str:
    """The subject's locale if we have a translation for it (``es-MX`` → ``es``),
    else the default."""
    return customer_language(locale)


def _appeal_post(request, case):
    form = AppealForm(request.POST, request.FILES)
    if not form.is_valid():
        return _notice_page(request, case, form=form, status=422)
    try:
        appeal_file(
            case=case,
            statement=form.cleaned_data["statement"],
            evidence=form.cleaned_data["evidence"],
            idempotency_key=form.cleaned_data["idempotency_key"],
        )
    except AppealRefused as error:
        if error.code == "appeal_open":
            messages.info(request, gettext("Your appeal was already received."))
            return redirect(request.path)
        return _notice_page(request, case, form=form, status=error.status, refused=True)
    except WorkbenchError as error:
        form.add_service_error(error)
        return _notice_page(request, case, form=form, status=error.status)
    messages.success(
        request,
        gettext("Your appeal was received. Below you can follow what happens to it."),
    )
    return redirect(request.path)


def _notice_page(request, case, *, form=None, status: int = 200, refused: bool = False):
    statement = notice_build(case=case)
    if form is None and statement.window.open:
        form = AppealForm.fresh()
    context = {
        "notice": statement,
        "outcome_name": outcome_name(statement.outcome),
        "window_days": AppealRules.of(case).window_days,
        "case": case,
        "form": form,
        "system": case.system,
        # What the AI saw, shaped for the customer; its answer is the
        # notice's (shown only while it is the decision in force).
        "facts": case_input_view(case, {}, hide_codes=True),
        "refused": refused,
    }
    return render(request, "escalations/notice.html", context, status=status)


def rate_limited(request, exception=None):
    """django-ratelimit's answer (``RATELIMIT_VIEW``): 429, with a page."""
    return render(request, "429.html", status=429)


# --- The appeal reviewer's page ---------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def appeal_detail(request, reference: str):
    roles = user_roles(user=request.user)
    try:
        appeal = appeal_for_staff(reference=reference, roles=roles)
    except NotFound:
        raise Http404("no such appeal") from None
    page = AppealPage(request, appeal)
    if request.method == "POST":
        return page.act()
    return page.render()


class AppealPage:
    """The appeal for one request: the case's facts first; the customer's
    statement when the reviewer opens it (logged); then the decision appealed
    and the form."""

    def __init__(self, request, appeal: Appeal):
        self.request = request
        self.appeal = appeal
        self.case = appeal.case
        task = appeal.task
        live = (
            task.status == ReviewTask.Status.CLAIMED
            and task.assignee_id == request.user.pk
            and task.lease_expires_at > timezone.now()
        )
        self.held = task if live else None
        self.opened = self.held is not None and appeal.statement_opened_by_id == request.user.pk
        self.reasons = case_reason_choices(case=self.case)

    def _form(self, **kwargs) -> AppealDecisionForm:
        return AppealDecisionForm(
            outcomes=case_outcome_choices(case=self.case),
            reason_choices=self.reasons.options,
            **kwargs,
        )

    def act(self):
        request, appeal = self.request, self.appeal
        form = self._form(data=request.POST)
        if not form.is_valid():
            return self.render(form=form, status=422)
        data = form.cleaned_data
        if data["task"] != appeal.task_id:
            raise Http404("no such task on this appeal")
        task_id, token, action = data["task"], data["fencing_token"], data["action"]
        try:
            if action == AppealDecisionForm.RELEASE:
                task_release(task_id=task_id, user=request.user, fencing_token=token)
                messages.success(request, f"Released the appeal of {self.case.reference}.")
                return redirect_to(request, reverse("reviews:queues"))
            if action == AppealDecisionForm.OPEN:
                appeal_statement_open(task_id=task_id, user=request.user, fencing_token=token)
                return redirect_to(
                    request, reverse("escalations:appeal", args=[self.case.reference])
                )
            decided = appeal_decide(
                task_id=task_id,
                user=request.user,
                fencing_token=token,
                outcome=data["outcome"],
                final_outcome=data["final_outcome"],
                reason_code=data["reason_code"],
                reasons=data["reasons"],
                idempotency_key=data["idempotency_key"],
            )
        except WorkbenchError as error:
            form.add_service_error(error)
            form = form_with_fresh_key(form)
            return self.render(form=form, status=error.status)
        messages.success(
            request,
            f"Appeal of {self.case.reference} decided: {decided.get_outcome_display()} "
            f"({decided.final_outcome}).",
        )
        return redirect_to(request, reverse("reviews:queues"))

    def render(self, *, form=None, status: int = 200):
        appeal, case, held = self.appeal, self.case, self.held
        if form is None and held is not None:
            form = AppealDecisionForm.fresh(
                task=held,
                outcomes=case_outcome_choices(case=case),
                reason_choices=self.reasons.options,
            )
        revealed = self.opened or appeal.status == Appeal.Status.DECIDED
        catalog = self.reasons.catalog
        context = {
            "appeal": appeal,
            "case": case,
            "system": case.system,
            "held": held,
            "opened": self.opened,
            "revealed": revealed,
            "form": form,
            "statement": appeal_statement(appeal) if self.opened else None,
            "evidence": list(appeal.evidence.all()) if self.opened else [],
            "input": case_input_view(case, catalog, hide_codes=not revealed),
            "contests": case_contests(case=case),
            "output": case_output_view(case, catalog),
            "hidden": not revealed,
            "confidence_pct": round(case.confidence * 100),
            "decisions": case_decisions(case=case) if revealed else [],
            "timeline": case_timeline(case=case, hide_reviews=False, blind=False)
            if revealed
            else [],
            "now": timezone.now(),
        }
        return render(self.request, "escalations/appeal.html", context, status=status)


@login_required
@require_GET
def evidence_download(request, reference: str, evidence_id):
    """One evidence file, to the appeal reviewer who opened the statement or
    to a supervisor; as a download, never rendered inline."""
    roles = user_roles(user=request.user)
    try:
        appeal = appeal_for_staff(reference=reference, roles=roles)
    except NotFound:
        raise Http404("no such appeal") from None
    allowed = appeal.statement_opened_by_id == request.user.pk or Role.SUPERVISOR in roles
    item = appeal.evidence.filter(pk=evidence_id).first() if allowed else None
    content = evidence_read(item) if item is not None else None
    if content is None:
        raise Http404("no such file")
    response = HttpResponse(content, content_type=item.content_type)
    response["Content-Disposition"] = content_disposition_header(True, item.name)
    response["Cache-Control"] = "private, no-store"
    return response


# --- Data-subject access (compliance) ------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def subject_access(request):
    """Everything about one subject as one zip, for an access request."""
    require_compliance(request)
    form = SubjectAccessForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        reference = form.cleaned_data["reference"]
        try:
            chunks = subject_access_export(
                reference=reference,
                system=form.cleaned_data["system"] or None,
                by=Actor.user(request.user),
            )
        except WorkbenchError as error:
            form.add_error("reference", error.message)
        else:
            response = StreamingHttpResponse(chunks, content_type="application/zip")
            response["Content-Disposition"] = content_disposition_header(
                True, f"subject-{reference}.zip"
            )
            response["Cache-Control"] = "private, no-store"
            return response
    status = 422 if request.method == "POST" else 200
    return render(request, "escalations/subject_access.html", {"form": form}, status=status)
