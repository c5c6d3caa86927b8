"""API tokens that end: idle and absolute expiry, revocation (logout, password change, deactivation), and the
user's own list of tokens in the API and on a page."""

import datetime
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
BASE_DIR = settings.BASE_DIR


def issue(username: str = "coordinator1", password: str = PASSWORD) -> tuple[str, AuthToken]:
    response = APIClient().post("/api/v1/auth/token/", {"username": username, "password": password})
    assert response.status_code == 200, response.content
    key = response.json()["token"]
    return key, AuthToken.objects.get(token_key=response.json()["key"])


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def assert_refused(response: object) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


# --- Issue --------------------------------------------------------------------------------------------------


def test_token_is_issued_with_its_idle_and_absolute_ends(coordinator1, settings):
    before = timezone.now()
    response = APIClient().post("/api/v1/auth/token/", {"username": "coordinator1", "password": PASSWORD})
    body = response.json()
    assert set(body) == {"token", "key", "expiry", "expires_at_latest"}
    token = AuthToken.objects.get(user=coordinator1)
    assert before + datetime.timedelta(hours=8) <= token.expiry <= timezone.now() + datetime.timedelta(hours=8)
    latest = datetime.datetime.fromisoformat(body["expires_at_latest"])
    assert latest == token.created + datetime.timedelta(days=7)
    assert with_token(body["token"]).get("/api/v1/sites/").status_code == 200


def test_each_login_is_a_token_of_its_own(coordinator1):
    first, _ = issue()
    second, _ = issue()
    assert first != second
    assert AuthToken.objects.filter(user=coordinator1).count() == 2


def test_token_login_goes_through_the_lockout(coordinator1, settings):
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        response = APIClient().post("/api/v1/auth/token/", {"username": "coordinator1", "password": "wrong"})
        assert response.status_code == 400
    locked = APIClient().post("/api/v1/auth/token/", {"username": "coordinator1", "password": PASSWORD})
    assert locked.status_code != 200 and "token" not in locked.content.decode()
    assert not AuthToken.objects.filter(user=coordinator1).exists()


def test_inactive_user_gets_no_token(coordinator1):
    coordinator1.is_active = False
    coordinator1.save()
    response = APIClient().post("/api/v1/auth/token/", {"username": "coordinator1", "password": PASSWORD})
    assert response.status_code == 400
    assert not AuthToken.objects.exists()


# --- Expiry -------------------------------------------------------------------------------------------------


def test_token_unused_for_the_idle_time_is_refused(coordinator1):
    key, token = issue()
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - datetime.timedelta(seconds=1))
    assert_refused(with_token(key).get("/api/v1/sites/"))
    assert not AuthToken.objects.filter(pk=token.pk).exists()


def test_use_pushes_the_idle_expiry_on(coordinator1):
    key, token = issue()
    soon = timezone.now() + datetime.timedelta(minutes=5)
    AuthToken.objects.filter(pk=token.pk).update(expiry=soon)
    assert with_token(key).get("/api/v1/sites/").status_code == 200
    assert AuthToken.objects.get(pk=token.pk).expiry > timezone.now() + datetime.timedelta(hours=7)


def test_a_busy_token_still_ends_at_its_absolute_lifetime(coordinator1):
    key, token = issue()
    issued = timezone.now() - datetime.timedelta(days=7, seconds=1)
    # Used a minute ago, so not idle; but issued more than seven days ago.
    AuthToken.objects.filter(pk=token.pk).update(created=issued, expiry=timezone.now() + datetime.timedelta(hours=8))
    assert_refused(with_token(key).get("/api/v1/sites/"))


def test_the_idle_refresh_never_goes_past_the_absolute_lifetime(coordinator1):
    key, token = issue()
    issued = timezone.now() - datetime.timedelta(days=6, hours=23)
    AuthToken.objects.filter(pk=token.pk).update(created=issued, expiry=timezone.now() + datetime.timedelta(minutes=5))
    assert with_token(key).get("/api/v1/sites/").status_code == 200
    assert AuthToken.objects.get(pk=token.pk).expiry <= issued + datetime.timedelta(days=7)


def test_the_lifetimes_come_from_the_environment():
    code = "from django.conf import settings; k = settings.REST_KNOX; print(k['TOKEN_TTL'], k['AUTO_REFRESH_MAX_TTL'])"
    env = {"API_TOKEN_IDLE_HOURS": "2", "API_TOKEN_MAX_DAYS": "1"}
    assert django_says(code, env).strip() == "2:00:00 1 day, 0:00:00"
    assert "API_TOKEN_IDLE_HOURS" in django_says(code, {**env, "API_TOKEN_IDLE_HOURS": "0"}, check=False)


