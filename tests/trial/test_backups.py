"""Backup and the restore drill: a backup restored into a fresh database holds every row and every report file
it was taken with, and its audit trail verifies."""

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from capture.services import form_save
from reports import runs
from reports.models import ReportRun, RunState
from tests.factories import enrolled
from trial.backups import MANIFEST, BackupError, backup_create, backup_restore

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TABLES = [
    "trial_participant",
    "trial_visit",
    "capture_forminstance",
    "capture_itemvalue",
    "capture_query",
    "trial_auditrecord",
    "reports_reportrun",
]


def conninfo(**overrides: str) -> str:
    """libpq's connection string to the test database (or, with overrides, another one of its server)."""
    params = connection.get_connection_params()
    keys = {key: params[key] for key in ("dbname", "user", "password", "host", "port") if params.get(key)}
    return psycopg.conninfo.make_conninfo(**{**keys, **overrides})


def counts(database: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(database) as conn:
        return {table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}


def public_tables(database: str) -> int:
    with psycopg.connect(database) as conn:
        return conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def fresh_database() -> str:
    """A new, empty database on the test server; dropped afterwards."""
    name = f"edc_restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo(dbname="postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield conninfo(dbname=name)
    finally:
        with psycopg.connect(conninfo(dbname="postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def trial_record(coordinator1, sponsor, site1, media, django_capture_on_commit_callbacks):
    """A participant with a saved form, and a generated report file."""
    participant = enrolled(coordinator1, site1, days_ago=95)
    m3 = participant.visits.get(definition__code="M3")
    values = {"LBDAT": m3.target_date.isoformat(), "ALT": "120", "AST": "32", "ALB": "25", "BILI": "18.2"}
    form_save(user=coordinator1, visit_id=m3.pk, form_code="LIVER", version=0, values=values)
    with django_capture_on_commit_callbacks(execute=True):
        runs.report_request(user=sponsor, kind="trial_summary", site_numbers=[1])
    run = ReportRun.objects.get()
    assert run.state == RunState.DONE
    return run


def test_restore_drill(trial_record, tmp_path, fresh_database):
    out = io.StringIO()
    call_command("backup_create", str(tmp_path / "backups"), stdout=out)
    backup = Path(out.getvalue().strip())
    assert (backup / MANIFEST).exists() and (backup / "database.dump").exists()
    restored_media = tmp_path / "restored-media"
    call_command("backup_restore", str(backup), database_url=fresh_database, media_root=str(restored_media))

    # The restored audit trail verifies, checked by the command an operator runs against the restored database.
    params = psycopg.conninfo.conninfo_to_dict(fresh_database)
    url = f"postgres://{params['user']}@{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}/{params['dbname']}"
    verify = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DATABASE_URL": url, "AUDIT_ANCHOR_DIR": str(tmp_path / "anchors")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0 and "ok" in verify.stdout, verify.stdout + verify.stderr
    # Every table holds what the live database holds, the audit trail included.
    assert counts(fresh_database, TABLES) == counts(conninfo(), TABLES)
    restored = counts(fresh_database, TABLES)
    assert restored["capture_itemvalue"] == 5 and restored["trial_auditrecord"] > 0
    # The report file came back byte for byte: its SHA-256 is the one recorded when it was generated.
    restored_file = restored_media / trial_record.file.name
    assert hashlib.sha256(restored_file.read_bytes()).hexdigest() == trial_record.sha256


def test_restore_refuses_a_database_that_is_not_empty(trial_record, tmp_path):
    backup = backup_create(output=tmp_path / "backups")
    with pytest.raises(BackupError, match="not empty"):
        backup_restore(source=backup, database_url=conninfo(), media_root=tmp_path / "elsewhere")


def test_a_tampered_dump_is_refused_before_anything_is_restored(trial_record, tmp_path, fresh_database):
    backup = backup_create(output=tmp_path / "backups")
    with (backup / "database.dump").open("ab") as dump:
        dump.write(b"tampered")
    with pytest.raises(CommandError, match="SHA-256 differs"):
        call_command("backup_restore", str(backup), database_url=fresh_database, media_root=str(tmp_path / "m"))
    assert public_tables(fresh_database) == 0


def test_a_lost_report_file_fails_the_restore_check(trial_record, tmp_path, fresh_database):
    backup = backup_create(output=tmp_path / "backups")
    with tarfile.open(backup / "media.tar.gz", "w:gz"):
        pass  # the archive lost the report
    with pytest.raises(BackupError, match=f"media {trial_record.file.name}: missing"):
        backup_restore(source=backup, database_url=fresh_database, media_root=tmp_path / "m")
