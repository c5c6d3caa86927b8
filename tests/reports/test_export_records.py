"""The complete trial record in the exports: every screened candidate (screen failures and eligible candidates
not enrolled too) with their eligibility, the adverse events and the death report, with their audit trail;
valid ODM 1.3.2 whose every OID reference resolves, and CSV datasets with as many rows as the database."""

import csv
import datetime
import io

import pytest
from django.utils import timezone
from lxml import etree

from capture.models import ItemValue
from reports.exports.csv_export import csv_export
from reports.exports.odm import odm_export
from reports.selectors import export_scope
from safety import services as safety_services
from safety.models import AdverseEvent
from safety.survival import survival_of
from tests.factories import screened
from tests.reports.export_data import enter_participant, read_zip
from tests.reports.test_export_odm import NS, PARSER, odm_schema, valid  # noqa: F401 (a fixture)
from tests.safety.conftest import SERIOUS, ae_input
from trial.models import EligibilityCriterion, Participant

pytestmark = pytest.mark.django_db

ODM_NS = "{http://www.cdisc.org/ns/odm/v1.3}"


@pytest.fixture
def trial(coordinator1, coordinator2, site1, site2):
    """Two enrolled participants (one with a serious adverse event corrected once, the other dead), a screen
    failure at site 1 (pregnant, no consent) and an eligible candidate not enrolled at site 2."""
    first = enter_participant(coordinator1, site1, arm="MSC").participant
    second = enter_participant(coordinator2, site2, arm="CONV", alt="45").participant
    event = safety_services.adverse_event_report(
        user=coordinator1, participant_id=first.pk, data=ae_input(term="发热 <fever> & chills", **SERIOUS)
    )
    safety_services.adverse_event_update(
        user=coordinator1,
        event_id=event.pk,
        version=event.version,
        data=ae_input(term="发热 <fever> & chills", **{**SERIOUS, "grade": 4}),
        reason="Grade confirmed by the investigator",
    )
    safety_services.adverse_event_report(user=coordinator1, participant_id=first.pk, data=ae_input())
    safety_services.death_report(
        user=coordinator2,
        participant_id=second.pk,
        death_date=timezone.localdate() - datetime.timedelta(days=2),
        cause="Variceal bleeding",
        relationship="unrelated",
    )
    answers = {"IN5": True, **{f"EX{n}": n == 1 for n in range(1, 10)}}
    failure = screened(coordinator1, site1, sex="F", consent_date=None, answers=answers)
    waiting = screened(coordinator2, site2)
    return {"first": first, "second": second, "failure": failure, "waiting": waiting}


def odm(user: object, *, audit: bool = False) -> etree._ElementTree:
    content = b"".join(odm_export(scope=export_scope(user), audit=audit, exported_by="test"))
    return etree.ElementTree(etree.fromstring(content, PARSER))


def csv_datasets(user: object) -> dict[str, list[dict[str, str]]]:
    files = read_zip(b"".join(csv_export(scope=export_scope(user))))
    return {
        name.removesuffix(".csv"): list(csv.DictReader(io.StringIO(text, newline=""))) for name, text in files.items()
    }


# --- ODM ----------------------------------------------------------------------------------------------------

# A reference attribute and the definition it names.
REFERENCES = {
    "StudyOID": "Study",
    "MetaDataVersionOID": "MetaDataVersion",
    "StudyEventOID": "StudyEventDef",
    "FormOID": "FormDef",
    "ItemGroupOID": "ItemGroupDef",
    "ItemOID": "ItemDef",
    "CodeListOID": "CodeList",
    "MethodOID": "MethodDef",
    "MeasurementUnitOID": "MeasurementUnit",
    "LocationOID": "Location",
    "UserOID": "User",
}