def django_says(code: str, env: dict[str, str], check: bool = True) -> str:
    full = {**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    command = [sys.executable, "-c", f"import django; django.setup(); {code}"]
    result = subprocess.run(command, env=full, capture_output=True, text=True, timeout=120, cwd=BASE_DIR)
    if check:
        assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


# --- Revocation ---------------------------------------------------------------------------------------------


def test_api_logout_revokes_the_token_it_was_sent_with_only(coordinator1):
    key, _ = issue()
    other, _ = issue()
    assert with_token(key).post("/api/v1/auth/logout/").status_code == 204
    assert_refused(with_token(key).get("/api/v1/sites/"))
    assert with_token(other).get("/api/v1/sites/").status_code == 200


def test_api_logout_all_revokes_every_token(coordinator1):
    key, _ = issue()
    other, _ = issue()
    assert with_token(key).post("/api/v1/auth/logout-all/").status_code == 204
    assert_refused(with_token(other).get("/api/v1/sites/"))
    assert not AuthToken.objects.filter(user=coordinator1).exists()


def test_page_logout_revokes_the_users_tokens_and_no_one_elses(coordinator1, coordinator2, client):
    key, _ = issue()
    kept, _ = issue("coordinator2")
    client.force_login(coordinator1)
    assert client.post(reverse("logout")).status_code == 302
    assert_refused(with_token(key).get("/api/v1/sites/"))
    assert with_token(kept).get("/api/v1/sites/").status_code == 200


def test_password_change_revokes_the_users_tokens(coordinator1, coordinator2):
    key, _ = issue()
    kept, _ = issue("coordinator2")
    user = get_user_model().objects.get(pk=coordinator1.pk)
    user.set_password("a-new-password-456")
    user.save()
    assert_refused(with_token(key).get("/api/v1/sites/"))
    assert with_token(kept).get("/api/v1/sites/").status_code == 200


def test_deactivation_revokes_the_users_tokens(coordinator1):
    key, token = issue()
    user = get_user_model().objects.get(pk=coordinator1.pk)
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert not AuthToken.objects.filter(pk=token.pk).exists()
    assert_refused(with_token(key).get("/api/v1/sites/"))


def test_other_saves_of_the_user_keep_the_tokens(coordinator1):
    key, _ = issue()
    user = get_user_model().objects.get(pk=coordinator1.pk)
    user.first_name = "Wei"
    user.save()
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    assert with_token(key).get("/api/v1/sites/").status_code == 200


# --- The user's own tokens: API -----------------------------------------------------------------------------


def test_user_lists_their_own_tokens_in_force_only(coordinator1, coordinator2):
    key, current = issue()
    _other, older = issue()
    _expired, gone = issue()
    AuthToken.objects.filter(pk=gone.pk).update(expiry=timezone.now() - datetime.timedelta(minutes=1))
    issue("coordinator2")
    response = with_token(key).get("/api/v1/auth/tokens/")
    assert response.status_code == 200
    rows = response.json()
    assert {row["key"] for row in rows} == {current.token_key, older.token_key}
    assert [row["current"] for row in rows if row["key"] == current.token_key] == [True]
    assert all(len(row["key"]) == 15 and "token" not in row for row in rows)


def test_user_revokes_one_of_their_tokens(coordinator1):
    key, _ = issue()
    _other, older = issue()
    assert with_token(key).delete(f"/api/v1/auth/tokens/{older.token_key}/").status_code == 204
    assert not AuthToken.objects.filter(pk=older.pk).exists()
    assert with_token(key).get("/api/v1/sites/").status_code == 200


def test_another_users_token_cannot_be_revoked_or_seen(coordinator1, coordinator2):
    key, _ = issue()
    _theirs, token = issue("coordinator2")
    assert with_token(key).delete(f"/api/v1/auth/tokens/{token.token_key}/").status_code == 404
    assert AuthToken.objects.filter(pk=token.pk).exists()
    assert token.token_key not in with_token(key).get("/api/v1/auth/tokens/").content.decode()


@pytest.mark.parametrize("bad", ["zzz", "' OR 1=1 --", "a" * 200])
def test_a_hostile_key_revokes_nothing(coordinator1, bad):
    key, _ = issue()
    response = with_token(key).delete(f"/api/v1/auth/tokens/{bad}/")
    assert response.status_code == 404
    assert AuthToken.objects.count() == 1


def test_token_list_needs_credentials(site1):
    assert_refused(APIClient().get("/api/v1/auth/tokens/"))


# --- The user's own tokens: the page ------------------------------------------------------------------------


def test_token_page_lists_the_users_tokens_only(coordinator1, coordinator2, as_user, django_assert_num_queries):
    _key, mine = issue()
    _theirs, theirs = issue("coordinator2")
    client = as_user(coordinator1)
    response = client.get(reverse("trial:tokens"))
    assert response.status_code == 200
    page = response.content.decode()
    assert mine.token_key in page and theirs.token_key not in page
    issue()
    issue()
    # The user, the memberships (navigation), the tokens (the session is cached): the same for any number of tokens.
    with django_assert_num_queries(3):
        assert client.get(reverse("trial:tokens")).status_code == 200


def test_token_page_revokes_own_token_and_refuses_anothers(coordinator1, coordinator2, as_user):
    key, mine = issue()
    _theirs, theirs = issue("coordinator2")
    client = as_user(coordinator1)
    assert client.post(reverse("trial:token_revoke", args=[mine.token_key])).status_code == 302
    assert not AuthToken.objects.filter(pk=mine.pk).exists()
    client.post(reverse("trial:token_revoke", args=[theirs.token_key]))
    assert AuthToken.objects.filter(pk=theirs.pk).exists()
    assert client.get(reverse("trial:token_revoke", args=[theirs.token_key])).status_code == 405


def test_token_page_needs_a_login(site1, client):
    response = client.get(reverse("trial:tokens"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_token_page_in_chinese(coordinator1, as_user):
    issue()
    client = as_user(coordinator1)
    page = client.get(reverse("trial:tokens"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "API 令牌" in page
