"""Forms of the trial pages. They only collect and type the input; the services decide what is valid."""

from crispy_forms.bootstrap import AppendedText, InlineRadios
from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Fieldset, Layout, Submit
from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from trial.models import (
    Arm,
    Ascites,
    CriterionKind,
    Diagnosis,
    EligibilityCriterion,
    Encephalopathy,
    Sex,
    Site,
)
from trial.services import ScreeningInput
from trial.validators import TextInputFormMixin

YES_NO = [("yes", _("Yes")), ("no", _("No"))]
CRITERION_PREFIX = "criterion_"


class DateInput(forms.DateInput):
    """The browser's date picker; it sends and expects ISO dates whatever the page language."""

    input_type = "date"

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class DomainErrorsMixin(TextInputFormMixin):
    """Shows a service's InvalidInput/EligibilityError `errors` on the form, keeping what the user typed.

    Every input form has it, so every input form's text also passes the one text validator.
    """

    def add_domain_errors(self, errors: dict[str, list[str]]) -> None:
        for field, messages in errors.items():
            target = field if field in self.fields else None
            for message in messages:
                self.add_error(target, message)


def _blank(choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # No answer is preselected: a default would be recorded as if the investigator had chosen it.
    return [("", "---------"), *choices]


def _localized(text: str, text_zh: str) -> str:
    return text_zh if text_zh and (get_language() or "").startswith("zh") else text


class SiteChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Site) -> str:
        return f"{obj.number:02d} {_localized(obj.name, obj.name_zh)}"