def unresolved_references(document: etree._ElementTree) -> list[str]:
    """Every *OID attribute of a reference or of clinical data that names no definition of its kind."""
    declared: dict[str, set[str]] = {kind: set() for kind in REFERENCES.values()}
    for element in document.iter():
        kind = etree.QName(element).localname
        if kind in declared and element.get("OID"):
            declared[kind].add(element.get("OID"))
    unresolved = []
    for element in document.iter():
        for attribute, value in element.attrib.items():
            kind = REFERENCES.get(attribute)
            if kind is not None and value not in declared[kind]:
                unresolved.append(f"{etree.QName(element).localname} {attribute}={value}")
    return unresolved


def misplaced_data(document: etree._ElementTree) -> list[str]:
    """Clinical data whose element is not referenced by its parent's definition: an ItemData of an item its item
    group does not list, an item group its form does not list, a form its event does not list."""
    refs = {}
    for definition, child, attribute in (
        ("StudyEventDef", "FormRef", "FormOID"),
        ("FormDef", "ItemGroupRef", "ItemGroupOID"),
        ("ItemGroupDef", "ItemRef", "ItemOID"),
    ):
        for element in document.iter(f"{ODM_NS}{definition}"):
            refs[element.get("OID")] = {ref.get(attribute) for ref in element.iter(f"{ODM_NS}{child}")}
    found = []
    for parent, child, parent_attribute, attribute in (
        ("StudyEventData", "FormData", "StudyEventOID", "FormOID"),
        ("FormData", "ItemGroupData", "FormOID", "ItemGroupOID"),
        ("ItemGroupData", "ItemData", "ItemGroupOID", "ItemOID"),
    ):
        for element in document.iter(f"{ODM_NS}{parent}"):
            for data in element.iterfind(f"{ODM_NS}{child}"):
                if data.get(attribute) not in refs.get(element.get(parent_attribute), set()):
                    found.append(f"{element.get(parent_attribute)} > {data.get(attribute)}")
    return found


def repeating_groups(document: etree._ElementTree) -> set[str]:
    return set(document.xpath("//odm:ItemGroupDef[@Repeating='Yes']/@OID", namespaces=NS))


@pytest.mark.parametrize("audit", [False, True])
def test_the_complete_record_is_valid_and_every_reference_resolves(odm_schema, trial, datamanager, audit):  # noqa: F811
    document = odm(datamanager, audit=audit)
    assert valid(odm_schema, document)
    assert unresolved_references(document) == []
    assert misplaced_data(document) == []
    repeating = {"IG.IE", "IG.AE", "IG.CM", "IG.MH", "IG.DV"}  # criteria, adverse events and the log forms' rows
    assert repeating_groups(document) == repeating
    # A repeating item group's data carry their repeat key, and no other group's do.
    for group in document.iter(f"{ODM_NS}ItemGroupData"):
        assert (group.get("ItemGroupRepeatKey") is not None) == (group.get("ItemGroupOID") in repeating)


def test_an_unresolved_reference_is_caught(trial, datamanager):
    document = odm(datamanager)
    document.xpath("//odm:ItemData", namespaces=NS)[0].set("ItemOID", "IT.NOPE")
    assert unresolved_references(document) == ["ItemData ItemOID=IT.NOPE"]
    assert misplaced_data(document) == [f"IG.{'SCREEN'} > IT.NOPE"]


def subject(document: etree._ElementTree, key: str) -> etree._Element:
    (found,) = document.xpath(f"//odm:SubjectData[@SubjectKey='{key}' and not(@TransactionType)]", namespaces=NS)
    return found


def items_of(element: etree._Element, group: str, repeat: str | None = None) -> dict[str, str]:
    path = f".//odm:ItemGroupData[@ItemGroupOID='{group}'" + (
        f" and @ItemGroupRepeatKey='{repeat}']" if repeat else "]"
    )
    (found,) = element.xpath(path, namespaces=NS)
    return {item.get("ItemOID").rpartition(".")[2]: item.get("Value") for item in found.iterfind("odm:ItemData", NS)}


