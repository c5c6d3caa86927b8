"""Kaplan-Meier (product-limit) estimates of survival by arm, from the derived survival times of
safety.survival (counted per arm, day and event by the database), censored at the data cut-off; their confidence
intervals; the log-rank test.

- S(t) with a 95% confidence interval from Greenwood's variance on the log-log scale (Kalbfleisch and Prentice;
  the "exponential Greenwood" interval): with V(t) = sum over event days t_i <= t of d_i / (n_i (n_i - d_i)),
  the limits are S(t) ^ exp(+-z sqrt(V(t)) / ln S(t)). It stays inside [0, 1]; at S = 1 it is (1, 1), at S = 0
  it is (0, 0).
- The median survival time is the first time S(t) <= 0.5. Its 95% confidence interval is Brookmeyer and
  Crowley's (Biometrics 1982;38:29-41) on the log-log scale: the times t whose pointwise interval contains 0.5,
  i.e. from the first time the lower limit falls to 0.5 or below to the first time the upper limit does; a limit
  never reached is "not reached" (None).
- The log-rank test compares two arms: at each event day, O - E of the first arm and the hypergeometric variance
  n1 n2 d (n - d) / (n^2 (n - 1)); chi-square = (sum O - E)^2 / sum V on one degree of freedom,
  p = erfc(sqrt(chi-square / 2)).

tests/reports/test_statistics.py compares every one of these with lifelines on data with ties and censoring.
"""

import datetime
import math
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from statistics import NormalDist

from django.db.models import QuerySet

from reports.statistics.scope import cutoff_day, enrolled
from safety.survival import DAYS_PER_MONTH, survival_counts
from trial.models import Participant

AT_RISK_MONTHS = (0, 6, 12, 18, 24, 30, 36)
CONFIDENCE = 0.95
_Z = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)
MEDIAN = 0.5


@dataclass(frozen=True)
class Step:
    """The estimate after the events of one day: S drops at `days` to `survival`."""

    days: int
    at_risk: int
    events: int
    censored: int
    survival: float
    greenwood: float = 0.0  # sum of d_i / (n_i (n_i - d_i)) up to this day (an event day with n = d adds 0)

    @property
    def months(self) -> float:
        return self.days / DAYS_PER_MONTH

    @property
    def confidence(self) -> tuple[float, float]:
        """The 95% confidence interval of S at this step: Greenwood's variance, log-log transform."""
        return loglog_interval(self.survival, self.greenwood)


def loglog_interval(survival: float, greenwood: float) -> tuple[float, float]:
    if survival >= 1.0 or survival <= 0.0:
        return (survival, survival)
    log_s = math.log(survival)
    spread = _Z * math.sqrt(greenwood) / log_s  # negative
    return (survival ** math.exp(-spread), survival ** math.exp(spread))


@dataclass(frozen=True)
class KaplanMeierCurve:
    """A curve and what it was estimated from, kept as counts per day (memory follows the days of follow-up, not
    the participants)."""

    arm_code: str
    steps: tuple[Step, ...]  # one per day with an event or a censoring, in day order

    @property
    def n(self) -> int:
        return self.steps[0].at_risk if self.steps else 0

    @property
    def events(self) -> int:
        return sum(step.events for step in self.steps)

    @property
    def last_day(self) -> int | None:
        """The last follow-up time in days (an event or a censoring); None without participants."""
        return self.steps[-1].days if self.steps else None

    @property
    def times(self) -> tuple[tuple[int, bool], ...]:
        """(days, died) of each participant, sorted (built from the counts: for tests and small curves)."""
        return tuple(
            time
            for step in self.steps
            for time in (*((step.days, False),) * step.censored, *((step.days, True),) * step.events)
        )

    def survival_at(self, months: float) -> float:
        """S(t): the estimate just after time t (right-continuous)."""
        step = self._step_at(months * DAYS_PER_MONTH)
        return step.survival if step is not None else 1.0

    def confidence_at(self, months: float) -> tuple[float, float]:
        """The 95% confidence interval of S(t) (Greenwood, log-log)."""
        step = self._step_at(months * DAYS_PER_MONTH)
        return step.confidence if step is not None else (1.0, 1.0)

    def _step_at(self, days: float) -> Step | None:
        index = bisect_right([step.days for step in self.steps], days) - 1
        return self.steps[index] if index >= 0 else None

    def median(self) -> int | None:
        """The median survival time in days: the first day S(t) <= 0.5; None while not reached."""
        return self._first_day(lambda step: step.survival)

    def median_confidence(self) -> tuple[int | None, int | None]:
        """The 95% confidence interval of the median in days (Brookmeyer-Crowley, log-log); None: not reached."""
        return (
            self._first_day(lambda step: step.confidence[0]),
            self._first_day(lambda step: step.confidence[1]),
        )

    def _first_day(self, value: object) -> int | None:
        return next((step.days for step in self.steps if value(step) <= MEDIAN), None)

    def at_risk(self, months: float) -> int:
        """Participants still followed (neither dead nor censored) just before time t."""
        return sum(step.events + step.censored for step in self.steps if step.days >= months * DAYS_PER_MONTH)

    def points(self) -> list[tuple[float, float]]:
        """The step curve as (months, survival) corners, from (0, 1) to the last follow-up time."""
        corners = [(0.0, 1.0)]
        for step in self.steps:
            if step.events:
                corners.append((step.months, corners[-1][1]))
                corners.append((step.months, step.survival))
        if self.steps:
            corners.append((self.steps[-1].days / DAYS_PER_MONTH, corners[-1][1]))
        return corners


