"""The entry form of a log row: the visit form's fields (capture/forms.py) without the as-typed check, which
belongs to a visit. It only collects what was typed; capture.logs.services parses and checks it."""

from django import forms
from django.utils.translation import gettext_lazy as _

from capture.definitions import FormSpec
from capture.forms import MISSING_PREFIX, missing_field, value_field
from capture.logs.selectors import row_values
from capture.models import LogRow
from capture.services import display
from trial.forms import DomainErrorsMixin

_CHECK_ATTRS = ("hx-get", "hx-trigger", "hx-target", "hx-sync")


class LogRowForm(DomainErrorsMixin, forms.Form):
    version = forms.IntegerField(min_value=0, required=False, widget=forms.HiddenInput)
    reason = forms.CharField(
        label=_("Reason for change"),
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
        help_text=_("This row was saved before: every change needs a reason."),
    )

    def __init__(self, *args: object, spec: FormSpec, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        for item in spec.entered:
            field = value_field(item, "")
            for name in _CHECK_ATTRS:
                field.widget.attrs.pop(name, None)
            self.fields[item.code] = field
            self.fields[MISSING_PREFIX + item.code] = missing_field(item)

    def add_domain_errors(self, errors: dict[str, list[str]]) -> None:
        super().add_domain_errors(errors)
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = widget.attrs.get("class", "") + " is-invalid"

    def entries(self) -> tuple[dict[str, str], dict[str, str]]:
        values = {item.code: self.cleaned_data.get(item.code) or "" for item in self.spec.entered}
        missing = {
            item.code: reason
            for item in self.spec.entered
            if (reason := self.cleaned_data.get(MISSING_PREFIX + item.code))
        }
        return values, missing

    def rows(self) -> list[tuple[object, forms.BoundField, forms.BoundField]]:
        """(item, value field, missing-reason field) in protocol order, for the template."""
        return [(item, self[item.code], self[MISSING_PREFIX + item.code]) for item in self.spec.entered]


def initial_of(row: LogRow) -> dict[str, object]:
    """A saved row's values as the fields show them (values prefetched)."""
    initial: dict[str, object] = {"version": row.version}
    for code, value in row_values(row).items():
        if value.missing_reason:
            initial[MISSING_PREFIX + code] = value.missing_reason
        else:
            initial[code] = display(value)
    return initial
