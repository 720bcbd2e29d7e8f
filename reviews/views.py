"""The reviewer's screens: my queues, claim next, and the case page with its
decision form (DESIGN §5b).

Views are thin: they read through selectors, call one service and render.
Each URL serves its page and, for htmx, the fragment it swaps. Every form
has a real action, so the screens work without JavaScript.
"""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from reviews.display import case_input_view, case_output_view
from reviews.forms import ClaimForm, DecisionForm
from reviews.models import Case, Queue, ReviewTask
from reviews.selectors import (
    CaseForReviewer,
    case_decisions,
    case_for_reviewer,
    case_timeline,
    queues_overview,
    reason_code_catalog,
    route_explained,
    tasks_held,
    user_roles,
)
from reviews.services.decisions import DecisionInput, decision_record
from reviews.services.tasks import task_claim_next, task_release
from workbench.errors import NotFound, WorkbenchError
from workbench.models import Role

QUEUE_ROLES = {Role.REVIEWER, Role.APPEAL_REVIEWER, Role.SUPERVISOR}
ROUTE_REASONS = {
    "rule": "A rule of the policy sent it to a person.",
    "qa_sample": "Picked for the quality-assurance sample: a person re-checks a share of the "
    "cases the AI decided alone.",
    "system_stopped": "The AI system was stopped (kill switch): every case goes to a person.",
    "default": "No rule matched.",
}


def redirect_to(request, url: str):
    """A redirect that htmx turns into a full navigation (a plain 302 would be
    followed inside the request and the next page swapped into the form)."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


# --- My queues ----------------------------------------------------------------------------


@login_required
@require_GET
def queue_list(request):
    roles = user_roles(user=request.user)
    if not roles & QUEUE_ROLES and request.user.is_staff:
        return redirect("admin:index")
    now = timezone.now()
    queues = queues_overview(roles=roles, now=now, user=request.user)
    context = {
        "queues": queues,
        "held": tasks_held(user=request.user),
        "waiting": sum(queue.claimable_count for queue in queues),
        "now": now,
        "has_queue_role": bool(roles & QUEUE_ROLES),
    }
    template = "reviews/queues.html#queue-table" if request.htmx else "reviews/queues.html"
    return render(request, template, context)


@login_required
@require_POST
def claim_next(request):
    user_roles(user=request.user)  # one read of the groups, reused by the service
    form = ClaimForm(request.POST)
    if not form.is_valid():
        raise Http404("no such queue")
    queue_id = form.cleaned_data["queue"]
    task = task_claim_next(user=request.user, queue_id=queue_id)
    if task is None:
        queue = Queue.objects.filter(pk=queue_id).first() if queue_id else None
        where = f"in {queue.name}" if queue else "in your queues"
        messages.info(request, f"Nothing left for you to claim {where}.")
        return redirect_to(request, reverse("reviews:queues"))
    return redirect_to(request, reverse("reviews:case", args=[task.case.reference]))


# --- The case page ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def case_detail(request, reference: str):
    roles = user_roles(user=request.user)
    try:
        found = case_for_reviewer(reference=reference, roles=roles)
    except NotFound:
        # The same answer as for a case that does not exist: references do not leak.
        raise Http404("no such case") from None
    if _appeal_only(found, roles, request.user):
        # The appeal page shows the decision appealed only once the customer's
        # statement is opened. (The URL name is the one link to escalations.)
        return redirect("escalations:appeal", reference)
    page = CasePage(request, found)
    if request.method == "POST":
        return page.decide()
    return page.render()


def _appeal_only(found: CaseForReviewer, roles: set[str], user) -> bool:
    """The user holds the case's appeal, or sees the case only through it."""
    held = found.held_by(user)
    if held is not None:
        return held.kind == ReviewTask.Kind.APPEAL
    appeal = any(t.kind == ReviewTask.Kind.APPEAL for t in found.active_tasks)
    other_roles = {t.queue.role for t in found.tasks if t.kind != ReviewTask.Kind.APPEAL}
    return appeal and not roles & other_roles


def _blind_key(task_id: int, fencing_token: int) -> str:
    return f"blind-outcome:{task_id}:{fencing_token}"


