"""What every section of a report reads besides its statistics: the scope, the cut-off, and the protocol's
names of arms, sites, visits and items in the reader's language."""

import datetime
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone, translation

from capture.definitions import FormSpec, protocol_definition, protocol_forms
from reports.statistics import sites_of
from trial import display
from trial.models import Arm, ItemDefinition, Participant, Protocol, Site, VisitDefinition, VisitKind


@dataclass(frozen=True)
class ReportContext:
    participants: QuerySet[Participant]
    cutoff: datetime.datetime
    protocol: Protocol
    generated_by: str
    generated_at: datetime.datetime
    forms: dict[str, FormSpec]
    definition: dict
    arms: list[Arm]
    sites: list[Site]
    visits: list[VisitDefinition]

    @classmethod
    def load(
        cls, *, participants: QuerySet[Participant], cutoff: datetime.datetime, protocol: Protocol, generated_by: str
    ) -> "ReportContext":
        """Three queries (arms, sites, visits); the forms and the protocol file are cached per process."""
        return cls(
            participants=participants,
            cutoff=cutoff,
            protocol=protocol,
            generated_by=generated_by,
            generated_at=timezone.now(),
            forms=protocol_forms(protocol),
            definition=protocol_definition(protocol),
            arms=list(Arm.objects.filter(protocol_id=protocol.pk).order_by("order")),
            sites=sites_of(participants),
            visits=list(VisitDefinition.objects.filter(protocol_id=protocol.pk).order_by("order")),
        )

    @property
    def chinese(self) -> bool:
        return (translation.get_language() or "").lower().startswith("zh")

    def local(self, moment: datetime.datetime) -> str:
        """A moment in the trial's time zone, named (the abbreviation CST is ambiguous)."""
        return f"{display.moment(moment)} {timezone.get_current_timezone_name()}"

    @property
    def arm_codes(self) -> list[str]:
        return [arm.code for arm in self.arms]

    def arm_label(self, code: str) -> str:
        arm = next((arm for arm in self.arms if arm.code == code), None)
        if arm is None:
            return code
        return arm.name_zh if self.chinese and arm.name_zh else arm.name

    def site_name(self, site: Site) -> str:
        return site.name_zh if self.chinese and site.name_zh else site.name

    def site_number(self, site_id: int) -> str:
        site = next((site for site in self.sites if site.pk == site_id), None)
        return f"{site.number:02d}" if site else "?"

    @property
    def clinic_visits(self) -> list[VisitDefinition]:
        return [visit for visit in self.visits if visit.kind == VisitKind.VISIT]

    def visit_label(self, visit: VisitDefinition) -> str:
        return visit.name_zh if self.chinese and visit.name_zh else visit.name

    def item_label(self, item: ItemDefinition) -> str:
        label = item.label_zh if self.chinese and item.label_zh else item.label
        return f"{label} ({item.unit})" if item.unit else label

    def choice_label(self, item: ItemDefinition, code: str) -> str:
        for choice in item.choices:
            if choice[0] == code:
                return choice[2] if self.chinese and len(choice) > 2 and choice[2] else choice[1]
        return code

    def numeric_items(self, form_code: str) -> list[ItemDefinition]:
        spec = self.forms.get(form_code)
        return [item for item in spec.items if item.data_type in ("decimal", "integer")] if spec else []

    def item(self, form_code: str, item_code: str) -> ItemDefinition | None:
        spec = self.forms.get(form_code)
        return spec.by_code.get(item_code) if spec else None

    def criteria(self) -> list[dict]:
        return self.definition["eligibility"]["criteria"]

    def text_of(self, entry: dict) -> str:
        """An entry of the protocol file (criterion, scale grade) in the reader's language."""
        return entry.get("text_zh") if self.chinese and entry.get("text_zh") else entry["text"]
