"""The one text validator and the one date plausibility check, for every door (pages, API, lab import, capture).

Text: a NUL, any other control character and a lone surrogate half are refused with a field-level message. Tab,
carriage return and line feed are allowed where the text may span lines (a textarea, a message, a reason). Such
characters are never typed by a person; they come from pasted binary or hostile clients, and PostgreSQL refuses a
NUL outright (a 500 had it reached the database).

Dates: nothing in this trial happened before 1900-01-01, and a date of something that already happened (a sample,
a visit, an onset, a death...) cannot lie after today in the trial's time zone (settings.TIME_ZONE).

Django forms get both through `TextInputFormMixin` (every input form has it via `DomainErrorsMixin`), DRF
serializers through `InputSerializer`, and the services call `date_problem` / `validate_text` themselves.
"""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Mapping

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext as _
from rest_framework import serializers

# The most characters a reason for change or a free text takes, on the pages and in the API alike.
TEXT_MAX = 2000
EARLIEST_DATE = datetime.date(1900, 1, 1)
MULTILINE_WHITESPACE = frozenset("\t\r\n")
INTEGER_MAX = 2**63 - 1
# The most days a "days ago" filter looks back: a century, far past any trial and far inside a date's range.
MAX_DAYS = 36_500
# API fields that take text of several lines.
MULTILINE_FIELDS = frozenset({"message", "reason", "description", "cause"})


def text_problem(value: str, *, multiline: bool) -> str | None:
    """The user's message for the first character the text may not hold; None if every character is allowed."""
    for position, char in enumerate(value, start=1):
        category = unicodedata.category(char)
        if category == "Cs":
            return _("The text holds an invalid character (U+%(code)04X) at position %(position)d: remove it.") % {
                "code": ord(char),
                "position": position,
            }
        if category == "Cc" and not (multiline and char in MULTILINE_WHITESPACE):
            if char in MULTILINE_WHITESPACE:
                return _("Write this on one line: tabs and line breaks are not allowed here.")
            return _("The text holds a control character (U+%(code)04X) at position %(position)d: remove it.") % {
                "code": ord(char),
                "position": position,
            }
    return None


def validate_text(value: object, *, multiline: bool = False) -> None:
    """Raise ValidationError (code "text_character") if `value` is a string with a character it may not hold."""
    if not isinstance(value, str):
        return
    message = text_problem(value, multiline=multiline)
    if message:
        raise ValidationError(message, code="text_character")


@deconstructible
class TextValidator:
    """`validate_text` as a field validator."""

    def __init__(self, *, multiline: bool = False) -> None:
        self.multiline = multiline

    def __call__(self, value: object) -> None:
        validate_text(value, multiline=self.multiline)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextValidator) and other.multiline == self.multiline

    def __hash__(self) -> int:
        return hash(self.multiline)


def today() -> datetime.date:
    """Today in the trial's time zone."""
    return timezone.localdate()


def date_problem(value: datetime.date | None, *, happened: bool = True, on: datetime.date | None = None) -> str | None:
    """The user's message if `value` is not a plausible date; `happened`: the date of something already done."""
    if value is None:
        return None
    if value < EARLIEST_DATE:
        return _("Dates before %(date)s are not accepted.") % {"date": EARLIEST_DATE.isoformat()}
    if happened and value > (on or today()):
        return _("This date cannot be in the future.")
    return None


def date_errors(dates: Mapping[str, datetime.date | None], *, on: datetime.date | None = None) -> dict[str, list[str]]:
    """{field: [message]} for the dates of things that already happened which are implausible."""
    errors = {}
    for field, value in dates.items():
        message = date_problem(value, on=on)
        if message:
            errors[field] = [message]
    return errors


# --- Django forms ---------------------------------------------------------------------------------------------


