"""Vital signs around each UC-MSC infusion, and the edit check on a fever recorded as "no infusion reaction"."""

from decimal import Decimal

import pytest

from capture.checks import rule_failures
from capture.models import Query, QueryState
from capture.services import form_save
from tests.capture.test_api import api
from tests.factories import enrolled
from trial.errors import InvalidInput

RISE = {
    "code": "INFUS_FEVER_NO_REACTION",
    "kind": "rise",
    "before": "TEMPPRE",
    "after": "TEMPPOST",
    "rise": 1.0,
    "unless": "REACT",
    "message": "fever",
}
VITALS = {
    "TEMPPRE": "36.5",
    "TEMPPOST": "36.8",
    "PULSEPRE": "72",
    "PULSEPOST": "76",
    "SYSBPPRE": "118",
    "SYSBPPOST": "121",
    "DIABPPRE": "74",
    "DIABPPOST": "76",
}


@pytest.fixture
def m3(coordinator1, site1):
    participant = enrolled(coordinator1, site1, arm="MSC", days_ago=95)
    return participant.visits.get(definition__code="M3")


def infusion(m3, **values):
    return {"INFDAT": m3.target_date.isoformat(), "CELLDOSE": "4", "VOLUME": "40", "LOT": "L-7", **VITALS, **values}


def fever_queries(visit):
    return Query.objects.filter(visit=visit, check_code="INFUS_FEVER_NO_REACTION")


@pytest.mark.parametrize(
    ("before", "after", "reaction", "fails"),
    [
        ("36.5", "37.5", "false", True),  # exactly 1.0 C
        ("36.5", "38.9", "false", True),
        ("36.5", "37.4", "false", False),  # 0.9 C
        ("36.5", "38.9", "true", False),  # the reaction is recorded
        ("36.5", "38.9", "", False),  # not answered yet: the required check asks for it
        ("38.0", "36.0", "false", False),  # a fall
    ],
)
def test_the_rise_check(before, after, reaction, fails):
    numbers = {"TEMPPRE": Decimal(before), "TEMPPOST": Decimal(after)}
    assert bool(rule_failures([RISE], numbers, {"REACT": reaction})) is fails


def test_a_missing_temperature_applies_no_rise_check():
    assert rule_failures([RISE], {"TEMPPRE": None, "TEMPPOST": Decimal("39")}, {"REACT": "false"}) == []


def test_a_fever_with_no_reaction_raises_a_query_on_the_temperature_after(coordinator1, m3):
    form_save(
        user=coordinator1,
        visit_id=m3.pk,
        form_code="INFUS",
        version=0,
        values=infusion(m3, TEMPPOST="37.6", REACT="no"),
    )
    query = fever_queries(m3).get()
    assert (query.item.code, query.state, query.origin) == ("TEMPPOST", QueryState.OPEN, "automatic")
    # Recording the reaction answers the check: no second query, and the first no longer stands.
    result = form_save(
        user=coordinator1,
        visit_id=m3.pk,
        form_code="INFUS",
        version=1,
        values=infusion(m3, TEMPPOST="37.6", REACT="yes", REACTGR="1", REACTDSC="Fever"),
    )
    assert result.form.version == 2
    assert fever_queries(m3).count() == 1


def test_no_query_for_a_normal_infusion(coordinator1, m3):
    form_save(
        user=coordinator1, visit_id=m3.pk, form_code="INFUS", version=0, values=infusion(m3, REACT="no"), complete=True
    )
    assert not fever_queries(m3).exists()
    assert not Query.objects.filter(visit=m3, check_code__startswith="INFUS_BP").exists()


@pytest.mark.parametrize(
    ("item", "value"),
    [
        ("TEMPPOST", "45"),
        ("TEMPPRE", "20"),
        ("PULSEPRE", "400"),
        ("SYSBPPOST", "0"),
        ("DIABPPRE", "72.5"),
        ("TEMPPRE", "hot"),
    ],
)
def test_vitals_outside_the_hard_range_or_not_numbers_are_refused(coordinator1, m3, item, value):
    with pytest.raises(InvalidInput) as refused:
        form_save(user=coordinator1, visit_id=m3.pk, form_code="INFUS", version=0, values=infusion(m3, **{item: value}))
    assert item in refused.value.errors
    assert not Query.objects.filter(visit=m3).exists()


def test_vitals_are_required_to_complete_the_form(coordinator1, m3):
    values = {key: value for key, value in infusion(m3, REACT="no").items() if key not in VITALS}
    with pytest.raises(InvalidInput) as refused:
        form_save(user=coordinator1, visit_id=m3.pk, form_code="INFUS", version=0, values=values, complete=True)
    assert set(VITALS) <= set(refused.value.errors)


def test_diastolic_above_systolic_is_queried(coordinator1, m3):
    form_save(
        user=coordinator1,
        visit_id=m3.pk,
        form_code="INFUS",
        version=0,
        values=infusion(m3, REACT="no", DIABPPRE="130", SYSBPPRE="110"),
    )
    assert Query.objects.filter(visit=m3, check_code="INFUS_BP_PRE").exists()


def test_the_api_refuses_hostile_vitals_and_other_sites(coordinator1, coordinator2, m3):
    url = f"/api/v1/visits/{m3.pk}/forms/INFUS/"
    body = {"version": 0, "values": infusion(m3, TEMPPOST="99", REACT=False)}
    refused = api(coordinator1).put(url, body, format="json")
    assert refused.status_code == 400 and "TEMPPOST" in refused.json()
    assert api(coordinator2).put(url, body, format="json").status_code == 404
    fever = {"version": 0, "values": infusion(m3, TEMPPOST="37.9", REACT=False)}
    assert api(coordinator1).put(url, fever, format="json").status_code == 200
    assert fever_queries(m3).count() == 1
