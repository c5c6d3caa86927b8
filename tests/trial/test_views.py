"""The trial's pages, as each role of site 1 and site 2 sees them."""

import datetime
from pathlib import Path

import polib
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD, enrolled, make_user, screened
from trial.models import (
    AuditRecord,
    Participant,
    ParticipantStatus,
    Role,
    Site,
    Visit,
    VisitProgress,
)
from trial.services import protocol_current, schedule

pytestmark = pytest.mark.django_db

LIST_PAGES = ["trial:dashboard", "trial:participant_list", "trial:matrix"]


def today() -> datetime.date:
    return timezone.localdate()


def screening_post(site: Site | None = None, **overrides: object) -> dict[str, str]:
    """What the screening form posts for a candidate who meets every criterion (Child-Pugh B, 8 points)."""
    day = today()
    data = {
        "initials": "LW",
        "sex": "F",
        "date_of_birth": (day.replace(year=day.year - 50) - datetime.timedelta(days=10)).isoformat(),
        "screening_date": (day - datetime.timedelta(days=3)).isoformat(),
        "consent_date": (day - datetime.timedelta(days=3)).isoformat(),
        "diagnosis": "decompensated",
        "total_bilirubin": "40.0",
        "albumin": "30.0",
        "inr": "1.50",
        "ascites": "mild",
        "encephalopathy": "none",
        "criterion_IN5": "yes",
        **{f"criterion_EX{n}": "no" for n in range(1, 10)},
    }
    if site is not None:
        data["site"] = str(site.pk)
    data.update({key: str(value) for key, value in overrides.items()})
    return data


def write_counts() -> tuple[int, int, int]:
    return Participant.objects.count(), AuditRecord.objects.count(), Visit.objects.count()


# --- Every page, every role -------------------------------------------------------------------------------

ROLES = ["coordinator1", "investigator1", "coordinator2", "monitor", "datamanager", "sponsor", "outsider"]
# Whether the role sees a participant of site 1: members of site 1 do, the others get 404.
SEES_SITE_1 = {"coordinator1", "investigator1", "monitor", "datamanager", "sponsor"}


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_each_role(request, as_user, role, two_sites):
    client = as_user(request.getfixturevalue(role))
    for name in LIST_PAGES:
        assert client.get(reverse(name)).status_code == 200, name
    detail = client.get(reverse("trial:participant_detail", args=[two_sites["enrolled1"].pk]))
    assert detail.status_code == (200 if role in SEES_SITE_1 else 404)
    screening = client.get(reverse("trial:screen"))
    assert screening.status_code == (200 if role in {"coordinator1", "investigator1", "coordinator2"} else 403)


# --- Anonymous users and the login page ------------------------------------------------------------------


