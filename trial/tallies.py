"""Per-site tallies: how many participants (by status, arm and enrolment), visits, adverse events (by status),
signatures and locks each site has, kept by the database itself, so that no list counts its rows to paginate.

A list of every visit of a data manager's six sites needs its total for the pagination: counting 855,000 visits
at 100,000 participants takes 150 ms and grows with the trial. The tally answers in one indexed read of a few
dozen rows instead, whatever the trial's size, when the user's site scope is the only filter (a list narrowed
by anything else counts its rows, as before).

How they are kept. `trial_sitetally` holds signed deltas: (site, kind, n). A trigger on each counted table
(`Source` below; one per app, installed by the app's migration) adds a row +1 for a new row, -1 for a deleted
one, and -1/+1 when an update moves a row from one kind to another (an adverse event reported, a participant
enrolled). The tally of a kind is the sum of its deltas. So:

- **Exact and in the writer's transaction.** The delta row commits or rolls back with the row it counts, through
  every door: the services, bulk updates, the admin, a data fix in SQL. Only COPY with the triggers off (the
  benchmark's dataset builder) bypasses them, and it calls `rebuild` after the load.
- **No lock, so no place in the lock order.** Adding a delta is a plain INSERT into a table with no unique key:
  it takes no row lock and waits for nobody, so two coordinators enrolling at one site never queue on a shared
  counter row (trial/locking.py's order is untouched).
- **Small to read.** `compact` (every few minutes, by beat) replaces each site's deltas by their sum, in one
  statement on PostgreSQL (a single snapshot: a delta committed meanwhile is neither summed nor deleted), so a
  read sums the compacted rows plus the deltas of the last minutes' writes.

`rebuild` recounts every kind from the data: the migration that installs a source, the dataset builder and
`manage.py rebuild_summaries` use it. `tests/trial/test_tallies.py` checks the tallies against a recount after
every kind of write, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, migrations, transaction
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

TABLE = "trial_sitetally"
PARTICIPANT_TABLE = "trial_participant"
SITE_TABLE = "trial_site"


@dataclass(frozen=True)
class Source:
    """A counted table: each row counts once under `name` (and `detail`, an SQL expression of the row's columns
    written `{row}.column`, that names its kind within `name`), at its site: its own `site_id` column, or its
    participant's site (`via_participant`). `watched`: the columns an update may change the kind by."""

    name: str
    table: str
    detail: str = ""
    via_participant: bool = True
    watched: tuple[str, ...] = ()

    def kind(self, row: str) -> str:
        if not self.detail:
            return f"'{self.name}'"
        return f"('{self.name}:' || {self.detail.format(row=row)})"

    def rows(self, row: str) -> str:
        """FROM and WHERE of a SELECT giving the row's site as `site_id` (none for a participant not found)."""
        if self.via_participant:
            return f"FROM {PARTICIPANT_TABLE} p WHERE p.id = {row}.participant_id"
        return f"FROM (SELECT {row}.site_id AS site_id) p WHERE p.site_id IS NOT NULL"


# --- Kinds of this app (capture and safety declare theirs in their own tallies module) --------------------------

# A participant counts under status:arm code:enrolled, so the sites table, the participant lists and the survival
# follow-up each sum the kinds they show.
PARTICIPANTS = Source(
    "participant",
    PARTICIPANT_TABLE,
    detail=(
        "{row}.status || ':' || COALESCE((SELECT a.code FROM trial_arm a WHERE a.id = {row}.arm_id), '') || ':' "
        "|| CASE WHEN {row}.enrolment_date IS NULL THEN '0' ELSE '1' END"
    ),
    via_participant=False,
    watched=("site_id", "status", "arm_id", "enrolment_date"),
)
VISITS = Source("visit", "trial_visit")
SOURCES = (PARTICIPANTS, VISITS)


# --- Installing the triggers (from a migration) -----------------------------------------------------------------


def install(schema_editor: BaseDatabaseSchemaEditor, sources: Iterable[Source]) -> None:
    """Create the triggers that keep the sources' tallies (PostgreSQL or SQLite)."""
    for source in sources:
        for statement in _trigger_sql(schema_editor.connection.vendor, source):
            schema_editor.execute(statement)


