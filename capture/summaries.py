"""Summary counts kept in step with the data, so that no page aggregates item values or queries.

Pages that show progress for many participants at once (SDV progress by site and by participant, the query inboxes'
counts by state, the forms awaiting verification) read counters instead of counting millions of item values:

- `FormInstance.sdv_entered / sdv_verified / sdv_changed`: of the form's values a person entered (a value or the
  reason it is missing; derived items are computed, so never verified), how many a monitor verified, and how many
  changed since they were verified; `FormInstance.queries_unresolved`: its queries still open or answered;
- `ParticipantSummary`: the same three for all the participant's visits, and their queries by state;
- `SiteSummary`: the sums over the site's participants.

Every service that changes what they count (form_save, items_verify, raising, answering, closing and re-opening a
query, a log row's automatic queries) calls `participant_changed` once, in its transaction, before its audit record:
the participant is locked (step 1 of trial/locking.py), so recounting that one participant from their rows is exact
(a few hundred values, read by index), and the site's counters move by the difference. The summary rows are locked
after the form instances and before the audit chain (trial/locking.py, step 4b).

`rebuild` recomputes every counter from the data in a few set-based statements: the migration that introduced them,
the benchmark's COPY-built datasets and `manage.py rebuild_summaries` use it.
"""

from __future__ import annotations

import functools

from django.db import connection, transaction

from capture.models import FormInstance, ItemValue, ParticipantSummary, Query, QueryEvent, SiteSummary
from trial.models import ItemDefinition, Participant, Site, Visit
from trial.prepared import execute_prepared

COUNTERS = ("sdv_entered", "sdv_verified", "sdv_changed", "queries_open", "queries_answered", "queries_closed")


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "form": quote(FormInstance._meta.db_table),
        "value": quote(ItemValue._meta.db_table),
        "item": quote(ItemDefinition._meta.db_table),
        "visit": quote(Visit._meta.db_table),
        "query": quote(Query._meta.db_table),
        "event": quote(QueryEvent._meta.db_table),
        "participant": quote(Participant._meta.db_table),
        "site": quote(Site._meta.db_table),
        "psum": quote(ParticipantSummary._meta.db_table),
        "ssum": quote(SiteSummary._meta.db_table),
    }


# A value a person entered: an item that is not derived, holding a value or the reason it is missing.
_ENTERED = "(i.derived = '' AND NOT (v.number IS NULL AND v.text = '' AND v.date IS NULL AND v.missing_reason = ''))"
_SDV_COUNTS = (
    f"count(*) FILTER (WHERE {_ENTERED}) AS sdv_entered, "
    f"count(*) FILTER (WHERE {_ENTERED} AND v.verified_at IS NOT NULL) AS sdv_verified, "
    f"count(*) FILTER (WHERE {_ENTERED} AND v.changed_since_verification) AS sdv_changed"
)
_QUERY_COUNTS = (
    "count(*) FILTER (WHERE q.state = 'open') AS queries_open, "
    "count(*) FILTER (WHERE q.state = 'answered') AS queries_answered, "
    "count(*) FILTER (WHERE q.state = 'closed') AS queries_closed"
)
# The latest step of a query's thread, or its raising (an automatic query has no thread until it closes).
_LAST_ACTIVITY = "COALESCE((SELECT max(e.at) FROM {event} e WHERE e.query_id = {query}.id), {query}.created_at)"


# --- Kept in step by the services ----------------------------------------------------------------------------------


def participant_changed(participant: Participant, *, visit_id: int | None = None) -> None:
    """Recount the participant's summary (and the forms of `visit_id`, whose values changed) and move their site's
    counters by the difference. Call it once per write, in the write's transaction, with the participant locked,
    after the values and queries are written and before the audit record (trial/locking.py, step 4b).
    One statement on PostgreSQL."""
    params = {"participant": participant.pk, "site": participant.site_id, "visit": visit_id}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with_forms = visit_id is not None
            execute_prepared(
                cursor,
                name=f"capture_participant_changed_{int(with_forms)}",
                sql=functools.partial(_pg_prepared_statement, with_forms),
                types=["bigint"] * len(_PARAMETERS),
                params=[params[name] for name in _PARAMETERS],
            )
            return
        for statement in _portable_statements(visit_id is not None):
            cursor.execute(statement, params)


def statement_count(*, with_forms: bool) -> int:
    """How many SQL statements `participant_changed` runs on this database (for the tests that count a write's)."""
    return 1 if connection.vendor == "postgresql" else len(_portable_statements(with_forms))


