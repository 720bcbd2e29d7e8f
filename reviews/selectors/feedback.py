"""Reads of the customer's answers to the notice's two questions."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from reviews.models import Case, Feedback

FINAL = {
    Case.Status.FINALIZED: Feedback.Stage.DECISION,
    Case.Status.APPEAL_DECIDED: Feedback.Stage.APPEAL,
}


def feedback_stage(case: Case) -> str | None:
    """The stage a rating of ``case`` is about now, or None while nothing is
    final (an appeal under way makes the first decision not final)."""
    return FINAL.get(case.status)


def feedback_change_until(feedback: Feedback) -> datetime:
    """Until when the answer can still be changed (``FEEDBACK_CHANGE_DAYS``)."""
    return feedback.answered_at + timedelta(days=settings.FEEDBACK_CHANGE_DAYS)


@dataclass(frozen=True)
class FeedbackState:
    """What the notice shows of the questions: whether they are asked (the
    case is final), the answer given for the decision in force, and whether
    it can still be changed."""

    stage: str | None  # None: nothing final to rate
    answer: Feedback | None
    comment: str | None  # the customer's own words (None: none, or erased)
    change_until: datetime | None
    changeable: bool
    erased: bool

    @property
    def asked(self) -> bool:
        return self.stage is not None

    @property
    def open(self) -> bool:
        """The form is shown: final, not erased, not answered or still changeable."""
        return self.asked and not self.erased and (self.answer is None or self.changeable)


def feedback_for_notice(*, case: Case, now: datetime | None = None) -> FeedbackState:
    """The questions' state on ``case``'s notice (its subject loaded)."""
    now = now or timezone.now()
    stage = feedback_stage(case)
    erased = case.subject.erased_at is not None
    answer = None
    if stage is not None:
        answer = Feedback.objects.select_related("comment").filter(case=case, stage=stage).first()
    if answer is None:
        return FeedbackState(stage, None, None, None, False, erased)
    until = feedback_change_until(answer)
    comment = None
    if answer.comment is not None and not erased:
        from reviews.services.subjects import subject_text_open  # services import selectors

        comment = subject_text_open(answer.comment, subject=case.subject)
    return FeedbackState(stage, answer, comment, until, now <= until and not erased, erased)
