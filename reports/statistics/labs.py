"""Lab outcomes by arm and visit: n, mean, sample SD and median of numeric items; change from baseline; the
hepatitis serology results.

Exact numbers, never through a float. On PostgreSQL the database sums the numeric values exactly (n, sum, sum of
squares, and the two middle values with percentile_disc, which returns values themselves), one row per group, so
memory and time follow the groups rather than the values; the SD's sum of squared deviations is then computed
from those sums as an exact fraction (no cancellation). On SQLite (REAL columns, floating-point SUM) the values
are read one by one as the Decimals that were typed (Django turns them back into the column's decimals), in group
order, one query, one group's values in memory at a time; the SD is two-pass there (the sum of squared deviations
from the mean). The mean is the exact sum divided by n at 60 significant digits (a quotient with n < 10^40 cannot
carry a run of 40 zeros or nines, so rounding it to the printed places is rounding the exact fraction); the median
is the middle value or the exact half-sum of the two middle ones. Printing rounds half up from the Decimal
(`round_half_up`).
"""

import datetime
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from fractions import Fraction
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple

from django.db import connection
from django.db.models import Aggregate, Count, DecimalField, F, FilteredRelation, Q, QuerySet, Sum

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
    mean: Decimal | None
    sd: Decimal | None  # sample standard deviation; None below two values
    median: Decimal | None


EXACT = Context(prec=60)
_NUMBER = DecimalField(max_digits=60, decimal_places=30)  # PostgreSQL numeric: what the database sums, exactly


def round_half_up(value: Decimal, places: int) -> Decimal:
    """A statistic as printed: rounded half up at `places` decimals, from the Decimal itself."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=EXACT)


def describe(values: list[Decimal], *, median: bool = True) -> Summary:
    """n, mean, sample SD (two-pass) and median of exact decimals."""
    n = len(values)
    if not n:
        return Summary(n=0, mean=None, sd=None, median=None)
    with localcontext(EXACT):
        mean = sum(values, Decimal(0)) / n
        sd = (sum(((x - mean) ** 2 for x in values), Decimal(0)) / (n - 1)).sqrt() if n > 1 else None
        middle = None
        if median:
            ordered = sorted(values)
            half = n // 2
            middle = ordered[half] if n % 2 else (ordered[half - 1] + ordered[half]) / 2
    return Summary(n=n, mean=mean, sd=sd, median=middle)


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

    One query: the values in group order, each group summarised as it ends.
    """
    values = _values(participants, cutoff).filter(_items(forms, items), number__isnull=False)
    if connection.vendor == "postgresql":
        return _aggregated(values, F("number"), median=True)
    rows = values.values_list(*_GROUP.values(), "number").order_by(*_GROUP.values(), "number")
    return {key: describe(numbers) for key, numbers in _groups(rows)}


class _Middle(Aggregate):
    """The lower middle value of a group (percentile_disc(0.5)), or the upper one ordered descending: one of the
    values themselves, so exact; their half-sum is the median."""

    function = "percentile_disc"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s%(direction)s)"

    def __init__(self, expression: object, *, descending: bool = False) -> None:
        super().__init__(expression, output_field=_NUMBER, direction=" DESC" if descending else "")


def _aggregated(values: QuerySet, number: object, *, median: bool) -> dict[LabKey, Summary]:
    """PostgreSQL: each group's n, exact numeric sum and sum of squares (and middle values) from the database,
    so that memory and Python time follow the groups, not the values. The same statistics as `describe`: the
    sum of squared deviations is computed exactly from the sums (as a fraction), so no cancellation is lost."""
    sums = {
        "n": Count("pk"),
        "total": Sum(number, output_field=_NUMBER),
        "squares": Sum(number * number, output_field=_NUMBER),
    }
    if median:
        sums.update(low=_Middle(number), high=_Middle(number, descending=True))
    rows = values.values(**_codes()).annotate(**sums).order_by()
    return {_key(row): _from_sums(row, median=median) for row in rows}


def _from_sums(row: dict, *, median: bool) -> Summary:
    n, total, squares = row["n"], row["total"], row["squares"]
    with localcontext(EXACT):
        mean = total / n
        sd = None
        if n > 1:
            deviations = Fraction(squares) - Fraction(total) ** 2 / n  # exact: the sum of (x - mean)^2
            variance = deviations / (n - 1)
            sd = (Decimal(variance.numerator) / Decimal(variance.denominator)).sqrt()
        middle = None
        if median:
            low, high = row["low"], row["high"]
            middle = low if low == high else (low + high) / 2
    return Summary(n=n, mean=mean, sd=sd, median=middle)


def _groups(rows: QuerySet) -> Iterator[tuple[LabKey, list[Decimal]]]:
    for key, group in groupby(rows.iterator(chunk_size=4000), key=itemgetter(0, 1, 2, 3)):
        yield LabKey(*key), [row[4] for row in group]


def _codes() -> dict[str, F]:
    return {name: F(field) for name, field in _GROUP.items()}


def _key(row: dict) -> LabKey:
    return LabKey(*(row[name] for name in _GROUP))


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
    if connection.vendor == "postgresql":
        return _aggregated(paired, F("number") - F("baseline__number"), median=False)
    rows = paired.values_list(*_GROUP.values(), "number", "baseline__number").order_by(*_GROUP.values())
    changes = groupby(rows.iterator(chunk_size=4000), key=itemgetter(0, 1, 2, 3))
    # Exact: the differences of the Decimals that were typed.
    return {LabKey(*key): describe([row[4] - row[5] for row in group], median=False) for key, group in changes}


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
