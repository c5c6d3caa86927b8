"""The ODM 1.3.2 export: valid against the official CDISC schema, and holding exactly the data entered."""

from pathlib import Path

import pytest
from lxml import etree

from reports.exports.odm import odm_export
from reports.selectors import export_scope
from tests.factories import make_user
from tests.reports.export_data import LOT, correct_alt, enter_participant, stored
from trial.models import Role

pytestmark = pytest.mark.django_db

SCHEMA_FOLDER = Path(__file__).parent / "odm1-3-2"
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
# The schema imports xml.xsd and xmldsig-core-schema.xsd by relative path, from the same folder: nothing is
# fetched, and a parser that may not use the network proves it.
PARSER = etree.XMLParser(no_network=True, resolve_entities=False, huge_tree=True)


@pytest.fixture(scope="module")
def odm_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_FOLDER / "ODM1-3-2.xsd"), PARSER))


@pytest.fixture
def entered(coordinator1, coordinator2, site1, site2):
    """Site 1: an MSC participant with M0 data, ALT corrected once; site 2: a conventional-arm participant."""
    first = enter_participant(coordinator1, site1, arm="MSC")
    correct_alt(coordinator1, first, alt="310", reason="Transcription error")
    second = enter_participant(coordinator2, site2, arm="CONV", alt="45")
    return {1: first, 2: second}


def export(user: object, *, site: int | None = None, audit: bool = False) -> etree._ElementTree:
    content = b"".join(odm_export(scope=export_scope(user, site), audit=audit, exported_by=user.get_username()))
    return etree.ElementTree(etree.fromstring(content, PARSER))


def valid(schema: etree.XMLSchema, document: etree._ElementTree) -> bool:
    if schema.validate(document):
        return True
    pytest.fail("\n".join(f"line {error.line}: {error.message}" for error in list(schema.error_log)[:20]))


def subject_keys(document: etree._ElementTree) -> set[str]:
    return set(document.xpath("//odm:ClinicalData/odm:SubjectData/@SubjectKey", namespaces=NS))


def exported_values(document: etree._ElementTree, subject_key: str) -> dict[tuple[str, str, str], str]:
    """{(visit, form, item): Value, or "<reason>" for an IsNull item} of one subject's visits."""
    values = {}
    (subject,) = document.xpath(f"//odm:SubjectData[@SubjectKey='{subject_key}']", namespaces=NS)
    for event in subject.iterfind("odm:StudyEventData", NS):
        visit = event.get("StudyEventOID").removeprefix("SE.")
        if visit == "SCREENING":
            continue
        for item in event.iterfind(".//odm:ItemData", NS):
            _it, form, code = item.get("ItemOID").split(".")
            if item.get("IsNull") == "Yes":
                reason = item.findtext(".//odm:FlagValue", namespaces=NS)
                values[(visit, form, code)] = f"<{reason}>"
            else:
                values[(visit, form, code)] = item.get("Value")
    return values


def test_the_export_is_valid_odm_1_3_2(odm_schema, entered, datamanager):
    document = export(datamanager)
    assert valid(odm_schema, document)
    root = document.getroot()
    assert root.get("ODMVersion") == "1.3.2"
    assert root.get("FileType") == "Snapshot"


def test_it_holds_every_value_entered_and_nothing_else(odm_schema, entered, datamanager):
    document = export(datamanager)
    for entry in entered.values():
        participant = entry.participant
        assert exported_values(document, participant.subject_id) == stored(participant)
    first = exported_values(document, entered[1].participant.subject_id)
    assert first[("M0", "LIVER", "ALT")] == "310"  # the corrected value, not the first one
    assert first[("M0", "LIVER", "ALB")] == "42.5"
    assert first[("M0", "INFUS", "CELLDOSE")] == "4.05"
    assert first[("M0", "INFUS", "LOT")] == LOT


