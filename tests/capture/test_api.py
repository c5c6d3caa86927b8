"""The REST API of captured data, as each role of site 1 and site 2 sees it."""

from decimal import Decimal

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from capture import summaries
from capture.models import Flag, FormInstance, FormState, ItemValue, Query, QueryOrigin, QueryState
from capture.services import form_save
from tests.api_clients import schema_reader
from tests.factories import enrolled
from tests.roles import ROLES, SEES
from trial.models import AuditRecord, Participant, Visit

pytestmark = pytest.mark.django_db

# Which sites each role may enter data at.
ENTERS = {"coordinator1": {1}, "investigator1": {1}, "coordinator2": {2}}
READ_ONLY = ["monitor", "datamanager", "sponsor"]
M3_FORMS = ["CLIN", "SYMPT", "LIVER", "KIDNEY", "LIPGLU", "CYTO", "HEPAT", "INFUS"]
LIVER = {"ALT": "30", "AST": "30", "ALB": "42", "PREALB": "250", "BILI": "15", "BILDIR": "5"}


def api(user: object) -> APIClient:
    """A client that authenticates as `user` with an API token, as an integration would."""
    client = APIClient()
    _token, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def form_url(visit: Visit, form: str = "") -> str:
    return f"/api/v1/visits/{visit.pk}/forms/" + (f"{form}/" if form else "")


def liver(visit: Visit, **changes: str) -> dict[str, str]:
    return {"LBDAT": str(visit.target_date), **LIVER, **changes}


def body(visit: Visit, version: int = 0, **fields: object) -> dict:
    return {"version": version, "values": liver(visit), **fields}


def writes() -> tuple[int, int, int, int]:
    return ItemValue.objects.count(), FormInstance.objects.count(), AuditRecord.objects.count(), Query.objects.count()


def stored(visit: Visit) -> dict[str, object]:
    return dict(ItemValue.objects.filter(visit=visit).values_list("item__code", "number"))


def m3_of(participant: Participant) -> Visit:
    return participant.visits.select_related("definition").get(definition__code="M3")


@pytest.fixture
def m3_site2(coordinator2, site2) -> Visit:
    return m3_of(enrolled(coordinator2, site2, arm="MSC", days_ago=100))


@pytest.fixture
def visits(m3, m3_site2) -> dict[int, Visit]:
    """The M3 visit (inside its window) of an MSC-arm participant at site 1 and one at site 2."""
    return {1: m3, 2: m3_site2}


# --- Access ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_form_list_of_another_sites_visit_is_404(request, visits, role):
    client = api(request.getfixturevalue(role))
    for number, visit in visits.items():
        response = client.get(form_url(visit))
        if number in SEES[role]:
            assert response.status_code == 200
            assert [form["code"] for form in response.json()] == M3_FORMS
        else:
            assert response.status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_form_detail_of_another_sites_visit_is_404(request, visits, role):
    client = api(request.getfixturevalue(role))
    for number, visit in visits.items():
        response = client.get(form_url(visit, "LIVER"))
        if number in SEES[role]:
            assert response.status_code == 200
            assert response.json()["form"] == "LIVER"
        else:
            assert response.status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_save_as_each_role_of_each_site(request, visits, role):
    client = api(request.getfixturevalue(role))
    for number, visit in visits.items():
        before = writes()
        response = client.put(form_url(visit, "LIVER"), body(visit), format="json")
        if number in ENTERS.get(role, set()):
            assert response.status_code == 200, response.json()
            assert response.json()["version"] == 1
            assert stored(visit)["ALT"] == Decimal("30")
            continue
        # A visit the user cannot see does not exist; one they may only read refuses the write.
        assert response.status_code == (403 if number in SEES[role] else 404)
        assert writes() == before


@pytest.mark.parametrize("role", READ_ONLY)
def test_read_only_roles_are_refused_before_the_body_is_read(request, m3, role):
    response = api(request.getfixturevalue(role)).put(form_url(m3, "LIVER"), {"values": "junk"}, format="json")
    assert response.status_code == 403
    assert not FormInstance.objects.exists()


