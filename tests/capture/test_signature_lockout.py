"""Signature safeguards (21 CFR 11.300(d), 11.50, 11.70): a wrong signature password is a failed login in the same
lockout, is audited (who, what, when, from where) and alerts the site's data managers; a refused signature writes
nothing else. Every door: the visit, the casebook and the adverse event, by API and by page."""

import pytest
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from capture.models import FormInstance, Signature
from safety.models import AdverseEvent
from safety.services import adverse_event_report
from tests.capture.test_review_api import complete_visit
from tests.factories import PASSWORD, enrolled, make_user
from tests.safety.test_api import event_input
from trial.audit import audit_verify
from trial.models import Alert, AuditRecord, Role

pytestmark = pytest.mark.django_db


def api(user: object, address: str = "10.1.2.3") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    _token, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def signable(m3, coordinator1):
    complete_visit(coordinator1, m3)
    return m3


@pytest.fixture
def m3_site2(coordinator2, site2):
    return enrolled(coordinator2, site2, arm="MSC", days_ago=100).visits.get(definition__code="M3")


@pytest.fixture
def site2_manager(site2):
    return make_user("datamanager2", {site2: Role.DATA_MANAGER})


def refusals() -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(action="sign_refused").order_by("id"))


def sign_visit(client: APIClient, visit: object, password: str) -> object:
    return client.post(f"/api/v1/visits/{visit.pk}/sign/", {"password": password}, format="json")


def logs_in(password: str = PASSWORD) -> bool:
    client = Client(REMOTE_ADDR="10.9.9.9")
    client.post(reverse("login"), {"username": "investigator1", "password": password})
    return "_auth_user_id" in client.session


def test_a_wrong_password_is_audited_with_who_what_when_and_where(signable, investigator1, datamanager):
    response = sign_visit(api(investigator1, "10.1.2.3"), signable, "guess")
    assert response.status_code == 400
    assert response.json()["password"] == ["The password is not correct: the signature was not recorded."]
    [refusal] = refusals()
    assert (refusal.username, refusal.object_type, refusal.object_id) == ("investigator1", "visit", str(signable.pk))
    assert refusal.participant_id == signable.participant_id
    assert refusal.new_value == f"visit M3 of {signable.participant}"
    assert refusal.reason == "wrong password; client 10.1.2.3"
    assert refusal.at is not None
    assert audit_verify().intact


def test_a_wrong_password_alerts_the_sites_data_managers_only(signable, investigator1, datamanager, site2_manager):
    sign_visit(api(investigator1), signable, "guess")
    [alert] = Alert.objects.all()
    assert (alert.user, alert.kind, alert.read_at) == (datamanager, "signature_failure", None)
    assert alert.text == (
        f"investigator1 entered a wrong signature password signing visit M3 of {signable.participant} from 10.1.2.3."
    )
    assert not Alert.objects.filter(user=site2_manager).exists()
    assert not Alert.objects.filter(user=investigator1).exists()


def test_the_alert_shows_behind_the_bell_and_is_marked_read(signable, investigator1, datamanager, as_user):
    sign_visit(api(investigator1), signable, "guess")
    client = as_user(datamanager)
    badge = client.get(reverse("safety:notification_badge")).content.decode()
    assert 'data-unread="1"' in badge
    page = client.get(reverse("safety:notifications")).content.decode()
    assert "entered a wrong signature password" in page
    assert 'data-kind="signature_failure" data-unread="true"' in page
    assert Alert.objects.get().read_at is not None
    assert 'data-unread="' not in client.get(reverse("safety:notification_badge")).content.decode()


def test_five_wrong_passwords_lock_signing_and_login_even_with_the_right_password(signable, investigator1, datamanager):
    client = api(investigator1)
    for attempt in range(1, 5):
        response = sign_visit(client, signable, f"guess-{attempt}")
        assert response.json()["password"] == ["The password is not correct: the signature was not recorded."]
    fifth = sign_visit(client, signable, "guess-5")
    assert fifth.status_code == 400
    assert "locked for 30 minutes" in fifth.json()["password"][0]
    right = sign_visit(client, signable, PASSWORD)
    assert right.status_code == 400
    assert "locked for 30 minutes" in right.json()["password"][0]
    assert not Signature.objects.exists()
    assert not logs_in()
    assert [r.reason.split(";")[0] for r in refusals()] == ["wrong password"] * 4 + ["account locked out"] * 2
    assert Alert.objects.filter(user=datamanager).count() == 6
    assert audit_verify().intact