def test_a_missing_value_is_null_with_its_reason(entered, datamanager):
    document = export(datamanager)
    (item,) = document.xpath(
        f"//odm:SubjectData[@SubjectKey='{entered[1].participant.subject_id}']"
        "//odm:ItemData[@ItemOID='IT.LIVER.PREALB']",
        namespaces=NS,
    )
    assert item.get("IsNull") == "Yes" and item.get("Value") is None
    flag = item.find(".//odm:FlagValue", NS)
    assert (flag.text, flag.get("CodeListOID")) == ("not_done", "CL.MISSING_REASON")
    assert document.xpath("//odm:CodeList[@OID='CL.MISSING_REASON']/odm:CodeListItem/@CodedValue", namespaces=NS) == [
        "not_done",
        "not_applicable",
        "unknown",
    ]


def test_screening_and_enrolment_come_before_the_visits(entered, datamanager):
    participant = entered[1].participant
    document = export(datamanager)
    (subject,) = document.xpath(f"//odm:SubjectData[@SubjectKey='{participant.subject_id}']", namespaces=NS)
    assert subject.find("odm:SiteRef", NS).get("LocationOID") == "LOC.01"
    events = [event.get("StudyEventOID") for event in subject.iterfind("odm:StudyEventData", NS)]
    assert events == ["SE.SCREENING", "SE.M0"]
    screening = {item.get("ItemOID"): item.get("Value") for item in subject[1].iterfind(".//odm:ItemData", NS)}
    assert screening["IT.ENROL.ARM"] == "MSC"
    assert screening["IT.ENROL.ENRLDAT"] == participant.enrolment_date.isoformat()
    assert screening["IT.SCREEN.BILI"] == "40"  # 40.0 as screened, without the column's trailing zero
    assert screening["IT.SCREEN.ASCITES"] == "mild"


def test_metadata_describes_items_with_units_ranges_and_code_lists(entered, datamanager):
    document = export(datamanager)

    def one(path: str) -> etree._Element:
        (element,) = document.xpath(path, namespaces=NS)
        return element

    alt = one("//odm:ItemDef[@OID='IT.LIVER.ALT']")
    assert (alt.get("DataType"), alt.get("SignificantDigits")) == ("float", "0")
    assert alt.find("odm:MeasurementUnitRef", NS).get("MeasurementUnitOID") == "MU.U_L"
    checks = {
        (check.get("SoftHard"), check.get("Comparator")): check.findtext("odm:CheckValue", namespaces=NS)
        for check in alt.iterfind("odm:RangeCheck", NS)
    }
    assert checks == {("Hard", "GE"): "0", ("Hard", "LE"): "10000", ("Soft", "GE"): "9", ("Soft", "LE"): "50"}
    question = {
        text.get("{http://www.w3.org/XML/1998/namespace}lang"): text.text for text in alt.iter("{*}TranslatedText")
    }
    assert question == {"en": "Alanine aminotransferase (ALT)", "zh-Hans": "丙氨酸氨基转移酶"}
    assert one("//odm:ItemDef[@OID='IT.CLIN.ASCITES']/odm:CodeListRef").get("CodeListOID") == "CL.ascites"
    decodes = one("//odm:CodeList[@OID='CL.ascites']/odm:CodeListItem[@CodedValue='mild']/odm:Decode")
    assert [text.text for text in decodes] == ["Mild", "轻度"]
    assert one("//odm:ItemDef[@OID='IT.INFUS.REACT']").get("DataType") == "boolean"
    assert one("//odm:ItemRef[@ItemOID='IT.LIPGLU.NONHDL']").get("MethodOID") == "MT.LIPGLU.NONHDL"
    assert one("//odm:MethodDef[@OID='MT.LIPGLU.NONHDL']/odm:FormalExpression").text == "CHOL - HDL"
    events = document.xpath("//odm:StudyEventDef/@OID", namespaces=NS)
    assert events == [
        "SE.SCREENING",
        "SE.M0",
        "SE.M3",
        "SE.M6",
        "SE.M9",
        "SE.M12",
        "SE.FU18",
        "SE.FU24",
        "SE.FU30",
        "SE.FU36",
        "SE.LOGS",
        "SE.SAFETY",
    ]
    infusion_refs = one("//odm:StudyEventDef[@OID='SE.M0']/odm:FormRef[@FormOID='F.INFUS']")
    assert infusion_refs.get("Mandatory") == "No"  # the MSC arm only


