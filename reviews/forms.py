"""Forms of the reviewer and supervisor screens.

They parse and type what the browser sent; the services decide whether it
is allowed (the lease, the policy's outcomes, the reason catalog) and their
errors are put back on the form, next to the field they name.
"""

import uuid

from django import forms
from django.utils.html import format_html, format_html_join

from workbench.errors import WorkbenchError
from workbench.models import User


class QuickSelect(forms.Select):
    """A ``<select>`` written by Python instead of a template per option.

    Django renders every option through ``select_option.html``; for a reason
    catalog of 60-odd codes that was about a third of the server time of the
    case page with the decision form (bench.pages). Same markup: the
    attributes Django adds (id, ``aria-describedby``, ...) come in ``attrs``,
    and the first option whose value matches is selected. Flat choices only.
    """

    def render(self, name, value, attrs=None, renderer=None):
        final_attrs = {"name": name, **self.build_attrs(self.attrs, attrs)}
        wanted = self.format_value(value)
        chosen: set[str] = set()
        options = []
        for option_value, label in self.choices:
            option_value = "" if option_value is None else str(option_value)
            selected = option_value in wanted and (self.allow_multiple_selected or not chosen)
            if selected:
                chosen.add(option_value)
            options.append((option_value, " selected" if selected else "", label))
        return format_html(
            "<select{}>{}</select>",
            _attrs_html(final_attrs),
            format_html_join("", '<option value="{}"{}>{}</option>', options),
        )


def _attrs_html(attrs: dict) -> str:
    """Attributes as Django's ``attrs.html`` writes them: in order, False
    left out, True as a bare name."""
    return format_html_join(
        "",
        "{}",
        (
            (format_html(" {}", key) if value is True else format_html(' {}="{}"', key, value),)
            for key, value in attrs.items()
            if value is not False
        ),
    )


class DecisionForm(forms.Form):
    """The decision on a task the reviewer holds: one form, one button per action."""

    AGREE, OVERRIDE, ESCALATE, RELEASE = "agree", "override", "escalate", "release"
    COMMIT = "commit"  # blind queues: the reviewer's own outcome, before the AI's is shown
    ACTIONS = [(a, a) for a in (AGREE, OVERRIDE, ESCALATE, RELEASE, COMMIT)]

    task = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    fencing_token = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    action = forms.ChoiceField(choices=ACTIONS, error_messages={"required": "choose an action"})
    # data-shortcut: the key that focuses the field (static/js/workbench.js).
    outcome = forms.ChoiceField(
        label="Outcome",
        required=False,
        widget=QuickSelect(attrs={"data-shortcut": "o", "aria-keyshortcuts": "o"}),
    )
    reason_code = forms.ChoiceField(
        label="Reason",
        required=False,
        help_text="Required to override: why the outcome changes.",
        widget=QuickSelect,
    )
    rationale = forms.CharField(
        label="Rationale",
        required=False,
        max_length=10_000,
        help_text="Required to override or escalate. Write it for the person affected and "
        "for an auditor: what you checked and why you decided so.",
        widget=forms.Textarea(attrs={"rows": 5, "data-shortcut": "e", "aria-keyshortcuts": "e"}),
    )

    # Service field paths -> form fields (``verdict`` has no field of its own).
    FIELD_OF_PATH = {"outcome": "outcome", "reason_code": "reason_code", "rationale": "rationale"}

    def __init__(self, *args, outcomes: list[str], reason_choices: list[tuple[str, str]], **kwargs):
        # Both lists come from the selectors the decision service checks with
        # (``case_outcome_choices``, ``case_reason_choices``).
        super().__init__(*args, **kwargs)
        self.fields["outcome"].choices = [("", "— choose —")] + [(o, o) for o in outcomes]
        self.fields["reason_code"].choices = [("", "— none —"), *reason_choices]

    @classmethod
    def fresh(cls, *, task, default_outcome: str = "", **kwargs) -> "DecisionForm":
        """An unbound form for ``task`` with a new idempotency key: each render
        is one decision at most, however often its buttons are pressed."""
        return cls(
            initial={
                "task": task.pk,
                "fencing_token": task.fencing_token,
                "idempotency_key": uuid.uuid4().hex,
                "outcome": default_outcome,
            },
            **kwargs,
        )

    def add_service_error(self, error: WorkbenchError) -> None:
        """Put a service's error next to each field it names, else on top."""
        placed = False
        for problem in error.fields:
            name = self.FIELD_OF_PATH.get(problem.get("path", ""))
            if name:
                self.add_error(name, problem.get("message", error.message))
                placed = True
            else:
                self.add_error(None, problem.get("message", error.message))
                placed = True
        if not placed:
            self.add_error(None, error.message)


class ClaimForm(forms.Form):
    """Claim next, in one queue or in all of the reviewer's."""

    queue = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


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