def test_failed_logins_and_wrong_signatures_count_together(signable, investigator1):
    for _ in range(3):
        assert not logs_in("wrong-login")
    client = api(investigator1)
    assert "not correct" in sign_visit(client, signable, "guess-1").json()["password"][0]
    assert "locked" in sign_visit(client, signable, "guess-2").json()["password"][0]
    assert not logs_in()


def test_a_right_password_resets_the_count(signable, investigator1, participant):
    client = api(investigator1)
    for attempt in range(4):
        sign_visit(client, signable, f"guess-{attempt}")
    assert sign_visit(client, signable, PASSWORD).status_code == 201
    for attempt in range(4):
        sign_visit(client, signable, f"again-{attempt}")
    body = {"password": PASSWORD}
    response = client.post(f"/api/v1/participants/{participant.pk}/sign/", body, format="json")
    assert response.status_code == 201
    assert logs_in()


def test_a_refused_signature_writes_nothing_but_its_refusal(signable, investigator1):
    client = api(investigator1)
    before = set(AuditRecord.objects.values_list("pk", flat=True))
    for _ in range(6):
        sign_visit(client, signable, "guess")
    new = AuditRecord.objects.exclude(pk__in=before)
    assert set(new.values_list("action", flat=True)) == {"sign_refused"}
    assert not Signature.objects.exists()
    assert not FormInstance.objects.filter(visit=signable, signed=True).exists()


def test_the_casebook_page_counts_and_audits_a_wrong_password(participant, investigator1, datamanager, as_user):
    client = as_user(investigator1)
    url = reverse("review:casebook_sign", args=[participant.pk])
    response = client.post(url, {"password": "guess"}, REMOTE_ADDR="10.4.4.4")
    assert response.status_code == 400
    [refusal] = refusals()
    assert (refusal.object_type, refusal.new_value) == ("participant", f"the casebook of {participant}")
    assert refusal.reason == "wrong password; client 10.4.4.4"
    assert Alert.objects.filter(user=datamanager, kind="signature_failure").count() == 1
    assert not Signature.objects.exists()


def test_adverse_event_signature_shares_the_lockout(signable, participant, coordinator1, investigator1, datamanager):
    event = adverse_event_report(user=coordinator1, participant_id=participant.pk, data=event_input(participant))
    client = api(investigator1)
    url = f"/api/v1/adverse-events/{event.pk}/sign/"
    for attempt in range(3):
        response = client.post(url, {"version": 1, "password": f"guess-{attempt}"}, format="json")
        assert response.status_code == 400
    assert refusals()[-1].new_value == f"adverse event {event.label}"
    sign_visit(client, signable, "guess-4")
    locked = client.post(url, {"version": 1, "password": "guess-5"}, format="json")
    assert "locked" in locked.json()["password"][0]
    assert client.post(url, {"version": 1, "password": PASSWORD}, format="json").status_code == 400
    assert AdverseEvent.objects.get(pk=event.pk).signed_at is None
    assert not AuditRecord.objects.filter(object_type="adverse_event", action="sign").exists()


def test_adverse_event_page_counts_a_wrong_password(participant, coordinator1, investigator1, datamanager, as_user):
    event = adverse_event_report(user=coordinator1, participant_id=participant.pk, data=event_input(participant))
    url = reverse("safety:adverse_event_sign", args=[event.pk])
    response = as_user(investigator1).post(url, {"version": "1", "password": "wrong"})
    assert response.status_code == 400
    [refusal] = refusals()
    assert (refusal.object_type, refusal.object_id) == ("adverse_event", str(event.pk))
    assert Alert.objects.filter(user=datamanager).count() == 1


def test_another_sites_visit_is_404_and_counts_nothing(m3_site2, investigator1):
    for _ in range(6):
        assert sign_visit(api(investigator1), m3_site2, "guess").status_code == 404
    assert refusals() == []
    assert logs_in()