@pytest.mark.parametrize("name", [*LIST_PAGES, "trial:screen"])
def test_anonymous_is_redirected_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_anonymous_is_redirected_from_participant_pages(client, coordinator1, site1):
    participant = screened(coordinator1, site1)
    for name in ("trial:participant_detail", "trial:enrol"):
        response = client.get(reverse(name, args=[participant.pk]))
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_login_page_logs_in_to_the_dashboard(client, coordinator1):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="password"' in page.content
    response = client.post(reverse("login"), {"username": "coordinator1", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("trial:dashboard")


def test_wrong_password_shows_an_error(client, coordinator1):
    response = client.post(reverse("login"), {"username": "coordinator1", "password": "wrong"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()


def test_logout_is_a_post_form(as_user, coordinator1):
    client = as_user(coordinator1)
    page = client.get(reverse("trial:dashboard"))
    assert f'action="{reverse("logout")}" method="post"'.encode() in page.content
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("trial:dashboard")).status_code == 302


# --- Base layout ------------------------------------------------------------------------------------------


def test_navbar_shows_name_roles_and_screening_for_a_coordinator(as_user, coordinator1):
    content = as_user(coordinator1).get(reverse("trial:dashboard")).content.decode()
    assert "coordinator1" in content
    assert "Site coordinator" in content
    assert reverse("trial:screen") in content
    assert 'action="/i18n/setlang/"' in content
    assert "简体中文" in content


@pytest.mark.parametrize("fixture", ["monitor", "sponsor", "datamanager", "outsider"])
def test_navbar_hides_screening_from_roles_that_cannot_screen(request, as_user, fixture):
    user = request.getfixturevalue(fixture)
    content = as_user(user).get(reverse("trial:dashboard")).content.decode()
    assert reverse("trial:screen") not in content


def test_pages_use_no_cdn(as_user, coordinator1):
    content = as_user(coordinator1).get(reverse("trial:dashboard")).content.decode()
    assert "/static/bootstrap/css/bootstrap.min.css" in content
    assert "/static/bootstrap/js/bootstrap.bundle.min.js" in content
    assert "/static/django_htmx/htmx" in content
    assert "https://" not in content and 'src="//' not in content


# --- Dashboard --------------------------------------------------------------------------------------------


@pytest.fixture
def two_sites(coordinator1, coordinator2, site1, site2):
    """Site 1: one enrolled (MSC), one eligible, one screen failure. Site 2: one enrolled (CONV)."""
    return {
        "enrolled1": enrolled(coordinator1, site1, arm="MSC"),
        "eligible1": screened(coordinator1, site1),
        "failed1": screened(coordinator1, site1, answers={"IN5": True, **{f"EX{n}": n == 4 for n in range(1, 10)}}),
        "enrolled2": enrolled(coordinator2, site2, arm="CONV", days_ago=190),
    }


def test_dashboard_counts_the_coordinators_site_only(as_user, coordinator1, site1, two_sites):
    response = as_user(coordinator1).get(reverse("trial:dashboard"))
    [row] = response.context["rows"]
    assert row.site == site1
    assert (row.screened, row.screen_failures, row.eligible) == (3, 1, 1)
    assert row.enrolled_by_arm == {"MSC": 1}
    assert row.arm_counts == [0, 1]  # CONV, MSC, in protocol order
    assert (row.visits_due, row.visits_overdue) == (1, 0)  # M0 of the participant enrolled today


def test_dashboard_for_site_2_shows_overdue_visits(as_user, coordinator2, site2, two_sites):
    [row] = as_user(coordinator2).get(reverse("trial:dashboard")).context["rows"]
    assert row.site == site2
    assert row.enrolled_by_arm == {"CONV": 1}
    # Enrolled 190 days ago: M0 and M3 are overdue, M6 (day 182 +/- 14) is due today.
    assert (row.visits_due, row.visits_overdue) == (1, 2)


def test_dashboard_of_monitor_and_sponsor_covers_their_sites(as_user, monitor, sponsor, two_sites):
    monitor_rows = as_user(monitor).get(reverse("trial:dashboard")).context["rows"]
    assert [row.site.number for row in monitor_rows] == [1, 2, 3]
    sponsor_rows = as_user(sponsor).get(reverse("trial:dashboard")).context["rows"]
    assert [row.site.number for row in sponsor_rows] == [1, 2, 3, 4, 5, 6]
    assert sum(row.screened for row in sponsor_rows) == 4


def test_dashboard_of_an_outsider_is_empty(as_user, outsider, two_sites):
    response = as_user(outsider).get(reverse("trial:dashboard"))
    assert response.context["rows"] == []
    assert b"not a member of any site" in response.content


# --- Participant list -------------------------------------------------------------------------------------


def test_participant_list_shows_only_the_users_site(as_user, coordinator1, two_sites):
    response = as_user(coordinator1).get(reverse("trial:participant_list"))
    shown = set(response.context["page"].object_list)
    assert shown == {two_sites["enrolled1"], two_sites["eligible1"], two_sites["failed1"]}
    content = response.content.decode()
    assert two_sites["enrolled1"].subject_id in content
    assert two_sites["enrolled2"].screening_number not in content


def test_participant_list_of_site_2(as_user, coordinator2, two_sites):
    response = as_user(coordinator2).get(reverse("trial:participant_list"))
    assert list(response.context["page"].object_list) == [two_sites["enrolled2"]]


def test_participant_list_filters_by_site_and_status(as_user, monitor, site2, two_sites):
    client = as_user(monitor)
    by_site = client.get(reverse("trial:participant_list"), {"site": site2.pk})
    assert list(by_site.context["page"].object_list) == [two_sites["enrolled2"]]
    by_status = client.get(reverse("trial:participant_list"), {"status": ParticipantStatus.ENROLLED})
    assert set(by_status.context["page"].object_list) == {two_sites["enrolled1"], two_sites["enrolled2"]}


def test_participant_list_filter_on_another_site_reveals_nothing(as_user, coordinator2, site1, two_sites):
    response = as_user(coordinator2).get(reverse("trial:participant_list"), {"site": site1.pk})
    assert list(response.context["page"].object_list) == [two_sites["enrolled2"]]


def test_header_search_finds_one_participant_and_goes_to_them(as_user, coordinator1, two_sites):
    participant = two_sites["enrolled1"]
    for term in (participant.subject_id, participant.subject_id.lower(), participant.screening_number):
        response = as_user(coordinator1).get(reverse("trial:participant_list"), {"q": term})
        assert response.status_code == 302, term
        assert response["Location"] == reverse("trial:participant_detail", args=[participant.pk])


def test_search_by_initials_lists_every_match_of_the_users_sites_only(as_user, coordinator1, monitor, two_sites):
    response = as_user(coordinator1).get(reverse("trial:participant_list"), {"q": "zw"})
    assert response.status_code == 200
    assert set(response.context["page"].object_list) == {
        two_sites["enrolled1"],
        two_sites["eligible1"],
        two_sites["failed1"],
    }
    # The monitor sees both sites, so the same initials find site 2's participant too.
    found = as_user(monitor).get(reverse("trial:participant_list"), {"q": "ZW"}).context["page"].object_list
    assert two_sites["enrolled2"] in set(found)


def test_search_never_reaches_another_site(as_user, coordinator2, two_sites):
    response = as_user(coordinator2).get(reverse("trial:participant_list"), {"q": two_sites["enrolled1"].subject_id})
    assert response.status_code == 200
    assert response.context["page"].paginator.count == 0
    assert two_sites["enrolled1"].subject_id not in response.content.decode().split('id="results"')[1]


@pytest.mark.parametrize("term", ["x" * 41, "ZW\x00", "%", "_", "'; DROP TABLE trial_participant; --"])
def test_hostile_search_terms_find_nothing_and_fail_nothing(as_user, coordinator1, two_sites, term):
    response = as_user(coordinator1).get(reverse("trial:participant_list"), {"q": term})
    if "\x00" in term:
        assert response.status_code == 400  # a control character in the address is refused before any view runs
    else:
        assert response.status_code == 200
        assert response.context["page"].paginator.count in (0, 3)  # nothing, or the whole list of a refused term
    assert Participant.objects.count() == 4


def test_matrix_is_searchable(as_user, monitor, two_sites):
    response = as_user(monitor).get(reverse("trial:matrix"), {"q": two_sites["enrolled2"].subject_id})
    assert [participant for participant, _cells in response.context["rows"]] == [two_sites["enrolled2"]]


def test_every_page_has_the_participant_search(as_user, coordinator1):
    content = as_user(coordinator1).get(reverse("trial:dashboard")).content.decode()
    assert 'id="participant-search"' in content and 'name="q"' in content


def test_participant_list_of_an_outsider_is_empty(as_user, outsider, two_sites):
    response = as_user(outsider).get(reverse("trial:participant_list"))
    assert response.context["page"].paginator.count == 0
    assert b"No participants." in response.content


def test_participant_list_columns(as_user, coordinator1, two_sites):
    participant = two_sites["enrolled1"]
    content = as_user(coordinator1).get(reverse("trial:participant_list")).content.decode()
    for text in (participant.screening_number, participant.subject_id, participant.initials, "Male", "45"):
        assert text in content
    assert participant.enrolment_date.isoformat() in content
    assert "Conventional therapy + UC-MSC" in content


# --- Subject matrix ---------------------------------------------------------------------------------------


def test_matrix_shows_enrolled_participants_with_visit_states(as_user, coordinator2, two_sites):
    participant = two_sites["enrolled2"]
    Visit.objects.filter(participant=participant, definition__code="M0").update(
        progress=VisitProgress.COMPLETE, visit_date=participant.enrolment_date
    )
    response = as_user(coordinator2).get(reverse("trial:matrix"))
    assert [column.code for column in response.context["columns"]] == [
        "M0", "M3", "M6", "M9", "M12", "FU18", "FU24", "FU30", "FU36",
    ]  # fmt: skip
    [(row_participant, cells)] = response.context["rows"]
    assert row_participant == participant
    assert [cell.state for cell in cells] == ["complete", "overdue", "due"] + ["not_due"] * 6
    content = response.content.decode()
    assert cells[2].visit.target_date.isoformat() in content
    assert 'data-state="overdue"' in content


def test_matrix_leaves_out_candidates_and_other_sites(as_user, coordinator1, two_sites):
    rows = as_user(coordinator1).get(reverse("trial:matrix")).context["rows"]
    assert [participant for participant, _ in rows] == [two_sites["enrolled1"]]


def test_matrix_filters_by_site(as_user, sponsor, site2, two_sites):
    rows = as_user(sponsor).get(reverse("trial:matrix"), {"site": site2.pk}).context["rows"]
    assert [participant for participant, _ in rows] == [two_sites["enrolled2"]]


def test_matrix_of_an_outsider_is_empty(as_user, outsider, two_sites):
    assert as_user(outsider).get(reverse("trial:matrix")).context["rows"] == []


# --- Participant page -------------------------------------------------------------------------------------


def test_participant_page_of_another_site_is_404(as_user, coordinator2, two_sites):
    client = as_user(coordinator2)
    for name in ("trial:participant_detail", "trial:enrol"):
        assert client.get(reverse(name, args=[two_sites["eligible1"].pk])).status_code == 404


def test_participant_page_is_404_for_an_outsider(as_user, outsider, two_sites):
    assert (
        as_user(outsider).get(reverse("trial:participant_detail", args=[two_sites["eligible1"].pk])).status_code == 404
    )


def test_participant_page_shows_screening_and_schedule(as_user, coordinator1, two_sites):
    participant = two_sites["enrolled1"]
    response = as_user(coordinator1).get(reverse("trial:participant_detail", args=[participant.pk]))
    content = response.content.decode()
    assert "Class B, 8 points" in content
    assert "Eligible: meets every criterion" in content
    assert "coordinator1" in content  # who enrolled
    assert [visit.definition.code for visit in response.context["visits"]] == [
        "M0", "M3", "M6", "M9", "M12", "FU18", "FU24", "FU30", "FU36",
    ]  # fmt: skip
    assert content.count("data-visit=") == 9
    m3 = response.context["visits"][1]
    assert f"{m3.window_start:%Y-%m-%d} – {m3.window_end:%Y-%m-%d}" in content


def test_participant_page_lists_screen_failure_reasons(as_user, coordinator1, site1):
    participant = screened(
        coordinator1, site1, consent_date=None, answers={"IN5": True, **{f"EX{n}": n == 4 for n in range(1, 10)}}
    )
    response = as_user(coordinator1).get(reverse("trial:participant_detail", args=[participant.pk]))
    assert [failure.code for failure in response.context["failures"]] == ["IN1", "EX4"]
    content = response.content.decode()
    assert "Screen failure reasons" in content
    assert "Any tumour" in content
    assert "Written informed consent" in content
    assert 'id="enrol-button"' not in content


@pytest.mark.parametrize("fixture", ["monitor", "sponsor", "datamanager"])
def test_read_only_roles_see_the_page_without_an_enrol_button(request, as_user, fixture, two_sites):
    client = as_user(request.getfixturevalue(fixture))
    response = client.get(reverse("trial:participant_detail", args=[two_sites["eligible1"].pk]))
    assert response.status_code == 200
    assert b'id="enrol-button"' not in response.content
    assert client.get(reverse("trial:enrol", args=[two_sites["eligible1"].pk])).status_code == 403


def test_coordinator_sees_the_enrol_button_on_an_eligible_candidate(as_user, coordinator1, two_sites):
    response = as_user(coordinator1).get(reverse("trial:participant_detail", args=[two_sites["eligible1"].pk]))
    assert b'id="enrol-button"' in response.content


# --- Screening form ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["monitor", "sponsor", "datamanager", "outsider"])
def test_roles_that_cannot_screen_get_403(request, as_user, fixture, site1):
    client = as_user(request.getfixturevalue(fixture))
    before = write_counts()
    assert client.get(reverse("trial:screen")).status_code == 403
    assert client.post(reverse("trial:screen"), screening_post(site1)).status_code == 403
    assert write_counts() == before


def test_screening_form_asks_each_non_computed_criterion(as_user, coordinator1):
    response = as_user(coordinator1).get(reverse("trial:screen"))
    form = response.context["form"]
    asked = [name for name in form.fields if name.startswith("criterion_")]
    assert asked == ["criterion_IN5", *[f"criterion_EX{n}" for n in range(1, 10)]]
    content = response.content.decode()
    assert "Life expectancy over three years" in content
    assert "µmol/L" in content and "g/L" in content
    assert 'type="hidden" name="site"' in content  # one site only: nothing to choose


def test_screening_form_offers_only_the_sites_where_the_user_screens(as_user, site1, site2):
    user = make_user(
        "twosites", {site1: Role.COORDINATOR, site2: Role.INVESTIGATOR, Site.objects.get(number=3): Role.MONITOR}
    )
    form = as_user(user).get(reverse("trial:screen")).context["form"]
    assert list(form.fields["site"].queryset) == [site1, site2]


def test_screening_at_a_site_where_the_user_cannot_screen_is_refused(as_user, site1, site2):
    user = make_user("twosites", {site1: Role.COORDINATOR, site2: Role.MONITOR})
    before = write_counts()
    response = as_user(user).post(reverse("trial:screen"), screening_post(site2))
    assert response.status_code == 200
    assert "site" in response.context["form"].errors
    assert write_counts() == before


def test_coordinator_screens_an_eligible_candidate(as_user, coordinator1, site1):
    client = as_user(coordinator1)
    before = write_counts()
    response = client.post(reverse("trial:screen"), screening_post(site1))
    participant = Participant.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("trial:participant_detail", args=[participant.pk])
    assert participant.status == ParticipantStatus.ELIGIBLE
    assert participant.created_by == coordinator1
    assert AuditRecord.objects.count() > before[1]
    page = client.get(response.url)
    content = page.content.decode()
    assert f"{participant.screening_number} screened: eligible." in content
    assert "Class B, 8 points" in content
    assert 'id="enrol-button"' in content


def test_investigator_screens_a_screen_failure(as_user, investigator1, site1):
    client = as_user(investigator1)
    response = client.post(reverse("trial:screen"), screening_post(site1, albumin="40.0", criterion_EX5="yes"))
    participant = Participant.objects.get()
    assert participant.status == ParticipantStatus.SCREEN_FAILED
    content = client.get(response.url).content.decode()
    assert "screened: screen failure." in content
    assert "Class B, 7 points" in content
    assert "HIV infection" in content


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"albumin": "200"}, "albumin", "outside the allowed range"),
        ({"total_bilirubin": "abc"}, "total_bilirubin", "Enter a number."),
        (
            {"screening_date": (timezone.localdate() + datetime.timedelta(days=30)).isoformat()},
            "screening_date",
            "cannot be in the future",
        ),
        ({"initials": "L1"}, "initials", "2 to 4 letters"),
        ({"criterion_EX3": ""}, "criterion_EX3", "This field is required."),
    ],
)
def test_bad_screening_input_shows_a_field_error_and_writes_nothing(
    as_user, coordinator1, site1, overrides, field, message
):
    before = write_counts()
    response = as_user(coordinator1).post(reverse("trial:screen"), screening_post(site1, **overrides))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors
    assert message in " ".join(errors[field])
    assert write_counts() == before
    consent_date = screening_post()["consent_date"]
    assert f'value="{consent_date}"' in response.content.decode()  # what the user typed is kept