def _participant_counts_sql() -> str:
    """The participant's counters, recounted from their rows (one row)."""
    t = _tables()
    return (
        f"SELECT CAST(%(participant)s AS bigint) AS participant_id, CAST(%(site)s AS bigint) AS site_id, sdv.*, qc.* "
        f"FROM "
        f"(SELECT {_SDV_COUNTS} FROM {t['value']} v JOIN {t['item']} i ON i.id = v.item_id "
        f"JOIN {t['visit']} vi ON vi.id = v.visit_id WHERE vi.participant_id = %(participant)s) sdv, "
        f"(SELECT {_QUERY_COUNTS} FROM {t['query']} q WHERE q.participant_id = %(participant)s) qc"
    )


def _forms_sql(with_values: bool) -> str:
    """Recount the participant's forms' unresolved queries and (with `with_values`) the SDV counters of the forms of
    the visit whose values changed; only rows whose counts moved are written."""
    t = _tables()
    form = t["form"]
    if with_values:
        sdv_source = (
            f"LEFT JOIN (SELECT i.form_id, {_SDV_COUNTS} FROM {t['value']} v JOIN {t['item']} i ON i.id = v.item_id "
            f"WHERE v.visit_id = %(visit)s GROUP BY i.form_id) s ON fi.visit_id = %(visit)s "
            f"AND s.form_id = fi.definition_id "
        )
        sdv_columns = "s.sdv_entered, s.sdv_verified, s.sdv_changed"
    else:
        sdv_source = ""
        sdv_columns = ", ".join(
            f"CAST(NULL AS bigint) AS {name}" for name in ("sdv_entered", "sdv_verified", "sdv_changed")
        )
    new = {name: f"COALESCE(c.{name}, {form}.{name})" for name in ("sdv_entered", "sdv_verified", "sdv_changed")}
    return (
        f"UPDATE {form} SET sdv_entered = {new['sdv_entered']}, sdv_verified = {new['sdv_verified']}, "
        f"sdv_changed = {new['sdv_changed']}, queries_unresolved = c.queries_unresolved "
        f"FROM (SELECT fi.id, {sdv_columns}, COALESCE(q.n, 0) AS queries_unresolved FROM {form} fi "
        f"JOIN {t['visit']} vi ON vi.id = fi.visit_id {sdv_source}"
        f"LEFT JOIN (SELECT q.visit_id, q.form_id, count(*) AS n FROM {t['query']} q "
        f"WHERE q.participant_id = %(participant)s AND q.state <> 'closed' AND q.form_id IS NOT NULL "
        f"GROUP BY q.visit_id, q.form_id) q ON q.visit_id = fi.visit_id AND q.form_id = fi.definition_id "
        f"WHERE vi.participant_id = %(participant)s) c "
        f"WHERE {form}.id = c.id AND ({form}.sdv_entered, {form}.sdv_verified, {form}.sdv_changed, "
        f"{form}.queries_unresolved) <> ({new['sdv_entered']}, {new['sdv_verified']}, {new['sdv_changed']}, "
        f"c.queries_unresolved)"
    )


def _last_activity_sql() -> str:
    """Set the participant's queries' last activity where it moved."""
    t = _tables()
    last = _LAST_ACTIVITY.format(event=t["event"], query=t["query"])
    return (
        f"UPDATE {t['query']} SET last_activity_at = {last} WHERE {t['query']}.participant_id = %(participant)s "
        f"AND {t['query']}.last_activity_at {_distinct()} {last}"
    )


def _distinct() -> str:
    return "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"


def _participant_upsert(source: str) -> str:
    t = _tables()
    columns = ", ".join(COUNTERS)
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in COUNTERS)
    return (
        f"INSERT INTO {t['psum']} (participant_id, site_id, {columns}) SELECT participant_id, site_id, {columns} "
        f"FROM {source} WHERE true ON CONFLICT (participant_id) DO UPDATE SET {updates}"
    )


def _site_upsert(new: str, old: str) -> str:
    """Add the participant's new counts less their old ones (no row yet: zeros) to their site's counters."""
    t = _tables()
    columns = ", ".join(COUNTERS)
    moves = ", ".join(f"n.{name} - COALESCE(o.{name}, 0)" for name in COUNTERS)
    updates = ", ".join(f"{name} = {t['ssum']}.{name} + EXCLUDED.{name}" for name in COUNTERS)
    return (
        f"INSERT INTO {t['ssum']} (site_id, {columns}) SELECT n.site_id, {moves} FROM {new} n LEFT JOIN {old} o "
        f"ON o.participant_id = n.participant_id WHERE true ON CONFLICT (site_id) DO UPDATE SET {updates}"
    )


