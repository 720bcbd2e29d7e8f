"""Forms of the core's admin (kept apart from ``workbench.admin``, which is long enough)."""

from django import forms
from django.contrib.auth.forms import UserChangeForm

from workbench.errors import Invalid
from workbench.services.users import user_manager_check


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