def test_every_screened_candidate_is_a_subject(trial, datamanager):
    document = odm(datamanager)
    keys = set(document.xpath("//odm:ClinicalData/odm:SubjectData/@SubjectKey", namespaces=NS))
    failure, waiting = trial["failure"], trial["waiting"]
    assert keys == {
        trial["first"].subject_id,
        trial["second"].subject_id,
        failure.screening_number,
        waiting.screening_number,
    }
    candidate = subject(document, failure.screening_number)
    assert candidate.find("odm:SiteRef", NS).get("LocationOID") == "LOC.01"
    assert [event.get("StudyEventOID") for event in candidate.iterfind("odm:StudyEventData", NS)] == ["SE.SCREENING"]
    eligibility = items_of(candidate, "IG.ELIG")
    assert (eligibility["SCRNUM"], eligibility["STATUS"], eligibility["ELIGFL"]) == (
        failure.screening_number,
        "screen_failed",
        "false",
    )
    assert "SUBJID" not in eligibility
    assert eligibility["FAILRSN"] == ";".join(failure.screen_failure_reasons)
    assert {reason.partition(":")[0] for reason in eligibility["FAILRSN"].split(";")} == {"IN1", "EX1"}
    assert items_of(candidate, "IG.IE", "EX1") == {
        "IETESTCD": "EX1",
        "IECAT": "exclusion",
        "ANSWER": "true",
        "MET": "false",
        "REASON": "Pregnant woman",
    }
    assert items_of(candidate, "IG.IE", "IN1") == {
        "IETESTCD": "IN1",
        "IECAT": "inclusion",
        "MET": "false",  # computed (no consent date): no answer
        "REASON": "no written informed consent recorded",
    }
    assert items_of(candidate, "IG.IE", "EX2")["MET"] == "true"
    criteria = EligibilityCriterion.objects.filter(protocol=failure.protocol).count()
    assert len(candidate.xpath(".//odm:ItemGroupData[@ItemGroupOID='IG.IE']", namespaces=NS)) == criteria
    assert items_of(candidate, "IG.SCREEN")["SCRDAT"] == failure.screening.screening_date.isoformat()
    waiting_items = items_of(subject(document, waiting.screening_number), "IG.ELIG")
    assert (waiting_items["STATUS"], waiting_items["ELIGFL"], waiting_items.get("FAILRSN")) == (
        "eligible",
        "true",
        None,
    )
    enrolled = items_of(subject(document, trial["first"].subject_id), "IG.ELIG")
    assert (enrolled["SUBJID"], enrolled["STATUS"]) == (trial["first"].subject_id, "enrolled")


def test_adverse_events_are_a_repeating_group_keyed_by_their_number(trial, datamanager):
    document = odm(datamanager)
    first = subject(document, trial["first"].subject_id)
    events = first.xpath("odm:StudyEventData[@StudyEventOID='SE.SAFETY']", namespaces=NS)
    assert len(events) == 1
    assert first.xpath(".//odm:ItemGroupData[@ItemGroupOID='IG.AE']/@ItemGroupRepeatKey", namespaces=NS) == ["1", "2"]
    serious = items_of(first, "IG.AE", "1")
    assert (serious["TERM"], serious["GRADE"], serious["SERIOUS"], serious["SERCRIT"]) == (
        "发热 <fever> & chills",
        "4",
        "true",
        "hospitalisation",
    )
    assert serious["STATUS"] == "reported" and serious["EXPEDAT"].endswith("+00:00")
    assert items_of(first, "IG.AE", "2")["SERIOUS"] == "false"
    death = items_of(subject(document, trial["second"].subject_id), "IG.DEATH")
    assert (death["CAUSE"], death["REL"], death["AUTOPSY"]) == ("Variceal bleeding", "unrelated", "false")
    assert document.xpath("//odm:ItemDef[@OID='IT.AE.SERIOUS']/@DataType", namespaces=NS) == ["boolean"]
    assert document.xpath("//odm:ItemDef[@OID='IT.AE.REL']/odm:CodeListRef/@CodeListOID", namespaces=NS) == [
        "CL.RELATIONSHIP"
    ]
    assert document.xpath("//odm:StudyEventDef[@OID='SE.SAFETY']/@Type", namespaces=NS) == ["Common"]