# --- Enrolment form ---------------------------------------------------------------------------------------


def test_coordinator_enrols_through_the_page(as_user, coordinator1, two_sites):
    participant = two_sites["eligible1"]
    client = as_user(coordinator1)
    form = client.get(reverse("trial:enrol", args=[participant.pk])).context["form"]
    assert [code for code, _ in form.fields["arm"].choices] == ["CONV", "MSC"]
    response = client.post(
        reverse("trial:enrol", args=[participant.pk]), {"arm": "MSC", "enrolment_date": today().isoformat()}
    )
    assert response.status_code == 302
    assert response.url == reverse("trial:participant_detail", args=[participant.pk])
    participant.refresh_from_db()
    assert participant.status == ParticipantStatus.ENROLLED
    assert participant.arm.code == "MSC"
    content = client.get(response.url).content.decode()
    assert f"enrolled as {participant.subject_id}" in content
    assert content.count("data-visit=") == 9


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"arm": "MSC", "enrolment_date": "2999-01-01"}, "enrolment_date", "cannot be in the future"),
        ({"arm": "MSC", "enrolment_date": "2000-01-01"}, "enrolment_date", "cannot precede screening"),
        ({"arm": "PLACEBO", "enrolment_date": "today"}, "arm", "Select a valid choice"),
        ({"arm": "MSC", "enrolment_date": ""}, "enrolment_date", "This field is required."),
    ],
)
def test_bad_enrolment_input_shows_a_field_error_and_writes_nothing(
    as_user, coordinator1, two_sites, data, field, message
):
    participant = two_sites["eligible1"]
    if data["enrolment_date"] == "today":
        data = {**data, "enrolment_date": today().isoformat()}
    before = write_counts()
    response = as_user(coordinator1).post(reverse("trial:enrol", args=[participant.pk]), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors[field])
    assert write_counts() == before
    participant.refresh_from_db()
    assert participant.status == ParticipantStatus.ELIGIBLE