def uninstall(schema_editor: BaseDatabaseSchemaEditor, sources: Iterable[Source]) -> None:
    for source in sources:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {_name(source)}_change ON {source.table}")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {_name(source)}_update ON {source.table}")
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {_name(source)}()")
        else:
            for event in ("insert", "delete", "update"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {_name(source)}_{event}")


def migration_operation(sources: tuple[Source, ...]) -> migrations.RunPython:
    """The step of an app's migration that installs its sources' triggers and counts their tallies from the rows
    already there (and, backwards, drops the triggers)."""

    def forward(apps: object, schema_editor: BaseDatabaseSchemaEditor) -> None:
        install(schema_editor, sources)
        rebuild(sources)

    def backward(apps: object, schema_editor: BaseDatabaseSchemaEditor) -> None:
        uninstall(schema_editor, sources)

    return migrations.RunPython(forward, backward)


def after_sqlite_remake(sources: tuple[Source, ...]) -> migrations.RunPython:
    """The step to follow a migration's change of a column of the sources' tables: SQLite makes such a table again
    and copies the rows, and the triggers go with the old table, so they are made again there and the tallies
    recounted. PostgreSQL alters a table in place and keeps them: nothing to do."""

    def forward(apps: object, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "sqlite":
            uninstall(schema_editor, sources)
            install(schema_editor, sources)
            rebuild(sources)

    return migrations.RunPython(forward, migrations.RunPython.noop)


def _name(source: Source) -> str:
    return f"{TABLE}_{source.name}"


def _delta(source: Source, row: str, n: int) -> str:
    return f"INSERT INTO {TABLE} (site_id, kind, n) SELECT p.site_id, {source.kind(row)}, {n} {source.rows(row)};"


def _trigger_sql(vendor: str, source: Source) -> list[str]:
    name, table = _name(source), source.table
    changed = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in source.watched)
    if vendor == "postgresql":
        function = (
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF TG_OP IN ('UPDATE', 'DELETE') THEN {_delta(source, 'OLD', -1)} END IF; "
            f"IF TG_OP IN ('UPDATE', 'INSERT') THEN {_delta(source, 'NEW', 1)} END IF; "
            f"RETURN NULL; END $$"
        )
        statements = [
            function,
            f"CREATE TRIGGER {name}_change AFTER INSERT OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()",
        ]
        if source.watched:
            statements.append(
                f"CREATE TRIGGER {name}_update AFTER UPDATE ON {table} FOR EACH ROW WHEN ({changed}) "
                f"EXECUTE FUNCTION {name}()"
            )
        return statements
    # SQLite: IS NOT instead of IS DISTINCT FROM; one trigger per event.
    changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in source.watched)
    statements = [
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} FOR EACH ROW BEGIN {_delta(source, 'NEW', 1)} END",
        f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} FOR EACH ROW BEGIN {_delta(source, 'OLD', -1)} END",
    ]
    if source.watched:
        statements.append(
            f"CREATE TRIGGER {name}_update AFTER UPDATE ON {table} FOR EACH ROW WHEN {changed} BEGIN "
            f"{_delta(source, 'OLD', -1)} {_delta(source, 'NEW', 1)} "
            f"END"
        )
    return statements


# --- Recounting and compacting ------------------------------------------------------------------------------------

_registered: dict[str, Source] = {source.name: source for source in SOURCES}


def register(*sources: Source) -> None:
    """Make an app's sources known to `rebuild()` without arguments (called by the app's tallies module)."""
    for source in sources:
        _registered[source.name] = source


def registered() -> tuple[Source, ...]:
    return tuple(_registered.values())


def rebuild(sources: Iterable[Source] | None = None) -> None:
    """Recount the sources' tallies (every registered source by default) from their rows, set-based."""
    with transaction.atomic(), connection.cursor() as cursor:
        for source in registered() if sources is None else sources:
            cursor.execute(f"DELETE FROM {TABLE} WHERE kind = %s OR kind LIKE %s", [source.name, f"{source.name}:%"])
            site = "p.site_id" if source.via_participant else "r.site_id"
            join = f"JOIN {PARTICIPANT_TABLE} p ON p.id = r.participant_id" if source.via_participant else ""
            cursor.execute(
                f"INSERT INTO {TABLE} (site_id, kind, n) SELECT {site}, {source.kind('r')}, count(*) "
                f"FROM {source.table} r {join} GROUP BY 1, 2"
            )


