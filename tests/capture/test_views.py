"""The data-entry pages (visit, form entry, the one-value check, the audit trail) as each role sees them."""

import datetime
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from capture.definitions import visit_forms
from capture.models import FormInstance, FormState, ItemValue, Query
from capture.services import form_save
from tests.factories import enrolled
from tests.roles import ROLES, SEES
from trial.models import AuditRecord, Participant, Visit

pytestmark = pytest.mark.django_db

ENTERS = {"coordinator1": {1}, "investigator1": {1}, "coordinator2": {2}}
READ_ONLY = ["monitor", "datamanager", "sponsor"]
LIVER = {"ALT": "30", "AST": "30", "ALB": "42", "PREALB": "250", "BILI": "15", "BILDIR": "5"}
STALE_MESSAGE = "Someone saved this form after you opened it"


def visit_of(participant: Participant, code: str) -> Visit:
    return participant.visits.select_related("definition").get(definition__code=code)


def liver_post(visit: Visit, version: int = 0, **changes: str) -> dict[str, str]:
    """What the Liver function page posts: every value, the version it was opened at."""
    return {"version": str(version), "LBDAT": visit.target_date.isoformat(), **LIVER, **changes}


def liver_saved(user: object, visit: Visit, version: int = 0, complete: bool = False, **changes: str) -> None:
    values = {"LBDAT": visit.target_date.isoformat(), **LIVER, **changes}
    form_save(user=user, visit_id=visit.pk, form_code="LIVER", version=version, values=values, complete=complete)


def writes() -> tuple[int, int, int, int]:
    return ItemValue.objects.count(), FormInstance.objects.count(), AuditRecord.objects.count(), Query.objects.count()


def stored(visit: Visit) -> dict[str, Decimal | None]:
    return dict(ItemValue.objects.filter(visit=visit, item__form__code="LIVER").values_list("item__code", "number"))


def form_url(visit: Visit, form: str = "LIVER") -> str:
    return reverse("capture:form", args=[visit.pk, form])


def check_url(visit: Visit, item: str, form: str = "LIVER") -> str:
    return reverse("capture:check_item", args=[visit.pk, form, item])


def input_tag(content: str, name: str) -> str:
    """The <input> tag of the field `name` on a page."""
    return re.search(rf'<input[^>]*\bname="{name}"[^>]*>', content).group(0)


def page_urls(visit: Visit) -> list[str]:
    return [
        reverse("capture:visit", args=[visit.pk]),
        form_url(visit),
        reverse("capture:form_audit", args=[visit.pk, "LIVER"]),
        reverse("capture:item_audit", args=[visit.pk, "LIVER", "ALT"]),
    ]


@pytest.fixture
def m3_site2(coordinator2, site2) -> Visit:
    return visit_of(enrolled(coordinator2, site2, arm="MSC", days_ago=100), "M3")


@pytest.fixture
def visits(m3, m3_site2) -> dict[int, Visit]:
    """The M3 visit (inside its window) of an MSC-arm participant at site 1 and one at site 2."""
    return {1: m3, 2: m3_site2}


# --- Access ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_pages_of_another_sites_visit_are_404(request, as_user, visits, role):
    client = as_user(request.getfixturevalue(role))
    for number, visit in visits.items():
        for url in page_urls(visit):
            assert client.get(url).status_code == (200 if number in SEES[role] else 404), (url, number)


@pytest.mark.parametrize("role", ROLES)
def test_check_endpoint_is_scoped_like_data_entry(request, as_user, visits, role):
    client = as_user(request.getfixturevalue(role))
    for number, visit in visits.items():
        response = client.get(check_url(visit, "ALT"), {"ALT": "300"})
        if number in ENTERS.get(role, set()):
            assert response.status_code == 200
        else:
            assert response.status_code == (403 if number in SEES[role] else 404)


@pytest.mark.parametrize("role", ["coordinator2", "outsider"])
def test_post_to_another_sites_visit_is_404_and_writes_nothing(request, as_user, m3, role):
    before = writes()
    response = as_user(request.getfixturevalue(role)).post(form_url(m3), liver_post(m3))
    assert response.status_code == 404
    assert writes() == before


def test_anonymous_is_redirected_to_login(client, m3):
    for url in [*page_urls(m3), check_url(m3, "ALT")]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("role", READ_ONLY)