@pytest.mark.parametrize("which", ["failed1", "enrolled1"])
def test_only_an_eligible_candidate_can_be_enrolled(as_user, coordinator1, two_sites, which):
    participant = two_sites[which]
    before = write_counts()
    client = as_user(coordinator1)
    response = client.post(
        reverse("trial:enrol", args=[participant.pk]), {"arm": "MSC", "enrolment_date": today().isoformat()}
    )
    assert response.status_code == 302
    assert write_counts() == before
    assert "Only an eligible candidate can be enrolled." in client.get(response.url).content.decode()


@pytest.mark.parametrize("fixture", ["monitor", "sponsor"])
def test_read_only_roles_cannot_post_an_enrolment(request, as_user, fixture, two_sites):
    participant = two_sites["eligible1"]
    before = write_counts()
    response = as_user(request.getfixturevalue(fixture)).post(
        reverse("trial:enrol", args=[participant.pk]), {"arm": "MSC", "enrolment_date": today().isoformat()}
    )
    assert response.status_code == 403
    assert write_counts() == before


# --- Translation ------------------------------------------------------------------------------------------


def test_compile_translations_writes_the_chinese_catalog():
    call_command("compile_translations", verbosity=0)
    mo_path = Path(django_settings.BASE_DIR, "locale", "zh_Hans", "LC_MESSAGES", "django.mo")
    catalog = {entry.msgid: entry.msgstr for entry in polib.mofile(str(mo_path))}
    assert catalog["Subject matrix"]
    assert catalog["Screen failure"]


