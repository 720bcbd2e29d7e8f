"""The reviewer's screens: my queues, claim next, and the case page with its
decision form (DESIGN §5b).

Views are thin: they read through selectors, call one service and render.
Each URL serves its page and, for htmx, the fragment it swaps. Every form
has a real action, so the screens work without JavaScript.
"""

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviews.access import CaseAccess, task_people
from reviews.display import CaseFacts, TaskFacts, case_input_view, case_output_view
from reviews.forms import CaseViewPurposeForm, ClaimForm, DecisionForm
from reviews.models import Case, Queue, ReviewTask
from reviews.selectors import (
    CaseForReviewer,
    case_contests,
    case_decisions,
    case_for_compliance,
    case_for_reviewer,
    case_outcome_choices,
    case_reason_choices,
    case_timeline,
    queues_overview,
    route_explained,
    tasks_held,
)
from reviews.selectors.search import SEARCH_MAX_RESULTS, SearchRefused, cases_search
from reviews.services.assignment import KIND_ROLES, HoldLimitReached, task_claim_next, task_release
from reviews.services.case_views import case_view_record
from reviews.services.decisions import decision_input, decision_record, task_is_blind
from reviews.services.held import task_lease_renew, task_recuse
from workbench.errors import NotFound, WorkbenchError
from workbench.models import Role
from workbench.selectors import user_roles
from workbench.web import form_with_fresh_key, redirect_to, role_required

QUEUE_ROLES = {Role.REVIEWER, Role.APPEAL_REVIEWER, Role.SUPERVISOR}
ROUTE_REASONS = {
    "rule": "A rule of the policy sent it to a person.",
    "qa_sample": "Picked for the quality-assurance sample: a person re-checks a share of the "
    "cases the AI decided alone.",
    "system_stopped": "The AI system was stopped (kill switch): every case goes to a person.",
    "default": "No rule matched.",
}
ROUTE_WITHHELD = (
    "Why the policy sent it to a person is shown once you commit to your outcome: "
    "it may depend on the AI's outcome or confidence."
)


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
    try:
        task = task_claim_next(user=request.user, queue_id=queue_id)
    except HoldLimitReached as limit:
        # At the queue's hold limit: open the case they hold, and say why.
        messages.warning(request, limit.message)
        return redirect_to(request, reverse("reviews:case", args=[limit.held.case.reference]))
    if task is None:
        queue = Queue.objects.filter(pk=queue_id).first() if queue_id else None
        where = f"in {queue.name}" if queue else "in your queues"
        messages.info(request, f"Nothing left for you to claim {where}.")
        return redirect_to(request, reverse("reviews:queues"))
    return redirect_to(request, reverse("reviews:case", args=[task.case.reference]))


# --- Search ---------------------------------------------------------------------------------


@role_required(Role.REVIEWER, Role.APPEAL_REVIEWER, Role.SUPERVISOR, Role.COMPLIANCE, Role.ADMIN)
@require_GET
def search(request):
    """Cases by reference, external id or subject reference, among those the
    user may open. A read: no trail event, and the term is logged nowhere."""
    q = request.GET.get("q", "")
    context = {"q": q.strip(), "hits": [], "refused": None, "limit": SEARCH_MAX_RESULTS}
    try:
        context["hits"] = cases_search(user=request.user, roles=user_roles(user=request.user), q=q)
    except SearchRefused as refused:
        context["refused"] = refused.message
    template = "reviews/search.html#search-results" if request.htmx else "reviews/search.html"
    return render(request, template, context)


# --- The case page ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def case_detail(request, reference: str):
    roles = user_roles(user=request.user)
    try:
        found = case_for_reviewer(reference=reference, user=request.user, roles=roles)
    except NotFound:
        if Role.COMPLIANCE in roles and request.method == "GET" and _reference_shaped(reference):
            # A compliance officer opens any case, once they say why.
            return redirect_to(request, reverse("reviews:case-view", args=[reference]))
        # The same answer as for a case that does not exist: references do not leak.
        raise Http404("no such case") from None
    if found.access != CaseAccess.SUPERVISE and _appeal_only(found, roles, request.user):
        # The appeal page shows the decision appealed only once the customer's
        # statement is opened. (The URL name is the one link to escalations.)
        return redirect("escalations:appeal", reference)
    page = CasePage(request, found)
    if request.method == "POST":
        if found.read_only:
            raise Http404("no task of yours on this case")
        return page.decide()
    return page.render()