def test_read_only_roles_see_no_inputs_and_a_post_is_403(request, as_user, coordinator1, m3, role):
    liver_saved(coordinator1, m3, ALT="300")
    client = as_user(request.getfixturevalue(role))
    response = client.get(form_url(m3))
    assert response.status_code == 200
    content = response.content.decode()
    assert response.context["form"] is None
    assert 'id="read-only"' in content
    assert not re.search(r'<input(?![^>]*type="checkbox")', content.split('id="crf-view"')[1])  # SDV boxes only
    assert 'name="ALT"' not in content and 'name="version"' not in content
    assert 'id="save"' not in content and "Save and mark complete" not in content
    assert re.search(r'id="value-ALT">\s*<span class="fw-semibold">300</span> U/L', content)
    assert 'data-flag="high"' in content
    visit_page = client.get(reverse("capture:visit", args=[m3.pk])).content.decode()
    assert "Enter data" not in visit_page
    before = writes()
    assert client.post(form_url(m3), liver_post(m3, version=1, ALT="40")).status_code == 403
    assert writes() == before
    assert stored(m3)["ALT"] == Decimal("300")


def test_read_only_page_reads_choices_and_yes_no_in_words(as_user, coordinator1, monitor, m3):
    values = {"INFDAT": m3.target_date.isoformat(), "CELLDOSE": "4", "LOT": "UC-2031", "REACT": "yes", "REACTGR": "1"}
    form_save(user=coordinator1, visit_id=m3.pk, form_code="INFUS", version=0, values=values)
    lipids = {"LBDAT": m3.target_date.isoformat(), "CHOL": "4.6", "HDL": "1.2"}
    form_save(user=coordinator1, visit_id=m3.pk, form_code="LIPGLU", version=0, values=lipids)
    client = as_user(monitor)
    infusion = client.get(form_url(m3, "INFUS")).content.decode()
    assert re.search(r'id="value-REACT">\s*<span class="fw-semibold">Yes</span>', infusion)
    assert re.search(r'id="value-REACTGR">\s*<span class="fw-semibold">1 - Slightly unwell</span>', infusion)
    lipid_page = client.get(form_url(m3, "LIPGLU")).content.decode()
    assert not re.search(r'<input(?![^>]*type="checkbox")', lipid_page.split('id="crf-view"')[1])
    # Numbers with the item's decimals (NONHDL: 2, CELLDOSE: 2) and the unit beside them.
    assert re.search(r'id="value-NONHDL">\s*<span class="fw-semibold">3.40</span> mmol/L', lipid_page)
    assert re.search(r'id="value-CELLDOSE">\s*<span class="fw-semibold">4.00</span> 10\^7 cells', infusion)


def test_investigator_may_enter_data(as_user, investigator1, m3):
    client = as_user(investigator1)
    assert client.get(form_url(m3)).context["form"] is not None
    assert client.post(form_url(m3), liver_post(m3)).status_code == 302
    assert stored(m3)["ALT"] == Decimal("30")


# --- Visit page -------------------------------------------------------------------------------------------