class ScreeningForm(DomainErrorsMixin, forms.Form):
    site = SiteChoiceField(label=_("Site"), queryset=Site.objects.none())
    initials = forms.CharField(label=_("Initials"), max_length=4, help_text=_("2 to 4 letters; never the full name."))
    sex = forms.ChoiceField(label=_("Sex"), choices=_blank(Sex.choices))
    date_of_birth = forms.DateField(label=_("Date of birth"), widget=DateInput())
    screening_date = forms.DateField(label=_("Screening date"), widget=DateInput())
    consent_date = forms.DateField(
        label=_("Date of written informed consent"),
        required=False,
        widget=DateInput(),
        help_text=_("Leave empty if consent has not been given."),
    )
    icf_version = forms.CharField(
        label=_("Consent form version"),
        required=False,
        max_length=16,
        help_text=_("Leave empty for the version in force on the consent date."),
    )
    diagnosis = forms.ChoiceField(label=_("Clinical diagnosis"), choices=_blank(Diagnosis.choices))
    total_bilirubin = forms.DecimalField(label=_("Total bilirubin"), max_digits=7, decimal_places=1)
    albumin = forms.DecimalField(label=_("Albumin"), max_digits=5, decimal_places=1)
    inr = forms.DecimalField(label=_("INR"), max_digits=4, decimal_places=2)
    ascites = forms.ChoiceField(label=_("Ascites"), choices=_blank(Ascites.choices))
    encephalopathy = forms.ChoiceField(label=_("Hepatic encephalopathy"), choices=_blank(Encephalopathy.choices))

    def __init__(
        self, *args: object, sites: QuerySet[Site], criteria: list[EligibilityCriterion], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        only_site = list(sites[:2])
        if len(only_site) == 1:
            self.fields["site"].widget = forms.HiddenInput()
            self.fields["site"].initial = only_site[0].pk
        self.fields["screening_date"].initial = timezone.localdate()
        self.criteria = criteria
        for criterion in criteria:
            self.fields[CRITERION_PREFIX + criterion.code] = forms.ChoiceField(
                label=f"{criterion.code}: {_localized(criterion.text, criterion.text_zh)}",
                choices=YES_NO,
                widget=forms.RadioSelect,
            )
        self.helper = self._helper()

    def _helper(self) -> FormHelper:
        helper = FormHelper()
        helper.form_tag = False
        helper.layout = Layout(
            Fieldset(
                _("Candidate"),
                "site",
                "initials",
                "sex",
                "date_of_birth",
                "screening_date",
                "consent_date",
                "icf_version",
            ),
            Fieldset(
                _("Diagnosis and Child-Pugh values"),
                "diagnosis",
                AppendedText("total_bilirubin", "µmol/L"),
                AppendedText("albumin", "g/L"),
                "inr",
                "ascites",
                "encephalopathy",
            ),
            *self._criteria_fieldsets(),
            Submit("submit", _("Record screening")),
        )
        return helper

    def _criteria_fieldsets(self) -> list[Fieldset]:
        fieldsets = []
        for kind, legend, hint in (
            (CriterionKind.INCLUSION, _("Inclusion criteria"), _("Does the candidate meet each criterion?")),
            (CriterionKind.EXCLUSION, _("Exclusion criteria"), _("Does any of these apply to the candidate?")),
        ):
            names = [CRITERION_PREFIX + c.code for c in self.criteria if c.kind == kind]
            if names:
                hint_html = HTML(f'<p class="form-text">{escape(hint)}</p>')
                fieldsets.append(Fieldset(legend, hint_html, *[InlineRadios(name) for name in names]))
        return fieldsets

    def screening_input(self) -> ScreeningInput:
        data = self.cleaned_data
        return ScreeningInput(
            initials=data["initials"].strip(),
            sex=data["sex"],
            date_of_birth=data["date_of_birth"],
            screening_date=data["screening_date"],
            consent_date=data["consent_date"],
            icf_version=data["icf_version"].strip(),
            diagnosis=data["diagnosis"],
            total_bilirubin=data["total_bilirubin"],
            albumin=data["albumin"],
            inr=data["inr"],
            ascites=data["ascites"],
            encephalopathy=data["encephalopathy"],
            answers={c.code: data[CRITERION_PREFIX + c.code] == "yes" for c in self.criteria},
        )


class EnrolmentForm(DomainErrorsMixin, forms.Form):
    arm = forms.ChoiceField(label=_("Arm"), widget=forms.RadioSelect)
    enrolment_date = forms.DateField(
        label=_("Enrolment date"), widget=DateInput(), help_text=_("Day 0 of the visit schedule.")
    )

    def __init__(self, *args: object, arms: list[Arm], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["arm"].choices = [(arm.code, _localized(arm.name, arm.name_zh)) for arm in arms]
        self.fields["enrolment_date"].initial = timezone.localdate()
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.add_input(Submit("submit", _("Enrol")))


SEARCH_PLACEHOLDER = _("Subject ID, screening number or initials")


class ParticipantFilterForm(forms.Form):
    """The filters of the participant list and the subject matrix; both only narrow what access allows."""

    site = SiteChoiceField(label=_("Site"), queryset=Site.objects.none(), required=False, empty_label=_("All sites"))
    status = forms.ChoiceField(label=_("Status"), required=False)
    q = forms.CharField(label=_("Find"), required=False, max_length=40)

    def __init__(
        self, *args: object, sites: QuerySet[Site], statuses: list[tuple[str, str]] | None = None, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        for bound_field in self.fields.values():
            bound_field.widget.attrs["class"] = "form-select form-select-sm"
        self.fields["q"].widget.attrs.update(
            {"class": "form-control form-control-sm", "type": "search", "placeholder": SEARCH_PLACEHOLDER}
        )
        if statuses is None:
            del self.fields["status"]
        else:
            self.fields["status"].choices = [("", _("All statuses")), *statuses]

    def filters(self) -> dict[str, object]:
        """{site_id, status, search} from valid input; an invalid filter (say, another site's id) filters nothing."""
        if not self.is_valid():
            return {"site_id": None, "status": "", "search": ""}
        site = self.cleaned_data.get("site")
        return {
            "site_id": site.pk if site else None,
            "status": self.cleaned_data.get("status") or "",
            "search": self.cleaned_data.get("q") or "",
        }


class ReconsentForm(DomainErrorsMixin, forms.Form):
    """The consent form version a participant re-consented to, and the day they signed it."""

    icf_version = forms.ChoiceField(label=_("Consent form version"))
    consent_date = forms.DateField(label=_("Date of re-consent"), required=False, widget=DateInput())

    def __init__(self, *args: object, versions: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["icf_version"].choices = [(version, version) for version in versions]
        self.helper = FormHelper()
        self.helper.form_tag = False
