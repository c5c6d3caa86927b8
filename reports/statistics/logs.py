"""The log forms in the trial summary: the conventional therapy by arm (participants per medication class and
medication) and the protocol deviations listed.

A log row counts if it was created by the cut-off and not removed by then; its values as last saved by the
cut-off (a value changed later is left out, as for visit values). Each selector runs one query.
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from capture.models import LogValue
from reports.statistics.scope import enrolled
from trial.models import Participant

MEDICATION_FORM = "CM"
DEVIATION_FORM = "DV"


def _values(participants: QuerySet[Participant], cutoff: datetime.datetime, form_code: str) -> QuerySet[LogValue]:
    return LogValue.objects.filter(
        Q(row__removed_at__isnull=True) | Q(row__removed_at__gt=cutoff),
        row__participant__in=enrolled(participants, cutoff),
        row__definition__code=form_code,
        row__created_at__lte=cutoff,
        updated_at__lte=cutoff,
    )


@dataclass(frozen=True)
class MedicationCounts:
    """Participants taking each class and each medication, by arm: {(class, medication): {arm: participants}};
    a class's own line has medication ''."""

    counts: dict[tuple[str, str], dict[str, int]]

    def classes(self) -> list[str]:
        return sorted({klass for klass, name in self.counts if not name})

    def medications(self, klass: str) -> list[str]:
        return sorted(name for other, name in self.counts if other == klass and name)


def medication_summary(participants: QuerySet[Participant], *, cutoff: datetime.datetime) -> MedicationCounts:
    """Participants per medication class and medication in each arm (one query); names are grouped as typed,
    ignoring case and surrounding spaces."""
    rows = (
        _values(participants, cutoff, MEDICATION_FORM)
        .filter(item__code__in=("CMCLAS", "CMTRT"))
        .values_list("row_id", "row__participant_id", "row__participant__arm__code", "item__code", "text")
    )
    by_row: dict[int, dict[str, str]] = defaultdict(dict)
    for row_id, participant_id, arm, code, text in rows:
        by_row[row_id].update({"participant": participant_id, "arm": arm, code: text})
    people: dict[tuple[str, str], dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    names: dict[str, str] = {}
    for row in by_row.values():
        klass = row.get("CMCLAS") or "other"
        name = names.setdefault((row.get("CMTRT") or "").strip().casefold(), (row.get("CMTRT") or "").strip())
        for key in ((klass, ""), (klass, name)):
            people[key][row["arm"]].add(row["participant"])
    return MedicationCounts({key: {arm: len(ids) for arm, ids in arms.items()} for key, arms in people.items()})


@dataclass(frozen=True)
class DeviationRow:
    subject_id: str
    site_number: int
    arm_code: str
    repeat_key: int
    values: dict[str, str]  # item code: stored text or ISO date


def protocol_deviations(participants: QuerySet[Participant], *, cutoff: datetime.datetime) -> list[DeviationRow]:
    """Every protocol deviation recorded by the cut-off, by date then subject (one query)."""
    rows = _values(participants, cutoff, DEVIATION_FORM).values_list(
        "row_id",
        "row__repeat_key",
        "row__participant__subject_id",
        "row__participant__site__number",
        "row__participant__arm__code",
        "item__code",
        "text",
        "date",
    )
    found: dict[int, DeviationRow] = {}
    for row_id, key, subject_id, site_number, arm_code, code, text, date in rows:
        row = found.setdefault(row_id, DeviationRow(subject_id, site_number, arm_code, key, {}))
        row.values[code] = date.isoformat() if date else text
    return sorted(found.values(), key=lambda row: (row.values.get("DVDAT", ""), row.subject_id, row.repeat_key))


def enrolled_by_arm(participants: QuerySet[Participant], *, cutoff: datetime.datetime) -> dict[str, int]:
    """{arm code: participants enrolled by the cut-off} (one query)."""
    rows = enrolled(participants, cutoff).values_list("arm__code", flat=True)
    counts: dict[str, int] = defaultdict(int)
    for arm in rows:
        counts[arm] += 1
    return dict(counts)
