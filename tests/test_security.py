"""Deployment security: `check --deploy` is clean with the production settings, the security headers (CSP without
inline script, no-store on trial data), the schema and docs behind a login, and a compose file and image that are
safe by default."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from tests.api_clients import schema_reader

BASE_DIR = Path(settings.BASE_DIR)
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-production-like-secret-key-" + "x" * 40 + "-with-enough-variety-0123456789",
    "ALLOWED_HOSTS": "edc.example.org",
    # Production refuses to start without the audit trail's HMAC key (trial/audit.py).
    "AUDIT_HMAC_KEYS": "2026:" + "k" * 64,
}

# The test run's own variables: pytest's marker, and the browser tests' permission for sync calls in async code.
NOT_IN_PRODUCTION = {"PYTEST_VERSION", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def run_django(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """Django as production starts it: not under pytest (no PYTEST_VERSION), DEBUG off."""
    full = {name: value for name, value in os.environ.items() if name not in NOT_IN_PRODUCTION}
    full.update(PRODUCTION, **env)
    return subprocess.run([sys.executable, *args], env=full, cwd=BASE_DIR, capture_output=True, text=True, timeout=180)


def production_setting(name: str, **env: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print(repr(settings.{name}))"
    result = run_django(["-c", code], DJANGO_SETTINGS_MODULE="config.settings", **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- Settings -----------------------------------------------------------------------------------------------


def test_check_deploy_is_clean_with_the_production_settings():
    result = run_django(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECURE_SSL_REDIRECT", "True"),
        ("SECURE_HSTS_SECONDS", "31536000"),
        ("SESSION_COOKIE_SECURE", "True"),
        ("CSRF_COOKIE_SECURE", "True"),
    ],
)
def test_production_is_secure_by_default(name, value):
    assert production_setting(name) == value


def test_each_can_be_configured_behind_a_tls_proxy():
    assert production_setting("SECURE_SSL_REDIRECT", SECURE_SSL_REDIRECT="0") == "False"
    assert production_setting("SECURE_HSTS_SECONDS", SECURE_HSTS_SECONDS="600") == "600"
    assert production_setting("SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER="1") == (
        "('HTTP_X_FORWARDED_PROTO', 'https')"
    )


def test_a_bad_value_stops_the_start():
    result = run_django(["manage.py", "check"], SECURE_SSL_REDIRECT="perhaps")
    assert result.returncode != 0 and "SECURE_SSL_REDIRECT must be a boolean" in result.stderr


def test_the_tests_and_make_run_work_over_http():
    assert settings.SECURE_SSL_REDIRECT is False and settings.SESSION_COOKIE_SECURE is False


# --- Headers ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/participants/", "/api/v1/sites/", "/api/v1/participants/"])
def test_trial_data_are_never_stored_by_a_cache(url, coordinator1, as_user):
    client = as_user(coordinator1)
    response = client.get(url)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_the_api_with_a_token_and_the_login_page_are_not_stored_either(coordinator1, client):
    assert "no-store" in client.get(reverse("login"))["Cache-Control"]
    key = APIClient().post("/api/v1/auth/token/", {"username": "coordinator1", "password": "test-password-123"})
    assert "no-store" in key["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/api/v1/sites/"])
def test_content_security_policy_allows_no_inline_script(url, coordinator1, as_user):
    policy = as_user(coordinator1).get(url)["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"""\s(on[a-z]+|hx-on[:\w-]*)\s*=\s*["']""", re.IGNORECASE)


def test_no_template_holds_inline_script():
    offenders = []
    for template in sorted((BASE_DIR / "templates").rglob("*.html")):
        text = template.read_text()
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, re.compile(r"javascript:", re.IGNORECASE)):
            offenders += [f"{template.relative_to(BASE_DIR)}: {m.group(0).strip()}" for m in pattern.finditer(text)]
    assert offenders == []


