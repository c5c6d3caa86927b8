"""The export endpoints and page, as each role sees them: who may download, what is recorded, how many queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from reports.exports.odm import odm_export
from reports.selectors import export_scope
from tests.api_clients import schema_reader
from tests.factories import make_user
from tests.reports.export_data import enter_participant, read_zip
from trial.models import AuditRecord, Role

pytestmark = pytest.mark.django_db

ODM = "/api/v1/exports/odm/"
CSV = "/api/v1/exports/csv/"
MAY_EXPORT = ["datamanager", "sponsor"]
MAY_NOT = ["coordinator1", "investigator1", "coordinator2", "monitor", "outsider"]
# Every statement of a download, whatever the number of participants: the user's token and sites, the protocol
# versions, the audit record of the download; then ODM reads, per protocol version, the subjects and the values
# (and the value history); CSV reads the values once, and the subjects (with their visit dates) per dataset.
MAX_STATEMENTS = 40


def api(user: object) -> APIClient:
    client = APIClient()
    _token, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def downloads() -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(object_type="export").order_by("pk"))


def body(response: object) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def entered(coordinator1, coordinator2, site1, site2):
    return {1: enter_participant(coordinator1, site1), 2: enter_participant(coordinator2, site2, arm="CONV")}


@pytest.mark.parametrize("role", MAY_EXPORT)
def test_data_managers_and_the_sponsor_download_both(request, entered, role):
    client = api(request.getfixturevalue(role))
    odm = client.get(ODM)
    assert odm.status_code == 200 and odm["Content-Type"] == "application/xml"
    assert odm["Content-Disposition"].startswith('attachment; filename="NCT01573923_odm_sites-01-02-03-04-05-06_')
    assert odm["Cache-Control"] == "no-store"
    assert entered[2].participant.subject_id.encode() in body(odm)
    archive = client.get(CSV)
    assert archive.status_code == 200 and archive["Content-Type"] == "application/zip"
    assert archive["Content-Disposition"].endswith('.zip"')
    assert "LIVER.csv" in read_zip(body(archive))


@pytest.mark.parametrize("role", MAY_NOT)
def test_other_roles_are_refused_and_nothing_is_recorded(request, entered, role):
    client = api(request.getfixturevalue(role))
    for url in (ODM, CSV, f"{ODM}?site=1"):
        assert client.get(url).status_code == 403
    assert downloads() == []


def test_anonymous_is_refused(entered):
    for url in (ODM, CSV):
        assert APIClient().get(url).status_code in {401, 403}
    assert downloads() == []


def test_a_site_outside_ones_own_is_a_400_on_site(entered, site1):
    sponsor = make_user("sponsor-site1", {site1: Role.SPONSOR})
    for site in (2, 99):  # another site, and no site at all, answer alike
        response = api(sponsor).get(f"{ODM}?site={site}")
        assert response.status_code == 400
        assert list(response.json()) == ["site"]
    assert downloads() == []


def test_a_site_1_sponsor_gets_site_1_only(entered, site1):
    sponsor = make_user("sponsor-site1", {site1: Role.SPONSOR})
    content = body(api(sponsor).get(ODM))
    assert entered[1].participant.subject_id.encode() in content
    assert entered[2].participant.subject_id.encode() not in content
    files = read_zip(body(api(sponsor).get(CSV)))
    assert entered[2].participant.subject_id not in "".join(files.values())


def test_a_download_is_recorded_as_it_starts(entered, datamanager, site2):
    response = api(datamanager).get(f"{ODM}?site=2&audit=true")
    (record,) = downloads()
    assert (record.username, record.object_id, record.action, record.site_id) == (
        "datamanager",
        "odm",
        "download",
        site2.pk,
    )
    assert record.new_value == '{"audit": true, "sites": [2]}'
    body(response)
    api(datamanager).get(CSV)
    assert [(r.object_id, r.site_id, r.new_value) for r in downloads()][1] == (
        "csv",
        None,
        '{"sites": [1, 2, 3, 4, 5, 6]}',
    )


def test_the_xml_media_type_can_be_asked_for(entered, datamanager):
    response = api(datamanager).get(ODM, HTTP_ACCEPT="application/xml")
    assert response.status_code == 200 and body(response).startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    refused = api(make_user("nobody", {})).get(ODM, HTTP_ACCEPT="application/xml")
    assert refused.status_code == 403 and b"detail" in refused.content


def statements_of(client: APIClient, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        assert response.status_code == 200
        body(response)
    return len(queries)


@pytest.mark.parametrize("url", [ODM, f"{ODM}?audit=1", CSV])
def test_statements_do_not_grow_with_participants(url, coordinator1, site1, datamanager, django_assert_num_queries):
    client = api(datamanager)
    enter_participant(coordinator1, site1)
    statements_of(client, url)  # reads the protocol definitions into the process's cache
    few = statements_of(client, url)
    assert few <= MAX_STATEMENTS
    for _ in range(3):
        enter_participant(coordinator1, site1, arm="CONV")
    with django_assert_num_queries(few):
        body(client.get(url))


def test_the_schema_documents_the_downloads(site1):
    response = schema_reader().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = response.json()["paths"]
    odm = paths["/api/v1/exports/odm/"]["get"]
    assert odm["responses"]["200"]["content"]["application/xml"]["schema"] == {"type": "string", "format": "binary"}
    assert {"site", "audit"} <= {parameter["name"] for parameter in odm["parameters"]}
    assert {"400", "403"} <= set(odm["responses"])
    csv_download = paths["/api/v1/exports/csv/"]["get"]
    assert csv_download["responses"]["200"]["content"]["application/zip"]["schema"]["format"] == "binary"


# --- The page ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", MAY_EXPORT)
def test_the_page_lists_downloads_for_each_site(request, as_user, role):
    response = as_user(request.getfixturevalue(role)).get(reverse("exports:index"))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="{ODM}?site=1"' in page and f'href="{CSV}?site=6"' in page
    assert f'href="{ODM}?audit=true"' in page


@pytest.mark.parametrize("role", MAY_NOT)
def test_the_page_is_refused_to_other_roles(request, as_user, role):
    assert as_user(request.getfixturevalue(role)).get(reverse("exports:index")).status_code == 403


def test_the_page_sends_the_anonymous_to_log_in(client, site1):
    response = client.get(reverse("exports:index"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_page_lists_ones_own_sites_only(as_user, site1):
    manager = make_user("manager-site1", {site1: Role.DATA_MANAGER})
    page = as_user(manager).get(reverse("exports:index")).content.decode()
    assert f"{ODM}?site=1" in page and f"{ODM}?site=2" not in page


def test_a_session_download_works_from_the_page(entered, as_user, datamanager):
    """The page's links are the API's endpoints: the browser's session authenticates them."""
    response = as_user(datamanager).get(f"{ODM}?site=1")
    assert response.status_code == 200
    assert entered[1].participant.subject_id.encode() in b"".join(response.streaming_content)


def test_export_and_api_agree(entered, datamanager):
    direct = b"".join(odm_export(scope=export_scope(datamanager, 1), exported_by="datamanager"))
    served = body(api(datamanager).get(f"{ODM}?site=1"))
    # Identical but for the ODM element's attributes: the file's own identity and time.
    assert served.splitlines()[2:] == direct.splitlines()[2:]
