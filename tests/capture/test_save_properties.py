"""Properties of form_save that must hold for any input, and under concurrent writers."""

import threading

import pytest
from django.db import connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture.definitions import visit_forms
from capture.errors import StaleVersionError
from capture.models import FormInstance, ItemValue
from capture.services import form_save
from tests.factories import enrolled
from trial.errors import InvalidInput
from trial.models import AuditRecord, DataType

NUMERIC = (DataType.DECIMAL, DataType.INTEGER)

raw_values = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats().map(str),
    st.text(max_size=30),
    st.sampled_from(["", " ", "1,5", "0x10", "1e5", "--1", "٣", "１２．５", "48.", ".5", "NaN", "9" * 30]),
)


def _version(visit, spec) -> int:
    instance = FormInstance.objects.filter(visit=visit, definition=spec.definition).first()
    return instance.version if instance else 0


def _snapshot(visit):
    return (
        list(ItemValue.objects.filter(visit=visit).order_by("id").values_list("item_id", "number", "text", "flags")),
        AuditRecord.objects.count(),
        list(FormInstance.objects.filter(visit=visit).values_list("id", "version")),
    )


@pytest.mark.django_db
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_entry_in_any_numeric_item_is_saved_whole_or_refused_whole(coordinator1, site1, data):
    visit = (
        enrolled(coordinator1, site1, arm="MSC", days_ago=100)
        .visits.select_related("participant__protocol", "participant__arm", "definition")
        .get(definition__code="M3")
    )
    numeric = [(spec, item) for spec in visit_forms(visit) for item in spec.entered if item.data_type in NUMERIC]
    spec, item = data.draw(st.sampled_from(numeric))
    raw = data.draw(raw_values)
    before = _snapshot(visit)
    try:
        result = form_save(
            user=coordinator1,
            visit_id=visit.pk,
            form_code=spec.code,
            version=_version(visit, spec),
            values={item.code: raw},
            partial=True,
        )
    except InvalidInput as error:
        assert list(error.errors) == [item.code]
        assert error.errors[item.code][0]
        assert _snapshot(visit) == before
    else:
        stored = ItemValue.objects.filter(visit=visit, item=item).first()  # no row when nothing was entered
        number = stored.number if stored else None
        assert number == result.items[item.code].value.number
        if number is not None:
            assert item.hard_min <= number <= item.hard_max


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_racing_on_one_form_one_wins_one_conflicts(protocol, coordinator1, site1):
    visit = enrolled(coordinator1, site1, days_ago=100).visits.get(definition__code="M3")
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def writer(alt: str) -> None:
        values = {
            "LBDAT": str(visit.target_date),
            "ALT": alt,
            "AST": "30",
            "ALB": "40",
            "PREALB": "250",
            "BILI": "15",
            "BILDIR": "5",
        }
        barrier.wait()
        try:
            form_save(user=coordinator1, visit_id=visit.pk, form_code="LIVER", version=0, values=values)
            outcomes[alt] = "saved"
        except StaleVersionError as error:
            outcomes[alt] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(alt,)) for alt in ("111", "222")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(type(outcome).__name__ for outcome in outcomes.values()) == ["StaleVersionError", "str"]
    winner = next(alt for alt, outcome in outcomes.items() if outcome == "saved")
    loser = next(alt for alt in outcomes if alt != winner)
    assert outcomes[loser].current_version == 1
    assert FormInstance.objects.get(visit=visit).version == 1
    alt_rows = AuditRecord.objects.filter(form_code="LIVER", item_code="ALT")
    assert [row.new_value for row in alt_rows] == [winner]
    assert ItemValue.objects.get(visit=visit, item__code="ALT").number == int(winner)
