"""Kaplan-Meier (product-limit) estimates of survival by arm, from the derived survival times of
safety.survival.survival_of, censored at the data cut-off."""

import datetime
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, replace

from django.db.models import QuerySet

from reports.statistics.scope import cutoff_day, enrolled
from safety.survival import DAYS_PER_MONTH, Survival, survival_of
from trial.models import Participant

AT_RISK_MONTHS = (0, 6, 12, 18, 24, 30, 36)


@dataclass(frozen=True)
class Step:
    """The estimate after the events of one day: S drops at `days` to `survival`."""

    days: int
    at_risk: int
    events: int
    censored: int
    survival: float

    @property
    def months(self) -> float:
        return self.days / DAYS_PER_MONTH


@dataclass(frozen=True)
class KaplanMeierCurve:
    arm_code: str
    times: tuple[tuple[int, bool], ...]  # (days, died) of each participant, sorted
    steps: tuple[Step, ...]  # one per day with an event or a censoring

    @property
    def n(self) -> int:
        return len(self.times)

    @property
    def events(self) -> int:
        return sum(died for _days, died in self.times)

    def survival_at(self, months: float) -> float:
        """S(t): the estimate just after time t (right-continuous)."""
        days = [step.days for step in self.steps]
        index = bisect_right(days, months * DAYS_PER_MONTH) - 1
        return self.steps[index].survival if index >= 0 else 1.0

    def at_risk(self, months: float) -> int:
        """Participants still followed (neither dead nor censored) just before time t."""
        return sum(days >= months * DAYS_PER_MONTH for days, _died in self.times)

    def points(self) -> list[tuple[float, float]]:
        """The step curve as (months, survival) corners, from (0, 1) to the last follow-up time."""
        corners = [(0.0, 1.0)]
        for step in self.steps:
            if step.events:
                corners.append((step.months, corners[-1][1]))
                corners.append((step.months, step.survival))
        if self.times:
            corners.append((self.times[-1][0] / DAYS_PER_MONTH, corners[-1][1]))
        return corners


def kaplan_meier(participants: QuerySet[Participant], *, cutoff: datetime.datetime) -> dict[str, KaplanMeierCurve]:
    """{arm code: curve} of the participants enrolled in scope by the cut-off (survival_of: three queries)."""
    day = cutoff_day(cutoff)
    by_arm: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    for row in survival_of(enrolled(participants, cutoff)):
        if row.start <= day:
            at_cutoff = _censored_at(row, day)
            by_arm[row.arm_code].append((at_cutoff.days, at_cutoff.died))
    return {arm: product_limit(arm, times) for arm, times in sorted(by_arm.items())}


def _censored_at(row: Survival, day: datetime.date) -> Survival:
    return row if row.end <= day else replace(row, end=day, died=False)


def product_limit(arm_code: str, times: list[tuple[int, bool]]) -> KaplanMeierCurve:
    """S(t) = product over event days t_i <= t of (1 - d_i / n_i); n_i counts those censored on t_i as at risk."""
    ordered = tuple(sorted(times))
    by_day: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for days, died in ordered:
        by_day[days][0 if died else 1] += 1
    steps, survival, at_risk = [], 1.0, len(ordered)
    for days in sorted(by_day):
        events, censored = by_day[days]
        if events:
            survival *= 1 - events / at_risk
        steps.append(Step(days=days, at_risk=at_risk, events=events, censored=censored, survival=survival))
        at_risk -= events + censored
    return KaplanMeierCurve(arm_code=arm_code, times=ordered, steps=tuple(steps))