def test_chinese_site_names_and_free_text_survive(entered, datamanager):
    document = export(datamanager)
    locations = {loc.get("OID"): loc.get("Name") for loc in document.xpath("//odm:Location", namespaces=NS)}
    assert "中国人民解放军第三〇二医院" in locations["LOC.01"]
    assert "兰州大学第一医院" in locations["LOC.02"]
    participant = entered[1].participant
    reaction = stored(participant)[("M0", "INFUS", "REACTDSC")]
    assert "轻度发热" in reaction and "\n" in reaction and '"' in reaction and "&" in reaction
    assert exported_values(document, participant.subject_id)[("M0", "INFUS", "REACTDSC")] == reaction


def test_a_site_1_sponsor_sees_site_1_only(entered, site1):
    sponsor = make_user("sponsor-site1", {site1: Role.SPONSOR})
    document = export(sponsor)
    assert subject_keys(document) == {entered[1].participant.subject_id}
    assert document.xpath("//odm:Location/@OID", namespaces=NS) == ["LOC.01"]
    assert "LOC.02" not in etree.tostring(document).decode()


def test_one_site_on_request(entered, datamanager):
    document = export(datamanager, site=2)
    assert subject_keys(document) == {entered[2].participant.subject_id}
    assert document.getroot().get("Granularity") == "SingleSite"


def test_with_the_audit_trail_every_change_is_a_transaction(odm_schema, entered, datamanager, coordinator1):
    document = export(datamanager, audit=True)
    assert valid(odm_schema, document)
    assert document.getroot().get("FileType") == "Transactional"
    subject_id = entered[1].participant.subject_id
    history = document.xpath(
        f"//odm:SubjectData[@SubjectKey='{subject_id}' and @TransactionType]"
        "//odm:ItemData[@ItemOID='IT.LIVER.ALT' and odm:AuditRecord]",
        namespaces=NS,
    )
    assert [(item.get("TransactionType"), item.get("Value")) for item in history] == [
        ("Insert", "300"),
        ("Update", "310"),
    ]
    correction = history[1].find("odm:AuditRecord", NS)
    assert correction.find("odm:UserRef", NS).get("UserOID") == f"USR.{coordinator1.pk}"
    assert correction.find("odm:LocationRef", NS).get("LocationOID") == "LOC.01"
    assert correction.findtext("odm:ReasonForChange", namespaces=NS) == "Transcription error"
    assert correction.findtext("odm:DateTimeStamp", namespaces=NS).endswith("+00:00")
    users = document.xpath("//odm:AdminData/odm:User/odm:LoginName/text()", namespaces=NS)
    assert {"coordinator1", "coordinator2"} <= set(users)
    missing = document.xpath("//odm:ItemData[@ItemOID='IT.LIVER.PREALB' and @TransactionType='Insert']", namespaces=NS)
    assert missing and all(item.get("IsNull") == "Yes" for item in missing)
    # The current state follows the history, so applying the file in order ends with the data as they are.
    current = document.xpath("//odm:ItemData[@ItemOID='IT.LIVER.ALT' and @TransactionType='Upsert']", namespaces=NS)
    assert [item.get("Value") for item in current] == ["310", "45"]


def test_the_audit_trail_of_another_site_stays_out(entered, site1):
    manager = make_user("manager-site1", {site1: Role.DATA_MANAGER})
    document = export(manager, audit=True)
    assert subject_keys(document) == {entered[1].participant.subject_id}
    assert "coordinator2" not in document.xpath("//odm:User/odm:LoginName/text()", namespaces=NS)


def test_an_empty_trial_is_still_valid(odm_schema, datamanager):
    assert valid(odm_schema, export(datamanager))
    assert valid(odm_schema, export(datamanager, audit=True))