def test_anonymous_is_refused(m3):
    client = APIClient()
    assert client.get(form_url(m3)).status_code in {401, 403}
    assert client.get(form_url(m3, "LIVER")).status_code in {401, 403}
    assert client.put(form_url(m3, "LIVER"), body(m3), format="json").status_code in {401, 403}
    assert not FormInstance.objects.exists()


@pytest.mark.parametrize("method", ["get", "put"])
def test_form_not_collected_at_the_visit_is_404(coordinator1, site1, m3, method):
    conventional = m3_of(enrolled(coordinator1, site1, arm="CONV", days_ago=100))
    m12 = m3.participant.visits.get(definition__code="M12")
    client = api(coordinator1)
    for visit, form in ((conventional, "INFUS"), (m12, "INFUS"), (m3, "SURV"), (m3, "NOPE"), (m3, "liver")):
        response = getattr(client, method)(form_url(visit, form), {"version": 0, "values": {}}, format="json")
        assert response.status_code == 404, (visit, form)
    assert not FormInstance.objects.exists()
    assert "INFUS" not in [form["code"] for form in client.get(form_url(conventional)).json()]


def test_unknown_visit_is_404(coordinator1):
    assert api(coordinator1).get("/api/v1/visits/999999/forms/").status_code == 404


# --- Reading -----------------------------------------------------------------------------------------------


def test_form_list_shows_state_version_open_queries_and_url(coordinator1, m3):
    form_save(user=coordinator1, visit_id=m3.pk, form_code="LIVER", version=0, values=liver(m3, BILDIR="20"))
    client = api(coordinator1)
    forms = {form["code"]: form for form in client.get(form_url(m3)).json()}
    assert forms["LIVER"]["state"] == FormState.IN_PROGRESS
    assert forms["LIVER"]["version"] == 1
    assert forms["LIVER"]["open_queries"] == 1
    assert forms["LIVER"]["name"] == "Liver function"
    assert forms["CYTO"] | {"url": None} == {
        "code": "CYTO",
        "name": "Cytokines and CRP",
        "name_zh": "细胞因子和C反应蛋白",
        "state": FormState.NOT_STARTED,
        "version": 0,
        "open_queries": 0,
        "url": None,
    }
    url = forms["LIVER"]["url"]
    assert url == f"http://testserver/api/v1/visits/{m3.pk}/forms/LIVER/"
    assert client.get(url).json()["version"] == 1


def test_form_detail_before_any_save(coordinator1, m3):
    data = api(coordinator1).get(form_url(m3, "LIVER")).json()
    assert (data["state"], data["version"]) == (FormState.NOT_STARTED, 0)
    assert data["values"] == data["missing"] == data["flags"] == data["derived"] == {}
    assert [item["code"] for item in data["items"]] == ["LBDAT", "ALT", "AST", "ALB", "PREALB", "BILI", "BILDIR"]


def test_form_detail_shows_values_as_strings_missing_flags_and_item_definitions(coordinator1, m3):
    values = liver(m3, ALT="48.50", ALB="42.0", BILDIR="9")
    del values["PREALB"]
    form_save(
        user=coordinator1, visit_id=m3.pk, form_code="LIVER", version=0, values=values, missing={"PREALB": "not_done"}
    )
    data = api(coordinator1).get(form_url(m3, "LIVER")).json()
    assert data["values"] == {
        "LBDAT": m3.target_date.isoformat(),
        "ALT": "48.5",
        "AST": "30",
        "ALB": "42",
        "BILI": "15",
        "BILDIR": "9",
    }
    assert data["missing"] == {"PREALB": "not_done"}
    assert data["flags"] == {"BILDIR": [Flag.HIGH]}
    assert data["derived"] == {}
    items = {item["code"]: item for item in data["items"]}
    assert items["ALT"] == {
        "code": "ALT",
        "label": "Alanine aminotransferase (ALT)",
        "label_zh": "丙氨酸氨基转移酶",
        "group": "Enzymes",
        "data_type": "decimal",
        "unit": "U/L",
        "decimals": 0,
        "reference_low": "9",
        "reference_high": "50",
        "hard_min": "0",
        "hard_max": "10000",
        "required": True,
        "derived": False,
        "formula": "",
        "in_window": False,
        "choices": [],
    }
    assert items["LBDAT"]["in_window"] is True
    assert items["LBDAT"]["reference_low"] is None


