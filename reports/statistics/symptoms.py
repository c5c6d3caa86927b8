"""Clinical symptoms by arm and time point through the 3-year follow-up: how many participants have each symptom,
and how each participant's symptom changed from their own month-0 answer (better, same, worse).

A symptom's answers are ordered as the protocol file lists its choices (none < mild < moderate < severe; normal
< reduced < poor); the first choice means the symptom is absent. Two queries whatever the number of participants.
"""

import datetime
from dataclasses import dataclass
from typing import NamedTuple

from django.db.models import Case, Count, F, FilteredRelation, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.lookups import Exact, GreaterThan, LessThan

from reports.statistics.labs import BASELINE_DAY, _values
from trial.models import Participant, VisitDefinition

SYMPTOM_FORM = "SYMPT"


class SymptomKey(NamedTuple):
    item: str
    arm: str
    visit: str


@dataclass(frozen=True)
class SymptomCounts:
    assessed: int = 0
    present: int = 0
    paired: int = 0  # with a month-0 answer to compare with
    better: int = 0
    same: int = 0
    worse: int = 0


_CODES = {
    "item_code": F("item__code"),
    "arm_code": F("visit__participant__arm__code"),
    "visit_code": F("visit__definition__code"),
}


def symptom_change(
    participants: QuerySet[Participant],
    *,
    cutoff: datetime.datetime,
    ranks: dict[str, list[str]],
    form: str = SYMPTOM_FORM,
) -> dict[SymptomKey, SymptomCounts]:
    """{(item, arm, visit): counts} of the `ranks` items ({item code: its choice codes in order}) at every visit."""
    values = _values(participants, cutoff).filter(item__form__code=form, item__code__in=list(ranks)).exclude(text="")
    absent = Q(pk__in=[])
    for code, choices in ranks.items():
        absent |= Q(item__code=code, text=choices[0])
    present = values.values(**_CODES).annotate(assessed=Count("pk"), present=Count("pk", filter=~absent)).order_by()
    table = {_key(row): SymptomCounts(assessed=row["assessed"], present=row["present"]) for row in present}
    for row in _changes(values, ranks, cutoff):
        key = _key(row)
        base = table.get(key, SymptomCounts())
        table[key] = SymptomCounts(
            assessed=base.assessed,
            present=base.present,
            paired=row["paired"],
            better=row["better"],
            same=row["same"],
            worse=row["worse"],
        )
    return table


def _rank(ranks: dict[str, list[str]], text: str) -> Case:
    whens = [
        When(Q(item__code=code, **{text: choice}), then=Value(order))
        for code, choices in ranks.items()
        for order, choice in enumerate(choices)
    ]
    return Case(*whens, default=Value(None), output_field=IntegerField())


def _changes(values: QuerySet, ranks: dict[str, list[str]], cutoff: datetime.datetime) -> QuerySet:
    """Each answer after month 0 beside the same participant's month-0 answer of the item, counted by direction."""
    baseline_visits = list(VisitDefinition.objects.filter(day=BASELINE_DAY).values_list("pk", flat=True))
    paired = (
        values.exclude(visit__definition__day=BASELINE_DAY)
        .annotate(
            month0=FilteredRelation(
                "visit__participant__visits",
                condition=Q(visit__participant__visits__definition__in=baseline_visits),
            )
        )
        .annotate(
            baseline=FilteredRelation(
                "month0__item_values",
                condition=Q(month0__item_values__item_id=F("item_id"), month0__item_values__updated_at__lte=cutoff)
                & ~Q(month0__item_values__text=""),
            )
        )
        .filter(baseline__text__isnull=False)
    )
    now, then = _rank(ranks, "text"), _rank(ranks, "baseline__text")

    def counted(lookup: type) -> Sum:
        return Sum(Case(When(lookup(now, then), then=Value(1)), default=Value(0), output_field=IntegerField()))

    return (
        paired.values(**_CODES)
        .annotate(paired=Count("pk"), better=counted(LessThan), same=counted(Exact), worse=counted(GreaterThan))
        .order_by()
    )


def _key(row: dict) -> SymptomKey:
    return SymptomKey(row["item_code"], row["arm_code"], row["visit_code"])
