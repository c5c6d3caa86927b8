"""API clients the tests share."""

from rest_framework.test import APIClient

from tests.factories import UserFactory


def schema_reader() -> APIClient:
    """A logged-in client: the schema and its docs need a login when DEBUG is off (as in the tests)."""
    client = APIClient()
    client.force_login(UserFactory(username="schema-reader"))
    return client
