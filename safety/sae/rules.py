"""The rules of an SAE report's own data: one class, called by the services, the page and the API."""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field, fields

from django.utils import timezone
from django.utils.translation import gettext as _

from safety.models import ChallengeResult
from trial.errors import InvalidInput

MEDICATION_KEYS = ("name", "dose", "route", "indication", "start_date", "end_date", "log_form_id")
MAX_MEDICATIONS = 30
MAX_SHORT = 200
MAX_LONG = 10000
MEDICATION_FIELDS = ("suspect_medications", "concomitant_medications")


@dataclass
class SaeDetailsInput:
    """What the site adds to an SAE for its report: hospital stay, narrative, tests, history, medications."""

    admission_date: datetime.date | None = None
    discharge_date: datetime.date | None = None
    narrative: str = ""
    relevant_tests: str = ""
    relevant_history: str = ""
    suspect_medications: list[dict] = field(default_factory=list)
    concomitant_medications: list[dict] = field(default_factory=list)
    dechallenge: str = ""
    rechallenge: str = ""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def as_dict(self) -> dict:
        return asdict(self)


class SaeDetailsRules:
    """Every rule of the SAE details, as field-level messages; `cleaned` is the trimmed input."""

    def __init__(self, data: SaeDetailsInput, *, today: datetime.date, valid_log_rows: set[int]):
        self.data = data
        self.today = today
        self.valid_log_rows = valid_log_rows
        self.errors: dict[str, list[str]] = {}

    def _add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def check(self) -> SaeDetailsInput:
        cleaned = SaeDetailsInput(
            admission_date=self.data.admission_date,
            discharge_date=self.data.discharge_date,
            narrative=_text(self.data.narrative),
            relevant_tests=_text(self.data.relevant_tests),
            relevant_history=_text(self.data.relevant_history),
            suspect_medications=self._medications("suspect_medications", self.data.suspect_medications),
            concomitant_medications=self._medications("concomitant_medications", self.data.concomitant_medications),
            dechallenge=self.data.dechallenge or "",
            rechallenge=self.data.rechallenge or "",
        )
        self._hospital(cleaned)
        self._texts(cleaned)
        for name in ("dechallenge", "rechallenge"):
            if getattr(cleaned, name) and getattr(cleaned, name) not in ChallengeResult.values:
                self._add(name, _("%(value)s is not one of the choices.") % {"value": getattr(cleaned, name)})
        if self.errors:
            raise InvalidInput(errors=self.errors)
        return cleaned

    def _hospital(self, data: SaeDetailsInput) -> None:
        if data.admission_date and data.admission_date > self.today:
            self._add("admission_date", _("The admission date cannot be in the future."))
        if data.discharge_date and data.discharge_date > self.today:
            self._add("discharge_date", _("The discharge date cannot be in the future."))
        if data.discharge_date and data.admission_date is None:
            self._add("admission_date", _("A discharge needs the admission date."))
        if data.discharge_date and data.admission_date and data.discharge_date < data.admission_date:
            self._add("discharge_date", _("The discharge date cannot precede the admission date."))

    def _texts(self, data: SaeDetailsInput) -> None:
        for name in ("narrative", "relevant_tests", "relevant_history"):
            if len(getattr(data, name)) > MAX_LONG:
                self._add(name, _("At most %(max)d characters.") % {"max": MAX_LONG})

    def _medications(self, name: str, entries: object) -> list[dict]:
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            self._add(name, _("A list of medications, each with at least its name."))
            return []
        if len(entries) > MAX_MEDICATIONS:
            self._add(name, _("At most %(max)d medications.") % {"max": MAX_MEDICATIONS})
            return []
        return [self._medication(name, number, entry) for number, entry in enumerate(entries, start=1)]

    def _medication(self, name: str, number: int, entry: dict) -> dict:
        where = {"number": number}
        unknown = sorted(set(entry) - set(MEDICATION_KEYS))
        if unknown:
            self._add(
                name, _("Medication %(number)s: unknown fields %(keys)s.") % {**where, "keys": ", ".join(unknown)}
            )
        cleaned = {key: _text(entry.get(key)) for key in ("name", "dose", "route", "indication")}
        if not cleaned["name"]:
            self._add(name, _("Medication %(number)s: give its name.") % where)
        if any(len(value) > MAX_SHORT for value in cleaned.values()):
            self._add(
                name, _("Medication %(number)s: at most %(max)d characters a field.") % {**where, "max": MAX_SHORT}
            )
        cleaned.update(self._dates(name, number, entry))
        cleaned["log_form_id"] = self._log_row(name, number, entry.get("log_form_id"))
        return cleaned

    def _dates(self, name: str, number: int, entry: dict) -> dict:
        dates = {}
        for key in ("start_date", "end_date"):
            raw = entry.get(key)
            try:
                day = None if raw in (None, "") else datetime.date.fromisoformat(str(raw))
            except ValueError:
                self._add(name, _("Medication %(number)s: enter dates as YYYY-MM-DD.") % {"number": number})
                day = None
            if day and day > self.today:
                self._add(name, _("Medication %(number)s: a date cannot be in the future.") % {"number": number})
            dates[key] = day.isoformat() if day else ""
        if dates["start_date"] and dates["end_date"] and dates["end_date"] < dates["start_date"]:
            self._add(name, _("Medication %(number)s: it cannot end before it started.") % {"number": number})
        return dates

    def _log_row(self, name: str, number: int, raw: object) -> int | None:
        if raw in (None, ""):
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
            self._add(name, _("Medication %(number)s: not a row of the medication log.") % {"number": number})
            return None
        if int(raw) not in self.valid_log_rows:
            self._add(
                name, _("Medication %(number)s: not a row of this participant's medication log.") % {"number": number}
            )
            return None
        return int(raw)


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def check_details(data: SaeDetailsInput, *, valid_log_rows: set[int]) -> SaeDetailsInput:
    """The cleaned details if every rule holds; InvalidInput with field messages otherwise."""
    return SaeDetailsRules(data, today=timezone.localdate(), valid_log_rows=valid_log_rows).check()
