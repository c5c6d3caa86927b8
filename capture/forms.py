"""The data-entry form of one CRF. It only collects what was typed, verbatim; capture.services.form_save parses
and checks it against the protocol, and its errors come back keyed by item code.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import groupby

from django import forms
from django.urls import reverse_lazy
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from capture.checks import ParseError, parse, parse_missing
from capture.definitions import FormSpec
from capture.models import MissingReason, Query
from capture.selectors import CurrentValue
from trial.forms import DomainErrorsMixin
from trial.models import DataType, ItemDefinition
from trial.validators import TEXT_MAX

MISSING_PREFIX = "missing_"
BLANK = ("", "---------")
# htmx checks a value as it is typed: on change, and after a pause in typing.
CHECK_TRIGGER = "change, keyup changed delay:400ms"
# A date input changes its value at every digit of the year (0002, 0020, 0202, 2026): check after a pause only.
DATE_CHECK_TRIGGER = "change delay:600ms"


def in_language(text: str, text_zh: str) -> str:
    """The protocol file's Chinese text when the page is in Chinese and the file gives one."""
    return text_zh if text_zh and (get_language() or "").startswith("zh") else text


class DateInput(forms.TextInput):
    """The browser's date picker. A TextInput underneath, so a re-shown value is what was sent, unformatted."""

    input_type = "date"


def missing_field(item: ItemDefinition) -> forms.CharField:
    # In the tab sequence after its value, as the row is read: a missing value is entered without the mouse.
    attrs = {
        "class": "form-select form-select-sm missing-select",
        "aria-label": _("Reason %(code)s has no value") % {"code": item.code},
    }
    return forms.CharField(
        required=False, widget=forms.Select(choices=[("", _("If missing, why?")), *MissingReason.choices], attrs=attrs)
    )


def _value_widget(item: ItemDefinition, attrs: dict[str, str]) -> forms.Widget:
    if item.data_type in (DataType.DECIMAL, DataType.INTEGER):
        # Text, not type=number: what was typed is sent verbatim, and the service tells what is wrong with it.
        return forms.TextInput(attrs={**attrs, "class": "form-control", "inputmode": "decimal", "autocomplete": "off"})
    if item.data_type == DataType.DATE:
        return DateInput(attrs={**attrs, "class": "form-control"})
    if item.data_type == DataType.CHOICE:
        choices = [(choice[0], in_language(choice[1], choice[2] if len(choice) > 2 else "")) for choice in item.choices]
        return forms.Select(choices=[BLANK, *choices], attrs={**attrs, "class": "form-select"})
    if item.data_type == DataType.BOOLEAN:
        choices = [BLANK, ("true", _("Yes")), ("false", _("No"))]
        return forms.Select(choices=choices, attrs={**attrs, "class": "form-select"})
    return forms.TextInput(attrs={**attrs, "class": "form-control", "autocomplete": "off"})


def value_field(item: ItemDefinition, check_url: str, *, recheck: bool = False) -> forms.CharField:
    """The value's field; with `recheck` (a refused save shown again) its flags are checked again on load, so the
    flags beside it are those of the value on screen, not of the value stored."""
    trigger = DATE_CHECK_TRIGGER if item.data_type == DataType.DATE else CHECK_TRIGGER
    attrs = {
        "hx-get": check_url,
        "hx-trigger": f"{trigger}, load" if recheck else trigger,
        "hx-target": f"#flags-{item.code}",
        "hx-sync": "this:replace",
        "aria-describedby": f"reference-{item.code} flags-{item.code}",
    }
    field = forms.CharField(
        label=in_language(item.label, item.label_zh), required=False, strip=False, widget=_value_widget(item, attrs)
    )
    field.multiline = item.data_type == DataType.TEXT  # as capture.checks.parse takes it
    return field


# {(form definition, language, recheck): {field name: field}}: a protocol version never changes, so the fields
# of its forms are built once per process and language.
_fields: dict[tuple[int, str | None, bool], dict[str, forms.Field]] = {}


def _item_fields(spec: FormSpec, *, recheck: bool) -> dict[str, forms.Field]:
    """Every entered item's value and missing-reason fields, in order (their check's address left blank)."""
    key = (spec.definition.pk, get_language(), recheck)
    if key not in _fields:
        fields: dict[str, forms.Field] = {}
        for item in spec.entered:
            fields[item.code] = value_field(item, "", recheck=recheck)
            fields[MISSING_PREFIX + item.code] = missing_field(item)
        _fields[key] = fields
    return _fields[key]


def _own_copy(field: forms.Field) -> forms.Field:
    """A cached field's copy for one form: what Django's deep copy of a field makes the form's own (its widget's
    attributes, its validators, its messages) is copied; what no form changes (label, choices) stays shared.
    A deep copy costs a 45-item save more than its SQL does: 90 fields, each a Select's choices normalised again."""
    copied = _shallow(field)
    copied.widget = _shallow(field.widget)
    copied.widget.attrs = field.widget.attrs.copy()
    copied.validators = field.validators[:]
    copied.error_messages = field.error_messages.copy()
    return copied