def test_every_string_marked_for_translation_has_its_chinese():
    catalog = polib.pofile(str(Path(django_settings.BASE_DIR, "locale", "zh_Hans", "LC_MESSAGES", "django.po")))
    assert [entry.msgid for entry in catalog.untranslated_entries()] == []
    assert [entry.msgid for entry in catalog.fuzzy_entries()] == []


def test_pages_render_in_chinese_after_switching_language(zh_catalog, as_user, coordinator1, two_sites):
    client = as_user(coordinator1)
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": reverse("trial:dashboard")})
    assert response.status_code == 302
    content = client.get(reverse("trial:dashboard")).content.decode()
    assert '<html lang="zh-hans">' in content
    assert "受试者访视矩阵" in content
    assert "筛选受试者" in content
    assert "研究协调员" in content  # the role
    assert "中国人民解放军第三〇二医院" in content  # the site's Chinese name
    screening = client.get(reverse("trial:screen")).content.decode()
    assert "预计生存期超过三年" in screening  # criterion IN5 from the protocol file
    assert "总胆红素" in screening
    detail = client.get(reverse("trial:participant_detail", args=[two_sites["failed1"].pk])).content.decode()
    assert "筛选失败" in detail
    assert "任何肿瘤" in detail


# --- Query counts -----------------------------------------------------------------------------------------


