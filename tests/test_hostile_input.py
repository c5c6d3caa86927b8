"""Hostile input at every door is a field-level 400 (a form error on the pages), never a 500, and nothing is written.

NUL, other control characters and lone surrogates in text; implausible dates; integers past 64 bits; absurd day
counts and cut-offs; the router's format-suffix twins of routes. The same tests run on SQLite and, with
DATABASE_URL=postgres://..., on PostgreSQL, which refuses a NUL outright; `test_nul_everywhere_on_postgresql`
makes sure the latter is never skipped unnoticed.
"""

import datetime
import json

import pytest
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from capture.checks import ParseError, parse
from capture.models import FormInstance, ItemValue, Query, QueryEvent
from reports.models import ReportRun
from safety.models import AdverseEvent
from tests.factories import enrolled, screened
from tests.reports.test_export_csv import export
from tests.trial.test_api import screening_body
from tests.trial.test_views import screening_post
from trial.models import AuditRecord, DataType, ItemDefinition, Participant
from trial.validators import TEXT_MAX

pytestmark = pytest.mark.django_db

HOSTILE = {"nul": "ab\x00c", "control": "ab\x07c", "surrogate": "ab\ud800c"}
TODAY = timezone.localdate


def api(user: object) -> APIClient:
    client = APIClient()
    _token, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def post_json(client: APIClient, url: str, data: dict, method: str = "post") -> object:
    # Encoded by hand: json.dumps writes a lone surrogate as the escape "\ud800", as a hostile client would send it.
    return getattr(client, method)(url, json.dumps(data), content_type="application/json")


def writes() -> tuple[int, ...]:
    return (
        Participant.objects.count(),
        AuditRecord.objects.count(),
        FormInstance.objects.count(),
        ItemValue.objects.count(),
        Query.objects.count(),
        QueryEvent.objects.count(),
        AdverseEvent.objects.count(),
        ReportRun.objects.count(),
    )


@pytest.fixture
def participant(coordinator1, site1):
    return enrolled(coordinator1, site1, arm="MSC", days_ago=100)


@pytest.fixture
def m3(participant):
    return participant.visits.get(definition__code="M3")


def infusion(visit: object, **changes: str) -> dict:
    return {
        "INFDAT": str(visit.window_start),
        "CELLDOSE": "4.05",
        "VOLUME": "40",
        "LOT": "UC-1",
        "REACT": "false",
        **{"TEMPPRE": "36.6", "TEMPPOST": "36.9", "PULSEPRE": "76", "PULSEPOST": "80"},
        **{"SYSBPPRE": "118", "SYSBPPOST": "120", "DIABPPRE": "74", "DIABPPOST": "76"},
        **changes,
    }


# --- Text: NUL, control characters, lone surrogates ------------------------------------------------------------


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("item", ["LOT", "REACTDSC"])
def test_form_api_refuses_a_hostile_text_item_keyed_by_the_item(coordinator1, m3, kind, item):
    before = writes()
    body = {"version": 0, "values": infusion(m3, **{item: HOSTILE[kind]})}
    response = post_json(api(coordinator1), f"/api/v1/visits/{m3.pk}/forms/INFUS/", body, method="put")
    assert response.status_code == 400
    assert list(response.json()) == [item]
    assert writes() == before


def test_form_api_refuses_a_hostile_item_code(coordinator1, m3):
    body = {"version": 0, "values": {"LOT\ud800": "x", **infusion(m3)}}
    response = post_json(api(coordinator1), f"/api/v1/visits/{m3.pk}/forms/INFUS/", body, method="put")
    assert response.status_code == 400
    assert list(response.json()) == ["values"]


def test_form_api_keeps_line_breaks_in_a_text_item_but_not_in_a_coded_answer(coordinator1, m3):
    client = api(coordinator1)
    url = f"/api/v1/visits/{m3.pk}/forms/INFUS/"
    refused = post_json(client, url, {"version": 0, "values": infusion(m3, REACT="true\n")}, method="put")
    assert refused.status_code == 400 and list(refused.json()) == ["REACT"]
    text = "Mild fever\nresolved in 30 min"
    saved = post_json(client, url, {"version": 0, "values": infusion(m3, REACTDSC=text)}, method="put")
    assert saved.status_code == 200, saved.json()
    assert ItemValue.objects.get(visit=m3, item__code="REACTDSC").text == text