@pytest.mark.django_db
def test_rendered_pages_hold_no_inline_script(coordinator1, as_user):
    client = as_user(coordinator1)
    for url in ("/", "/participants/", reverse("trial:tokens")):
        page = client.get(url).content.decode()
        assert not INLINE_SCRIPT.search(page), url
        assert not INLINE_HANDLER.search(page), url


# --- Schema and docs ----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_need_a_login_when_debug_is_off(url, site1):
    response = APIClient().get(url)
    assert response.status_code in {302, 401}
    if response.status_code == 302:
        assert reverse("login") in response["Location"]
    else:
        assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_schema_and_docs_are_open_while_debug_is_on(site1, settings):
    settings.DEBUG = True
    assert APIClient().get("/api/schema/").status_code == 200
    assert APIClient().get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_the_docs_script_is_a_file_of_its_own(site1):
    client = schema_reader()
    page = client.get("/api/docs/").content.decode()
    script = re.search(r'<script src="([^"]*\?script=[^"]*)"', page)
    assert script, page
    response = client.get(script.group(1).replace("&amp;", "&"))
    assert response.status_code == 200 and "SwaggerUIBundle" in response.content.decode()


REFUSALS = {"400", "401", "403", "404", "409", "423"}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        return schema_reader().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def operations(schema: dict) -> list[tuple[str, str, dict]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return [(path, m, op) for path, ops in schema["paths"].items() for m, op in ops.items() if m in methods]


def test_every_refusal_documented_has_a_json_body(schema):
    missing = []
    for path, method, op in operations(schema):
        for code, response in op["responses"].items():
            if code in REFUSALS:
                content = response.get("content", {}).get("application/json", {})
                if not content.get("schema") or not (content.get("examples") or "example" in content):
                    missing.append(f"{method.upper()} {path} {code}")
    assert missing == []


def test_every_operation_says_what_it_refuses(schema):
    gaps = []
    for path, method, op in operations(schema):
        codes = set(op["responses"])
        open_to_anyone = {} in op.get("security", [{}])
        expected = set() if open_to_anyone else {"401"}
        if "{" in path:
            expected.add("404")
        if method != "get" and not open_to_anyone:
            expected.add("403")
        if "requestBody" in op:
            expected.add("400")
        if not expected <= codes:
            gaps.append(f"{method.upper()} {path}: {sorted(expected - codes)}")
        if "401" in codes:
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"], path
    assert gaps == []


def test_every_operation_carries_an_example(schema):
    def examples(op: dict) -> bool:
        bodies = [op.get("requestBody", {})] + list(op["responses"].values())
        return any(
            media.get("examples") or "example" in media for body in bodies for media in body.get("content", {}).values()
        )

    assert [f"{m.upper()} {p}" for p, m, op in operations(schema) if not examples(op)] == []


def test_the_state_conflicts_are_documented(schema):
    paths = schema["paths"]
    assert "409" in paths["/api/v1/visits/{visit_id}/forms/{form_code}/"]["put"]["responses"]
    assert "423" in paths["/api/v1/adverse-events/{id}/"]["put"]["responses"]


@pytest.mark.django_db
def test_spectacular_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").stat().st_size > 10_000


# --- Containers ---------------------------------------------------------------------------------------------


def test_compose_has_secure_cookies_and_no_default_database_password():
    text = (BASE_DIR / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    environment = compose["x-app-environment"]
    assert environment["SECURE_COOKIES"].endswith(":-1}")
    assert "DB_APP_PASSWORD:?" in environment["DATABASE_URL"]  # the app's role (docker-compose: roles, migrate)
    assert "POSTGRES_PASSWORD:?" in compose["services"]["db"]["environment"]["POSTGRES_PASSWORD"]
    assert "change-me" not in text
    for name in ("db", "redis", "web", "worker"):
        assert "healthcheck" in compose["services"][name], name


def test_the_image_runs_as_an_unprivileged_user():
    lines = [line.split() for line in (BASE_DIR / "Dockerfile").read_text().splitlines() if line.strip()]
    users = [words[1] for words in lines if words[0] == "USER"]
    assert users and users[-1] not in {"root", "0", "0:0"}
