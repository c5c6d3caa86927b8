"""Lab outcomes by arm and visit: n, mean, sample SD and median of numeric items; change from baseline; the
hepatitis serology results.

Everything is aggregated in the database, the same way on PostgreSQL and SQLite so that both give the same
numbers: n, sum and sum of squares per group (SQLite has no sample SD that accepts a group of one), from which
mean and SD follow; the median from window functions (row number and partition size), the database returning
only the one or two middle values of each group.
"""

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.db.models import Count, F, FilteredRelation, Q, QuerySet, Sum, Window
from django.db.models.functions import RowNumber

from capture.models import ItemValue
from reports.statistics.scope import enrolled
from trial.models import Participant, VisitDefinition

BASELINE_DAY = 0  # month 0, as the lab grading counts baseline
_GROUP = {  # alias: the code it groups by
    "form_code": "item__form__code",
    "item_code": "item__code",
    "arm_code": "visit__participant__arm__code",
    "visit_code": "visit__definition__code",
}


class LabKey(NamedTuple):
    form: str
    item: str
    arm: str
    visit: str


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float | None
    sd: float | None  # sample standard deviation; None below two values
    median: float | None


def _values(participants: QuerySet[Participant], cutoff: datetime.datetime) -> QuerySet[ItemValue]:
    """The values saved by the cut-off of the participants enrolled in scope (a missing value has a reason)."""
    return ItemValue.objects.filter(
        visit__participant__in=enrolled(participants, cutoff), updated_at__lte=cutoff, missing_reason=""
    )


def _items(forms: Iterable[str], items: Iterable[tuple[str, str]]) -> Q:
    chosen = Q(item__form__code__in=list(forms))
    for form, item in items:
        chosen |= Q(item__form__code=form, item__code=item)
    return chosen


def numeric_summary(
    participants: QuerySet[Participant],
    *,
    cutoff: datetime.datetime,
    forms: Iterable[str] = (),
    items: Iterable[tuple[str, str]] = (),
) -> dict[LabKey, Summary]:
    """{(form, item, arm, visit): Summary} of every numeric value of the `forms` and of the (form, item) `items`.

    Two queries: n, mean and SD grouped; then the middle values of each group for its median.
    """
    values = _values(participants, cutoff).filter(_items(forms, items), number__isnull=False)
    grouped = values.values(**_codes()).annotate(**_moments(F("number")))
    medians = _medians(values)
    return {key: _summary(row, medians.get(key)) for row in grouped.order_by() for key in [_key(row)]}


def _moments(value: F) -> dict[str, object]:
    return {"n": Count(value), "total": Sum(value), "squares": Sum(value * value)}


def _codes() -> dict[str, F]:
    return {name: F(field) for name, field in _GROUP.items()}


def _key(row: dict) -> LabKey:
    return LabKey(*(row[name] for name in _GROUP))


def _summary(row: dict, median: float | None) -> Summary:
    n = row["n"]
    total, squares = _decimal(row["total"]), _decimal(row["squares"])
    if not n:
        return Summary(n=0, mean=None, sd=None, median=None)
    sd = None
    if n > 1:
        variance = (squares - total * total / n) / (n - 1)
        sd = float(max(variance, Decimal(0)).sqrt())
    return Summary(n=n, mean=float(total / n), sd=sd, median=median)


def _medians(values: QuerySet[ItemValue]) -> dict[LabKey, float]:
    partition = [F(name) for name in _GROUP]
    ranked = values.annotate(**_codes()).annotate(
        rank=Window(RowNumber(), partition_by=partition, order_by=F("number").asc()),
        size=Window(Count("pk"), partition_by=partition),
    )
    # The middle value of an odd-sized group, or the two middle values of an even-sized one (integer division).
    middle = ranked.filter(Q(rank=(F("size") + 1) / 2) | Q(rank=(F("size") + 2) / 2))
    found: dict[LabKey, list[Decimal]] = defaultdict(list)
    for *key, number in middle.values_list(*_GROUP, "number").order_by():
        found[LabKey(*key)].append(Decimal(str(number)))
    return {key: float(sum(pair) / len(pair)) for key, pair in found.items()}


def change_from_baseline(
    participants: QuerySet[Participant], *, cutoff: datetime.datetime, forms: Iterable[str] = ()
) -> dict[LabKey, Summary]:
    """{(form, item, arm, visit): Summary of each participant's change from their own month-0 value} after month 0.

    Two queries (the month-0 visit definitions, then the values joined to their baseline); a value without a
    baseline of the same item counts in no change. The median is not computed.
    """
    baseline_visits = list(VisitDefinition.objects.filter(day=BASELINE_DAY).values_list("pk", flat=True))
    paired = (
        _values(participants, cutoff)
        .filter(_items(forms, ()), number__isnull=False)
        .exclude(visit__definition__day=BASELINE_DAY)
        .annotate(
            month0=FilteredRelation(
                "visit__participant__visits",
                condition=Q(visit__participant__visits__definition__in=baseline_visits),
            )
        )
        .annotate(
            baseline=FilteredRelation(
                "month0__item_values",
                condition=Q(
                    month0__item_values__item_id=F("item_id"),
                    month0__item_values__updated_at__lte=cutoff,
                    month0__item_values__number__isnull=False,
                ),
            )
        )
    )
    paired = paired.filter(baseline__number__isnull=False)
    grouped = paired.values(**_codes()).annotate(**_moments(F("number") - F("baseline__number")))
    return {_key(row): _summary(row, None) for row in grouped.order_by()}


def hepatitis_status(
    participants: QuerySet[Participant], *, cutoff: datetime.datetime, form: str = "HEPAT"
) -> dict[LabKey, dict[str, int]]:
    """{(form, marker, arm, visit): {result code: participants}} of the choice items of the serology form."""
    rows = (
        _values(participants, cutoff)
        .filter(item__form__code=form, item__data_type="choice")
        .exclude(text="")
        .values(**_codes(), result=F("text"))
        .annotate(n=Count("pk"))
        .order_by()
    )
    table: dict[LabKey, dict[str, int]] = defaultdict(dict)
    for row in rows:
        table[_key(row)][row["result"]] = row["n"]
    return dict(table)


def _decimal(value: object) -> Decimal:
    # PostgreSQL sums numerics exactly; SQLite in floating point.
    return Decimal(0) if value is None else Decimal(str(value))
