"""Shared fixtures: the protocol, the six sites, and one user per role of site 1 and site 2.

Tests that need PostgreSQL, a Celery worker or Chromium are skipped when it is missing, with a reason naming
it; under CI (CI=true) a skip is a failure, so CI proves everything.
"""

import os
import shutil

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.backends.postgresql.operations import DatabaseOperations
from django.db.backends.sqlite3.base import DatabaseOperations as SQLiteOperations

from tests.factories import make_user
from trial.models import Role, Site
from trial.services import protocol_load

# Playwright's sync API runs an event loop in this thread; the ORM calls around it are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = "/usr/bin/chromium"


def missing(reason: str) -> None:
    """Skip for want of `reason`; under CI, fail instead."""
    if IN_CI:
        pytest.fail(f"CI must run every test, but {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") or item.get_closest_marker("browser"):
        if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
            missing("PostgreSQL is not configured (set DATABASE_URL=postgres://...)")
    if item.get_closest_marker("browser") and not shutil.which(CHROMIUM):
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which must run every test: {report.longrepr}"


_flush = DatabaseOperations.execute_sql_flush
_AUDIT_TRIGGER = "ALTER TABLE trial_auditrecord {} TRIGGER trial_auditrecord_no_truncate"


def _flush_with_audit_truncate(self: DatabaseOperations, sql_list: list[str]) -> None:
    # A transactional test ends with a flush, which PostgreSQL runs as TRUNCATE, and the audit table refuses
    # TRUNCATE (as it must in production). The test database's owner lifts that for the flush alone, in the
    # flush's own transaction.
    _flush(self, [_AUDIT_TRIGGER.format("DISABLE"), *sql_list, _AUDIT_TRIGGER.format("ENABLE")])


DatabaseOperations.execute_sql_flush = _flush_with_audit_truncate


_sqlite_flush = SQLiteOperations.execute_sql_flush


def _flush_with_tallies(self: SQLiteOperations, sql_list: list[str]) -> None:
    # SQLite flushes with DELETE, which fires the tallies' triggers (trial/tallies.py): the deltas they add for the
    # rows deleted after the tally table was emptied are emptied too.
    _sqlite_flush(self, [*sql_list, "DELETE FROM trial_sitetally"])


SQLiteOperations.execute_sql_flush = _flush_with_tallies


@pytest.fixture(autouse=True)
def audit_anchor_dir(settings: object, tmp_path_factory: pytest.TempPathFactory) -> object:
    """Each test anchors the audit chain in a folder of its own: the test database starts afresh every test."""
    settings.AUDIT_ANCHOR_DIR = tmp_path_factory.mktemp("anchors")
    return settings.AUDIT_ANCHOR_DIR


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: object) -> None:
    with django_db_blocker.unblock():
        protocol_load()


@pytest.fixture
def protocol(db: None) -> object:
    # Idempotent and cheap once loaded; a transactional test's flush may have emptied the tables.
    return protocol_load()[0]


@pytest.fixture
def site1(protocol: object) -> Site:
    return Site.objects.get(number=1)


@pytest.fixture
def site2(protocol: object) -> Site:
    return Site.objects.get(number=2)


@pytest.fixture
def coordinator1(site1: Site) -> object:
    return make_user("coordinator1", {site1: Role.COORDINATOR})


@pytest.fixture
def coordinator2(site2: Site) -> object:
    return make_user("coordinator2", {site2: Role.COORDINATOR})


@pytest.fixture
def investigator1(site1: Site) -> object:
    return make_user("investigator1", {site1: Role.INVESTIGATOR})


@pytest.fixture
def monitor(site1: Site) -> object:
    return make_user("monitor", {site: Role.MONITOR for site in Site.objects.filter(number__lte=3)})


@pytest.fixture
def datamanager(site1: Site) -> object:
    return make_user("datamanager", {site: Role.DATA_MANAGER for site in Site.objects.all()})


@pytest.fixture
def sponsor(site1: Site) -> object:
    return make_user("sponsor", {site: Role.SPONSOR for site in Site.objects.all()})


@pytest.fixture
def outsider(db: None) -> object:
    """A user with an account and no membership anywhere."""
    return get_user_model().objects.create_user("outsider", password="pw-outsider-123")


@pytest.fixture
def as_user(client: object) -> object:
    """Log the test client in as a user: `as_user(coordinator1).get(url)`."""

    def login(user: object) -> object:
        client.force_login(user)
        return client

    return login


@pytest.fixture
def is_postgres(db: None) -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def zh_catalog(settings: object) -> None:
    """The Chinese catalog compiled afresh (the .mo is not in git) and read afresh by Python and Django."""
    import gettext

    from django.conf import settings as django_settings
    from django.core.management import call_command

    call_command("compile_translations", verbosity=0)
    gettext._translations.clear()  # Python keeps each catalog file it read
    settings.LOCALE_PATHS = list(django_settings.LOCALE_PATHS)  # the setting_changed signal clears Django's caches