class TextInputFormMixin:
    """Adds the text validator to every character field of the form: multi-line where the widget is a textarea or
    the field says `multiline = True` (a CRF's text item, which may hold a pasted paragraph).

    Hooked at clean time, not in __init__, so that fields a form adds in its own __init__ are covered too.
    """

    def full_clean(self) -> None:
        for field in self.fields.values():
            if isinstance(field, forms.CharField):
                multiline = isinstance(field.widget, forms.Textarea) or getattr(field, "multiline", False)
                validator = _TEXT_VALIDATORS[multiline]
                if validator not in field.validators:
                    field.validators.append(validator)
        super().full_clean()


# Stateless, so shared by every field: a form of many fields builds none per request, and a field that already
# holds its validator is found by identity.
_TEXT_VALIDATORS = {False: TextValidator(multiline=False), True: TextValidator(multiline=True)}


# --- DRF serializers ------------------------------------------------------------------------------------------


def _strings(value: object, *, multiline: bool) -> str | None:
    """The message for the first refused string in a JSON value (dictionary keys are always one line)."""
    if isinstance(value, str):
        return text_problem(value, multiline=multiline)
    if isinstance(value, Mapping):
        for key, item in value.items():
            message = _strings(key, multiline=False) or _strings(item, multiline=multiline)
            if message:
                return message
    elif isinstance(value, list | tuple):
        for item in value:
            message = _strings(item, multiline=multiline)
            if message:
                return message
    return None


class InputSerializer(serializers.Serializer):
    """The base of every API serializer that reads input (a body or query parameters).

    - Every string (in lists and dictionaries too, keys included) passes the text validator, on the raw input
      before any field parses it, so no refused character reaches a service, a query or an error message echoed
      back. Fields named in `multiline_fields` may hold tabs and line breaks; of a dictionary named in
      `service_checked_fields` only the keys are checked here, its values by the service (which keys its message
      by the dictionary's key: a capture form's entries, by item code).
    - Every integer field without a bound of its own is bounded to a 64-bit integer (PostgreSQL's bigint), so a
      huge id is a 400 on its field, not a database error.
    - Every date and date-time field refuses dates before 1900-01-01.
    """

    multiline_fields: frozenset[str] = MULTILINE_FIELDS
    service_checked_fields: frozenset[str] = frozenset()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for field in fields.values():
            if not field.read_only:
                _bound(field)
        return fields

    def to_internal_value(self, data: object) -> dict:
        if isinstance(data, Mapping):
            errors = {}
            for name, field in self.fields.items():
                if field.read_only or name not in data:
                    continue
                raw = data.getlist(name) if hasattr(data, "getlist") else data[name]
                if name in self.service_checked_fields and isinstance(raw, Mapping):
                    raw = list(raw)
                message = _strings(raw, multiline=name in self.multiline_fields)
                if message:
                    errors[name] = [message]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def _bound(field: serializers.Field) -> None:
    if isinstance(field, serializers.ListField | serializers.DictField):
        _bound(field.child)
    elif isinstance(field, serializers.IntegerField):
        if field.max_value is None:
            field.max_value = INTEGER_MAX
            message = field.error_messages["max_value"].format(max_value=INTEGER_MAX)
            field.validators.append(MaxValueValidator(INTEGER_MAX, message=message))
        if field.min_value is None:
            field.min_value = -INTEGER_MAX
            message = field.error_messages["min_value"].format(min_value=-INTEGER_MAX)
            field.validators.append(MinValueValidator(-INTEGER_MAX, message=message))
    elif isinstance(field, serializers.DateField | serializers.DateTimeField):
        field.validators.append(_not_before_1900)


def _not_before_1900(value: datetime.date | datetime.datetime | None) -> None:
    day = value.date() if isinstance(value, datetime.datetime) else value
    message = date_problem(day, happened=False)
    if message:
        raise ValidationError(message, code="date_range")


def text_field(**kwargs: object) -> serializers.CharField:
    """A free-text API field with the pages' limit of TEXT_MAX characters."""
    kwargs.setdefault("max_length", TEXT_MAX)
    return serializers.CharField(**kwargs)
