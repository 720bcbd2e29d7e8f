"""The customer is asked (issue 16): once a decision is final, "Did we listen
to you?" and "Was the decision explained fairly?", 1 to 5, and an optional
comment, on the notice page or through the AI system's own channel (API).

One answer per case and stage (the first final decision, or the appeal's),
changeable for ``FEEDBACK_CHANGE_DAYS`` from the first answer. Each answer is
one ``case.feedback`` trail event with the scores and the comment's digest;
the comment itself is sealed with the subject's key (DESIGN §7).

Lock order, as everywhere: the case, then the subject, then (inside
``trail_append``) the chain head.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from reviews.models import Case, Feedback, FeedbackInvitation, Policy, Subject, SubjectText
from reviews.selectors import feedback_change_until, feedback_stage, policy_active
from reviews.services.notices import customer_date, customer_email, notice_url
from reviews.services.subjects import (
    SubjectErased,
    contact_open,
    subject_key_ensure,
    subject_text_seal,
)
from workbench.errors import Conflict, Invalid
from workbench.services.trail import Actor, trail_append

SCORES = range(1, 6)
MAX_COMMENT_CHARS = 2_000
# Anything that reads as an HTML tag, comment or processing instruction
# (``<b>``, ``</p>``, ``<!-- -->``, ``<?php``): refused, never stripped, so
# what is kept is what the customer wrote. "3 < 5" is no tag.
MARKUP = re.compile(r"<\s*[/!?]?\s*[A-Za-z!?-][^<>]*>")
CHANNEL = re.compile(r"[a-z0-9_-]{1,40}")


class FeedbackRefused(Conflict):
    """The case cannot be rated now; ``code`` says why: ``not_final``,
    ``too_late`` (the change window is over) or ``subject_erased``."""


class FeedbackInvalid(Invalid):
    """A score outside 1 to 5, or a comment that is too long or holds markup;
    ``fields`` names each bad field, ``code`` the first problem."""


@dataclass(frozen=True)
class Recorded:
    feedback: Feedback
    created: bool  # the first answer for this case and stage
    changed: bool  # an earlier answer was replaced (False also for the same answer again)


def feedback_problems(
    *, listened, explained, comment: str | None, channel: str | None = None
) -> list[dict]:
    """What is wrong with an answer, as ``{"path", "message", "code"}``."""
    problems = []
    for path, score in (("listened", listened), ("explained", explained)):
        if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
            problems.append(
                {
                    "path": path,
                    "message": _("Choose an answer from 1 to 5."),
                    "code": "score_out_of_range",
                }
            )
    if comment:
        if len(comment) > MAX_COMMENT_CHARS:
            problems.append(
                {
                    "path": "comment",
                    "message": _("Keep your comment under %(count)s characters.")
                    % {"count": MAX_COMMENT_CHARS},
                    "code": "comment_too_long",
                }
            )
        elif MARKUP.search(comment) or "\x00" in comment:
            problems.append(
                {
                    "path": "comment",
                    "message": _("Write your comment as plain text, without < > tags."),
                    "code": "comment_markup",
                }
            )
    if channel is not None and not CHANNEL.fullmatch(channel):
        problems.append(
            {
                "path": "channel",
                "message": "1 to 40 characters of a-z, 0-9, _ and -",
                "code": "bad_channel",
            }
        )
    return problems


def feedback_record(
    *,
    case: Case,
    listened: int,
    explained: int,
    comment: str | None,
    source: str,
    channel: str | None = None,
    actor: Actor,
    now: datetime | None = None,
) -> Recorded:
    """Record the customer's answer about the final decision of ``case``.

    Refused, with nothing stored: a score outside 1 to 5, a comment over
    ``MAX_COMMENT_CHARS`` or with markup (``FeedbackInvalid``, 422); a case
    not final, a change after ``FEEDBACK_CHANGE_DAYS`` from the first answer,
    an erased subject (``FeedbackRefused``, 409). The same answer again
    changes nothing and writes no event (a double submit). A different one
    within the window replaces the row and writes a new ``case.feedback``
    event with ``changed: true``."""
    if source not in Feedback.Source.values:
        raise ValueError(f"unknown feedback source {source!r}")
    comment = (comment or "").strip() or None
    problems = feedback_problems(
        listened=listened, explained=explained, comment=comment, channel=channel
    )
    if problems:
        raise FeedbackInvalid(
            "the answer cannot be recorded",
            problems[0]["code"],
            fields=[{"path": p["path"], "message": p["message"]} for p in problems],
        )
    with transaction.atomic():
        return _record(case, listened, explained, comment, source, channel, actor, now)


def _record(case, listened, explained, comment, source, channel, actor, now) -> Recorded:
    case = Case.objects.select_for_update().select_related("system").get(pk=case.pk)
    stage = feedback_stage(case)
    if stage is None:
        raise FeedbackRefused(
            _("This decision is not final yet: you can tell us what you think once it is."),
            "not_final",
        )
    now = now or timezone.now()
    subject = Subject.objects.select_for_update().get(pk=case.subject_id)
    if subject.erased_at is not None:
        raise FeedbackRefused(
            _("Your personal data for this decision was erased: we cannot take answers any more."),
            "subject_erased",
        )
    feedback = Feedback.objects.select_for_update().filter(case=case, stage=stage).first()
    earlier = None
    if feedback is not None:
        earlier = feedback.comment
        if now > feedback_change_until(feedback):
            raise FeedbackRefused(
                _("Answers can be changed for %(days)s days; that time ended on %(date)s.")
                % {
                    "days": settings.FEEDBACK_CHANGE_DAYS,
                    "date": customer_date(feedback_change_until(feedback)),
                },
                "too_late",
            )
        same_comment = (earlier.sha256 if earlier else None) == _digest(comment)
        if (feedback.listened, feedback.explained) == (listened, explained) and same_comment:
            return Recorded(feedback, created=False, changed=False)
    words = None
    if comment is not None:
        try:
            subject_key_ensure(subject)
        except SubjectErased:
            raise FeedbackRefused("the subject was erased", "subject_erased") from None
        words = subject_text_seal(
            subject=subject, kind=SubjectText.Kind.FEEDBACK, value=comment, case=case
        )
        words.save()
    decided_by = Case.DecidedBy.HUMAN if stage == Feedback.Stage.APPEAL else case.decided_by
    if feedback is None:
        feedback = Feedback(case=case, stage=stage, answered_at=now)
    else:
        feedback.changed_at = now
    feedback.listened, feedback.explained = listened, explained
    feedback.decided_by = decided_by
    feedback.source, feedback.channel = source, channel or ""
    feedback.comment = words
    feedback.save()
    if earlier is not None:
        # The customer replaced their words: the old ones are not kept (the
        # trail's earlier event keeps only their digest).
        earlier.delete()
    data = {
        "listened": listened,
        "explained": explained,
        "source": source,
        "comment_sha256": words.sha256 if words else None,
        "decided_by": decided_by,
        "stage": stage,
        "changed": feedback.changed_at is not None,
    }
    if channel:
        data["channel"] = channel
    trail_append(
        action="case.feedback", actor=actor, case=case.reference, system=case.system.slug, data=data
    )
    return Recorded(
        feedback, created=feedback.changed_at is None, changed=bool(feedback.changed_at)
    )


def _digest(comment: str | None) -> str | None:
    return hashlib.sha256(comment.encode()).hexdigest() if comment is not None else None


def feedback_invite(*, case: Case) -> bool:
    """Email the customer an invitation to answer, when the system's policy
    in force asks for it (``feedback_invite: true``), the case is final and
    their address is known (not erased): at most once per case and stage,
    through the outbox, in the caller's transaction. True when one was
    queued."""
    if not policy_active(system=case.system).document.get("feedback_invite"):
        return False
    return _invite(case)


def feedback_invite_many(*, system, cases: list[Case], policy: Policy | None = None) -> int:
    """``feedback_invite`` for a batch of one system's cases (those final
    among them), reading the policy once (or taking the one intake routed
    them by): for the cases the AI decides alone at intake. Returns how many
    were invited."""
    policy = policy or policy_active(system=system)
    if not cases or not policy.document.get("feedback_invite"):
        return 0
    return sum(_invite(case) for case in cases)


def _invite(case: Case) -> bool:
    stage = feedback_stage(case)
    if stage is None:
        return False
    subject = case.subject
    if subject.erased_at is not None or not (contact_open(subject) or {}).get("email"):
        return False  # nothing to send: a later address may still get one
    try:
        with transaction.atomic():  # a savepoint: a twin invitation loses alone
            FeedbackInvitation.objects.create(case=case, stage=stage)
    except IntegrityError:
        return False

    def compose() -> tuple[str, str]:
        values = {"reference": case.reference}
        return (
            _("Two questions about our decision on %(reference)s") % values,
            _(
                "Our decision on %(reference)s is final. Did we listen to you, and was "
                "the decision explained fairly? Your answers help us treat people better; "
                "they take a minute, and you can change them for %(days)s days."
            )
            % {**values, "days": settings.FEEDBACK_CHANGE_DAYS}
            + "\n\n"
            + _("Answer here (no login needed): %(url)s") % {"url": notice_url(case)}
            + "\n",
        )

    customer_email(case=case, topic="feedback.invite", compose=compose)
    return True
