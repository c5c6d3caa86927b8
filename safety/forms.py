"""Forms of the safety pages. They only collect and type the input; safety.rules and safety.services decide what is
valid, and their errors come back keyed by field (`term`, `onset_date`, ..., `reason`, `password`, `death_date`)."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Fieldset, Layout
from django import forms
from django.utils.translation import gettext_lazy as _

from capture.forms import in_language
from safety.models import ActionTaken, BodySystem, Outcome, Relationship, SeriousCriterion
from safety.rules import AdverseEventInput
from trial.forms import DateInput, DomainErrorsMixin
from trial.models import Protocol, Site
from trial.templatetags.trial_tags import localized
from trial.validators import TEXT_MAX

REASON_MAX = 300  # AdverseEvent.dismiss_reason


def _blank(choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # No answer is preselected: a default would be recorded as if the investigator had chosen it.
    return [("", "---------"), *choices]


def _textarea(rows: int = 2) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows})


def grade_choices(protocol: Protocol | None) -> list[tuple[int, str]]:
    """The protocol file's own 0-4 scale, with its words, in the page's language."""
    scale = (protocol.definition.get("severity_scale") if protocol else None) or []
    words = {step["grade"]: in_language(step.get("text", ""), step.get("text_zh", "")) for step in scale}
    return [(grade, f"{grade} - {words[grade]}" if words.get(grade) else str(grade)) for grade in range(5)]


class AdverseEventForm(DomainErrorsMixin, forms.Form):
    """The adverse event CRF: reported by the site, corrected later (with a reason), or a lab proposal confirmed."""

    REPORT, UPDATE, CONFIRM = "report", "update", "confirm"

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    term = forms.CharField(
        label=_("Adverse event"),
        required=False,
        max_length=TEXT_MAX,
        help_text=_("The diagnosis, or the sign or symptom, in medical words (not the participant's name)."),
    )
    body_system = forms.ChoiceField(
        label=_("Body system (MedDRA SOC)"), required=False, choices=_blank(BodySystem.choices)
    )
    onset_date = forms.DateField(label=_("Onset date"), required=False, widget=DateInput())
    end_date = forms.DateField(
        label=_("End date"), required=False, widget=DateInput(), help_text=_("Leave empty while the event is ongoing.")
    )
    grade = forms.TypedChoiceField(label=_("Grade (protocol scale 0-4)"), required=False, coerce=int, empty_value=None)
    relationship = forms.ChoiceField(
        label=_("Relationship to the study treatment"), required=False, choices=_blank(Relationship.choices)
    )
    action_taken = forms.ChoiceField(label=_("Action taken"), required=False, choices=_blank(ActionTaken.choices))
    outcome = forms.ChoiceField(label=_("Outcome"), required=False, choices=_blank(Outcome.choices))
    serious = forms.BooleanField(label=_("Serious adverse event"), required=False)
    serious_criteria = forms.MultipleChoiceField(
        label=_("Serious criteria"),
        required=False,
        choices=SeriousCriterion.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Every criterion the event meets; a serious event meets at least one."),
    )
    description = forms.CharField(label=_("Description"), required=False, max_length=TEXT_MAX, widget=_textarea(3))
    reason = forms.CharField(
        label=_("Reason for change"),
        required=False,
        max_length=TEXT_MAX,
        widget=_textarea(),
        help_text=_("Every change of a reported adverse event needs a reason; it is kept in the audit trail."),
    )

    def __init__(self, *args: object, kind: str, protocol: Protocol | None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        if kind == self.REPORT:
            del self.fields["version"]
        if kind != self.UPDATE:
            del self.fields["reason"]
        self.fields["grade"].choices = _blank(grade_choices(protocol))
        self.helper = self._helper()

    def _helper(self) -> FormHelper:
        helper = FormHelper()
        helper.form_tag = False
        helper.layout = Layout(
            *(["version"] if "version" in self.fields else []),
            Fieldset(
                _("The event"),
                Field("term", autocomplete="off"),
                "body_system",
                Div(Div("onset_date", css_class="col-sm-6"), Div("end_date", css_class="col-sm-6"), css_class="row"),
                "description",
            ),
            Fieldset(
                _("Assessment"),
                "grade",
                "relationship",
                "action_taken",
                "outcome",
            ),
            Fieldset(_("Seriousness"), "serious", "serious_criteria"),
            *([Fieldset(_("Reason for change"), "reason")] if "reason" in self.fields else []),
        )
        return helper

    def event_input(self) -> AdverseEventInput:
        data = self.cleaned_data
        return AdverseEventInput(**{name: data.get(name) for name in AdverseEventInput.field_names()})

    @staticmethod
    def initial_of(event: object) -> dict[str, object]:
        """The stored event as the form shows it, with the version it was read at."""
        return {"version": event.version, **{name: getattr(event, name) for name in AdverseEventInput.field_names()}}


class DismissForm(DomainErrorsMixin, forms.Form):
    """The investigator's reason a lab proposal is not an adverse event."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    reason = forms.CharField(
        label=_("Reason for dismissing"),
        required=False,
        max_length=REASON_MAX,
        widget=_textarea(),
        help_text=_("Why this lab value is not an adverse event, say unchanged from the cirrhosis at baseline."),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False


class SignForm(DomainErrorsMixin, forms.Form):
    """The investigator's password, asked again at signing (21 CFR 11.200)."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    password = forms.CharField(
        label=_("Your password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False


class VersionForm(forms.Form):
    """The version an action (the monitor's verification) was taken on."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


YES_NO = [("yes", _("Yes")), ("no", _("No"))]


class DeathReportForm(DomainErrorsMixin, forms.Form):
    death_date = forms.DateField(label=_("Date of death"), required=False, widget=DateInput())
    cause = forms.CharField(label=_("Cause of death"), required=False, max_length=REASON_MAX, widget=_textarea())
    relationship = forms.ChoiceField(
        label=_("Relationship to the study treatment"), required=False, choices=_blank(Relationship.choices)
    )
    autopsy = forms.ChoiceField(label=_("Autopsy performed"), choices=_blank(YES_NO))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False

    def report_input(self) -> dict[str, object]:
        data = self.cleaned_data
        return {
            "death_date": data["death_date"],
            "cause": data["cause"],
            "relationship": data["relationship"],
            "autopsy": data["autopsy"] == "yes",
        }


class SiteFilterForm(forms.Form):
    """Narrows a safety page to one of the user's sites; the choices come from a list already read."""

    site = forms.TypedChoiceField(label=_("Site"), required=False, coerce=int, empty_value=None)

    def __init__(self, *args: object, sites: list[Site], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.sites = {site.number: site for site in sites}
        choices = [(str(site.number), f"{site.number:02d} {localized(site, 'name')}") for site in sites]
        self.fields["site"].choices = [("", _("All sites")), *choices]
        self.fields["site"].widget.attrs["class"] = "form-select form-select-sm"

    def site_id(self) -> int | None:
        """The chosen site's id; an invalid choice (another site's number) narrows nothing."""
        if not self.is_valid() or self.cleaned_data["site"] is None:
            return None
        return self.sites[self.cleaned_data["site"]].pk
