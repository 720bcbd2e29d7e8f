"""The appeal reviewer's page: the customer's statement, opened on purpose
and recorded; the decision; the evidence, to who opened the statement."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods

from escalations.forms import (
    AppealDecisionForm,
)
from escalations.models import Appeal
from escalations.selectors import (
    appeal_for_staff,
)
from escalations.services import (
    appeal_decide,
    appeal_statement,
    appeal_statement_open,
)
from escalations.services.evidence import evidence_read
from reviews.display import case_input_view, case_output_view
from reviews.models import ReviewTask
from reviews.selectors import (
    case_contests,
    case_decisions,
    case_outcome_choices,
    case_reason_choices,
    case_timeline,
)
from reviews.services.assignment import task_release
from workbench.errors import NotFound, WorkbenchError
from workbench.models import Role
from workbench.selectors import user_roles
from workbench.web import form_with_fresh_key, redirect_to

# --- The appeal reviewer's page ---------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def appeal_detail(request, reference: str):
    roles = user_roles(user=request.user)
    try:
        appeal = appeal_for_staff(reference=reference, roles=roles, user=request.user)
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
        appeal = appeal_for_staff(reference=reference, roles=roles, user=request.user)
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
