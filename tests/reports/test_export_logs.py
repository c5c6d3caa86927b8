"""Log forms in the exports: ODM repeating item groups in the LOGS event (valid ODM 1.3.2, every OID reference
resolving) and a CSV dataset per log form whose row count is the database's."""

import pytest

from capture.logs.services import log_row_create, log_row_remove
from reports.exports.logs import log_row_count
from reports.selectors import export_scope
from tests.capture.test_log_services import ENTECAVIR, HISTORY, deviation
from tests.reports.export_data import enter_participant
from tests.reports.test_export_csv import export as csv_datasets
from tests.reports.test_export_odm import NS, export, odm_schema, valid  # noqa: F401 (the schema is a fixture)

pytestmark = pytest.mark.django_db

# Each reference attribute and the definition it must name.
REFERENCES = {
    "StudyEventOID": "StudyEventDef",
    "FormOID": "FormDef",
    "ItemGroupOID": "ItemGroupDef",
    "ItemOID": "ItemDef",
    "CodeListOID": "CodeList",
    "MeasurementUnitOID": "MeasurementUnit",
    "MethodOID": "MethodDef",
    "LocationOID": "Location",
    "UserOID": "User",
    "MetaDataVersionOID": "MetaDataVersion",
}


@pytest.fixture
def logged(coordinator1, coordinator2, site1, site2):
    """Site 1: two medications (one with a missing indication), a history, a deviation and a removed row;
    site 2: one medication."""
    first = enter_participant(coordinator1, site1, arm="MSC").participant
    second = enter_participant(coordinator2, site2, arm="CONV").participant

    def add(user, participant, form, values, **kwargs):
        return log_row_create(user=user, participant_id=participant.pk, form_code=form, values=values, **kwargs).row

    add(coordinator1, first, "CM", ENTECAVIR)
    no_indication = {k: v for k, v in ENTECAVIR.items() if k != "CMINDC"}
    add(coordinator1, first, "CM", {**no_indication, "CMTRT": "Furosemide & co"}, missing={"CMINDC": "unknown"})
    removed = add(coordinator1, first, "CM", {**ENTECAVIR, "CMTRT": "Wrong"})
    log_row_remove(user=coordinator1, row_id=removed.pk, version=1, reason="Entered in error")
    add(coordinator1, first, "MH", HISTORY)
    add(coordinator1, first, "DV", deviation(first.screening.consent_date))
    add(coordinator2, second, "CM", ENTECAVIR)
    return first, second


def test_odm_holds_log_rows_as_repeating_item_groups(odm_schema, logged, datamanager):  # noqa: F811
    first, _second = logged
    for audit in (False, True):
        document = export(datamanager, audit=audit)
        assert valid(odm_schema, document)
    document = export(datamanager)
    assert document.xpath("//odm:ItemGroupDef[@OID='IG.CM']/@Repeating", namespaces=NS) == ["Yes"]
    assert document.xpath("//odm:StudyEventDef[@OID='SE.LOGS']/@Type", namespaces=NS) == ["Unscheduled"]
    (subject,) = document.xpath(f"//odm:SubjectData[@SubjectKey='{first.subject_id}']", namespaces=NS)
    groups = subject.xpath("odm:StudyEventData[@StudyEventOID='SE.LOGS']//odm:ItemGroupData", namespaces=NS)
    keys = [(group.get("ItemGroupOID"), group.get("ItemGroupRepeatKey")) for group in groups]
    assert keys == [("IG.CM", "1"), ("IG.CM", "2"), ("IG.MH", "1"), ("IG.DV", "1")]  # row 3 was removed
    (indication,) = groups[1].xpath("odm:ItemData[@ItemOID='IT.CM.CMINDC']", namespaces=NS)
    assert indication.get("IsNull") == "Yes" and indication.findtext(".//odm:FlagValue", namespaces=NS) == "unknown"
    names = groups[1].xpath("odm:ItemData[@ItemOID='IT.CM.CMTRT']/@Value", namespaces=NS)
    assert names == ["Furosemide & co"]


def test_the_audit_trail_holds_each_log_change_and_the_removal(odm_schema, logged, datamanager):  # noqa: F811
    document = export(datamanager, audit=True)
    assert valid(odm_schema, document)
    removed = document.xpath(
        "//odm:ItemGroupData[@ItemGroupOID='IG.CM'][@TransactionType='Remove']/@ItemGroupRepeatKey", namespaces=NS
    )
    assert removed == ["3"]
    inserted = document.xpath(
        "//odm:ItemGroupData[@ItemGroupOID='IG.CM'][@ItemGroupRepeatKey='2']"
        "/odm:ItemData[@ItemOID='IT.CM.CMTRT'][@TransactionType='Insert']/@Value",
        namespaces=NS,
    )
    assert inserted == ["Furosemide & co"]


def test_every_odm_oid_reference_resolves(logged, datamanager):
    document = export(datamanager, audit=True)
    for attribute, definition in REFERENCES.items():
        defined = set(document.xpath(f"//odm:{definition}/@OID", namespaces=NS))
        referenced = {
            value
            for element in document.iter()
            if not element.tag.endswith("}" + definition) and (value := element.get(attribute))
        }
        assert referenced <= defined, (attribute, referenced - defined)


def test_each_log_dataset_holds_a_row_per_log_row(logged, datamanager):
    first, second = logged
    datasets = csv_datasets(datamanager)
    scope = export_scope(datamanager)
    for form in ("CM", "MH", "DV"):
        assert len(datasets[form]) == log_row_count(scope, form)
    assert [(row["subject"], row["repeat_key"]) for row in datasets["CM"]] == [
        (first.subject_id, "1"),
        (first.subject_id, "2"),
        (second.subject_id, "1"),
    ]
    assert datasets["CM"][1]["missing"] == "CMINDC=unknown" and datasets["CM"][1]["CMTRT"] == "Furosemide & co"
    assert datasets["MH"][0]["MHETIOL"] == "HBV" and datasets["DV"][0]["DVCAT"] == "VISIT_WINDOW"
    dictionary = {(row["dataset"], row["column"]) for row in datasets["data_dictionary"]}
    assert {("CM", "repeat_key"), ("CM", "CMDOSFRQ"), ("MH", "MHETIOL"), ("DV", "DVIMPT")} <= dictionary


def test_a_site_export_holds_only_its_rows(logged, datamanager):
    first, _second = logged
    datasets = csv_datasets(datamanager, site=1)
    assert {row["subject"] for row in datasets["CM"]} == {first.subject_id}
