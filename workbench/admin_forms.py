"""Forms of the core's admin (kept apart from ``workbench.admin``, which is long enough)."""

from django import forms
from django.contrib.auth.forms import UserChangeForm

from workbench.errors import Invalid, WorkbenchError
from workbench.models import AISystem, APIKey
from workbench.services.systems import EDITABLE
from workbench.services.users import user_manager_check
from workbench.services.webhooks import OPTIONAL_TOPICS, TOPIC_DESCRIPTIONS, callback_url_check


class UserChangeWithLineForm(UserChangeForm):
    """The user change form, refusing a manager that would close a loop in
    the reporting line (``user_manager_check``): the field error says why
    and nothing is saved."""

    def clean_manager(self):
        manager = self.cleaned_data.get("manager")
        try:
            user_manager_check(user=self.instance, manager=manager)
        except Invalid as error:
            raise forms.ValidationError(error.message, code=error.code) from None
        return manager


class AISystemForm(forms.ModelForm):
    """What an admin may change on an AI system (``ai_system_update``); the
    secret is rotated, never typed, and the kill switch has its own page."""

    # Declared, so that its scheme is said, not assumed: Django 5.x warns on a
    # URLField that its default changes to https in 6.0 (an error here).
    callback_url = forms.URLField(
        assume_scheme="https",
        max_length=200,
        required=False,
        help_text="Where webhooks go: https, to a public address (unless "
        "WEBHOOK_ALLOW_PRIVATE). Empty: no webhooks.",
    )
    webhook_topics = forms.MultipleChoiceField(
        choices=[(topic, f"{topic}: {TOPIC_DESCRIPTIONS[topic]}") for topic in OPTIONAL_TOPICS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Sent besides the final outcomes (case.finalized, case.appeal_decided), "
        "which always are.",
    )

    class Meta:
        model = AISystem
        fields = EDITABLE
        widgets = {"intended_purpose": forms.Textarea(attrs={"rows": 3})}

    def clean_callback_url(self):
        url = self.cleaned_data["callback_url"].strip()
        try:
            callback_url_check(url)
        except WorkbenchError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None
        return url


class SwitchForm(forms.Form):
    stopped = forms.TypedChoiceField(
        choices=[("1", "stop"), ("0", "restart")],
        coerce=lambda value: value == "1",
        widget=forms.HiddenInput,
    )
    reason = forms.CharField(
        label="Reason",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required. Kept as written for supervisors and compliance; "
        "the trail holds its digest.",
    )


class APIKeyForm(forms.Form):
    scope = forms.ChoiceField(choices=APIKey.Scope.choices, initial=APIKey.Scope.INGEST)
