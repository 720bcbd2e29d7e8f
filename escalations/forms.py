"""Forms of the customer's notice page and of the appeal reviewer.

They parse what the browser sent; the services decide whether it is allowed
and their errors are put back next to the field they name.
"""

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from escalations.models import Appeal
from escalations.services.evidence import ACCEPTED, MAX_FILE_BYTES, MAX_FILES
from reviews.services.feedback import MARKUP, MAX_COMMENT_CHARS
from workbench.models import AISystem, User
from workbench.web import ServiceErrorsMixin


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class EvidenceField(forms.FileField):
    """Any number of files (the service checks how many, and each one)."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(EvidenceField, self).clean(item, initial) for item in data if item]
        return [super().clean(data, initial)] if data else []


class AppealForm(ServiceErrorsMixin, forms.Form):
    """The customer's appeal: their statement and, optionally, evidence."""

    statement = forms.CharField(
        label=_("Your statement"),
        help_text=_(
            "Tell us, in your own words, why you think the decision is wrong and what you "
            "would like us to look at again."
        ),
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 8}),
        error_messages={"required": _("Tell us why you disagree.")},
    )
    evidence = EvidenceField(
        label=_("Evidence"),
        required=False,
        widget=MultipleFileInput(
            attrs={"accept": ",".join(sorted({f".{e}" for es in ACCEPTED.values() for e in es}))}
        ),
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    FIELD_OF_PATH = {"statement": "statement", "evidence": "evidence"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Formatted per form, in the language active for this request.
        self.fields["evidence"].help_text = _(
            "Optional. Up to %(files)s files of %(mb)s MB each: PDF, JPEG or PNG "
            "(letters, receipts, photos)."
        ) % {"files": MAX_FILES, "mb": MAX_FILE_BYTES // (1024 * 1024)}

    @classmethod
    def fresh(cls) -> "AppealForm":
        return cls(initial={"idempotency_key": uuid.uuid4().hex})


# The answers to the notice's two questions, in plain words (1 to 5).
SCORE_LABELS = [
    (1, _("Not at all")),
    (2, _("A little")),
    (3, _("Partly")),
    (4, _("Mostly")),
    (5, _("Completely")),
]


class BoundedTextarea(forms.Textarea):
    """A textarea that never sends back more than ``limit`` characters: a
    huge comment refused is not echoed whole into the page."""

    def __init__(self, *args, limit: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.limit = limit

    def format_value(self, value):
        value = super().format_value(value)
        return value[: self.limit] if value else value


def _score_field(label) -> forms.TypedChoiceField:
    """One of the two questions: 1 to 5 as radio buttons with plain labels."""
    return forms.TypedChoiceField(
        label=label,
        choices=SCORE_LABELS,
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose an answer from 1 to 5.")},
    )


class FeedbackForm(ServiceErrorsMixin, forms.Form):
    """The customer's answers about a final decision. The service checks
    the scores and the comment (length, no markup) and says what is wrong."""

    listened = _score_field(_("Did we listen to you?"))
    explained = _score_field(_("Was the decision explained fairly?"))
    comment = forms.CharField(
        label=_("Anything you would like to add"),
        required=False,
        max_length=MAX_COMMENT_CHARS,
        widget=BoundedTextarea(
            attrs={"rows": 4, "maxlength": MAX_COMMENT_CHARS}, limit=MAX_COMMENT_CHARS
        ),
    )

    FIELD_OF_PATH = {"listened": "listened", "explained": "explained", "comment": "comment"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Worded per form, in the language active for this request, as the
        # service words its refusals.
        limit = {"count": MAX_COMMENT_CHARS}
        comment = self.fields["comment"]
        comment.help_text = _("Optional. Plain text, up to %(count)s characters.") % limit
        comment.error_messages["max_length"] = (
            _("Keep your comment under %(count)s characters.") % limit
        )
        for name in ("listened", "explained"):
            self.fields[name].error_messages["invalid_choice"] = _("Choose an answer from 1 to 5.")

    def clean_comment(self):
        comment = self.cleaned_data["comment"]
        if MARKUP.search(comment):
            raise forms.ValidationError(_("Write your comment as plain text, without < > tags."))
        return comment

    @classmethod
    def answered(cls, feedback, comment: str | None) -> "FeedbackForm":
        """The form holding the answer given, to change it."""
        return cls(
            initial={
                "listened": feedback.listened,
                "explained": feedback.explained,
                "comment": comment or "",
            }
        )


class AppealDecisionForm(ServiceErrorsMixin, forms.Form):
    """The appeal reviewer's decision, with reasons the customer reads."""

    OPEN, DECIDE, RELEASE = "open", "decide", "release"

    task = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    fencing_token = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    action = forms.ChoiceField(choices=[(a, a) for a in (OPEN, DECIDE, RELEASE)])
    outcome = forms.ChoiceField(
        label="Appeal outcome",
        required=False,
        choices=[("", "— choose —")] + list(Appeal.Outcome.choices),
        help_text="Upheld keeps the decision; overturned reverses it; modified changes it in part.",
    )
    final_outcome = forms.ChoiceField(
        label="New outcome",
        required=False,
        help_text="For overturned or modified: the outcome that now applies.",
    )
    reason_code = forms.ChoiceField(label="Reason", required=False)
    reasons = forms.CharField(
        label="Reasons for the customer",
        required=False,
        max_length=5_000,
        help_text="The customer reads this on their notice: plain words, what you looked at "
        "and why you decided so.",
        widget=forms.Textarea(attrs={"rows": 6}),
    )

    FIELD_OF_PATH = {
        "outcome": "outcome",
        "final_outcome": "final_outcome",
        "reason_code": "reason_code",
        "reasons": "reasons",
    }

    def __init__(self, *args, outcomes: list[str], reason_choices: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["final_outcome"].choices = [("", "— choose —")] + [(o, o) for o in outcomes]
        self.fields["reason_code"].choices = [("", "— none —"), *reason_choices]

    @classmethod
    def fresh(cls, *, task, **kwargs) -> "AppealDecisionForm":
        return cls(
            initial={
                "task": task.pk,
                "fencing_token": task.fencing_token,
                "idempotency_key": uuid.uuid4().hex,
            },
            **kwargs,
        )


class SubjectAccessForm(forms.Form):
    """Whose data to export for an access request."""

    reference = forms.CharField(label="Subject reference", max_length=128)
    system = forms.ChoiceField(label="AI system", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["system"].choices = [("", "Any (if only one knows the subject)")] + list(
            AISystem.objects.order_by("slug").values_list("slug", "name")
        )

    def clean_reference(self):
        return self.cleaned_data["reference"].strip()


class QueueMembersForm(forms.Form):
    """The members of a queue (the supervisor's board). Offers the people
    with the queue's role; the service refuses an inactive one."""

    members = forms.ModelMultipleChoiceField(
        label="Members",
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: everyone with the queue's role works it.",
    )

    def __init__(self, *args, queue, **kwargs):
        super().__init__(*args, **kwargs)
        people = User.objects.filter(groups__name=queue.role).order_by("username")
        self.fields["members"].queryset = people.distinct()
        self.fields["members"].initial = list(queue.members.values_list("pk", flat=True))
        self.fields["members"].label_from_instance = lambda user: (
            user.username if user.is_active else f"{user.username} (inactive)"
        )


# --- The supervisor's board --------------------------------------------------------------


class TaskReassignForm(forms.Form):
    to_user = forms.ModelChoiceField(
        label="Reassign to",
        queryset=User.objects.filter(is_active=True),
        error_messages={"required": "choose who takes the task"},
    )


class SystemSwitchForm(forms.Form):
    """Stop or restart an AI system (the kill switch); a reason is required."""

    stopped = forms.TypedChoiceField(
        choices=[("1", "stop"), ("0", "restart")], coerce=lambda value: value == "1"
    )
    reason = forms.CharField(
        label="Reason",
        max_length=2000,
        error_messages={"required": "give a reason for stopping or restarting the system"},
    )