def make_enrolled(count: int, site: Site, user: object) -> None:
    """`count` enrolled participants with their schedules, written directly: the services are too slow for 200."""
    protocol = protocol_current()
    arms = list(protocol.arms.all())
    day = today()
    participants = Participant.objects.bulk_create(
        Participant(
            site=site,
            protocol=protocol,
            screening_number=f"Q{site.number:02d}-{n:04d}",
            subject_id=f"Q{site.number:02d}-{n:04d}",
            initials="QC",
            sex="F" if n % 2 else "M",
            date_of_birth=datetime.date(1970, 1, 1) + datetime.timedelta(days=n),
            status=ParticipantStatus.ENROLLED,
            arm=arms[n % len(arms)],
            enrolment_date=day - datetime.timedelta(days=3 * n),
            enrolled_by=user,
            created_by=user,
        )
        for n in range(count)
    )
    for participant in participants:
        participant.protocol = protocol  # one cached protocol, so schedule() reads its visits once per call
    Visit.objects.bulk_create([visit for participant in participants for visit in schedule(participant)])


# User and memberships (the session comes from the cache), then the page's own reads. The home page's counts are
# in tests/reports/test_home.py.
EXPECTED_QUERIES = {
    "trial:participant_list": 5,  # + sites of the filter, count, one page of participants with site and arm
    "trial:matrix": 7,  # + sites of the filter, count, page of participants, their visits, visit columns
}


@pytest.mark.parametrize("count", [10, 200])
@pytest.mark.parametrize("name", ["trial:participant_list", "trial:matrix"])
def test_list_pages_run_a_constant_number_of_queries(
    as_user, coordinator1, site1, django_assert_num_queries, name, count
):
    make_enrolled(count, site1, coordinator1)
    client = as_user(coordinator1)
    with django_assert_num_queries(EXPECTED_QUERIES[name]):
        response = client.get(reverse(name))
    assert response.status_code == 200
    assert len(response.context["page"].object_list) == min(count, 50)
    # A search costs nothing more.
    with django_assert_num_queries(EXPECTED_QUERIES[name]):
        assert client.get(reverse(name), {"q": "0"}).status_code == 200
