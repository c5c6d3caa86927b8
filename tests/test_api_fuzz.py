"""An outside client (schemathesis) fuzzes every operation of /api/schema/ against the live server: no 5xx.

It runs on PostgreSQL, which refuses what SQLite swallows (a NUL in text, an integer past 64 bits), as a
coordinator of one site and as the data manager of all sites, over the demo trial (participants, visits, forms,
queries, adverse events). Each operation gets a bounded number of generated requests, some fitting the schema
and some breaking it (schemathesis' positive and negative modes); a server error is collected with the request
that caused it, and the test fails listing them all.
"""

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings
from hypothesis import HealthCheck, Phase, given, settings
from knox.models import AuthToken
from schemathesis.generation.modes import GenerationMode

EXAMPLES_PER_OPERATION = 6


@pytest.fixture
def demo_trial(transactional_db, protocol):
    with override_settings(DEBUG=True):
        call_command("seed_demo")


def server_errors(base_url: str, username: str) -> list[str]:
    _token, key = AuthToken.objects.create(user=get_user_model().objects.get(username=username))
    headers = {"Authorization": f"Token {key}"}
    schema = schemathesis.openapi.from_url(f"{base_url}/api/schema/", headers=headers)
    failures: list[str] = []
    for result in schema.get_all_operations():
        failures += _fuzz(result.ok(), base_url, headers)
    return failures


def _fuzz(operation: object, base_url: str, headers: dict[str, str]) -> list[str]:
    found: list[str] = []

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    # Requests that fit the schema and requests that break it (wrong types, values out of range), mixed.
    @given(case=operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE))
    def check(case: object) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        if response.status_code >= 500:
            found.append(
                f"{response.status_code} {case.method} {case.formatted_path} query={case.query!r} body={case.body!r}"
            )

    check()
    return found[:3]


@pytest.mark.postgres
def test_no_server_error_on_any_operation(demo_trial, live_server):
    """As a coordinator of site 1 and as the data manager of all sites, over one seeding of the demo trial."""
    failures = [
        f"{username}: {failure}"
        for username in ("coordinator1", "datamanager")
        for failure in server_errors(live_server.url, username)
    ]
    assert not failures, "\n".join(failures)