def test_visit_page_shows_the_visit_and_its_forms(as_user, coordinator1, participant, m3):
    liver_saved(coordinator1, m3, complete=True, BILDIR="20")  # above total bilirubin: a query
    visit_date = m3.target_date + datetime.timedelta(days=2)
    form_save(user=coordinator1, visit_id=m3.pk, form_code="CLIN", version=0, values={"VISDAT": str(visit_date)})
    response = as_user(coordinator1).get(reverse("capture:visit", args=[m3.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    for text in (
        participant.subject_id,
        participant.initials,
        "Month 3",
        m3.target_date.isoformat(),
        f"{m3.window_start:%Y-%m-%d} – {m3.window_end:%Y-%m-%d}",
        f'id="visit-date">{visit_date:%Y-%m-%d}<',
        "Conventional therapy + UC-MSC",
    ):
        assert text in content
    summaries = {summary.spec.code: summary for summary in response.context["forms"]}
    assert list(summaries) == ["CLIN", "SYMPT", "LIVER", "KIDNEY", "LIPGLU", "CYTO", "HEPAT", "INFUS"]
    liver = summaries["LIVER"]
    assert (liver.state, liver.version, liver.open_queries) == (FormState.COMPLETE, 1, 1)
    assert summaries["CLIN"].state == FormState.IN_PROGRESS
    assert summaries["SYMPT"].state == FormState.NOT_STARTED
    row = re.search(r'<tr data-form="LIVER">.*?</tr>', content, re.S).group(0)
    assert "Complete" in row and 'badge text-bg-warning">1<' in row
    assert form_url(m3) in row and "Enter data" in row
    assert reverse("capture:form_audit", args=[m3.pk, "LIVER"]) in row
    assert "In progress" in re.search(r'<tr data-form="CLIN">.*?</tr>', content, re.S).group(0)
    assert "Not started" in re.search(r'<tr data-form="SYMPT">.*?</tr>', content, re.S).group(0)


def forms_listed(client: object, visit: Visit) -> list[str]:
    return [summary.spec.code for summary in client.get(reverse("capture:visit", args=[visit.pk])).context["forms"]]


def test_infusion_form_only_for_the_msc_arm_from_m0_to_m9(as_user, coordinator1, site1, participant):
    client = as_user(coordinator1)
    conventional = enrolled(coordinator1, site1, arm="CONV", days_ago=100)
    assert "INFUS" in forms_listed(client, visit_of(participant, "M3"))
    assert "INFUS" in forms_listed(client, visit_of(participant, "M9"))
    assert "INFUS" not in forms_listed(client, visit_of(participant, "M12"))
    assert "INFUS" not in forms_listed(client, visit_of(conventional, "M3"))
    assert forms_listed(client, visit_of(participant, "FU18")) == ["SYMPT", "SURV"]  # symptoms asked at contacts
    # Not listed, and not there to be reached by its address either.
    assert client.get(form_url(visit_of(conventional, "M3"), "INFUS")).status_code == 404
    assert client.get(form_url(visit_of(participant, "M12"), "INFUS")).status_code == 404
    assert client.get(form_url(visit_of(participant, "M3"), "INFUS")).status_code == 200


def test_matrix_cells_and_schedule_rows_link_to_the_visit_page(as_user, coordinator1, participant, m3):
    client = as_user(coordinator1)
    matrix = client.get(reverse("trial:matrix")).content.decode()
    detail = client.get(reverse("trial:participant_detail", args=[participant.pk])).content.decode()
    for visit in participant.visits.all():
        url = reverse("capture:visit", args=[visit.pk])
        assert f'href="{url}"' in matrix
        assert f'href="{url}"' in detail
    assert 'data-visit="M3"' in matrix


# --- Form page: layout ------------------------------------------------------------------------------------


def test_form_page_lays_out_the_items_in_protocol_order(as_user, coordinator1, m3):
    response = as_user(coordinator1).get(form_url(m3))
    assert response.status_code == 200
    groups = [(group, [row.item.code for row in rows]) for group, rows in response.context["groups"]]
    assert groups == [
        ("Sample", ["LBDAT"]),
        ("Enzymes", ["ALT", "AST"]),
        ("Proteins", ["ALB", "PREALB"]),
        ("Bilirubin", ["BILI", "BILDIR"]),
    ]
    content = response.content.decode()
    # DOM order is protocol order, so Tab goes from one value to the next.
    names = re.findall(r'<(?:input|select)[^>]*name="([A-Z]\w*)"', content)
    assert names == ["LBDAT", "ALT", "AST", "ALB", "PREALB", "BILI", "BILDIR"]
    alt = input_tag(content, "ALT")
    assert 'type="text"' in alt and 'inputmode="decimal"' in alt
    assert f'hx-get="{check_url(m3, "ALT")}"' in alt
    assert 'hx-trigger="change, keyup changed delay:400ms"' in alt
    assert 'hx-target="#flags-ALT"' in alt
    assert 'type="date"' in input_tag(content, "LBDAT")
    # A date's value changes at every digit of its year: it is checked after a pause, not per keystroke.
    assert 'hx-trigger="change delay:600ms"' in input_tag(content, "LBDAT")
    assert re.search(r'name="ALT"[^>]*>\s*<span class="input-group-text">U/L</span>', content)
    assert "ref 9-50 U/L" in content and "ref 0-21 umol/L" in content
    assert 'id="flags-ALT"' in content
    # Each missing-value select follows its value in the tab sequence, so a missing value needs no mouse.
    for select in re.findall(r'<select[^>]*name="missing_\w+"[^>]*>', content):
        assert "tabindex" not in select
    assert len(re.findall(r'name="missing_\w+"', content)) == 7
    assert "Not done" in content and "Not applicable" in content and "Unknown" in content
    assert reverse("capture:item_audit", args=[m3.pk, "LIVER", "ALT"]) in content
    assert 'name="version" value="0"' in content.replace('type="hidden" ', "")
    assert "Save and mark complete" in content
    assert 'name="reason"' not in content  # not before the form was first completed


def test_choice_boolean_and_derived_items(as_user, coordinator1, m3):
    client = as_user(coordinator1)
    infusion = client.get(form_url(m3, "INFUS")).content.decode()
    react = re.search(r'<select[^>]*name="REACT".*?</select>', infusion, re.S).group(0)
    assert 'value="true"' in react and ">Yes<" in react and 'value="false"' in react and ">No<" in react
    grade = re.search(r'<select[^>]*name="REACTGR".*?</select>', infusion, re.S).group(0)
    assert "0 - No discomfort" in grade
    lipids = client.get(form_url(m3, "LIPGLU")).content.decode()
    assert 'name="NONHDL"' not in lipids  # computed, never typed
    assert re.search(r'<input[^>]*readonly[^>]*id="derived-NONHDL"', lipids)
    assert "Computed: CHOL - HDL" in lipids


def test_form_page_in_chinese_shows_the_chinese_labels(as_user, coordinator1, m3):
    client = as_user(coordinator1)
    client.cookies["django_language"] = "zh-hans"
    content = client.get(form_url(m3)).content.decode()
    assert "丙氨酸氨基转移酶" in content
    assert "肝功能" in content


# --- Form page: saving ------------------------------------------------------------------------------------


def test_coordinator_saves_the_liver_form(as_user, coordinator1, m3):
    client = as_user(coordinator1)
    audit_before = AuditRecord.objects.count()
    data = liver_post(m3, ALT="300", AST="35.0", PREALB="")
    data["missing_PREALB"] = "not_done"
    response = client.post(form_url(m3), data)
    assert response.status_code == 302
    assert response.url == reverse("capture:visit", args=[m3.pk])
    assert stored(m3) == {
        "LBDAT": None,
        "ALT": Decimal("300"),
        "AST": Decimal("35"),
        "ALB": Decimal("42"),
        "PREALB": None,
        "BILI": Decimal("15"),
        "BILDIR": Decimal("5"),
    }
    prealbumin = ItemValue.objects.get(visit=m3, item__code="PREALB", item__form__code="LIVER")
    assert prealbumin.missing_reason == "not_done"
    rows = AuditRecord.objects.filter(participant=m3.participant, form_code="LIVER").order_by("id")
    assert AuditRecord.objects.count() > audit_before
    assert {(row.item_code, row.new_value) for row in rows if row.action == "create"} >= {
        ("ALT", "300"),
        ("PREALB", "<not_done>"),
    }
    assert all(row.username == "coordinator1" for row in rows)

    visit_page = client.get(response.url).content.decode()
    assert "Liver function of M3 saved (version 1). 1 value is flagged." in visit_page
    content = client.get(form_url(m3)).content.decode()
    assert 'value="300"' in input_tag(content, "ALT")
    assert re.search(r'id="flags-ALT"[^>]*><span class="badge [^"]*"[^>]*data-flag="high"[^>]*>High</span>', content)
    assert re.search(r'<option value="not_done" selected>', content)
    assert 'name="version" value="1"' in content.replace('type="hidden" ', "")
    assert "In progress" in content


def test_a_broken_cross_item_check_shows_its_flag_and_query(as_user, coordinator1, m3):
    client = as_user(coordinator1)
    assert client.post(form_url(m3), liver_post(m3, BILDIR="20")).status_code == 302
    content = client.get(form_url(m3)).content.decode()
    flags = re.search(r'id="flags-BILDIR"[^>]*>(.*?)</span>\s*</div>', content, re.S).group(1)
    assert ">High<" in flags and ">check<" in flags
    queries = re.search(r'id="queries-BILDIR">(.*?)</div>\s*</div>', content, re.S).group(1)
    assert "Direct bilirubin must not exceed total bilirubin" in queries
    assert "Query" in queries


@pytest.fixture
def past_m3(coordinator1, site1):
    """An M3 whose window has closed (enrolled 130 days ago): a sample date after it is not in the future."""
    participant = enrolled(coordinator1, site1, arm="MSC", days_ago=130)
    return participant.visits.select_related("definition").get(definition__code="M3")


def test_a_date_outside_the_window_is_flagged_window(as_user, coordinator1, past_m3):
    m3 = past_m3
    client = as_user(coordinator1)
    late = (m3.window_end + datetime.timedelta(days=3)).isoformat()
    assert client.post(form_url(m3), liver_post(m3, LBDAT=late)).status_code == 302
    content = client.get(form_url(m3)).content.decode()
    assert re.search(r'id="flags-LBDAT"[^>]*><span[^>]*data-flag="window"[^>]*>window</span>', content)
    visit_page = client.get(reverse("capture:visit", args=[m3.pk])).content.decode()
    assert "is outside the visit window" in visit_page  # the automatic query, on the whole visit


def test_hard_range_value_is_a_field_error_and_writes_nothing(as_user, coordinator1, m3):
    client = as_user(coordinator1)
    before = writes()
    data = liver_post(m3, ALT="-1", AST="36", BILI="12.5")
    data["missing_PREALB"] = "unknown"
    data["PREALB"] = ""
    response = client.post(form_url(m3), data)
    assert response.status_code == 400
    assert writes() == before
    errors = response.context["form"].errors
    assert list(errors) == ["ALT"]
    assert "Alanine aminotransferase (ALT)" in errors["ALT"][0] and "outside the allowed range" in errors["ALT"][0]
    content = response.content.decode()
    assert 'data-error-for="ALT"' in content and "Nothing was saved" in content
    assert "is-invalid" in input_tag(content, "ALT") and "is-invalid" not in input_tag(content, "AST")
    # Every entry is kept as typed, the missing reason too.
    for name, value in {"ALT": "-1", "AST": "36", "BILI": "12.5", "LBDAT": m3.target_date.isoformat()}.items():
        assert f'value="{value}"' in input_tag(content, name), name
    assert '<option value="unknown" selected>' in content


@pytest.mark.parametrize(
    ("changes", "item", "message"),
    [
        ({"ALB": "forty"}, "ALB", "enter a number"),
        ({"LBDAT": "2025-02-30"}, "LBDAT", "enter a date as YYYY-MM-DD"),
        ({"missing_ALT": "not_done"}, "ALT", "not both"),
    ],
)
def test_refused_entries_name_their_item(as_user, coordinator1, m3, changes, item, message):
    before = writes()
    response = as_user(coordinator1).post(form_url(m3), liver_post(m3, **changes))
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[item])
    assert writes() == before


def test_mark_complete_needs_every_required_item(as_user, coordinator1, m3):
    before = writes()
    response = as_user(coordinator1).post(form_url(m3), {**liver_post(m3, AST=""), "complete": "1"})
    assert response.status_code == 400
    assert "is required" in response.context["form"].errors["AST"][0]
    assert writes() == before


def test_stale_version_is_409_with_the_current_values_beside_the_entries(as_user, coordinator1, investigator1, m3):
    liver_saved(investigator1, m3, ALT="45")  # saved while coordinator1 had the form open at version 0
    before = writes()
    response = as_user(coordinator1).post(form_url(m3), liver_post(m3, version=0, ALT="60", AST="30.0"))
    assert response.status_code == 409
    assert writes() == before
    assert stored(m3)["ALT"] == Decimal("45")
    content = response.content.decode()
    assert STALE_MESSAGE in content and 'id="conflict"' in content
    assert 'value="60"' in input_tag(content, "ALT")  # what they typed is kept
    alt_stored = re.search(r'data-stored="ALT">(.*?)</div>', content, re.S).group(1)
    assert "<strong>45</strong>" in alt_stored and "differs from your entry" in alt_stored
    ast_stored = re.search(r'data-stored="AST">(.*?)</div>', content, re.S).group(1)
    assert "<strong>30</strong>" in ast_stored and "differs" not in ast_stored
    # The next save is built on the version now shown, so it goes through.
    assert 'name="version" value="1"' in content.replace('type="hidden" ', "")
    assert 'value="30.0"' in input_tag(content, "AST")
    again = as_user(coordinator1).post(form_url(m3), liver_post(m3, version=1, ALT="60"))
    assert again.status_code == 302
    assert stored(m3)["ALT"] == Decimal("60")


def test_reason_for_change_is_required_once_the_form_was_completed(as_user, coordinator1, m3):
    client = as_user(coordinator1)
    assert client.post(form_url(m3), {**liver_post(m3, ALT="120"), "complete": "1"}).status_code == 302
    page = client.get(form_url(m3)).content.decode()
    assert 'name="reason"' in page and 'id="reason-card"' in page

    before = writes()
    response = client.post(form_url(m3), liver_post(m3, version=1, ALT="110"))
    assert response.status_code == 400
    assert "give the reason for the change" in response.context["form"].errors["reason"][0]
    assert 'data-error-for="reason"' in response.content.decode()
    assert writes() == before

    response = client.post(form_url(m3), {**liver_post(m3, version=1, ALT="110"), "reason": "Transcription error"})
    assert response.status_code == 302
    assert stored(m3)["ALT"] == Decimal("110")
    change = AuditRecord.objects.get(participant=m3.participant, item_code="ALT", action="update")
    assert (change.old_value, change.new_value, change.reason) == ("120", "110", "Transcription error")
    # Still complete: a correction of a complete form keeps it complete.
    assert FormInstance.objects.get(visit=m3, definition__code="LIVER").state == FormState.COMPLETE


def test_a_bad_version_field_is_refused(as_user, coordinator1, m3):
    before = writes()
    response = as_user(coordinator1).post(form_url(m3), liver_post(m3, version="x"))
    assert response.status_code == 400
    assert writes() == before
    assert "open the form again" in response.content.decode()
    assert 'value="30"' in input_tag(response.content.decode(), "ALT")


# --- The one-value check ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
def test_check_flags_a_high_value_without_writing(as_user, coordinator1, m3, method):
    before = writes()
    response = getattr(as_user(coordinator1), method)(check_url(m3, "ALT"), {"ALT": "300"})
    assert response.status_code == 200
    content = response.content.decode()
    assert 'data-flag="high"' in content and ">High<" in content
    assert writes() == before


def test_check_shows_the_hard_range_error(as_user, coordinator1, m3):
    content = as_user(coordinator1).get(check_url(m3, "ALT"), {"ALT": "-1"}).content.decode()
    assert "outside the allowed range 0-10000 U/L" in content
    assert 'data-check="error"' in content and "data-flag" not in content


@pytest.mark.parametrize("value", ["30", ""])
def test_check_of_a_normal_or_empty_value_shows_nothing(as_user, coordinator1, m3, value):
    response = as_user(coordinator1).get(check_url(m3, "ALT"), {"ALT": value})
    assert response.status_code == 200
    assert response.content.decode().strip() == ""


def test_check_flags_low_values_bad_numbers_and_dates_outside_the_window(as_user, coordinator1, past_m3):
    m3 = past_m3
    client = as_user(coordinator1)
    assert ">Low<" in client.get(check_url(m3, "ALB"), {"ALB": "30"}).content.decode()
    assert "enter a number" in client.get(check_url(m3, "ALB"), {"ALB": "4O"}).content.decode()
    late = (m3.window_end + datetime.timedelta(days=1)).isoformat()
    outside = client.get(check_url(m3, "LBDAT"), {"LBDAT": late}).content.decode()
    assert 'data-flag="window"' in outside
    assert f"{m3.window_start:%Y-%m-%d} – {m3.window_end:%Y-%m-%d}" in outside
    inside = client.get(check_url(m3, "LBDAT"), {"LBDAT": m3.target_date.isoformat()}).content.decode()
    assert inside.strip() == ""


def test_check_of_an_unknown_or_derived_item_is_404(as_user, coordinator1, m3):
    client = as_user(coordinator1)
    assert client.get(check_url(m3, "NOPE"), {"NOPE": "1"}).status_code == 404
    assert client.get(check_url(m3, "NONHDL", form="LIPGLU"), {"NONHDL": "1"}).status_code == 404


# --- Audit trail ------------------------------------------------------------------------------------------


def test_item_history_shows_the_entry_and_the_correction_with_its_reason(as_user, coordinator1, monitor, m3):
    liver_saved(coordinator1, m3, complete=True, ALT="120")
    form_save(
        user=coordinator1,
        visit_id=m3.pk,
        form_code="LIVER",
        version=1,
        values={"LBDAT": m3.target_date.isoformat(), **LIVER, "ALT": "110"},
        reason="Transcription error",
    )
    response = as_user(monitor).get(reverse("capture:item_audit", args=[m3.pk, "LIVER", "ALT"]))
    assert response.status_code == 200
    records = [line.record for line in response.context["lines"]]
    assert [(r.action, r.old_value, r.new_value, r.reason) for r in records] == [
        ("update", "120", "110", "Transcription error"),
        ("create", "", "120", ""),
    ]
    content = response.content.decode()
    assert "Transcription error" in content and "coordinator1" in content
    # Newest first, each number with its item's unit.
    assert re.findall(r'class="new-value[^"]*">([^<]*)</td>', content) == ["110 U/L", "120 U/L"]
    assert re.findall(r'class="old-value">([^<]*)</td>', content) == ["120 U/L", "—"]
    shanghai = timezone.localtime(records[0].at, ZoneInfo("Asia/Shanghai"))
    assert shanghai.strftime("%Y-%m-%d %H:%M:%S") in content
    assert "Asia/Shanghai" in content


def test_history_shows_choices_and_yes_no_by_their_labels_in_the_users_language(as_user, coordinator1, m3):
    values = {"INFDAT": m3.target_date.isoformat(), "CELLDOSE": "4", "LOT": "UC-2031", "REACT": "yes", "REACTGR": "1"}
    form_save(user=coordinator1, visit_id=m3.pk, form_code="INFUS", version=0, values=values)
    corrected = {**values, "CELLDOSE": "3.95", "REACTGR": "2"}
    form_save(user=coordinator1, visit_id=m3.pk, form_code="INFUS", version=1, values=corrected, reason="Re-read")
    client = as_user(coordinator1)
    content = client.get(reverse("capture:form_audit", args=[m3.pk, "INFUS"])).content.decode()
    new_values = re.findall(r'class="new-value[^"]*">([^<]*)</td>', content)
    assert "2 - Moderate discomfort" in new_values and "1 - Slightly unwell" in new_values
    assert "Yes" in new_values and "3.95 10^7 cells" in new_values and "4.00 10^7 cells" in new_values
    assert not {"1", "2", "yes", "true", "4", "3.95"} & set(new_values)  # no code, no bare number
    with translation.override("en"):  # the request activates Chinese in this thread; English comes back after
        chinese = client.get(
            reverse("capture:item_audit", args=[m3.pk, "INFUS", "REACTGR"]), HTTP_ACCEPT_LANGUAGE="zh-hans"
        ).content.decode()
    assert re.findall(r'class="new-value[^"]*">([^<]*)</td>', chinese) == ["2 - 中度不适", "1 - 轻微不适"]


def test_form_history_covers_every_item_and_the_state(as_user, coordinator1, m3):
    data = {"LBDAT": m3.target_date.isoformat(), **LIVER}
    form_save(user=coordinator1, visit_id=m3.pk, form_code="LIVER", version=0, values=data, missing={})
    form_save(
        user=coordinator1, visit_id=m3.pk, form_code="LIVER", version=1, values={**data, "PREALB": ""},
        missing={"PREALB": "not_done"}, complete=True,
    )  # fmt: skip
    response = as_user(coordinator1).get(reverse("capture:form_audit", args=[m3.pk, "LIVER"]))
    records = [line.record for line in response.context["lines"]]
    assert {record.item_code for record in records} == {"", *data}
    content = response.content.decode()
    assert "(Not done)" in content  # the missing reason, as people read it
    assert "In progress" in content and "Complete" in content  # the state change
    assert reverse("capture:item_audit", args=[m3.pk, "LIVER", "PREALB"]) in content


def test_history_is_of_this_visit_only(as_user, coordinator1, participant, m3):
    m0 = visit_of(participant, "M0")
    form_save(
        user=coordinator1, visit_id=m0.pk, form_code="LIVER", version=0,
        values={"LBDAT": m0.target_date.isoformat(), **LIVER, "ALT": "77"},
    )  # fmt: skip
    liver_saved(coordinator1, m3, ALT="55")
    lines = as_user(coordinator1).get(reverse("capture:item_audit", args=[m3.pk, "LIVER", "ALT"])).context["lines"]
    assert [line.record.new_value for line in lines] == ["55"]


def test_history_of_an_unknown_item_is_404(as_user, coordinator1, m3):
    assert as_user(coordinator1).get(reverse("capture:item_audit", args=[m3.pk, "LIVER", "NOPE"])).status_code == 404


# --- Query counts -----------------------------------------------------------------------------------------

# User and memberships (the session comes from the cache), then the page's own reads.
FORM_PAGE_QUERIES = 8  # + visit, form instance, item values, open queries
VISIT_PAGE_QUERIES = 10  # + visit, form instances, open query counts
AUDIT_PAGE_QUERIES = 4  # + visit, audit rows
CHECK_QUERIES = 3  # + visit


CYTO = {
    "IL1B": "9", "IL4": "2", "IL6": "12", "IL8": "40", "IL10": "5", "IL12P40": "100", "IL15": "3", "IL17A": "11",
    "TNFA": "9", "TNFB": "1", "IFNG": "3", "CCL5": "20000", "TGFB1": "30000", "XCL1": "50", "CRP": "12",
}  # fmt: skip


@pytest.fixture
def filled_m3(coordinator1, m3) -> Visit:
    """M3 with the liver panel (7 items) and the cytokines (16 items) saved, each with flags and a query."""
    liver_saved(coordinator1, m3, ALT="300", BILDIR="20")
    values = {"LBDAT": m3.target_date.isoformat(), **CYTO}
    form_save(user=coordinator1, visit_id=m3.pk, form_code="CYTO", version=0, values=values)
    return m3


def test_form_page_query_count_does_not_grow_with_the_items(
    as_user, coordinator1, filled_m3, django_assert_num_queries
):
    client = as_user(coordinator1)
    client.get(form_url(filled_m3))  # the protocol's definitions are read once per process
    for form, size in (("LIVER", 7), ("CYTO", 16)):
        with django_assert_num_queries(FORM_PAGE_QUERIES):
            response = client.get(form_url(filled_m3, form))
        assert sum(len(rows) for _, rows in response.context["groups"]) == size


def test_read_only_form_page_runs_the_same_queries(as_user, monitor, filled_m3, django_assert_num_queries):
    client = as_user(monitor)
    client.get(form_url(filled_m3))
    for form in ("LIVER", "CYTO"):
        with django_assert_num_queries(FORM_PAGE_QUERIES):
            assert client.get(form_url(filled_m3, form)).status_code == 200


def test_refused_save_page_runs_a_constant_number_of_queries(as_user, coordinator1, filled_m3):
    client = as_user(coordinator1)
    client.get(form_url(filled_m3))
    # The save's own statements (lock, reads) are rolled back; the page then reads as a GET does.
    counts = []
    for form, data in (("LIVER", liver_post(filled_m3, version=1, ALT="-1")), ("CYTO", {"version": "1", "IL6": "-1"})):
        with CaptureQueriesContext(connection) as captured:
            assert client.post(form_url(filled_m3, form), data).status_code == 400
        counts.append(len(captured))
    assert counts[0] == counts[1]


def test_visit_page_query_count_does_not_grow_with_the_forms(
    as_user, coordinator1, participant, filled_m3, django_assert_num_queries
):
    client = as_user(coordinator1)
    fu18 = visit_of(participant, "FU18")
    client.get(reverse("capture:visit", args=[fu18.pk]))
    for visit, forms in ((filled_m3, 8), (fu18, 2)):  # FU18: symptoms and survival
        with django_assert_num_queries(VISIT_PAGE_QUERIES):
            response = client.get(reverse("capture:visit", args=[visit.pk]))
        assert len(response.context["forms"]) == forms


def test_audit_and_check_query_counts_are_constant(as_user, coordinator1, filled_m3, django_assert_num_queries):
    client = as_user(coordinator1)
    client.get(form_url(filled_m3))
    for form in ("LIVER", "CYTO"):
        with django_assert_num_queries(AUDIT_PAGE_QUERIES):
            response = client.get(reverse("capture:form_audit", args=[filled_m3.pk, form]))
        assert len(response.context["lines"]) >= 7
    with django_assert_num_queries(CHECK_QUERIES):
        client.get(check_url(filled_m3, "ALT"), {"ALT": "300"})


# --- Keyboard-first entry -------------------------------------------------------------------------------------


def test_save_and_next_goes_to_the_next_form_of_the_visit(as_user, coordinator1, m3):
    client = as_user(coordinator1)
    page = client.get(form_url(m3)).content.decode()
    following = re.search(r'<button[^>]*name="next" value="(\w+)"[^>]*id="save-next"', page).group(1)
    codes = [spec.code for spec in visit_forms(m3)]
    assert following == codes[codes.index("LIVER") + 1]
    response = client.post(form_url(m3), {**liver_post(m3), "next": following})
    assert response.status_code == 302 and response["Location"] == form_url(m3, following)
    assert FormInstance.objects.get(visit=m3, definition__code="LIVER").version == 1


def test_the_last_form_of_a_visit_offers_no_next(as_user, coordinator1, m3):
    last = visit_forms(m3)[-1].code
    assert 'id="save-next"' not in as_user(coordinator1).get(form_url(m3, last)).content.decode()


def test_a_next_that_is_not_the_following_form_returns_to_the_visit(as_user, coordinator1, m3):
    response = as_user(coordinator1).post(form_url(m3), {**liver_post(m3), "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("capture:visit", args=[m3.pk])


def test_after_a_refused_save_flags_follow_the_value_on_screen(as_user, coordinator1, m3):
    client = as_user(coordinator1)
    assert client.post(form_url(m3), liver_post(m3, ALB="20")).status_code == 302  # stored ALB is flagged low
    version = FormInstance.objects.get(visit=m3, definition__code="LIVER").version
    response = client.post(form_url(m3), liver_post(m3, version=version, ALB="40", ALT="-1"))
    assert response.status_code == 400
    content = response.content.decode()
    # The stored value's "low" is not shown beside the typed 40; the page checks the typed values again on load.
    flags = re.search(r'<span class="item-flags" id="flags-ALB"[^>]*>(.*?)</span>', content).group(1)
    assert flags == ""
    assert 'hx-trigger="change, keyup changed delay:400ms, load"' in input_tag(content, "ALB")