@pytest.mark.parametrize("kind", ["nul", "control"])  # a form post is UTF-8: it cannot carry a lone surrogate
def test_form_page_refuses_a_hostile_text_item(as_user, coordinator1, m3, kind):
    before = writes()
    data = {"version": "0", **infusion(m3, LOT=HOSTILE[kind])}
    response = as_user(coordinator1).post(reverse("capture:form", args=[m3.pk, "INFUS"]), data)
    assert response.status_code in (200, 400)
    assert response.context["form"].errors["LOT"]
    assert writes() == before


@pytest.mark.parametrize("kind", HOSTILE)
def test_screening_api_refuses_hostile_initials(coordinator1, site1, kind):
    before = writes()
    response = post_json(api(coordinator1), "/api/v1/participants/screening/", screening_body(initials=HOSTILE[kind]))
    assert response.status_code == 400
    assert list(response.json()) == ["initials"]
    assert writes() == before


def test_screening_api_refuses_a_hostile_criterion_code(coordinator1, site1):
    body = screening_body()
    body["answers"] = {**body["answers"], "EX\ud8001": False}
    response = post_json(api(coordinator1), "/api/v1/participants/screening/", body)
    assert response.status_code == 400
    assert list(response.json()) == ["answers"]


@pytest.mark.parametrize("kind", ["nul", "control"])
def test_screening_page_refuses_hostile_initials(as_user, coordinator1, site1, kind):
    before = writes()
    response = as_user(coordinator1).post(reverse("trial:screen"), screening_post(initials=HOSTILE[kind]))
    assert response.context["form"].errors["initials"]
    assert writes() == before


@pytest.mark.parametrize("kind", HOSTILE)
def test_report_request_api_refuses_a_hostile_kind(datamanager, kind):
    before = writes()
    response = post_json(api(datamanager), "/api/v1/reports/", {"kind": HOSTILE[kind]})
    assert response.status_code == 400
    assert list(response.json()) == ["kind"]
    assert writes() == before


@pytest.mark.parametrize("kind", HOSTILE)
def test_query_api_refuses_a_hostile_message(datamanager, m3, kind):
    before = writes()
    response = post_json(api(datamanager), "/api/v1/queries/", {"visit": m3.pk, "message": HOSTILE[kind]})
    assert response.status_code == 400
    assert list(response.json()) == ["message"]
    assert writes() == before


def test_query_api_takes_a_message_of_several_lines(datamanager, m3):
    message = "ALT 300 U/L:\n\tplease confirm against the report."
    response = post_json(api(datamanager), "/api/v1/queries/", {"visit": m3.pk, "message": message})
    assert response.status_code == 201, response.json()
    assert QueryEvent.objects.get().text == message


@pytest.mark.parametrize("kind", ["nul", "control"])
def test_query_page_refuses_a_hostile_message(as_user, datamanager, m3, kind):
    before = writes()
    url = reverse("review:query_raise", args=[m3.pk])
    response = as_user(datamanager).post(url, {"message": HOSTILE[kind], "form": "", "item": ""})
    assert response.status_code == 400
    assert response.context["form"].errors["message"]
    assert writes() == before


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("field", ["term", "description"])
def test_adverse_event_api_refuses_hostile_texts(coordinator1, participant, kind, field):
    before = writes()
    body = {
        "participant": participant.pk,
        "term": "Fever",
        "body_system": "general",
        "onset_date": str(participant.enrolment_date + datetime.timedelta(days=5)),
        "grade": 1,
        "relationship": "probable",
        "action_taken": "medication",
        "outcome": "recovering",
        field: HOSTILE[kind],
    }
    response = post_json(api(coordinator1), "/api/v1/adverse-events/", body)
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert writes() == before


@pytest.mark.parametrize("kind", HOSTILE)
def test_death_report_api_refuses_a_hostile_cause(investigator1, participant, kind):
    before = writes()
    body = {"death_date": str(TODAY()), "cause": HOSTILE[kind], "relationship": "unrelated", "autopsy": False}
    response = post_json(api(investigator1), f"/api/v1/participants/{participant.pk}/death-report/", body)
    assert response.status_code in (400, 403)
    if response.status_code == 400:
        assert list(response.json()) == ["cause"]
    assert writes() == before


