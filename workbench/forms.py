"""Forms of the core's screens."""

from datetime import date

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from workbench.models import AISystem, TrailExport
from workbench.services.export import ExportFilters


class DayField(forms.DateField):
    """A UTC day a report or an export is about. Bounded, so that the days
    around it (a range of up to three years back, the week after) stay in
    what a Python date holds: 0001-01-05 or 9999-12-31 were server errors."""

    default_validators = [
        MinValueValidator(date(1970, 1, 1)),
        MaxValueValidator(date(9998, 12, 31)),
    ]


class ExportForm(forms.Form):
    """What to export from the trail, and in which format."""

    date_from = DayField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = DayField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    system = forms.ChoiceField(label="AI system", required=False)
    case = forms.CharField(
        label="Case reference",
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"placeholder": "WB-XXXX-XXXX"}),
    )
    format = forms.ChoiceField(
        label="Format", choices=TrailExport.Format.choices, initial=TrailExport.Format.BUNDLE
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["system"].choices = [("", "All systems")] + list(
            AISystem.objects.order_by("slug").values_list("slug", "name")
        )

    def clean_case(self):
        return self.cleaned_data["case"].strip().upper()

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "choose a date on or after the start")
        return data

    def filters(self) -> ExportFilters:
        data = self.cleaned_data
        return ExportFilters(
            date_from=data["date_from"],
            date_to=data["date_to"],
            system=data["system"] or None,
            case=data["case"] or None,
        )
