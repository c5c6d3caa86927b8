"""Forms of the SAE report pages: they collect and type the input; safety/sae/rules.py decides what is valid."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Fieldset, Layout
from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from safety.models import ChallengeResult, Relationship
from safety.sae.rules import MAX_LONG, MEDICATION_KEYS, SaeDetailsInput
from trial.forms import DateInput, DomainErrorsMixin

SEPARATOR = "|"


def _blank(choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [("", "---------"), *choices]


def medications_text(entries: list[dict]) -> str:
    """A medication list as the page shows it: one a line, its fields separated by |."""
    return "\n".join(
        f" {SEPARATOR} ".join(str(entry.get(key) or "") for key in MEDICATION_KEYS).rstrip(f" {SEPARATOR}")
        for entry in entries
    )


def medications_of(text: str) -> list[dict]:
    """The lines typed on the page as medication entries; the rules check them."""
    entries = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(SEPARATOR)]
        entry = dict(zip(MEDICATION_KEYS, parts, strict=False))
        if len(parts) > len(MEDICATION_KEYS):
            entry["extra"] = SEPARATOR.join(parts[len(MEDICATION_KEYS) :])  # refused by the rules, named
        entries.append({key: value for key, value in entry.items() if value != ""} | {"name": entry.get("name", "")})
    return entries


MEDICATION_HELP = gettext_lazy(
    "One medication a line: name | daily dose | route | indication | start (YYYY-MM-DD) | end (YYYY-MM-DD) | "
    "row of the medication log (optional)."
)


class SaeDetailsForm(DomainErrorsMixin, forms.Form):
    version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    admission_date = forms.DateField(label=gettext_lazy("Hospital admission"), required=False, widget=DateInput())
    discharge_date = forms.DateField(label=gettext_lazy("Hospital discharge"), required=False, widget=DateInput())
    narrative = forms.CharField(
        label=gettext_lazy("Narrative"),
        required=False,
        max_length=MAX_LONG,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=gettext_lazy("The course of the event, its treatment and outcome, as a clinician tells it."),
    )
    relevant_tests = forms.CharField(
        label=gettext_lazy("Relevant tests and laboratory data"),
        required=False,
        max_length=MAX_LONG,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    relevant_history = forms.CharField(
        label=gettext_lazy("Relevant history"),
        required=False,
        max_length=MAX_LONG,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Diagnoses, allergies, alcohol use, other conditions before the event."),
    )
    suspect_medications = forms.CharField(
        label=gettext_lazy("Other suspect medications"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("The UC-MSC infusions of the MSC arm are added from the infusion forms."),
    )
    concomitant_medications = forms.CharField(
        label=gettext_lazy("Concomitant medications"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=MEDICATION_HELP,
    )
    dechallenge = forms.ChoiceField(
        label=gettext_lazy("Did the event abate after stopping the study treatment?"),
        required=False,
        choices=_blank(ChallengeResult.choices),
    )
    rechallenge = forms.ChoiceField(
        label=gettext_lazy("Did the event reappear after reintroduction?"),
        required=False,
        choices=_blank(ChallengeResult.choices),
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason for change"),
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("A change of details already saved needs a reason; it is kept in the audit trail."),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            "version",
            Fieldset(
                _("Hospital stay"),
                Div(
                    Div("admission_date", css_class="col-sm-6"),
                    Div("discharge_date", css_class="col-sm-6"),
                    css_class="row",
                ),
            ),
            Fieldset(_("Description"), "narrative", "relevant_tests", "relevant_history"),
            Fieldset(_("Medications"), "suspect_medications", "concomitant_medications", "dechallenge", "rechallenge"),
            Fieldset(_("Reason for change"), "reason"),
        )

    def details_input(self) -> SaeDetailsInput:
        data = self.cleaned_data
        values = {name: data.get(name) for name in SaeDetailsInput.field_names()}
        values["suspect_medications"] = medications_of(data.get("suspect_medications", ""))
        values["concomitant_medications"] = medications_of(data.get("concomitant_medications", ""))
        return SaeDetailsInput(**values)

    @staticmethod
    def initial_of(details: SaeDetailsInput, version: int) -> dict[str, object]:
        initial = {"version": version, **details.as_dict()}
        initial["suspect_medications"] = medications_text(details.suspect_medications)
        initial["concomitant_medications"] = medications_text(details.concomitant_medications)
        return initial


class SaeReportForm(forms.Form):
    """Send the next version of the report: its number as the page showed it, and whether it is the final one."""

    sequence = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    final = forms.BooleanField(required=False)


class SponsorCausalityForm(DomainErrorsMixin, forms.Form):
    version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    relationship = forms.ChoiceField(
        label=gettext_lazy("Sponsor's causality: relationship to the study treatment"),
        required=False,
        choices=_blank(Relationship.choices),
    )
    assessor = forms.CharField(label=gettext_lazy("Sponsor's safety physician"), required=False, max_length=300)
    comment = forms.CharField(
        label=gettext_lazy("Sponsor's comment"),
        required=False,
        max_length=MAX_LONG,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason for change"),
        required=False,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