def test_derived_items_are_listed_apart_from_the_entered_ones(coordinator1, m3):
    values = {"LBDAT": str(m3.target_date), "CHOL": "4.50", "HDL": "1.4", "LDL": "2", "VLDL": "0.5", "TRIG": "1"}
    form_save(user=coordinator1, visit_id=m3.pk, form_code="LIPGLU", version=0, values=values)
    data = api(coordinator1).get(form_url(m3, "LIPGLU")).json()
    assert data["derived"] == {"NONHDL": "3.1"}
    assert "NONHDL" not in data["values"] and data["values"]["CHOL"] == "4.5"
    nonhdl = next(item for item in data["items"] if item["code"] == "NONHDL")
    assert (nonhdl["derived"], nonhdl["formula"], nonhdl["required"]) == (True, "CHOL - HDL", False)


def test_choice_items_list_their_choices(coordinator1, m3):
    items = {item["code"]: item for item in api(coordinator1).get(form_url(m3, "CLIN")).json()["items"]}
    assert items["ASCITES"]["choices"][0] == {"code": "none", "label": "None", "label_zh": "无"}
    assert items["CPSCORE"]["derived"] is True


# --- Saving ------------------------------------------------------------------------------------------------


def test_save_writes_values_and_returns_flags_and_the_new_version(coordinator1, m3):
    response = api(coordinator1).put(form_url(m3, "LIVER"), body(m3, values=liver(m3, ALT="300")), format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["state"], data["version"]) == (FormState.IN_PROGRESS, 1)
    assert data["values"]["ALT"] == "300"
    assert data["flags"] == {"ALT": [Flag.HIGH]}
    assert data["changed"] == ["LBDAT", "ALT", "AST", "ALB", "PREALB", "BILI", "BILDIR"]
    assert (data["queries_opened"], data["queries_closed"]) == (0, 0)
    assert stored(m3)["ALT"] == Decimal("300")
    assert AuditRecord.objects.filter(form_code="LIVER", item_code="ALT", new_value="300").exists()


def test_direct_bilirubin_above_total_is_flagged_and_raises_a_query(coordinator1, m3):
    response = api(coordinator1).put(form_url(m3, "LIVER"), body(m3, values=liver(m3, BILDIR="20")), format="json")
    assert response.status_code == 200
    assert response.json()["flags"]["BILDIR"] == [Flag.HIGH, Flag.RULE]
    assert response.json()["queries_opened"] == 1
    query = Query.objects.get(visit=m3)
    assert (query.item.code, query.origin, query.state) == ("BILDIR", QueryOrigin.AUTOMATIC, QueryState.OPEN)
    assert query.check_code == "LIVER_BILDIR_LE_BILI"


def test_save_answers_what_a_read_then_shows(coordinator1, m3):
    client = api(coordinator1)
    saved = client.put(form_url(m3, "LIVER"), body(m3, values=liver(m3, BILDIR="20")), format="json").json()
    read = client.get(form_url(m3, "LIVER")).json()
    assert {key: saved[key] for key in read} == read
    assert set(saved) - set(read) == {"changed", "queries_opened", "queries_closed"}


