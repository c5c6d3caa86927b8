"""Bulk lab import: the file, unit conversion, the preview's row checks, applying it, and who may do it."""

import random
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from capture import lab_import as imports
from capture.lab_import import CONVERSIONS, MAX_BYTES, MAX_ROWS, convert, import_reason, normalise_unit, unit_factor
from capture.models import FormInstance, ItemValue, LabImport, LabImportState
from capture.services import form_save
from tests.factories import enrolled, make_user
from trial.errors import AccessDenied, InvalidInput
from trial.models import AuditRecord, ItemDefinition, Role, Visit

pytestmark = pytest.mark.django_db

HEADER = "participant,visit,item,value,unit\n"


# --- Helpers ----------------------------------------------------------------------------------------------


def csv_upload(text: str | bytes, name: str = "labs.csv", encoding: str = "utf-8") -> SimpleUploadedFile:
    data = text.encode(encoding) if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


def data_counts() -> tuple[int, int, int]:
    return ItemValue.objects.count(), FormInstance.objects.count(), AuditRecord.objects.count()


def lab_item(form: str, code: str) -> ItemDefinition:
    return ItemDefinition.objects.filter(form__code=form, code=code).order_by("-form__protocol__version").first()


def visit_of(participant, code: str) -> Visit:
    return Visit.objects.select_related("participant__protocol", "participant__arm", "definition").get(
        participant=participant, definition__code=code
    )


def stored(participant, visit: str, form: str, item: str) -> ItemValue | None:
    return ItemValue.objects.filter(
        visit__participant=participant, visit__definition__code=visit, item__form__code=form, item__code=item
    ).first()


def upload_service(user, site, text: str, name: str = "labs.csv") -> LabImport:
    return imports.lab_import_upload(user=user, site=site, file_name=name, data=text.encode())


def preview_of(user, site, text: str):
    return imports.lab_import_preview(user=user, lab_import=upload_service(user, site, text))


@pytest.fixture
def participant(coordinator1, site1):
    return enrolled(coordinator1, site1, days_ago=100)


# --- Upload, preview, confirm through the pages -----------------------------------------------------------


def test_preview_of_a_good_file_writes_nothing(as_user, coordinator1, participant):
    client = as_user(coordinator1)
    text = HEADER + f"{participant.subject_id},M3,ALT,48,U/L\n{participant.subject_id},M3,BILI,2.0,mg/dL\n"
    before = data_counts()

    response = client.post(reverse("lab_import:upload"), {"file": csv_upload(text)}, follow=True)

    assert response.status_code == 200
    assert response.templates[0].name == "capture/import_preview.html"
    assert "2 rows valid" in response.text and "0 with problems" in response.text
    assert "34.2" in response.text and "2.0 mg/dL" in response.text
    assert data_counts() == before
    assert LabImport.objects.get().state == LabImportState.PENDING


def test_confirm_writes_values_with_audit_rows(as_user, coordinator1, participant):
    client = as_user(coordinator1)
    subject = participant.subject_id
    text = HEADER + f"{subject},M3,ALT,48,U/L\n{subject},M3,BILI,2.0,mg/dL\n{subject},M3,CREAT,75,umol/L\n"
    client.post(reverse("lab_import:upload"), {"file": csv_upload(text, name="march.csv")})
    lab_import = LabImport.objects.get()

    response = client.post(reverse("lab_import:preview", args=[lab_import.pk]), {"action": "confirm"}, follow=True)

    assert response.status_code == 200
    assert "2 forms saved." in response.text
    assert stored(participant, "M3", "LIVER", "ALT").number == Decimal("48")
    assert stored(participant, "M3", "LIVER", "BILI").number == Decimal("34.2")
    assert stored(participant, "M3", "KIDNEY", "CREAT").number == Decimal("75")
    reason = f"Bulk lab import march.csv ({lab_import.sha256[:12]})"
    assert import_reason(lab_import) == reason
    audited = AuditRecord.objects.filter(reason=reason, participant=participant).exclude(action="state")
    assert sorted(audited.values_list("form_code", "item_code", "new_value")) == [
        ("KIDNEY", "CREAT", "75"),
        ("LIVER", "ALT", "48"),
        ("LIVER", "BILI", "34.2"),
    ]
    assert set(audited.values_list("username", flat=True)) == {"coordinator1"}
    lab_import.refresh_from_db()
    assert lab_import.state == LabImportState.APPLIED and lab_import.applied_at is not None
    assert [group["form"] for group in lab_import.outcome["written"]] == ["LIVER", "KIDNEY"]
    assert lab_import.outcome["failed"] == []


