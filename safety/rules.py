"""The adverse event CRF's field and cross-field rules: one class, called by the services, the page and the API."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, fields

from django.utils import timezone
from django.utils.translation import gettext as _

from safety.models import ActionTaken, BodySystem, Outcome, Relationship, SeriousCriterion
from trial.errors import InvalidInput
from trial.validators import date_problem

# Outcomes that say the event is over: they need an end date.
ENDED_OUTCOMES = {Outcome.RECOVERED, Outcome.RECOVERED_WITH_SEQUELAE, Outcome.FATAL}
GRADES = range(0, 5)


@dataclass
class AdverseEventInput:
    """An adverse event as the site or the investigator describes it (the assessed fields of the CRF)."""

    term: str = ""
    body_system: str = ""
    onset_date: datetime.date | None = None
    end_date: datetime.date | None = None
    grade: int | None = None
    relationship: str = ""
    action_taken: str = ""
    outcome: str = ""
    serious: bool = False
    serious_criteria: list[str] = field(default_factory=list)
    description: str = ""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def cleaned(self) -> AdverseEventInput:
        """The same input with text trimmed and criteria de-duplicated in a stable order."""
        return AdverseEventInput(
            term=(self.term or "").strip(),
            body_system=self.body_system or "",
            onset_date=self.onset_date,
            end_date=self.end_date,
            grade=self.grade,
            relationship=self.relationship or "",
            action_taken=self.action_taken or "",
            outcome=self.outcome or "",
            serious=bool(self.serious),
            serious_criteria=sorted(set(self.serious_criteria or [])),
            description=(self.description or "").strip(),
        )


class AdverseEventRules:
    """Every rule an assessed adverse event obeys, as field-level messages keyed by field name."""

    def __init__(
        self,
        data: AdverseEventInput,
        *,
        enrolment_date: datetime.date | None,
        today: datetime.date,
        death_date: datetime.date | None = None,
    ):
        self.data = data
        self.enrolment_date = enrolment_date
        self.death_date = death_date
        self.today = today
        self.errors: dict[str, list[str]] = {}

    def check(self) -> None:
        """Raise InvalidInput with every broken rule; nothing is written then."""
        self._required()
        self._choices()
        self._dates()
        self._seriousness()
        if self.errors:
            raise InvalidInput(errors=self.errors)

    def _add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def _required(self) -> None:
        data = self.data
        for name in ("term", "body_system", "relationship", "action_taken", "outcome"):
            if not getattr(data, name):
                self._add(name, _("This field is required."))
        if data.onset_date is None:
            self._add("onset_date", _("This field is required."))
        if data.grade is None:
            self._add("grade", _("This field is required."))
        elif data.grade not in GRADES:
            self._add("grade", _("The grade is on the protocol's scale of 0 to 4."))
        if len(data.term) > 200:
            self._add("term", _("At most 200 characters."))

    def _choices(self) -> None:
        for name, choices in (
            ("body_system", BodySystem),
            ("relationship", Relationship),
            ("action_taken", ActionTaken),
            ("outcome", Outcome),
        ):
            value = getattr(self.data, name)
            if value and value not in choices.values:
                self._add(name, _("%(value)s is not one of the choices.") % {"value": value})
        unknown = [code for code in self.data.serious_criteria if code not in SeriousCriterion.values]
        if unknown:
            self._add("serious_criteria", _("Unknown criteria: %(codes)s.") % {"codes": ", ".join(unknown)})

    def _dates(self) -> None:
        data = self.data
        for name in ("onset_date", "end_date"):
            problem = date_problem(getattr(data, name), happened=False)
            if problem:
                self._add(name, problem)
        if data.onset_date and data.onset_date > self.today:
            self._add("onset_date", _("The onset date cannot be in the future."))
        if data.onset_date and self.enrolment_date and data.onset_date < self.enrolment_date:
            self._add(
                "onset_date",
                _("An adverse event starts on or after enrolment (%(date)s); earlier conditions are medical history.")
                % {"date": self.enrolment_date.isoformat()},
            )
        if data.onset_date and self.death_date and data.onset_date > self.death_date:
            self._add(
                "onset_date",
                _("The participant died on %(date)s: an event cannot start later.")
                % {"date": self.death_date.isoformat()},
            )
        if data.end_date and data.end_date > self.today:
            self._add("end_date", _("The end date cannot be in the future."))
        if data.end_date and data.onset_date and data.end_date < data.onset_date:
            self._add("end_date", _("The end date cannot precede the onset date."))
        if data.outcome in ENDED_OUTCOMES and data.end_date is None:
            self._add("end_date", _("An event with this outcome has ended: give its end date."))
        if data.outcome and data.outcome not in ENDED_OUTCOMES and data.end_date is not None:
            self._add("outcome", _("An event with an end date has an outcome of recovered, with sequelae, or fatal."))

    def _seriousness(self) -> None:
        data = self.data
        if data.serious and not data.serious_criteria:
            self._add("serious_criteria", _("A serious event meets at least one criterion."))
        if not data.serious and data.serious_criteria:
            self._add("serious", _("Criteria are given: mark the event serious, or clear the criteria."))
        if data.outcome == Outcome.FATAL and SeriousCriterion.FATAL not in data.serious_criteria:
            self._add("serious_criteria", _("A fatal outcome makes the event serious with the criterion 'Fatal'."))
        if SeriousCriterion.FATAL in data.serious_criteria and data.outcome != Outcome.FATAL:
            self._add("outcome", _("The criterion 'Fatal' needs the outcome 'Fatal'."))


def check_input(
    data: AdverseEventInput, *, enrolment_date: datetime.date | None, death_date: datetime.date | None = None
) -> AdverseEventInput:
    """The cleaned input if every rule holds; InvalidInput with field messages otherwise."""
    cleaned = data.cleaned()
    AdverseEventRules(cleaned, enrolment_date=enrolment_date, today=timezone.localdate(), death_date=death_date).check()
    return cleaned