def test_read_values_and_missing_can_be_sent_back_unchanged(coordinator1, m3):
    client = api(coordinator1)
    client.put(
        form_url(m3, "LIVER"), body(m3, missing={"PREALB": "unknown"}, values=liver(m3, PREALB="")), format="json"
    )
    read = client.get(form_url(m3, "LIVER")).json()
    again = {"version": read["version"], "values": read["values"], "missing": read["missing"]}
    response = client.put(form_url(m3, "LIVER"), again, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["changed"] == []
    assert response.json()["missing"] == {"PREALB": "unknown"}


def test_entries_may_be_json_numbers_booleans_or_null(coordinator1, m3):
    client = api(coordinator1)
    values = {**liver(m3), "ALT": 48, "ALB": 42.5, "AST": None, "BILI": 15.0, "BILDIR": 1e-05}
    response = client.put(form_url(m3, "LIVER"), {"version": 0, "values": values}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["values"]["ALB"] == "42.5"
    assert response.json()["values"]["BILDIR"] == "0.00001"
    assert "AST" not in response.json()["values"]
    assert stored(m3)["ALT"] == Decimal("48") and stored(m3).get("AST") is None
    infusion = {"INFDAT": str(m3.target_date), "LOT": "A1", "REACT": False, "CELLDOSE": 4, "VOLUME": 40}
    response = client.put(form_url(m3, "INFUS"), {"version": 0, "values": infusion}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["values"]["REACT"] == "false"


def test_complete_with_a_missing_reason(coordinator1, m3):
    values = liver(m3)
    del values["PREALB"]
    response = api(coordinator1).put(
        form_url(m3, "LIVER"),
        {"version": 0, "values": values, "missing": {"PREALB": "not_done"}, "complete": True},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["state"] == FormState.COMPLETE
    assert response.json()["missing"] == {"PREALB": "not_done"}


# --- Refusals ----------------------------------------------------------------------------------------------


def test_hard_range_and_type_errors_are_400_keyed_by_item_code_and_nothing_is_written(coordinator1, m3):
    before = writes()
    response = api(coordinator1).put(
        form_url(m3, "LIVER"), body(m3, values=liver(m3, ALT="-1", ALB="abc")), format="json"
    )
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"ALT", "ALB"}
    assert errors["ALT"] == ["Alanine aminotransferase (ALT): -1 U/L is outside the allowed range 0-10000 U/L."]
    assert errors["ALB"] == ["Albumin (ALB): enter a number such as 48 or 48.5, not 'abc'."]
    assert writes() == before


def test_second_save_on_the_same_version_is_409_and_not_stored(coordinator1, investigator1, m3):
    first = api(coordinator1).put(form_url(m3, "LIVER"), body(m3, values=liver(m3, ALT="31")), format="json")
    assert first.status_code == 200
    before = writes()
    second = api(investigator1).put(form_url(m3, "LIVER"), body(m3, values=liver(m3, ALT="99")), format="json")
    assert second.status_code == 409
    assert second.json()["current_version"] == 1
    assert "Someone saved this form after you opened it" in second.json()["detail"]
    assert writes() == before
    assert stored(m3)["ALT"] == Decimal("31")


def test_reason_is_required_for_a_change_after_completion(coordinator1, m3):
    client = api(coordinator1)
    assert client.put(form_url(m3, "LIVER"), body(m3, complete=True), format="json").status_code == 200
    before = writes()
    change = body(m3, version=1, values=liver(m3, ALT="31"))
    response = client.put(form_url(m3, "LIVER"), change, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["reason"]
    assert writes() == before
    response = client.put(form_url(m3, "LIVER"), {**change, "reason": "Transcription error"}, format="json")
    assert response.status_code == 200
    assert AuditRecord.objects.filter(item_code="ALT").latest("id").reason == "Transcription error"


@pytest.mark.parametrize(
    ("form", "entries", "keys"),
    [
        ("LIVER", {"values": {"XYZ": "1"}}, {"XYZ"}),
        ("LIPGLU", {"values": {"NONHDL": "3"}}, {"NONHDL"}),  # derived: computed, never typed
        ("LIVER", {"values": {"ALT": [48]}}, {"ALT"}),
        ("LIVER", {"values": {"ALT": {"value": 48}}, "missing": {"AST": 1}}, {"ALT", "AST"}),
        ("LIVER", {"missing": {"PREALB": "forgot"}}, {"PREALB"}),
        ("LIVER", {"values": {"ALT": "48"}, "missing": {"ALT": "not_done"}}, {"ALT"}),
        ("LIVER", {"values": {"LBDAT": "18/02/2026"}}, {"LBDAT"}),
    ],
)
def test_bad_entries_are_400_keyed_by_item_code(coordinator1, m3, form, entries, keys):
    before = writes()
    response = api(coordinator1).put(form_url(m3, form), {"version": 0, **entries}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == keys
    assert writes() == before


@pytest.mark.parametrize(
    ("payload", "key"),
    [({}, "version"), ({"version": -1}, "version"), ({"version": 0, "values": ["ALT"]}, "values"), ([], None)],
)
def test_malformed_body_is_400(coordinator1, m3, payload, key):
    response = api(coordinator1).put(form_url(m3, "LIVER"), payload, format="json")
    assert response.status_code == 400
    assert (key or "non_field_errors") in response.json()
    assert not FormInstance.objects.exists()


def test_only_json_is_accepted(coordinator1, m3):
    response = api(coordinator1).put(form_url(m3, "LIVER"), {"version": "0"}, format="multipart")
    assert response.status_code == 415
    assert not FormInstance.objects.exists()


# --- Query counts ------------------------------------------------------------------------------------------

CYTO = {
    code: "1.5"
    for code in "IL1B IL4 IL6 IL8 IL10 IL12P40 IL15 IL17A TNFA TNFB IFNG CCL5 TGFB1 XCL1 CRP".split()  # 15 + date
}
# Token, memberships, the visit, the form's instance, its values.
GET_QUERIES = 5
# Token, memberships; then the view's transaction (a savepoint in the test's): the visit locked (refused before
# the body is read), and form_save in it without a savepoint of its own: the form instances, the visit's values,
# one upsert, the instance's version, the audit trail's head (with its advisory lock on PostgreSQL) and insert;
# release of the savepoint; and the summary counters (capture/summaries.py: one statement on PostgreSQL, more on
# SQLite).
PUT_QUERIES = 11


@pytest.mark.parametrize(("form", "values", "size"), [("LIVER", LIVER, 7), ("CYTO", CYTO, 16)])
def test_get_and_put_use_constant_queries(django_assert_num_queries, coordinator1, m3, form, values, size):
    client = api(coordinator1)
    entries = {"LBDAT": str(m3.target_date), **values}
    client.put(form_url(m3, form), {"version": 0, "values": entries}, format="json")  # creates the instance
    with django_assert_num_queries(GET_QUERIES):
        read = client.get(form_url(m3, form)).json()
    assert len(read["items"]) == size
    changed = {code: "6" for code in values}
    with django_assert_num_queries(PUT_QUERIES + summaries.statement_count(with_forms=True)):
        saved = client.put(form_url(m3, form), {"version": 1, "values": {**entries, **changed}}, format="json")
    assert saved.status_code == 200, saved.json()
    assert len(saved.json()["changed"]) == size - 1


# --- Schema ------------------------------------------------------------------------------------------------


def test_schema_describes_the_form_endpoints_with_examples(site1):
    response = schema_reader().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = response.json()["paths"]
    assert "get" in paths["/api/v1/visits/{visit_id}/forms/"]
    form = paths["/api/v1/visits/{visit_id}/forms/{form_code}/"]
    assert "get" in form
    save = form["put"]
    assert save["requestBody"]["content"]["application/json"]["examples"]
    for status in ("200", "400", "409"):
        assert save["responses"][status]["content"]["application/json"]["examples"], status
    assert {"403", "404"} <= set(save["responses"])