def test_summary_page_names_the_written_forms(as_user, coordinator1, participant):
    client = as_user(coordinator1)
    lab_import = upload_service(coordinator1, participant.site, HEADER + f"{participant.subject_id},M0,ALT,48,U/L\n")
    client.post(reverse("lab_import:preview", args=[lab_import.pk]), {"action": "confirm"})

    response = client.get(reverse("lab_import:preview", args=[lab_import.pk]))

    assert response.templates[0].name == "capture/import_result.html"
    written = response.text.split('id="import-written"')[1]
    assert participant.subject_id in written and "LIVER" in written and "ALT" in written


MALFORMED = {
    "missing column": (HEADER.replace(",unit", "") + "01-001,M3,ALT,48\n").encode(),
    "binary junk": bytes(range(256)) * 4,
    "binary junk without NUL bytes": random.Random(7).randbytes(3000).replace(b"\x00", b"\x01"),
    "semicolons missing a column": b"participant;visit;item;value\n01-001;M3;ALT;48\n",
    "empty": b"",
    "only blank lines": b"\n\n  \n",
    "header without rows": HEADER.encode(),
    "excel workbook": b"PK\x03\x04" + b"\x14\x00" * 40,
    "undecodable": HEADER.encode() + b"01-001,M3,ALT,\x80\xff,U/L\n",
    "unterminated quote": (HEADER + '01-001,M3,ALT,"48,U/L\n').encode(),
}
MALFORMED_MESSAGES = {
    "missing column": "no column named unit",
    "binary junk": "binary data",
    "binary junk without NUL bytes": "cannot be read",
    "semicolons missing a column": "no column named unit.",
    "empty": "file is empty.",
    "only blank lines": "The file is empty.",
    "header without rows": "no rows of results",
    "excel workbook": "Excel workbook",
    "undecodable": "cannot be read",
    "unterminated quote": "not valid CSV",
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_file_writes_nothing_and_says_why(as_user, coordinator1, participant, kind):
    client = as_user(coordinator1)
    before = data_counts()

    response = client.post(reverse("lab_import:upload"), {"file": csv_upload(MALFORMED[kind])})

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["file"] and len(errors["file"]) == 1
    assert MALFORMED_MESSAGES[kind] in errors["file"][0]
    assert LabImport.objects.count() == 0
    assert data_counts() == before


def test_file_too_large_is_refused(as_user, coordinator1, participant):
    client = as_user(coordinator1)
    text = HEADER + "#" * (MAX_BYTES + 10) + "\n"

    response = client.post(reverse("lab_import:upload"), {"file": csv_upload(text)})

    assert "larger than 2 MB" in response.context["form"].errors["file"][0]
    assert LabImport.objects.count() == 0


def test_file_with_too_many_rows_is_refused(coordinator1, site1):
    text = HEADER + "01-001,M3,ALT,48,U/L\n" * (MAX_ROWS + 1)

    with pytest.raises(InvalidInput) as refused:
        upload_service(coordinator1, site1, text)

    assert f"more than {MAX_ROWS} rows" in refused.value.errors["file"][0]
    assert LabImport.objects.count() == 0


def test_header_is_found_under_a_title_in_any_case_with_a_bom(coordinator1, site1, participant):
    text = "Laboratory report,,,,\n\nPARTICIPANT,Visit,Item,Value,Unit,Comment\n"
    text += f"{participant.subject_id},m3,alt,48,u/l,fasting\n"
    lab_import = imports.lab_import_upload(
        user=coordinator1, site=site1, file_name="C:\\lab\\report.csv", data=text.encode("utf-8-sig")
    )

    preview = imports.lab_import_preview(user=coordinator1, lab_import=lab_import)

    assert lab_import.file_name == "report.csv"
    assert [(check.row.line, check.ok, check.value) for check in preview.checks] == [(4, True, "48")]


def test_gb18030_file_with_chinese_comments_and_values_survives(coordinator1, site1, participant):
    subject = participant.subject_id
    text = (
        "# 兰州大学第一医院检验科 导出\n"
        "检验报告,,,,\n"
        "participant,visit,item,value,unit,备注\n"
        f"{subject},M3,HEPAT.LBDAT,{participant.enrolment_date.isoformat()},,空腹\n"
        f"{subject},M3,HBSAG,阴性,,\n"
        f"{subject},M3,BILI,２０.５,μmol/L,复查\n"
    )
    data = text.encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    lab_import = imports.lab_import_upload(user=coordinator1, site=site1, file_name="肝功能.csv", data=data)

    preview = imports.lab_import_preview(user=coordinator1, lab_import=lab_import)
    imports.lab_import_apply(user=coordinator1, lab_import=lab_import)

    assert lab_import.encoding == "gb18030"
    assert [check.problems for check in preview.checks] == [[], [], []]
    assert [check.value for check in preview.checks][1:] == ["negative", "20.5"]
    assert stored(participant, "M3", "HEPAT", "HBSAG").text == "negative"
    assert stored(participant, "M3", "LIVER", "BILI").number == Decimal("20.5")
    assert AuditRecord.objects.filter(reason=import_reason(lab_import), item_code="HBSAG").exists()
    assert "肝功能.csv" in import_reason(lab_import)


def test_semicolon_separated_file_is_read(coordinator1, site1, participant):
    text = f"participant;visit;item;value;unit\n{participant.subject_id};M3;AST;31;U/L\n"

    preview = preview_of(coordinator1, site1, text)

    assert [(check.item.code, check.value) for check in preview.valid] == [("AST", "31")]


# --- Row problems -----------------------------------------------------------------------------------------

ROW_PROBLEMS = {
    "unknown participant": ("99-999,M3,ALT,48,U/L", "Unknown participant 99-999."),
    "unknown visit": ("{s},M4,ALT,48,U/L", "Unknown visit M4."),
    "unknown item code": ("{s},M3,XYZ,48,U/L", "Unknown item code XYZ"),
    "item of a form other than a lab form": ("{s},M3,WEIGHT,70,kg", "Unknown item code WEIGHT"),
    "item code on several forms": ("{s},M3,LBDAT,2025-01-01,", "write it as one of LIVER.LBDAT, KIDNEY.LBDAT"),
    "computed item": ("{s},M3,NONHDL,3.1,mmol/L", "computed from other items"),
    "not collected at that visit": ("{s},FU18,ALT,48,U/L", "is not collected at FU18."),
    "unit not accepted": ("{s},M3,ALT,48,mg/dL", "the unit mg/dL is not accepted; give U/L"),
    "unit missing": ("{s},M3,BILI,20,", "give the unit (umol/L, mg/dL)"),
    "unit for an item without one": ("{s},M3,HBSAG,negative,mg/L", "takes no unit"),
    "value not a number": ("{s},M3,ALT,high,U/L", "enter a number such as 48 or 48.5, not 'high'"),
    "value below a detection limit": ("{s},M3,ALT,<5,U/L", "enter a number"),
    "value outside the hard range": ("{s},M3,ALT,20000,U/L", "is outside the allowed range 0-10000"),
    "converted value outside the hard range": (
        "{s},M3,BILI,100,mg/dL",
        "1710.0 umol/L is outside the allowed range 0-1000 umol/L (100 mg/dL in the file).",
    ),
    "no value": ("{s},M3,ALT,,U/L", "no value given"),
    "choice not among the codes": ("{s},M3,HBSAG,weak,", "choose one of negative, positive, indeterminate"),
    "date not a date": ("{s},M3,LIVER.LBDAT,14/03/2025,", "enter a date as YYYY-MM-DD"),
}


@pytest.mark.parametrize("kind", sorted(ROW_PROBLEMS))
def test_each_row_problem_is_reported(coordinator1, site1, participant, kind):
    line, message = ROW_PROBLEMS[kind]
    good = f"{participant.subject_id},M3,AST,31,U/L\n"
    text = HEADER + good + line.format(s=participant.subject_id) + "\n"

    preview = preview_of(coordinator1, site1, text)

    assert [check.ok for check in preview.checks] == [True, False]
    [problem] = preview.checks[1].problems
    assert message in problem
    assert preview.checks[1].row.line == 3


def test_item_not_collected_in_the_participants_arm(coordinator1, site1, monkeypatch):
    # No laboratory form is limited to an arm; the infusion form is (MSC only), so it stands in for one.
    monkeypatch.setattr(imports, "LAB_FORMS", (*imports.LAB_FORMS, "INFUS"))
    conventional = enrolled(coordinator1, site1, arm="CONV", days_ago=100)

    preview = preview_of(coordinator1, site1, HEADER + f"{conventional.subject_id},M3,CELLDOSE,4.0,10^7 cells\n")

    assert preview.checks[0].problems == ["Cell dose is not collected in this participant's arm."]


def test_duplicate_rows_are_all_refused(coordinator1, site1, participant):
    subject = participant.subject_id
    text = HEADER + f"{subject},M3,ALT,48,U/L\n{subject},M3,AST,31,U/L\n{subject},M3,LIVER.ALT,50,IU/L\n"

    preview = preview_of(coordinator1, site1, text)

    assert [check.ok for check in preview.checks] == [False, True, False]
    assert preview.checks[0].problems == [
        "Duplicate: lines 2, 4 give the same participant, visit and item; none of them is imported."
    ]
    assert preview.checks[2].problems == preview.checks[0].problems


def test_preview_shows_reference_flags_and_current_values(coordinator1, site1, participant):
    visit = visit_of(participant, "M3")
    form_save(user=coordinator1, visit_id=visit.pk, form_code="LIVER", version=0, values={"ALT": "40"}, partial=True)
    subject = participant.subject_id
    text = HEADER + f"{subject},M3,ALT,80,U/L\n{subject},M3,ALB,3.5,g/dL\n{subject},M3,AST,20,U/L\n"

    preview = preview_of(coordinator1, site1, text)

    assert [(check.flag, check.current) for check in preview.checks] == [("high", "40"), ("low", ""), (None, "")]
    assert preview.checks[0].flag_label == "Above reference range"


def test_summary_counts_valid_rows_and_rows_with_problems(as_user, coordinator1, participant):
    client = as_user(coordinator1)
    subject = participant.subject_id
    text = HEADER + f"{subject},M3,ALT,48,U/L\n{subject},M3,AST,x,U/L\n99-999,M3,ALT,48,U/L\n"
    client.post(reverse("lab_import:upload"), {"file": csv_upload(text)})

    response = client.get(reverse("lab_import:preview", args=[LabImport.objects.get().pk]))

    summary = response.text.split('id="import-summary"')[1].split("</div>")[0]
    assert "1 row valid" in summary and "2 with problems" in summary
    assert response.text.count("import-problem") == 2


def test_other_sites_participant_is_unknown_and_nothing_of_it_is_written(
    as_user, coordinator1, coordinator2, site2, participant
):
    theirs = enrolled(coordinator2, site2, days_ago=100)
    client = as_user(coordinator1)
    text = HEADER + f"{theirs.subject_id},M3,ALT,48,U/L\n{participant.subject_id},M3,ALT,52,U/L\n"
    client.post(reverse("lab_import:upload"), {"file": csv_upload(text)})
    lab_import = LabImport.objects.get()

    response = client.get(reverse("lab_import:preview", args=[lab_import.pk]))
    client.post(reverse("lab_import:preview", args=[lab_import.pk]), {"action": "confirm"})

    assert f"Unknown participant {theirs.subject_id}." in response.text
    assert "02-" not in response.text.replace(theirs.subject_id, "")  # nothing else of site 2 shows
    assert stored(theirs, "M3", "LIVER", "ALT") is None
    assert not AuditRecord.objects.filter(participant=theirs, reason=import_reason(lab_import)).exists()
    assert stored(participant, "M3", "LIVER", "ALT").number == Decimal("52")


# --- Units ------------------------------------------------------------------------------------------------

CONVERTED = [
    ("LIVER", "BILI", "2.0", "mg/dL", "34.2"),
    ("LIVER", "BILDIR", "2.0", "mg/dL", "34.2"),
    ("KIDNEY", "CREAT", "1.0", "mg/dL", "88"),
    ("LIVER", "ALB", "3.5", "g/dL", "35.0"),
    ("LIPGLU", "GLUC", "90", "mg/dL", "5.00"),
]


def test_every_conversion_is_tested():
    assert {(code, unit) for _form, code, _value, unit, _result in CONVERTED} == set(CONVERSIONS)


@pytest.mark.parametrize(("form", "code", "value", "unit", "expected"), CONVERTED)
def test_conversion_to_the_protocol_unit(protocol, form, code, value, unit, expected):
    result = convert(lab_item(form, code), value, unit)

    assert (result.text, result.converted) == (expected, True)
    assert result.typed.number == Decimal(expected)


@pytest.mark.parametrize(
    ("code", "value", "unit", "expected"),
    [
        ("CREAT", "1.13", "mg/dL", "100"),  # 99.892 rounds to the item's 0 decimals
        ("GLUC", "99", "mg/dL", "5.50"),
        ("GLUC", "100", "mg/dL", "5.56"),
        ("BILI", "0.35", "MG/DL", "6.0"),  # 5.985, rounded half up
    ],
)
def test_converted_value_is_rounded_to_the_item_decimals(protocol, code, value, unit, expected):
    form = {"CREAT": "KIDNEY", "GLUC": "LIPGLU", "BILI": "LIVER"}[code]

    assert convert(lab_item(form, code), value, unit).text == expected


@pytest.mark.parametrize(
    ("form", "code", "unit"),
    [
        ("LIVER", "ALT", "U/L"),
        ("LIVER", "ALT", "IU/L"),
        ("LIVER", "AST", "iu/l"),
        ("LIVER", "BILI", "umol/L"),
        ("LIVER", "BILI", "µmol/L"),  # micro sign
        ("LIVER", "BILI", "μmol/L"),  # Greek mu
        ("KIDNEY", "URATE", "UMOL/L"),
        ("LIPGLU", "GLUC", "mmol/L"),
        ("LIPGLU", "GLUC", "MMOL/L"),
        ("LIPGLU", "CHOL", "mmol / l"),
        ("LIVER", "ALB", "g/L"),
    ],
)
def test_equivalent_spellings_of_the_protocol_unit_convert_nothing(protocol, form, code, unit):
    item = lab_item(form, code)

    assert unit_factor(item, unit) == Decimal(1)
    assert convert(item, "12.5", unit) == convert(item, "12.5", item.unit)
    assert not convert(item, "12.5", unit).converted


def test_unit_normalisation():
    assert normalise_unit(" µmol / L ") == normalise_unit("μmol/l") == "umol/l"
    assert normalise_unit("IU/L") == normalise_unit("U/L")
    assert normalise_unit("IU/mL") != normalise_unit("U/L")


def test_confirm_stores_the_converted_value_and_the_file_keeps_the_original(coordinator1, site1, participant):
    subject = participant.subject_id
    rows = "".join(f"{subject},M6,{code},{value},{unit}\n" for _form, code, value, unit, _result in CONVERTED)
    lab_import = upload_service(coordinator1, site1, HEADER + rows)

    preview = imports.lab_import_preview(user=coordinator1, lab_import=lab_import)
    imports.lab_import_apply(user=coordinator1, lab_import=lab_import)

    assert [check.original for check in preview.checks] == [f"{v} {u}" for _f, _c, v, u, _r in CONVERTED]
    for form, code, _value, _unit, expected in CONVERTED:
        assert stored(participant, "M6", form, code).number == Decimal(expected)


# --- Applying ---------------------------------------------------------------------------------------------


def test_partial_import_keeps_the_forms_other_items(coordinator1, site1, participant):
    visit = visit_of(participant, "M3")
    form_save(
        user=coordinator1,
        visit_id=visit.pk,
        form_code="LIVER",
        version=0,
        values={"ALT": "40", "AST": "30", "ALB": "38.5"},
        partial=True,
    )
    lab_import = upload_service(coordinator1, site1, HEADER + f"{participant.subject_id},M3,ALT,55,U/L\n")

    outcome = imports.lab_import_apply(user=coordinator1, lab_import=lab_import)

    assert outcome["written"][0]["changed"] == ["ALT"]
    assert stored(participant, "M3", "LIVER", "ALT").number == Decimal("55")
    assert stored(participant, "M3", "LIVER", "AST").number == Decimal("30")
    assert stored(participant, "M3", "LIVER", "ALB").number == Decimal("38.5")
    audited = AuditRecord.objects.filter(reason=import_reason(lab_import))
    assert list(audited.values_list("item_code", "old_value", "new_value")) == [("ALT", "40", "55")]


def test_import_cannot_be_confirmed_twice(as_user, coordinator1, site1, participant):
    lab_import = upload_service(coordinator1, site1, HEADER + f"{participant.subject_id},M3,ALT,55,U/L\n")
    client = as_user(coordinator1)
    url = reverse("lab_import:preview", args=[lab_import.pk])
    client.post(url, {"action": "confirm"})
    audit_rows = AuditRecord.objects.count()
    version = FormInstance.objects.get(visit__participant=participant, definition__code="LIVER").version

    response = client.post(url, {"action": "confirm"}, follow=True)

    assert "This import was already applied or discarded." in response.text
    assert AuditRecord.objects.count() == audit_rows
    assert FormInstance.objects.get(visit__participant=participant, definition__code="LIVER").version == version
    with pytest.raises(InvalidInput):
        imports.lab_import_apply(user=coordinator1, lab_import=lab_import)


def test_discarded_import_writes_nothing_and_cannot_be_confirmed(as_user, coordinator1, site1, participant):
    lab_import = upload_service(coordinator1, site1, HEADER + f"{participant.subject_id},M3,ALT,55,U/L\n")
    client = as_user(coordinator1)
    url = reverse("lab_import:preview", args=[lab_import.pk])
    before = data_counts()

    client.post(url, {"action": "discard"})
    response = client.post(url, {"action": "confirm"}, follow=True)

    lab_import.refresh_from_db()
    assert lab_import.state == LabImportState.DISCARDED and lab_import.discarded_at is not None
    assert "already applied or discarded" in response.text
    assert data_counts() == before


def test_a_form_changed_since_the_preview_is_reported_and_the_others_are_written(
    coordinator1, investigator1, site1, participant, monkeypatch
):
    subject = participant.subject_id
    text = HEADER + f"{subject},M3,ALT,55,U/L\n{subject},M3,CREAT,80,umol/L\n"
    lab_import = upload_service(coordinator1, site1, text)
    real_form_save = imports.form_save

    def someone_saves_first(**kwargs):
        # Someone saves the liver form between the import's reading its version and its own save.
        if kwargs["form_code"] == "LIVER":
            real_form_save(**{**kwargs, "user": investigator1, "values": {"AST": "29"}})
        return real_form_save(**kwargs)

    monkeypatch.setattr(imports, "form_save", someone_saves_first)

    outcome = imports.lab_import_apply(user=coordinator1, lab_import=lab_import)

    assert [(group["form"], group["items"]) for group in outcome["failed"]] == [("LIVER", ["ALT"])]
    assert "Someone saved this form after you opened it" in outcome["failed"][0]["message"]
    assert [group["form"] for group in outcome["written"]] == ["KIDNEY"]
    assert stored(participant, "M3", "LIVER", "ALT") is None
    assert stored(participant, "M3", "KIDNEY", "CREAT").number == Decimal("80")
    lab_import.refresh_from_db()
    assert lab_import.outcome == outcome


def test_rows_are_checked_again_at_confirm(coordinator1, site1, participant):
    subject = participant.subject_id
    text = HEADER + f"{subject},M3,ALT,55,U/L\n{subject},M3,AST,31,U/L\n"
    lab_import = upload_service(coordinator1, site1, text)
    assert len(imports.lab_import_preview(user=coordinator1, lab_import=lab_import).valid) == 2
    # After the preview the subject ID stops being valid at this site (say, a correction of the enrolment).
    type(participant).objects.filter(pk=participant.pk).update(subject_id="01-900")

    outcome = imports.lab_import_apply(user=coordinator1, lab_import=lab_import)

    assert outcome["written"] == [] and outcome["rows_with_problems"] == 2
    assert data_counts()[0] == 0


def test_confirm_checks_access_again(coordinator1, site1, participant):
    lab_import = upload_service(coordinator1, site1, HEADER + f"{participant.subject_id},M3,ALT,55,U/L\n")
    coordinator1.memberships.all().update(role=Role.MONITOR)
    coordinator1 = type(coordinator1).objects.get(pk=coordinator1.pk)  # without the cached roles

    with pytest.raises(AccessDenied):
        imports.lab_import_apply(user=coordinator1, lab_import=lab_import)

    assert LabImport.objects.get().state == LabImportState.PENDING
    assert stored(participant, "M3", "LIVER", "ALT") is None


# --- Who may do it ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["monitor", "datamanager", "sponsor", "outsider"])
def test_a_role_without_data_entry_cannot_upload(as_user, request, participant, username):
    client = as_user(request.getfixturevalue(username))
    text = HEADER + f"{participant.subject_id},M3,ALT,48,U/L\n"

    assert client.get(reverse("lab_import:upload")).status_code == 403
    response = client.post(reverse("lab_import:upload"), {"site": participant.site_id, "file": csv_upload(text)})

    assert response.status_code == 403
    assert LabImport.objects.count() == 0


def test_anonymous_user_is_sent_to_log_in(client):
    response = client.get(reverse("lab_import:upload"))

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_another_users_or_sites_import_is_not_found(as_user, coordinator1, coordinator2, site1, participant):
    lab_import = upload_service(coordinator1, site1, HEADER + f"{participant.subject_id},M3,ALT,48,U/L\n")
    colleague = make_user("coordinator1b", {site1: Role.COORDINATOR})
    url = reverse("lab_import:preview", args=[lab_import.pk])

    for user in (coordinator2, colleague):
        client = as_user(user)
        assert client.get(url).status_code == 404
        assert client.post(url, {"action": "confirm"}).status_code == 404
    assert LabImport.objects.get().state == LabImportState.PENDING
    assert stored(participant, "M3", "LIVER", "ALT") is None


def test_site_is_hidden_for_one_site_and_chosen_among_several(as_user, coordinator1, site1, site2):
    single = as_user(coordinator1).get(reverse("lab_import:upload"))
    assert single.context["form"].fields["site"].widget.input_type == "hidden"

    both = make_user("coordinator12", {site1: Role.COORDINATOR, site2: Role.COORDINATOR})
    several = as_user(both).get(reverse("lab_import:upload"))
    assert list(several.context["form"].fields["site"].queryset) == [site1, site2]
    assert several.context["form"].fields["site"].widget.input_type == "select"


def test_upload_to_a_site_of_someone_else_is_refused(as_user, coordinator1, site2, participant):
    client = as_user(coordinator1)
    text = HEADER + f"{participant.subject_id},M3,ALT,48,U/L\n"

    response = client.post(reverse("lab_import:upload"), {"site": site2.pk, "file": csv_upload(text)})

    assert "site" in response.context["form"].errors
    assert LabImport.objects.count() == 0


def test_same_file_imported_before_is_pointed_out(as_user, coordinator1, site1, participant):
    text = HEADER + f"{participant.subject_id},M3,ALT,48,U/L\n"
    imports.lab_import_apply(user=coordinator1, lab_import=upload_service(coordinator1, site1, text))
    again = upload_service(coordinator1, site1, text)

    response = as_user(coordinator1).get(reverse("lab_import:preview", args=[again.pk]))

    assert 'id="import-earlier"' in response.text


# --- Query counts -----------------------------------------------------------------------------------------


def test_preview_query_count_does_not_grow_with_rows(as_user, coordinator1, site1):
    participants = [enrolled(coordinator1, site1, days_ago=200) for _ in range(3)]
    client = as_user(coordinator1)
    units = {"ALT": "U/L", "AST": "U/L", "PREALB": "mg/L", "BILI": "umol/L", "BILDIR": "mg/dL"}

    def queries(rows: str) -> int:
        lab_import = upload_service(coordinator1, site1, HEADER + rows)
        url = reverse("lab_import:preview", args=[lab_import.pk])
        client.get(url)  # warm the definitions cache, as any earlier page would
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = queries(f"{participants[0].subject_id},M0,ALT,40,U/L\n")
    large = queries(
        "".join(
            f"{p.subject_id},{visit},{code},0.5,{unit}\n"
            for p in participants
            for visit in ("M0", "M3", "M6")
            for code, unit in units.items()
        )
        + "99-999,M3,ALT,48,U/L\n"
    )

    assert large == small