class CasePage:
    """The case page for one request: what it shows, and the decision it takes."""

    def __init__(self, request, found: CaseForReviewer):
        self.request = request
        self.found = found
        self.case: Case = found.case
        self.held: ReviewTask | None = found.held_by(request.user)
        self.outcomes: list[str] = list(self.case.policy.document.get("outcomes") or [])
        self.reason_codes, self.catalog = reason_code_catalog(
            system=self.case.system, codes=self._codes_shown()
        )

    # -- the decision --

    def decide(self):
        request, case = self.request, self.case
        form = self._form(data=request.POST)
        if not form.is_valid():
            return self.render(form=form, status=422)
        data = form.cleaned_data
        task = next((t for t in self.found.tasks if t.pk == data["task"]), None)
        if task is None:
            raise Http404("no such task on this case")
        action, token = data["action"], data["fencing_token"]
        blind_key = _blind_key(task.pk, token)
        blind = task.queue.blind and task.kind != ReviewTask.Kind.ESCALATION
        try:
            if action == DecisionForm.RELEASE:
                task_release(task_id=task.pk, user=request.user, fencing_token=token)
                request.session.pop(blind_key, None)
                messages.success(request, f"Released {case.reference}: it is back in its queue.")
                return redirect_to(request, reverse("reviews:queues"))
            if action == DecisionForm.COMMIT:
                return self._commit(form, task, token, blind_key)
            chosen = request.session.get(blind_key) if blind else None
            if blind and action != DecisionForm.ESCALATE:
                if chosen is None:
                    form.add_error("outcome", "choose your outcome and commit it first")
                    return self.render(form=form, status=422)
                decision = DecisionInput.blind(
                    chosen=chosen,
                    ai_outcome=case.outcome,
                    reason_code=data["reason_code"],
                    rationale=data["rationale"],
                )
            else:
                decision = DecisionInput(
                    verdict=action,
                    outcome=data["outcome"],
                    reason_code=data["reason_code"],
                    rationale=data["rationale"],
                    # In a blind queue, escalating before committing is blind too.
                    ai_visible=not blind or chosen is not None,
                )
            record = decision_record(
                task_id=task.pk,
                user=request.user,
                fencing_token=token,
                decision=decision,
                idempotency_key=data["idempotency_key"],
            )
        except WorkbenchError as error:
            form.add_service_error(error)
            return self.render(form=form, status=error.status, failed_task=task)
        request.session.pop(blind_key, None)
        messages.success(request, _decided_message(record))
        return redirect_to(request, reverse("reviews:queues"))

    def _commit(self, form, task: ReviewTask, token: int, blind_key: str):
        """Blind review, step one: keep the reviewer's outcome (once) before
        the AI's is shown. Nothing is recorded until they confirm."""
        held = self.held
        if held is None or held.pk != task.pk or held.fencing_token != token:
            form.add_error(None, "this task is no longer yours: claim the next one")
            return self.render(form=form, status=409, failed_task=task)
        outcome = form.cleaned_data["outcome"]
        if not outcome:
            form.add_error("outcome", "choose your outcome first")
            return self.render(form=form, status=422)
        # The first commitment stands: seeing the AI's outcome must not change it.
        self.request.session.setdefault(blind_key, outcome)
        return redirect_to(self.request, reverse("reviews:case", args=[self.case.reference]))

    # -- the page --

    def _form(self, **kwargs) -> DecisionForm:
        return DecisionForm(outcomes=self.outcomes, reason_codes=self.reason_codes, **kwargs)

    def render(self, *, form: DecisionForm | None = None, status: int = 200, failed_task=None):
        request, case, held = self.request, self.case, self.held
        blind_queue = (
            held is not None and held.queue.blind and held.kind != ReviewTask.Kind.ESCALATION
        )
        blind_choice = None
        if blind_queue:
            blind_choice = request.session.get(_blind_key(held.pk, held.fencing_token))
        blind_pending = any(
            t.queue.blind and t.kind != ReviewTask.Kind.ESCALATION for t in self.found.active_tasks
        )
        hidden = blind_pending and blind_choice is None
        if form is None and held is not None:
            form = DecisionForm.fresh(
                task=held,
                default_outcome="" if hidden else case.outcome,
                outcomes=self.outcomes,
                reason_codes=self.reason_codes,
            )
        elif form is not None:
            form = form_with_fresh_key(form, held if held and held == failed_task else None)
        form_live = held is not None and (failed_task is None or failed_task.pk == held.pk)
        route = case.route or {}
        context = {
            "case": case,
            "system": case.system,
            "tasks": self.found.tasks,
            "active_tasks": self.found.active_tasks,
            "held": held,
            "form": form,
            "form_live": form_live,
            "hidden": hidden,
            "blind_queue": blind_queue,
            "blind_choice": blind_choice,
            "blind_agrees": blind_choice == case.outcome if blind_choice else None,
            "input": case_input_view(case, self.catalog, hide_codes=hidden),
            "output": case_output_view(case, self.catalog),
            "confidence_pct": round(case.confidence * 100),
            "route": route,
            "route_reason": ROUTE_REASONS.get(route.get("reason", ""), ""),
            "rules": route_explained(route=route, blind=hidden),
            "timeline": case_timeline(
                case=case, hide_reviews=self.found.second_review_pending, blind=hidden
            ),
            # Earlier decisions with their rationale (the trail holds only its
            # digest): what a supervisor needs to settle an escalation. Kept
            # out of sight like the first review and the blind AI outcome.
            "decisions": [] if hidden or self.found.second_review_pending else None,
            "now": timezone.now(),
        }
        if request.htmx:
            return render(request, "reviews/case.html#decision", context, status=status)
        if context["decisions"] is None:
            context["decisions"] = case_decisions(case=case)
        return render(request, "reviews/case.html", context, status=status)

    def _codes_shown(self) -> set[str]:
        codes = {
            str(reason.get("code"))
            for reason in self.case.output.get("reasons") or []
            if isinstance(reason, dict)
        }
        lines = self.case.input.get("lines") if isinstance(self.case.input, dict) else None
        for line in lines if isinstance(lines, list) else []:
            if isinstance(line, dict) and isinstance(line.get("reason_codes"), list):
                codes.update(str(code) for code in line["reason_codes"])
        return codes


def form_with_fresh_key(form, held: ReviewTask | None = None):
    """The form as the user sent it, with a new idempotency key (each render
    is its own decision) and, if they hold the task again, its new token."""
    data = form.data.copy()
    data["idempotency_key"] = uuid.uuid4().hex
    if held is not None:
        data["fencing_token"] = str(held.fencing_token)
    form.data = data
    return form


def _decided_message(record) -> str:
    case, task = record.case, record.task
    if record.verdict == DecisionForm.ESCALATE:
        return f"Escalated {case.reference} to the supervisors."
    if case.status == Case.Status.FINALIZED:
        how = "agreed with the AI" if record.verdict == DecisionForm.AGREE else "overridden"
        return f"Decided {case.reference}: {case.final_outcome} ({how})."
    if task.status == ReviewTask.Status.OPEN:
        return f"Your review of {case.reference} is recorded; a second reviewer will decide too."
    return f"The two reviews of {case.reference} differ: it goes to a supervisor."