def history(document: etree._ElementTree, key: str, item: str) -> list[tuple[str, str | None, str | None]]:
    """(transaction, value, reason) of each recorded change of an item of a subject, in file order."""
    changes = document.xpath(
        f"//odm:SubjectData[@SubjectKey='{key}' and @TransactionType]"
        f"//odm:ItemData[@ItemOID='{item}' and odm:AuditRecord]",
        namespaces=NS,
    )
    return [
        (change.get("TransactionType"), change.get("Value"), change.findtext(".//odm:ReasonForChange", namespaces=NS))
        for change in changes
    ]


def test_the_audit_file_holds_screening_enrolment_and_safety_history(trial, datamanager, coordinator1):
    document = odm(datamanager, audit=True)
    failure, first = trial["failure"], trial["first"]
    assert history(document, failure.screening_number, "IT.ELIG.STATUS") == [("Insert", "screen_failed", None)]
    # The answers in the trail's order: EX1 (pregnant: true), EX2 ... EX9, then IN5 (true).
    answers = [("Insert", value, None) for value in ["true"] + ["false"] * 8 + ["true"]]
    assert history(document, failure.screening_number, "IT.IE.ANSWER") == answers
    assert history(document, first.subject_id, "IT.ELIG.STATUS") == [
        ("Insert", "eligible", None),
        ("Update", "enrolled", None),
    ]
    assert history(document, first.subject_id, "IT.ENROL.ARM") == [("Insert", "MSC", None)]
    assert history(document, first.subject_id, "IT.SCREEN.BILI") == [("Insert", "40", None)]
    grade = history(document, first.subject_id, "IT.AE.GRADE")
    # AE 1 reported at grade 3, corrected to 4; AE 2 reported at grade 1 (each its own repeat).
    assert grade == [
        ("Insert", "3", None),
        ("Update", "4", "Grade confirmed by the investigator"),
        ("Insert", "1", None),
    ]
    (record,) = document.xpath(
        f"//odm:SubjectData[@SubjectKey='{first.subject_id}' and @TransactionType]"
        "//odm:ItemGroupData[@ItemGroupOID='IG.AE' and @ItemGroupRepeatKey='1']"
        "/odm:ItemData[@ItemOID='IT.AE.GRADE' and @TransactionType='Update']/odm:AuditRecord",
        namespaces=NS,
    )
    assert record.find("odm:UserRef", NS).get("UserOID") == f"USR.{coordinator1.pk}"
    assert history(document, trial["second"].subject_id, "IT.DEATH.CAUSE") == [("Insert", "Variceal bleeding", None)]
    assert history(document, trial["second"].subject_id, "IT.ELIG.STATUS")[-1] == ("Update", "died", None)


def test_the_screening_history_of_another_site_stays_out(trial, site1):
    from tests.factories import make_user
    from trial.models import Role

    document = odm(make_user("manager-site1", {site1: Role.DATA_MANAGER}), audit=True)
    keys = set(document.xpath("//odm:SubjectData/@SubjectKey", namespaces=NS))
    assert keys == {trial["first"].subject_id, trial["failure"].screening_number}


# --- CSV ----------------------------------------------------------------------------------------------------