def _shallow(instance: object) -> object:
    copied = object.__new__(type(instance))
    copied.__dict__.update(instance.__dict__)
    return copied


class FormEntryForm(DomainErrorsMixin, forms.Form):
    """One field per entered item (named by its code), its missing-reason select, the version and the reason."""

    version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    reason = forms.CharField(
        label=_("Reason for change"),
        required=False,
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
        help_text=_("This form was completed before: every change needs a reason."),
    )

    def __init__(self, *args: object, spec: FormSpec, visit_id: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        self.visit_id = visit_id
        # A posted form is only validated, unless it is refused and drawn again: it validates with the process's
        # fields themselves, which validation never changes, and takes its own copies only to be drawn or marked
        # (`for_display`). A blank form is drawn, so it takes them now.
        self._shared = True
        self.fields.update(_item_fields(spec, recheck=self.is_bound))
        if not self.is_bound:
            self.for_display()

    def for_display(self) -> "FormEntryForm":
        """The form with fields of its own, ready to draw: copies of the process's fields built once, as a declared
        form's fields are (a deep copy of 90 fields cost a 45-item save more than its SQL); only the check's
        address is the visit's, and is worked out only if the field is drawn."""
        if not self._shared:
            return self
        self._shared = False
        for name, field in _item_fields(self.spec, recheck=self.is_bound).items():
            self.fields[name] = _own_copy(field)
            self._bound_fields_cache.pop(name, None)  # validation's bound fields hold the shared field
        for item in self.spec.entered:
            url = reverse_lazy("capture:check_item", args=[self.visit_id, self.spec.code, item.code])
            self.fields[item.code].widget.attrs["hx-get"] = url
        if self.spec.entered:
            # Typed into straight away, also when 'Save and go to' the next form lands here: no mouse needed.
            self.fields[self.spec.entered[0].code].widget.attrs["autofocus"] = True
        return self

    def add_domain_errors(self, errors: dict[str, list[str]]) -> None:
        self.for_display()
        super().add_domain_errors(errors)
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = widget.attrs.get("class", "") + " is-invalid"

    def entries(self) -> tuple[dict[str, str], dict[str, str]]:
        """({item code: as typed}, {item code: missing reason}) for form_save. Every entered item is sent, so
        a value cleared on the page is cleared in the data."""
        values = {item.code: self.cleaned_data.get(item.code) or "" for item in self.spec.entered}
        missing = {
            item.code: reason
            for item in self.spec.entered
            if (reason := self.cleaned_data.get(MISSING_PREFIX + item.code))
        }
        return values, missing


def initial_entries(current: Mapping[str, CurrentValue], version: int) -> dict[str, object]:
    """The stored values as the fields show them: numbers without trailing zeros, dates ISO, yes/no true/false."""
    initial: dict[str, object] = {"version": version}
    for code, value in current.items():
        if value.value.missing_reason:
            initial[MISSING_PREFIX + code] = value.value.missing_reason
        elif value.value.has_value:
            initial[code] = value.display
    return initial


@dataclass(frozen=True)
class ItemRow:
    """One line of the form page: the item, its fields (none when read-only or derived), what is stored now."""

    item: ItemDefinition
    current: CurrentValue
    queries: list[Query]
    field: forms.BoundField | None = None
    missing: forms.BoundField | None = None
    stored_differs: bool = False


def item_groups(
    spec: FormSpec,
    current: Mapping[str, CurrentValue],
    queries: Mapping[str, list[Query]],
    form: FormEntryForm | None = None,
) -> list[tuple[str, list[ItemRow]]]:
    """The items under their report headings, in protocol order."""
    if form is not None:
        form.for_display()
    rows = [_row(item, current[item.code], queries.get(item.code, []), form) for item in spec.items]
    return [(group, list(members)) for group, members in groupby(rows, key=lambda row: row.item.group)]


def _row(item: ItemDefinition, current: CurrentValue, queries: list[Query], form: FormEntryForm | None) -> ItemRow:
    if form is None or item.derived:
        return ItemRow(item=item, current=current, queries=queries)
    field, missing = form[item.code], form[MISSING_PREFIX + item.code]
    differs = form.is_bound and _differs(item, field.value(), missing.value(), current)
    return ItemRow(item=item, current=current, queries=queries, field=field, missing=missing, stored_differs=differs)


def _differs(item: ItemDefinition, raw: str | None, missing_reason: str | None, current: CurrentValue) -> bool:
    """Whether an entry means something other than the stored value (48.0 and 48 are the same number)."""
    try:
        entered = parse_missing(item, missing_reason) if missing_reason else parse(item, raw)
    except ParseError:
        return True
    return entered != current.value
