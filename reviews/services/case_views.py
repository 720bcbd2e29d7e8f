"""Recording who read a case and why (compliance officers)."""

import hashlib

from django.db import transaction

from reviews.models import Case, CaseView
from workbench.errors import Invalid
from workbench.models import User
from workbench.services import Actor, trail_append

PURPOSE_MAX = 1000


@transaction.atomic
def case_view_record(*, case: Case, user: User, purpose: str) -> CaseView:
    """Record that ``user`` (a compliance officer) opened ``case`` read-only,
    with their ``purpose`` (required). The trail's ``case.viewed`` names them
    and holds the purpose's SHA-256 only, because the AI system reads its
    cases' trail (the case API): the words stay in ``CaseView``."""
    purpose = (purpose or "").strip()
    if not purpose:
        raise Invalid("give the purpose of opening this case", "purpose_required")
    if len(purpose) > PURPOSE_MAX:
        raise Invalid(f"the purpose is longer than {PURPOSE_MAX} characters", "purpose_too_long")
    digest = hashlib.sha256(purpose.encode()).hexdigest()
    view = CaseView.objects.create(case=case, viewer=user, purpose=purpose, purpose_sha256=digest)
    trail_append(
        action="case.viewed",
        actor=Actor.user(user),
        case=case.reference,
        system=case.system.slug,
        data={"purpose_sha256": digest, "view": view.pk, "read_only": True},
    )
    return view