def _pg_statement(with_forms: bool) -> str:
    """Everything in one statement: every part of it reads the snapshot taken before any of its writes, so `old`
    is the summary as it was."""
    t = _tables()
    return (
        f"WITH new AS ({_participant_counts_sql()}), "
        f"old AS (SELECT * FROM {t['psum']} WHERE participant_id = %(participant)s), "
        f"forms AS ({_forms_sql(with_forms)}), activity AS ({_last_activity_sql()}), "
        f"participant_row AS ({_participant_upsert('new')}) "
        f"{_site_upsert('new', 'old')}"
    )


_PARAMETERS = ("participant", "site", "visit")


def _pg_prepared_statement(with_forms: bool) -> str:
    """The statement with its parameters numbered, as PREPARE takes them (planned once per connection: it joins
    and nests more than it reads, and took longer to plan than to run)."""
    statement = _pg_statement(with_forms)
    for number, name in enumerate(_PARAMETERS, start=1):
        statement = statement.replace(f"%({name})s", f"${number}")
    return statement


def _portable_statements(with_forms: bool) -> list[str]:
    """The same in several statements, for SQLite (no writes in WITH): the site moves first, reading the
    participant's old row, which is then replaced."""
    t = _tables()
    new = f"({_participant_counts_sql()})"
    return [
        _forms_sql(with_forms),
        _last_activity_sql(),
        _site_upsert(new, t["psum"]),
        _participant_upsert(f"{new} n"),
    ]


# --- Rebuilt from the data -----------------------------------------------------------------------------------------


def rebuild() -> None:
    """Recompute every counter from the data, set-based (a handful of statements whatever the size).

    One transaction (or a savepoint of the caller's); on PostgreSQL the tables it counts are locked against
    writes (SHARE) until it commits, so the counters match one consistent state."""
    t = _tables()
    last = _LAST_ACTIVITY.format(event=t["event"], query=t["query"])
    columns = ", ".join(COUNTERS)
    statements = [
        f"UPDATE {t['form']} SET sdv_entered = 0, sdv_verified = 0, sdv_changed = 0 "
        f"WHERE sdv_entered <> 0 OR sdv_verified <> 0 OR sdv_changed <> 0",
        f"UPDATE {t['form']} SET sdv_entered = c.sdv_entered, sdv_verified = c.sdv_verified, "
        f"sdv_changed = c.sdv_changed FROM (SELECT v.visit_id, i.form_id, {_SDV_COUNTS} FROM {t['value']} v "
        f"JOIN {t['item']} i ON i.id = v.item_id GROUP BY v.visit_id, i.form_id) c "
        f"WHERE {t['form']}.visit_id = c.visit_id AND {t['form']}.definition_id = c.form_id",
        f"UPDATE {t['form']} SET queries_unresolved = 0 WHERE queries_unresolved <> 0",
        f"UPDATE {t['form']} SET queries_unresolved = c.n FROM (SELECT q.visit_id, q.form_id, count(*) AS n "
        f"FROM {t['query']} q WHERE q.state <> 'closed' AND q.form_id IS NOT NULL GROUP BY q.visit_id, q.form_id) c "
        f"WHERE {t['form']}.visit_id = c.visit_id AND {t['form']}.definition_id = c.form_id",
        f"UPDATE {t['query']} SET last_activity_at = {last} WHERE last_activity_at {_distinct()} {last}",
        f"DELETE FROM {t['psum']}",
        f"INSERT INTO {t['psum']} (participant_id, site_id, {columns}) "
        f"SELECT p.id, p.site_id, COALESCE(sdv.sdv_entered, 0), COALESCE(sdv.sdv_verified, 0), "
        f"COALESCE(sdv.sdv_changed, 0), COALESCE(qc.queries_open, 0), COALESCE(qc.queries_answered, 0), "
        f"COALESCE(qc.queries_closed, 0) FROM {t['participant']} p "
        f"LEFT JOIN (SELECT vi.participant_id, {_SDV_COUNTS} FROM {t['value']} v "
        f"JOIN {t['item']} i ON i.id = v.item_id JOIN {t['visit']} vi ON vi.id = v.visit_id "
        f"GROUP BY vi.participant_id) sdv ON sdv.participant_id = p.id "
        f"LEFT JOIN (SELECT q.participant_id, {_QUERY_COUNTS} FROM {t['query']} q GROUP BY q.participant_id) qc "
        f"ON qc.participant_id = p.id",
        f"DELETE FROM {t['ssum']}",
        f"INSERT INTO {t['ssum']} (site_id, {columns}) SELECT s.id, "
        + ", ".join(f"COALESCE(sum(ps.{name}), 0)" for name in COUNTERS)
        + f" FROM {t['site']} s LEFT JOIN {t['psum']} ps ON ps.site_id = s.id GROUP BY s.id",
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {t['value']}, {t['query']}, {t['event']} IN SHARE MODE")
        for statement in statements:
            cursor.execute(statement)
