import re

import pytest
from django import forms

from reviews.forms import QuickSelect


def normalized(html: str) -> str:
    return re.sub(r">\s+<", "><", str(html)).strip()


CHOICES = [("", "— none —"), ("CO-50", 'CO-50 — Not <medically> necessary & "so"'), (7, "seven")]


@pytest.mark.parametrize("value", [None, "", "CO-50", "7", "missing"])
def test_quick_select_writes_what_djangos_select_writes(value):
    class Form(forms.Form):
        plain = forms.ChoiceField(
            choices=CHOICES,
            required=False,
            help_text="why",
            widget=forms.Select(attrs={"data-shortcut": "o"}),
        )
        quick = forms.ChoiceField(
            choices=CHOICES,
            required=False,
            help_text="why",
            widget=QuickSelect(attrs={"data-shortcut": "o"}),
        )

    form = Form(initial={"plain": value, "quick": value})
    expected = normalized(form["plain"]).replace("plain", "quick")
    assert normalized(form["quick"]) == expected