@pytest.mark.parametrize("character", ["\x01", "\x1b"])
def test_lab_import_refuses_a_file_with_control_characters(as_user, coordinator1, participant, character):
    from tests.capture.test_lab_import import HEADER, csv_upload

    text = HEADER + f"{participant.subject_id},M3,ALT,4{character}8,U/L\n"
    response = as_user(coordinator1).post(reverse("lab_import:upload"), {"file": csv_upload(text)})
    assert response.context["form"].errors["file"]


def test_lab_import_refuses_a_file_name_with_a_control_character(coordinator1, site1):
    from capture import lab_import
    from trial.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        lab_import.lab_import_upload(user=coordinator1, site=site1, file_name="labs\x07.csv", data=b"a,b\n")
    assert list(refused.value.errors) == ["file"]


# --- Lengths ---------------------------------------------------------------------------------------------------


def test_the_api_change_reason_has_the_pages_limit(coordinator1, m3):
    client = api(coordinator1)
    url = f"/api/v1/visits/{m3.pk}/forms/INFUS/"
    assert (
        post_json(client, url, {"version": 0, "values": infusion(m3), "complete": True}, method="put").status_code
        == 200
    )
    before = writes()
    change = {"version": 1, "values": infusion(m3, VOLUME="41"), "complete": True, "reason": "x" * (TEXT_MAX + 1)}
    response = post_json(client, url, change, method="put")
    assert response.status_code == 400
    assert list(response.json()) == ["reason"]
    assert writes() == before
    change["reason"] = "x" * TEXT_MAX
    assert post_json(client, url, change, method="put").status_code == 200


@pytest.mark.parametrize("field", ["description"])
def test_adverse_event_free_text_has_the_pages_limit(coordinator1, participant, field):
    body = {
        "participant": participant.pk,
        "term": "Fever",
        "body_system": "general",
        "onset_date": str(participant.enrolment_date + datetime.timedelta(days=5)),
        "grade": 1,
        "relationship": "probable",
        "action_taken": "medication",
        "outcome": "recovering",
        field: "x" * (TEXT_MAX + 1),
    }
    response = post_json(api(coordinator1), "/api/v1/adverse-events/", body)
    assert response.status_code == 400 and list(response.json()) == [field]


def test_a_query_message_has_the_pages_limit(datamanager, m3):
    response = post_json(api(datamanager), "/api/v1/queries/", {"visit": m3.pk, "message": "x" * (TEXT_MAX + 1)})
    assert response.status_code == 400 and list(response.json()) == ["message"]


# --- Dates -----------------------------------------------------------------------------------------------------

DATE_ITEMS = ["SCRDAT", "CONSDAT", "VISDAT", "LBDAT", "INFDAT", "CONTDAT", "LKADAT", "DTHDAT", "EOSDAT"]
# The log forms' dates (capture/logs): a medication's start and stop, a condition's start, a deviation's date.
DATE_ITEMS += ["CMSTDAT", "CMENDAT", "MHSTDAT", "DVDAT"]


@pytest.mark.parametrize("code", DATE_ITEMS)
def test_every_crf_date_is_between_1900_and_today(protocol, code):
    item = ItemDefinition.objects.filter(code=code, data_type=DataType.DATE).first()
    tomorrow = TODAY() + datetime.timedelta(days=1)
    for refused in ("1899-12-31", "0001-01-01", tomorrow.isoformat(), "9999-12-31"):
        with pytest.raises(ParseError):
            parse(item, refused)
    assert parse(item, "1900-01-01").date == datetime.date(1900, 1, 1)
    assert parse(item, TODAY().isoformat()).date == TODAY()


def test_every_date_item_of_the_protocol_is_covered(protocol):
    assert set(ItemDefinition.objects.filter(data_type=DataType.DATE).values_list("code", flat=True)) <= {
        *DATE_ITEMS,
        "ENRLDAT",
    }


