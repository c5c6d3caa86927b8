import time

from django.urls import reverse

from tests.factories import PASSWORD
from trial.sessions import LAST_ACTIVITY


def _age_session(client, seconds):
    session = client.session
    session[LAST_ACTIVITY] = time.time() - seconds
    session.save()


def test_idle_session_is_logged_out_after_30_minutes(client, coordinator1):
    client.force_login(coordinator1)
    _age_session(client, 31 * 60)
    response = client.get(reverse("trial:dashboard"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert client.get(reverse("trial:dashboard")).status_code == 302  # logged out for good


def test_activity_keeps_the_session_alive(client, coordinator1):
    client.force_login(coordinator1)
    _age_session(client, 29 * 60)
    assert client.get(reverse("trial:dashboard")).status_code == 200
    assert time.time() - client.session[LAST_ACTIVITY] < 5


def _log_in(client, password):
    return client.post(reverse("login"), {"username": "coordinator1", "password": password})


def test_repeated_failed_logins_lock_the_account(client, coordinator1, coordinator2):
    for _ in range(4):
        assert _log_in(client, "wrong-password").status_code == 200  # the form again, with its error
    assert _log_in(client, "wrong-password").status_code == 429  # the fifth failure locks
    locked = _log_in(client, PASSWORD)
    assert locked.status_code == 429
    assert "locked" in locked.text.lower()
    token = client.post("/api/v1/auth/token/", {"username": "coordinator1", "password": PASSWORD})
    assert token.status_code in {400, 403, 429}
    other = client.post(reverse("login"), {"username": "coordinator2", "password": PASSWORD})
    assert other.status_code == 302  # the lock is per account


def test_a_successful_login_resets_the_count(client, coordinator1):
    for _ in range(4):
        _log_in(client, "wrong-password")
    assert _log_in(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        _log_in(client, "wrong-password")
    assert _log_in(client, PASSWORD).status_code == 302
