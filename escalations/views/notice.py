"""The customer's notice (no login): the statement of reasons, the appeal
form and, once the decision is final, the two questions about how we treated
them, in the customer's language, rate limited."""

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from escalations.forms import (
    SCORE_LABELS,
    AppealForm,
    FeedbackForm,
)
from escalations.selectors import (
    AppealRules,
    case_for_notice,
    notice_build,
    outcome_name,
)
from escalations.services import (
    AppealRefused,
    appeal_file,
)
from reviews.display import CUSTOMER_SEES_ROLES, case_input_view
from reviews.models import Feedback
from reviews.selectors import feedback_for_notice
from reviews.services import FeedbackInvalid, FeedbackRefused, feedback_record
from reviews.services.notices import customer_language, notice_open
from workbench.errors import NotFound, WorkbenchError
from workbench.services import Actor

# --- The customer's notice ------------------------------------------------------------------


def _notice_rate(group, request) -> str:
    return settings.NOTICE_RATE_POST if request.method == "POST" else settings.NOTICE_RATE_GET


@ratelimit(key="ip", rate=_notice_rate, method=ratelimit.ALL)
@require_http_methods(["GET", "POST"])
def notice(request, token: str):
    """The statement of reasons at the customer's link, the appeal form and,
    once the decision is final, the two questions (``form=feedback``). No
    login: the secret token in the link is the key. Any other token gets the
    same 404, whether or not a case exists."""
    try:
        case = case_for_notice(token=token)
    except NotFound:
        raise Http404("no such notice") from None
    with translation.override(_language(case.subject.locale)):
        if request.method == "POST":
            if request.POST.get("form") == "feedback":
                return _feedback_post(request, case)
            return _appeal_post(request, case)
        if not request.user.is_authenticated:
            # The token holder opened it (staff have no business here
            # signed in, and never count as the customer).
            notice_open(case=case)
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


def _feedback_post(request, case):
    """The answers to the two questions. Plain: back to the page (PRG);
    htmx: the questions' region alone."""
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        return _feedback_answer(request, case, form=form, status=422)
    try:
        recorded = feedback_record(
            case=case,
            listened=form.cleaned_data["listened"],
            explained=form.cleaned_data["explained"],
            comment=form.cleaned_data["comment"],
            source=Feedback.Source.NOTICE,
            actor=Actor.customer(case.subject.reference),
        )
    except FeedbackInvalid as error:
        form.add_service_error(error)
        return _feedback_answer(request, case, form=form, status=error.status)
    except FeedbackRefused as error:
        return _feedback_answer(request, case, feedback_refused=error.message, status=error.status)
    thanks = (
        gettext("Thank you: your answers were changed.")
        if recorded.changed
        else gettext("Thank you: your answers were recorded.")
    )
    if request.htmx:
        return _feedback_answer(request, case, feedback_thanks=thanks)
    messages.success(request, thanks)
    return redirect(f"{request.path}#feedback")


def _feedback_answer(request, case, *, form=None, status: int = 200, **extra):
    if not request.htmx:
        return _notice_page(request, case, feedback_form=form, status=status, **extra)
    context = {"case": case, **_feedback_context(case, form), **extra}
    return render(request, "escalations/notice.html#feedback", context, status=status)


def _feedback_context(case, form=None) -> dict:
    """What the questions' region shows: the answer given (its scores in
    words), and the form while it may be given or changed."""
    state = feedback_for_notice(case=case)
    if form is None and state.open:
        form = (
            FeedbackForm.answered(state.answer, state.comment) if state.answer else FeedbackForm()
        )
    words = dict(SCORE_LABELS)
    answered = {}
    if state.answer is not None:
        answered = {
            name: f"{score} – {words[score]}"
            for name, score in (
                ("listened", state.answer.listened),
                ("explained", state.answer.explained),
            )
        }
    return {"feedback": state, "feedback_form": form if state.open else None, "answered": answered}


def _notice_page(
    request,
    case,
    *,
    form=None,
    status: int = 200,
    refused: bool = False,
    feedback_form=None,
    **feedback,
):
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
        "facts": case_input_view(case, {}, hide_codes=True, roles=CUSTOMER_SEES_ROLES),
        "refused": refused,
        **_feedback_context(case, feedback_form),
        **feedback,  # the answer's outcome: thanks, or why it was refused
    }
    return render(request, "escalations/notice.html", context, status=status)


def rate_limited(request, exception=None):
    """django-ratelimit's answer (``RATELIMIT_VIEW``): 429, with a page."""
    return render(request, "429.html", status=429)