@pytest.mark.parametrize("day", ["1899-12-31", "tomorrow"])
def test_form_api_refuses_an_implausible_sample_date(coordinator1, m3, day):
    when = str(TODAY() + datetime.timedelta(days=1)) if day == "tomorrow" else day
    before = writes()
    body = {"version": 0, "values": {"LBDAT": when, "ALT": "30"}}
    response = post_json(api(coordinator1), f"/api/v1/visits/{m3.pk}/forms/LIVER/", body, method="put")
    assert response.status_code == 400
    assert list(response.json()) == ["LBDAT"]
    assert writes() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("screening_date", "1899-12-31"),
        ("screening_date", "tomorrow"),
        ("consent_date", "1899-12-31"),
        ("consent_date", "tomorrow"),
        ("date_of_birth", "1899-12-31"),
        ("date_of_birth", "0001-01-01"),
    ],
)
def test_screening_dates_are_plausible(coordinator1, site1, field, value):
    when = str(TODAY() + datetime.timedelta(days=1)) if value == "tomorrow" else value
    before = writes()
    response = post_json(api(coordinator1), "/api/v1/participants/screening/", screening_body(**{field: when}))
    assert response.status_code == 400
    assert field in response.json()
    assert writes() == before


def test_screening_today_is_accepted(coordinator1, site1):
    today = str(TODAY())
    body = screening_body(screening_date=today, consent_date=today, date_of_birth="1900-01-01")
    response = post_json(api(coordinator1), "/api/v1/participants/screening/", body)
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize("value", ["1899-12-31", "tomorrow"])
def test_enrolment_date_is_plausible(coordinator1, site1, value):
    candidate = screened(coordinator1, site1)
    when = str(TODAY() + datetime.timedelta(days=1)) if value == "tomorrow" else value
    response = post_json(
        api(coordinator1), f"/api/v1/participants/{candidate.pk}/enrol/", {"arm": "MSC", "enrolment_date": when}
    )
    assert response.status_code == 400
    assert list(response.json()) == ["enrolment_date"]


@pytest.mark.parametrize(("field", "value"), [("onset_date", "1899-12-31"), ("end_date", "1899-12-31")])
def test_adverse_event_dates_are_plausible(coordinator1, participant, field, value):
    body = {
        "participant": participant.pk,
        "term": "Fever",
        "body_system": "general",
        "onset_date": str(participant.enrolment_date + datetime.timedelta(days=5)),
        "grade": 1,
        "relationship": "probable",
        "action_taken": "medication",
        "outcome": "recovered",
        "end_date": str(participant.enrolment_date + datetime.timedelta(days=6)),
        field: value,
    }
    response = post_json(api(coordinator1), "/api/v1/adverse-events/", body)
    assert response.status_code == 400
    assert "Dates before 1900-01-01 are not accepted." in response.json()[field]


@pytest.mark.parametrize("value", ["0001-01-01", "1899-12-31"])
def test_death_date_before_1900_is_refused(investigator1, participant, value):
    body = {"death_date": value, "cause": "Variceal bleeding", "relationship": "unrelated", "autopsy": False}
    response = post_json(api(investigator1), f"/api/v1/participants/{participant.pk}/death-report/", body)
    assert response.status_code == 400
    assert response.json()["death_date"] == ["Dates before 1900-01-01 are not accepted."]


def test_date_errors_are_in_the_users_language(coordinator1, m3):
    body = {"version": 0, "values": {"LBDAT": "1899-12-31"}}
    client = api(coordinator1)
    response = client.put(f"/api/v1/visits/{m3.pk}/forms/LIVER/", body, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 400
    assert "1900-01-01" in response.json()["LBDAT"][0]
    assert "Dates before" not in response.json()["LBDAT"][0].partition(": ")[2]


# --- Query parameters, cut-offs, routes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/locks/?participant=47194326241853480960", "participant"),
        ("/api/v1/queries/?older_than_days=4959492", "older_than_days"),
        ("/api/v1/queries/?visit=99999999999999999999", "visit"),
        ("/api/v1/participants/?site=99999999999999999999", "site"),
        ("/api/v1/visits/?participant=-99999999999999999999", "participant"),
        ("/api/v1/adverse-events/?participant=99999999999999999999", "participant"),
        ("/api/v1/exports/csv/?site=99999999999999999999", "site"),
    ],
)
def test_out_of_range_query_parameters_are_a_400_on_the_parameter(datamanager, url, field):
    response = api(datamanager).get(url)
    assert response.status_code == 400
    assert list(response.json()) == [field]