def compact() -> int:
    """Replace the deltas by one row per site and kind (their sum). Returns the number of rows left."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH gone AS (DELETE FROM {TABLE} RETURNING site_id, kind, n) "
                f"INSERT INTO {TABLE} (site_id, kind, n) SELECT site_id, kind, sum(n) FROM gone "
                f"GROUP BY site_id, kind HAVING sum(n) <> 0"
            )
        else:  # one writer at a time: the sums and the deletion see the same rows
            cursor.execute(f"SELECT site_id, kind, sum(n) FROM {TABLE} GROUP BY site_id, kind HAVING sum(n) <> 0")
            sums = cursor.fetchall()
            cursor.execute(f"DELETE FROM {TABLE}")
            cursor.executemany(f"INSERT INTO {TABLE} (site_id, kind, n) VALUES (%s, %s, %s)", sums)
        cursor.execute(f"SELECT count(*) FROM {TABLE}")
        return cursor.fetchone()[0]


# --- Reading --------------------------------------------------------------------------------------------------------


class Tally:
    """The tallies of some sites (one query): totals of a kind, or of participants by status, arm, enrolment."""

    def __init__(self, site_ids: Iterable[int], *, site_number: int | None = None) -> None:
        """The tallies of `site_ids` (the user's, from trial.access), or of the one among them numbered
        `site_number` (none if it is not among them)."""
        self.site_ids = sorted(set(site_ids))
        self.by_site: dict[int, dict[str, int]] = defaultdict(dict)
        if not self.site_ids:
            return
        placeholders = ", ".join(["%s"] * len(self.site_ids))
        where, params = f"t.site_id IN ({placeholders})", list(self.site_ids)
        if site_number is not None:
            where += f" AND t.site_id IN (SELECT s.id FROM {SITE_TABLE} s WHERE s.number = %s)"
            params.append(site_number)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT t.site_id, t.kind, sum(t.n) FROM {TABLE} t WHERE {where} GROUP BY 1, 2", params)
            for site_id, kind, n in cursor.fetchall():
                self.by_site[site_id][kind] = int(n)
        if site_number is not None:
            self.site_ids = sorted(self.by_site)

    def _kinds(self, site_id: int | None) -> Iterable[tuple[str, int]]:
        for site in self.site_ids if site_id is None else [site_id]:
            yield from self.by_site.get(site, {}).items()

    def total(self, name: str, *, detail: str | None = None, site_id: int | None = None) -> int:
        """Rows of a source, at every site read or at `site_id`; `detail`: of the kinds within it that it names
        or starts (`reported` counts `reported:open:routine` and the other reported kinds)."""
        return self.matching(name, *(detail.split(":") if detail else ()), site_id=site_id)

    def matching(self, name: str, *parts: str | None, site_id: int | None = None) -> int:
        """Rows of a source whose kind's parts are `parts` (None: any), at every site read or at `site_id`:
        `matching("ae", "reported", None, "expedited")` counts the reported expedited events, open or ended."""
        total = 0
        for kind, n in self._kinds(site_id):
            source, *detail = kind.split(":")
            if source == name and len(detail) >= len(parts):
                if all(part is None or part == value for part, value in zip(parts, detail, strict=False)):
                    total += n
        return total

    def participants(
        self,
        *,
        site_id: int | None = None,
        statuses: Iterable[str] | None = None,
        arm_codes: Iterable[str] | None = None,
        enrolled: bool | None = None,
    ) -> int:
        """Participants at every site read (or at `site_id`), optionally of some statuses, arms, and enrolled or
        not (an enrolment date)."""
        statuses = None if statuses is None else set(statuses)
        arms = None if arm_codes is None else set(arm_codes)
        total = 0
        for kind, n in self._kinds(site_id):
            name, _, detail = kind.partition(":")
            if name != PARTICIPANTS.name:
                continue
            status, arm, is_enrolled = _participant_kind(detail)
            if statuses is not None and status not in statuses:
                continue
            if arms is not None and arm not in arms:
                continue
            if enrolled is not None and (is_enrolled == "1") != enrolled:
                continue
            total += n
        return total

    def participants_by(self, site_id: int) -> dict[tuple[str, str], int]:
        """A site's participants by (status, arm code or '')."""
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for kind, n in self._kinds(site_id):
            name, _, detail = kind.partition(":")
            if name == PARTICIPANTS.name:
                status, arm, _enrolled = _participant_kind(detail)
                counts[status, arm] += n
        return counts


def _participant_kind(detail: str) -> tuple[str, str, str]:
    status, rest = detail.split(":", 1)
    arm, enrolled = rest.rsplit(":", 1)
    return status, arm, enrolled