def test_each_dataset_has_as_many_rows_as_the_database(trial, datamanager):
    datasets = csv_datasets(datamanager)
    participants = Participant.objects.count()
    criteria = EligibilityCriterion.objects.count()
    assert participants == 4
    for name in ("SCREEN", "ELIG", "ENROL"):
        assert len(datasets[name]) == participants, name
    assert len(datasets["IE"]) == participants * criteria
    assert len(datasets["AE"]) == AdverseEvent.objects.count() == 2
    assert len(datasets["SURVIVAL"]) == len(survival_of(Participant.objects.all())) == 2
    values = ItemValue.objects.exclude(item__code="LBDAT")
    labs = ("LIVER", "KIDNEY", "LIPGLU", "CYTO", "HEPAT")
    assert len(datasets["LAB_LONG"]) == values.filter(item__form__code__in=labs).count()
    for form in ("CLIN", "LIVER", "INFUS", "SURV"):
        with_data = ItemValue.objects.filter(item__form__code=form).values("visit_id").distinct().count()
        assert len(datasets[form]) == with_data, form


def test_screen_failures_and_their_reasons_are_in_the_csv(trial, datamanager):
    datasets = csv_datasets(datamanager)
    failure = trial["failure"]
    (row,) = [row for row in datasets["ELIG"] if row["subject"] == failure.screening_number]
    assert (row["site"], row["arm"], row["STATUS"], row["ELIGFL"], row["SUBJID"]) == (
        "01",
        "",
        "screen_failed",
        "false",
        "",
    )
    assert row["FAILRSN"].split(";") == failure.screen_failure_reasons
    assert row["visit_date"] == failure.screening.screening_date.isoformat()
    criteria = {r["IETESTCD"]: r for r in datasets["IE"] if r["subject"] == failure.screening_number}
    assert (criteria["EX1"]["ANSWER"], criteria["EX1"]["MET"], criteria["EX1"]["REASON"]) == (
        "true",
        "false",
        "Pregnant woman",
    )
    assert (criteria["IN1"]["ANSWER"], criteria["IN1"]["MET"]) == ("", "false")
    assert (criteria["IN2"]["MET"], criteria["IN2"]["REASON"]) == ("true", "")
    (screen,) = [r for r in datasets["SCREEN"] if r["subject"] == failure.screening_number]
    assert screen["CONSDAT"] == "" and screen["BILI"] == "40"
    waiting = [r for r in datasets["ELIG"] if r["subject"] == trial["waiting"].screening_number]
    assert [(r["STATUS"], r["FAILRSN"]) for r in waiting] == [("eligible", "")]


def test_booleans_are_spelt_true_or_false_in_every_dataset(trial, datamanager):
    datasets = csv_datasets(datamanager)
    dictionary = datasets.pop("data_dictionary")
    boolean = {(row["dataset"], row["column"]) for row in dictionary if row["type"] == "boolean"}
    assert ("*", "*") in boolean  # the convention itself, stated in the dictionary
    assert {"AE", "SURVIVAL", "INFUS", "ELIG", "IE"} <= {dataset for dataset, _column in boolean}
    seen = set()
    for name, rows in datasets.items():
        for row in rows:
            for column, value in row.items():
                if (name, column) in boolean:
                    assert value in ("true", "false", ""), (name, column, value)
                    seen.add(value)
    assert seen == {"true", "false", ""}
    assert {row["required"] for row in dictionary} == {"true", "false", ""}


def test_survival_contacts_are_in_the_odm_file_with_their_history(coordinator1, site1, datamanager):
    from capture.services import form_save
    from tests.factories import enrolled

    participant = enrolled(coordinator1, site1, arm="CONV", days_ago=560)
    contact = participant.visits.get(definition__code="FU18")
    day = contact.target_date.isoformat()
    form_save(
        user=coordinator1,
        visit_id=contact.pk,
        form_code="SURV",
        version=0,
        values={"CONTDAT": day, "VITAL": "alive", "LKADAT": day},
        complete=True,
    )
    document = odm(datamanager, audit=True)
    survival = items_of(subject(document, participant.subject_id), "IG.SURV")
    assert survival == {"CONTDAT": day, "VITAL": "alive", "LKADAT": day}
    assert history(document, participant.subject_id, "IT.SURV.VITAL") == [("Insert", "alive", None)]
    assert csv_datasets(datamanager)["SURVIVAL"][0]["end"] == day