@pytest.mark.parametrize("cutoff", ["0001-01-01T00:00:00Z", "1899-12-31T12:00:00Z", "9999-12-31T00:00:00Z"])
def test_a_report_cutoff_out_of_range_is_a_400(datamanager, cutoff):
    before = writes()
    response = post_json(api(datamanager), "/api/v1/reports/", {"kind": "trial_summary", "cutoff": cutoff})
    assert response.status_code == 400
    assert list(response.json()) == ["cutoff"]
    assert writes() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/participants/{pk}/enrol.json"),
        ("get", "/api/v1/participants/{pk}.json"),
        ("get", "/api/v1/participants.json"),
        ("get", "/api/v1/visits.json"),
    ],
)
def test_format_suffix_routes_are_404(coordinator1, site1, method, path):
    candidate = screened(coordinator1, site1)
    response = getattr(api(coordinator1), method)(path.format(pk=candidate.pk), {}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "url", ["/api/v1/queries/?form=%00", "/api/v1/adverse-events/?subject=a%00", "/api/v1/sites/?x=%07"]
)
def test_a_nul_in_an_api_query_string_is_a_400_on_the_parameter(datamanager, url):
    response = api(datamanager).get(url)
    assert response.status_code == 400
    assert len(response.json()) == 1


@pytest.mark.parametrize(
    "url", ["/inbox/?state=%00", "/participants/?page=%00", "/review/visits/1/queries/new/?form=%00"]
)
def test_a_nul_in_a_page_query_string_is_a_400(as_user, datamanager, url):
    assert as_user(datamanager).get(url).status_code == 400


def test_a_nul_in_the_path_is_a_400(as_user, datamanager, m3):
    assert as_user(datamanager).get(f"/api/v1/visits/{m3.pk}/forms/LIV%00ER/").status_code == 400


# --- CSV export: formulas are text ---------------------------------------------------------------------------


def test_csv_export_writes_formula_like_text_with_a_leading_apostrophe_and_numbers_as_they_are(
    coordinator1, datamanager, m3
):
    from capture.services import form_save

    values = infusion(m3, LOT="@SUM(1+1)", REACT="true", REACTDSC='=HYPERLINK("http://evil.example","x")')
    form_save(user=coordinator1, visit_id=m3.pk, form_code="INFUS", version=0, values=values)
    (row,) = [row for row in export(datamanager)["INFUS"] if row["visit"] == "M3"]
    assert row["LOT"] == "'@SUM(1+1)"
    assert row["REACTDSC"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["CELLDOSE"] == "4.05" and row["VOLUME"] == "40"


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+CMD|' /C calc'!A0", "'+CMD|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("-12.5", "-12.5"),
        ("-3", "-3"),
        ("+7", "+7"),
        ("0.5", "0.5"),
        ("", ""),
        ("Fever", "Fever"),
    ],
)
def test_spreadsheet_cell_escapes_formulas_and_keeps_numbers(cell, written):
    from reports.exports.csv_export import spreadsheet_cell

    assert spreadsheet_cell(cell) == written


def test_the_data_dictionary_says_how_formula_like_text_is_written(coordinator1, datamanager, m3):
    dictionary = export(datamanager)["data_dictionary"]
    notes = [row for row in dictionary if row["dataset"] == "*" and row["column"] == "*"]
    (note,) = [row for row in notes if "apostrophe" in row["label"]]
    assert "apostrophe" in note["label"] and "=, +, -, @" in note["label"]


# --- PostgreSQL ---------------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_nul_everywhere_on_postgresql(coordinator1, datamanager, m3, site1):
    """The doors that answered 500 on PostgreSQL before: each is now a 400 and nothing is written."""
    before = writes()
    nul = "a\x00b"
    coordinator, manager = api(coordinator1), api(datamanager)
    answers = [
        post_json(
            coordinator, f"/api/v1/visits/{m3.pk}/forms/INFUS/", {"version": 0, "values": infusion(m3, LOT=nul)}, "put"
        ),
        post_json(coordinator, "/api/v1/participants/screening/", screening_body(initials=nul)),
        post_json(manager, "/api/v1/reports/", {"kind": nul}),
        post_json(manager, "/api/v1/queries/", {"visit": m3.pk, "message": nul}),
        manager.get("/api/v1/locks/?participant=47194326241853480960"),
        manager.get("/api/v1/queries/?older_than_days=4959492"),
        manager.get("/api/v1/queries/?participant=a%00"),
        post_json(manager, "/api/v1/reports/", {"kind": "trial_summary", "cutoff": "0001-01-01T00:00:00Z"}),
    ]
    assert [answer.status_code for answer in answers] == [400] * len(answers)
    assert writes() == before
