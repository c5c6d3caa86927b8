"""Backups of the whole trial record: the database and the media files (generated reports), with a manifest.

A backup is a folder: `database.dump` (pg_dump's custom format, or a copy of the SQLite file), `media.tar.gz`,
and `manifest.json` with every table's row count and every media file's SHA-256, all taken from one snapshot of
the database (on PostgreSQL the counts and the dump read the same exported snapshot, so writes made while the
backup runs are in neither). A restore goes into an empty database and is checked against the manifest before it
is declared good; `manage.py verify_audit` then proves the audit trail intact.
"""

import contextlib
import datetime
import hashlib
import json
import sqlite3
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from django.apps import apps
from django.conf import settings
from django.db import connection

MANIFEST = "manifest.json"
DUMP = "database.dump"
MEDIA = "media.tar.gz"
LIBPQ_KEYS = {"dbname", "user", "password", "host", "port", "sslmode", "sslrootcert", "sslcert", "sslkey"}


class BackupError(Exception):
    """A backup or a restore that cannot be trusted; the message says why."""


@dataclass(frozen=True)
class Restored:
    tables: int
    rows: int
    media_files: int


def _tables() -> list[str]:
    return sorted({model._meta.db_table for model in apps.get_models() if model._meta.managed})


def _quoted(table: str) -> str:
    return '"' + table.replace('"', '""') + '"'


def _counts(cursor: object, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        cursor.execute(f"SELECT count(*) FROM {_quoted(table)}")
        counts[table] = cursor.fetchone()[0]
    return counts


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _media_files(root: Path) -> dict[str, str]:
    if not root.is_dir():
        return {}
    return {str(path.relative_to(root)): sha256_of(path) for path in sorted(root.rglob("*")) if path.is_file()}


def _libpq_url() -> str:
    """The default database's connection settings as a libpq connection string, for pg_dump."""
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(
        **{key: value for key, value in params.items() if key in LIBPQ_KEYS and value not in (None, "")}
    )


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {result.stderr.strip()[:2000]}")


@contextlib.contextmanager
def _snapshot() -> Iterator[tuple[str, psycopg.Cursor]]:
    """A PostgreSQL snapshot id that pg_dump can share, and a cursor reading under it, held open meanwhile."""
    with psycopg.connect(_libpq_url(), autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        yield snapshot, conn.cursor()


def backup_create(*, output: Path) -> Path:
    """Write a backup folder under `output`; returns it."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = Path(output) / f"edc-backup-{stamp}"
    target.mkdir(parents=True, exist_ok=False)
    tables = _tables()
    if connection.vendor == "postgresql":
        with _snapshot() as (snapshot, cursor):
            counts = _counts(cursor, tables)
            _run(["pg_dump", "--format=custom", f"--snapshot={snapshot}", f"--file={target / DUMP}", _libpq_url()])
    else:
        source = sqlite3.connect(settings.DATABASES["default"]["NAME"])
        with contextlib.closing(source), contextlib.closing(sqlite3.connect(target / DUMP)) as copy:
            source.backup(copy)  # the SQLite online backup: one consistent copy
            counts = _counts(copy.cursor(), tables)
    media_root = Path(settings.MEDIA_ROOT)
    media = _media_files(media_root)
    with tarfile.open(target / MEDIA, "w:gz") as archive:
        for name in media:
            archive.add(media_root / name, arcname=name)
    manifest = {
        "created_at": stamp,
        "vendor": connection.vendor,
        "database_sha256": sha256_of(target / DUMP),
        "tables": counts,
        "media": media,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return target


def _manifest(source: Path) -> dict:
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source / MANIFEST} cannot be read: {exc}") from exc
    if sha256_of(source / DUMP) != manifest["database_sha256"]:
        raise BackupError(f"{source / DUMP} is not the file the backup wrote (its SHA-256 differs)")
    return manifest


def backup_restore(*, source: Path, database_url: str, media_root: Path) -> Restored:
    """Restore a PostgreSQL backup into the empty database `database_url` and its media into `media_root`, then
    check every table's row count and every media file's SHA-256 against the manifest (BackupError if any differs).
    """
    source = Path(source)
    manifest = _manifest(source)
    if manifest["vendor"] != "postgresql":
        raise BackupError("Only a PostgreSQL backup restores into PostgreSQL; copy an SQLite backup's file instead.")
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
        if tables:
            raise BackupError("The target database is not empty: restore into a new database.")
    # Ownership and grants belong to the server restored to: run setup_database_roles there afterwards.
    _run(["pg_restore", "--no-owner", "--no-acl", "--exit-on-error", f"--dbname={database_url}", str(source / DUMP)])
    _extract_media(source / MEDIA, Path(media_root))
    with psycopg.connect(database_url) as conn:
        counts = _counts(conn.cursor(), sorted(manifest["tables"]))
    _compare(manifest, counts, _media_files(Path(media_root)))
    return Restored(tables=len(counts), rows=sum(counts.values()), media_files=len(manifest["media"]))


def _extract_media(archive_path: Path, media_root: Path) -> None:
    media_root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive_path, "r:gz") as archive:
        archive.extractall(media_root, filter="data")  # no absolute paths, links or device files


def _compare(manifest: dict, counts: dict[str, int], media: dict[str, str]) -> None:
    wrong = [
        f"{table}: {counts.get(table)} rows, the backup holds {expected}"
        for table, expected in manifest["tables"].items()
        if counts.get(table) != expected
    ]
    wrong += [
        f"media {name}: {'missing' if name not in media else 'SHA-256 differs'}"
        for name, digest in manifest["media"].items()
        if media.get(name) != digest
    ]
    if wrong:
        raise BackupError("The restore differs from the backup: " + "; ".join(wrong[:20]))
