"""The forms of the review pages. They only collect what was typed; capture.review decides what is valid, and its
errors come back keyed by field (`message`, `password`, `reason`, `form`, `item`, `field_code`)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from capture.definitions import FormSpec
from trial.forms import DomainErrorsMixin
from trial.validators import TEXT_MAX

MESSAGE_MAX = TEXT_MAX
REASON_MAX = 300  # Lock.reason and Lock.release_reason


def _textarea(rows: int = 2) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows, "class": "form-control"})


def _query_message() -> forms.CharField:
    return forms.CharField(
        label=_("Query"),
        required=False,
        max_length=MESSAGE_MAX,
        widget=_textarea(3),
        help_text=_("What the site should check or correct, as the site will read it."),
    )


class QueryRaiseForm(DomainErrorsMixin, forms.Form):
    """A query on an item (form and item given), on a whole form (form only) or on the visit (neither)."""

    form = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    item = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    message = _query_message()


class RecordQueryRaiseForm(DomainErrorsMixin, forms.Form):
    """A query on a record that is not an item of a visit (an adverse event): on one field, or the whole record."""

    field_code = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)
    message = _query_message()


class QueryMessageForm(DomainErrorsMixin, forms.Form):
    """The message of a step of a query's thread: an answer, a closing note, the reason to re-open."""

    message = forms.CharField(label=_("Message"), required=False, max_length=MESSAGE_MAX, widget=_textarea(3))


class VerifyForm(forms.Form):
    """The items a monitor checked against the source documents, or the whole form."""

    items = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    whole = forms.BooleanField(required=False)

    def __init__(self, *args: object, spec: FormSpec, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["items"].choices = [(item.code, item.code) for item in spec.entered]

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        if not cleaned.get("whole") and not cleaned.get("items") and not self.errors:
            raise forms.ValidationError(_("Select the items to verify, or verify the whole form."))
        return cleaned

    def item_codes(self) -> list[str] | None:
        """The selected item codes, or None for every item of the form."""
        return None if self.cleaned_data["whole"] else list(self.cleaned_data["items"])


class SignForm(DomainErrorsMixin, forms.Form):
    """The investigator's password, asked again at signing (21 CFR 11.200): the signature is theirs alone."""

    password = forms.CharField(
        label=_("Your password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"class": "form-control", "autocomplete": "current-password"}),
    )


class LockForm(DomainErrorsMixin, forms.Form):
    reason = forms.CharField(label=_("Reason for locking"), required=False, max_length=REASON_MAX, widget=_textarea())
    # Set by the "lock anyway" button, once the page has told how many queries are still open.
    confirm_open_queries = forms.BooleanField(required=False, widget=forms.HiddenInput)


class ReleaseForm(DomainErrorsMixin, forms.Form):
    reason = forms.CharField(
        label=_("Reason for releasing the lock"), required=False, max_length=REASON_MAX, widget=_textarea()
    )