def kaplan_meier(participants: QuerySet[Participant], *, cutoff: datetime.datetime) -> dict[str, KaplanMeierCurve]:
    """{arm code: curve} of the participants enrolled in scope by the cut-off, in one query.

    The database derives each participant's time and event as safety.survival.survival_of does, censors them at
    the cut-off day and returns only the counts per arm, day and event: memory and Python time follow the days
    of follow-up, not the participants.
    """
    day = cutoff_day(cutoff)
    counts: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for arm_code, days, died, n in survival_counts(enrolled(participants, cutoff), day):
        counts[arm_code][days][0 if died else 1] += n
    return {arm: product_limit_counts(arm, by_day) for arm, by_day in sorted(counts.items())}


def product_limit(arm_code: str, times: list[tuple[int, bool]]) -> KaplanMeierCurve:
    """S(t) = product over event days t_i <= t of (1 - d_i / n_i); n_i counts those censored on t_i as at risk."""
    by_day: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for days, died in times:
        by_day[days][0 if died else 1] += 1
    return product_limit_counts(arm_code, by_day)


def product_limit_counts(arm_code: str, by_day: dict[int, list[int]]) -> KaplanMeierCurve:
    """The product-limit estimate from {day: [events, censored]}."""
    steps, survival, greenwood = [], 1.0, 0.0
    at_risk = sum(events + censored for events, censored in by_day.values())
    for days in sorted(by_day):
        events, censored = by_day[days]
        if events:
            survival *= 1 - events / at_risk
            greenwood += events / (at_risk * (at_risk - events)) if at_risk > events else 0.0
        steps.append(
            Step(days=days, at_risk=at_risk, events=events, censored=censored, survival=survival, greenwood=greenwood)
        )
        at_risk -= events + censored
    return KaplanMeierCurve(arm_code=arm_code, steps=tuple(steps))


@dataclass(frozen=True)
class LogRank:
    """The log-rank test of two arms: observed and expected deaths of each, chi-square on 1 df, p-value."""

    arms: tuple[str, str]
    observed: tuple[int, int]
    expected: tuple[float, float]
    chi_square: float
    p_value: float


def log_rank(first: KaplanMeierCurve, second: KaplanMeierCurve) -> LogRank | None:
    """The log-rank test of two curves; None when it cannot be computed (no death, or no variance)."""
    at_risk = [first.n, second.n]
    by_day: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # deaths 1, deaths 2, leaving 1, leaving 2
    for arm, curve in enumerate((first, second)):
        for step in curve.steps:
            by_day[step.days][arm] += step.events
            by_day[step.days][2 + arm] += step.events + step.censored
    observed_minus_expected, variance, expected = 0.0, 0.0, [0.0, 0.0]
    for days in sorted(by_day):
        deaths_1, deaths_2, leaving_1, leaving_2 = by_day[days]
        deaths, n1, n2 = deaths_1 + deaths_2, at_risk[0], at_risk[1]
        n = n1 + n2
        if deaths:
            expected[0] += deaths * n1 / n
            expected[1] += deaths * n2 / n
            observed_minus_expected += deaths_1 - deaths * n1 / n
            if n > 1:
                variance += n1 * n2 * deaths * (n - deaths) / (n * n * (n - 1))
        at_risk = [n1 - leaving_1, n2 - leaving_2]
    if variance <= 0:
        return None
    chi_square = observed_minus_expected**2 / variance
    return LogRank(
        arms=(first.arm_code, second.arm_code),
        observed=(first.events, second.events),
        expected=(expected[0], expected[1]),
        chi_square=chi_square,
        p_value=math.erfc(math.sqrt(chi_square / 2)),
    )
