"""Forms of the report pages. They only collect and type the input; reports.runs and reports.schedules decide."""

import zoneinfo

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Layout, Submit
from django import forms
from django.utils.translation import gettext_lazy as _

from reports.models import ReportKind
from trial.forms import DomainErrorsMixin
from trial.models import Site
from trial.templatetags.trial_tags import localized


class ReportRequestForm(DomainErrorsMixin, forms.Form):
    kind = forms.ChoiceField(label=_("Report"), choices=ReportKind.choices, widget=forms.RadioSelect)
    sites = forms.TypedMultipleChoiceField(
        label=_("Sites"),
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The report covers only the participants of the sites ticked."),
        error_messages={"required": _("Tick at least one site.")},
    )

    def __init__(self, *args: object, sites: list[Site], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sites"].choices = [(site.number, f"{site.number:02d} {localized(site, 'name')}") for site in sites]
        self.fields["sites"].initial = [site.number for site in sites]
        self.fields["kind"].initial = ReportKind.TRIAL_SUMMARY
        self.helper = FormHelper()
        self.helper.form_id = "report-request"
        self.helper.layout = Layout(
            Div(Field("kind"), css_class="mb-2"),
            Field("sites"),
            Submit("request", _("Generate report"), css_class="btn-primary"),
        )


class ScheduleForm(DomainErrorsMixin, forms.Form):
    minute = forms.CharField(label=_("Minute"), max_length=60, help_text=_("0-59, or a crontab list/range."))
    hour = forms.CharField(label=_("Hour"), max_length=60, help_text=_("0-23"))
    day_of_week = forms.CharField(
        label=_("Day of the week"), max_length=64, help_text=_("0-6, Sunday is 0; * for every day.")
    )
    day_of_month = forms.CharField(label=_("Day of the month"), max_length=124, help_text=_("1-31; * for every day."))
    timezone = forms.ChoiceField(label=_("Time zone"))
    enabled = forms.BooleanField(label=_("Enabled"), required=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = [(zone, zone) for zone in sorted(zoneinfo.available_timezones())]
        self.helper = FormHelper()
        self.helper.form_id = "schedule-form"
        self.helper.layout = Layout(
            Div(
                Div(Field("minute"), css_class="col-md-3"),
                Div(Field("hour"), css_class="col-md-3"),
                Div(Field("day_of_week"), css_class="col-md-3"),
                Div(Field("day_of_month"), css_class="col-md-3"),
                css_class="row",
            ),
            Field("timezone"),
            Field("enabled"),
            Submit("save", _("Save schedule"), css_class="btn-primary"),
        )