@login_required
@require_http_methods(["GET", "POST"])
@role_required(Role.COMPLIANCE)
def case_view(request, reference: str):
    """A compliance officer opens a case read-only: first the purpose (GET:
    the form, for any reference, so it says nothing of whether the case
    exists), then, with the POST that records it (``case.viewed``), the case."""
    if not _reference_shaped(reference):
        raise Http404("no such case")
    form = CaseViewPurposeForm(request.POST if request.method == "POST" else None)
    if request.method == "GET" or not form.is_valid():
        status = 422 if request.method == "POST" else 200
        context = {"form": form, "reference": reference}
        return render(request, "reviews/case_view_purpose.html", context, status=status)
    try:
        found = case_for_compliance(reference=reference)
    except NotFound:
        raise Http404("no such case") from None
    case_view_record(case=found.case, user=request.user, purpose=form.cleaned_data["purpose"])
    return CasePage(request, found).render(full=True)


def _reference_shaped(reference: str) -> bool:
    """Shaped like a case reference (``WB-XXXX-XXXX``): anything else is no case."""
    return re.fullmatch(r"WB-[0-9A-Z]{4}-[0-9A-Z]{4}", reference) is not None


def _appeal_only(found: CaseForReviewer, roles: set[str], user) -> bool:
    """The user holds the case's appeal, or sees the case only through it."""
    held = found.held_by(user)
    if held is not None:
        return held.kind == ReviewTask.Kind.APPEAL
    appeal = any(t.kind == ReviewTask.Kind.APPEAL for t in found.active_tasks)
    other_roles = {t.queue.role for t in found.tasks if t.kind != ReviewTask.Kind.APPEAL}
    return appeal and not roles & other_roles


def _blind_key(task_id: int) -> str:
    # Per task, not per lease: a commitment made before a release still
    # stands when the same reviewer claims the task again (they have seen the
    # AI's recommendation since), so it cannot be made again.
    return f"blind-outcome:{task_id}"


