"""The deployed stack's description: docker-compose.yml is valid against the Compose Specification's JSON schema,
and every long-running service restarts on its own and says whether it is healthy.

There is no Docker engine on the test machines, so the file is checked, not run.
"""

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml
from django.conf import settings

COMPOSE = Path(settings.BASE_DIR, "docker-compose.yml")
ONE_SHOT = {"roles", "migrate"}  # jobs that end; the others wait for them to complete successfully


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_schema() -> dict:
    # The Compose Specification's schema as check-jsonschema ships it (a test dependency), not a hand-made copy.
    schema = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(schema.read_text())


def test_compose_file_is_valid_against_the_compose_specification(compose):
    validator = jsonschema.Draft7Validator(compose_schema())
    errors = sorted(validator.iter_errors(compose), key=lambda error: list(error.path))
    assert [f"{'/'.join(map(str, error.path))}: {error.message}" for error in errors] == []


def test_the_schema_check_catches_a_broken_file(compose):
    broken = {**compose, "services": {**compose["services"], "web": {**compose["services"]["web"], "ports": 8000}}}
    assert list(jsonschema.Draft7Validator(compose_schema()).iter_errors(broken))


def test_every_long_running_service_has_a_healthcheck_and_a_restart_policy(compose):
    services = compose["services"]
    assert set(services) >= {"db", "redis", "migrate", "web", "worker", "beat"}
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            continue
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name
        healthcheck = service.get("healthcheck", {})
        assert healthcheck.get("test") and not healthcheck.get("disable"), name


def test_app_services_wait_for_migrations_and_connect_as_the_app_role(compose):
    for name in ("web", "worker", "beat"):
        service = compose["services"][name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert service["environment"]["DATABASE_URL"].startswith("postgres://edc_app:"), name
        assert service["environment"]["DEBUG"] == "0" and service["environment"]["SECURE_COOKIES"].endswith(":-1}")


def test_no_default_password_anywhere(compose):
    text = COMPOSE.read_text()
    for variable in ("POSTGRES_PASSWORD", "DB_OWNER_PASSWORD", "DB_APP_PASSWORD", "SECRET_KEY"):
        assert f"${{{variable}:-" not in text, variable
