"""Error pages in the site's layout (menu, explanation, a way back), a favicon, and JSON refusals under /api/."""

import pytest
from django.contrib.staticfiles import finders
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import translation

from config.errors import server_error


def test_404_is_in_the_layout_with_the_menu_and_a_way_home(as_user, coordinator1):
    response = as_user(coordinator1).get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'id="main-nav"' in html and "coordinator1" in html
    assert "Page not found" in html and 'id="error-home"' in html


def test_403_says_what_the_role_may_not_do_in_the_layout(as_user, monitor):
    response = as_user(monitor).get(reverse("trial:screen"))
    assert response.status_code == 403
    html = response.content.decode()
    assert 'id="main-nav"' in html and "You may not do this" in html
    assert "Your role does not allow screening candidates." in html


def test_error_pages_are_translated(as_user, coordinator1):
    response = as_user(coordinator1).get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    html = response.content.decode()
    assert "Page not found" not in html and "此处没有内容" in html


def test_anonymous_404_offers_the_login(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and 'id="error-login"' in response.content.decode()


def test_400_for_a_forged_host_is_in_the_layout(client, settings):
    settings.DEBUG = False
    response = client.get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert "The request could not be understood" in response.content.decode()


def test_500_renders_in_the_layout_with_the_user(coordinator1):
    request = RequestFactory().get("/broken/")
    request.user = coordinator1
    with translation.override("en"):
        response = server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert 'id="main-nav"' in html and "Server error" in html and "may not have been saved" in html


def test_expired_form_explains_that_nothing_was_saved(coordinator1):
    client = Client(enforce_csrf_checks=True)
    client.force_login(coordinator1)
    response = client.post(reverse("trial:screen"), {"initials": "AB"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "This form has expired" in html and "Nothing was saved" in html and 'id="main-nav"' in html


def test_api_errors_stay_json(as_user, coordinator1):
    response = as_user(coordinator1).get("/api/v1/no-such-resource/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json" and response.json() == {"detail": "Page not found"}


@pytest.mark.parametrize("name", ["favicon.ico", "favicon.svg"])
def test_favicon_exists(name):
    assert finders.find(name)


def test_favicon_ico_address_leads_to_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.ico")