class CasePage:
    """The case page for one request: what it shows, and the decision it takes.

    Before a blind reviewer commits (``hidden``), the page is built from the
    allow-lists of ``reviews.selectors`` (``BLIND_VIEW``) and nothing else
    reaches the template: not the case, its output or its route."""

    def __init__(self, request, found: CaseForReviewer):
        self.request = request
        self.found = found
        self.case: Case = found.case
        self.held: ReviewTask | None = found.held_by(request.user)
        self.blind_queue = self.held is not None and task_is_blind(self.held)
        self.blind_choice: str | None = None
        if self.blind_queue:
            self.blind_choice = request.session.get(_blind_key(self.held.pk))
        blind_pending = any(task_is_blind(task) for task in found.active_tasks)
        self.hidden = blind_pending and self.blind_choice is None
        self.outcomes = case_outcome_choices(case=self.case, blind=self.hidden)
        self.reasons = case_reason_choices(case=self.case, blind=self.hidden)

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
        blind_key = _blind_key(task.pk)
        try:
            if action == DecisionForm.RELEASE:
                task_release(task_id=task.pk, user=request.user, fencing_token=token)
                messages.success(request, f"Released {case.reference}: it is back in its queue.")
                return redirect_to(request, reverse("reviews:queues"))
            if action == DecisionForm.RENEW:
                renewed = task_lease_renew(task_id=task.pk, user=request.user, fencing_token=token)
                until = timezone.localtime(renewed.lease_expires_at).strftime("%H:%M")
                messages.success(
                    request, f"Lease renewed: {case.reference} is yours until {until}."
                )
                return redirect_to(request, reverse("reviews:case", args=[case.reference]))
            if action == DecisionForm.RECUSE:
                task_recuse(
                    task_id=task.pk,
                    user=request.user,
                    fencing_token=token,
                    reason=data["recusal_reason"],
                )
                messages.success(
                    request, f"You recused yourself from {case.reference}: it is back in its queue."
                )
                return redirect_to(request, reverse("reviews:queues"))
            if action == DecisionForm.COMMIT:
                return self._commit(form, task, token, blind_key)
            decision = decision_input(
                task=task,
                verdict=action,
                committed=request.session.get(blind_key),
                outcome=data["outcome"],
                reason_code=data["reason_code"],
                rationale=data["rationale"],
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
        return DecisionForm(outcomes=self.outcomes, reason_choices=self.reasons.options, **kwargs)

    def render(
        self,
        *,
        form: DecisionForm | None = None,
        status: int = 200,
        failed_task=None,
        full: bool = False,
    ):
        """The page, or for htmx its decision fragment (``full``: the page anyway)."""
        request, case, held, hidden = self.request, self.case, self.held, self.hidden
        if form is None and held is not None:
            form = DecisionForm.fresh(
                task=held,
                default_outcome="" if hidden else case.outcome,
                outcomes=self.outcomes,
                reason_choices=self.reasons.options,
            )
        elif form is not None:
            form = form_with_fresh_key(form, held if held and held == failed_task else None)
        form_live = held is not None and (failed_task is None or failed_task.pk == held.pk)
        route = route_explained(route=case.route or {}, blind=hidden)
        second_review = self.found.second_review_pending
        # What every reader may see, a blind reviewer before committing too
        # (BLIND_VIEW): the case's facts, its input, the route's tests of the
        # input, the queue and the lease. Built from allow-lists.
        context = {
            "facts": CaseFacts.of(case),
            "held": TaskFacts.of(held, blind=hidden) if held is not None else None,
            "active_tasks": [TaskFacts.of(t, blind=hidden) for t in self.found.active_tasks],
            "form": form,
            "form_live": form_live,
            "hidden": hidden,
            "blind_queue": self.blind_queue,
            "input": case_input_view(case, self.reasons.catalog, hide_codes=hidden),
            "route": route,
            "rules": route.rules,
            "route_reason": ROUTE_WITHHELD
            if hidden and not route.disclosed
            else ROUTE_REASONS.get(route.reason, ""),
            "timeline": case_timeline(
                case=case,
                hide_reviews=second_review,
                blind=hidden,
                route_disclosed=route.disclosed,
            ),
            # Earlier decisions with their rationale (the trail holds only its
            # digest): what a supervisor needs to settle an escalation. Kept
            # out of sight like the first review and the blind AI outcome.
            "decisions": [],
            "now": timezone.now(),
            "read_only": self.found.read_only,
            "supervise": self._supervisor_actions(),
        }
        if not hidden:
            # The AI's view: outside blind review, or once the reviewer committed.
            context.update(
                case=case,
                blind_choice=self.blind_choice,
                blind_agrees=self.blind_choice == case.outcome if self.blind_choice else None,
                output=case_output_view(case, self.reasons.catalog),
                confidence_pct=round(case.confidence * 100),
                decisions=[] if second_review else None,
            )
        # The customer's own words on why they contested: their input, shown blind too.
        contested = any(entry.action == "case.contested" for entry in context["timeline"])
        context["contests"] = case_contests(case=case) if contested else []
        if request.htmx and not full:
            return render(request, "reviews/case.html#decision", context, status=status)
        if context["decisions"] is None:
            context["decisions"] = case_decisions(case=case)
        return render(request, "reviews/case.html", context, status=status)

    def _supervisor_actions(self) -> list[dict]:
        """For a supervisor overseeing the case: each active task with whom
        it may be handed to (Reassign) and whether it can be released."""
        if self.found.access != CaseAccess.SUPERVISE:
            return []
        actions = []
        for task in self.found.active_tasks:
            roles = {task.queue.role, KIND_ROLES.get(task.kind, task.queue.role)}
            people = task_people(task=task, roles=roles).exclude(pk=task.assignee_id)
            actions.append(
                {
                    "task": TaskFacts.of(task, blind=self.hidden),
                    "candidates": list(people.order_by("username").values_list("pk", "username")),
                    "claimed": task.status == ReviewTask.Status.CLAIMED,
                }
            )
        return actions


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
