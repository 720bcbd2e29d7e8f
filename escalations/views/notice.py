"""The customer's notice (no login): the statement of reasons and the
appeal form, in the customer's language, rate limited."""

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from escalations.forms import (
    AppealForm,
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
from reviews.display import case_input_view
from reviews.services.notices import customer_language
from workbench.errors import NotFound, WorkbenchError

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
