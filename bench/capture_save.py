"""Saving a 45-item lab panel: form saves per second through capture.services.form_save, against plain psycopg
with the same semantics in one transaction per save: the participant and visit locked (FOR NO KEY UPDATE, the order
of trial/locking.py), the form instances locked and the version checked, the stored values read and compared, the
changed values flagged and upserted, the version raised, the summary counters recounted (the rows the service keeps:
the forms', the participant's and the site's), the audit chain taken (advisory lock, last hash) and one
HMAC-chained record appended per changed item and for the form.

Target (../shared/PERFORMANCE.md): the service reaches at least 0.5 of the raw throughput. Runs in a throw-away
test database (test_<name of DATABASE_URL>) on PostgreSQL:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc_bench .venv/bin/python bench/capture_save.py
"""

import datetime
import hashlib
import hmac
import json
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import yaml
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from harness import test_database

from capture import summaries
from capture.models import FormInstance
from capture.services import form_save
from trial.models import ItemDefinition, Role, Site
from trial.protocol_file import DEFAULT_PATH
from trial.services import protocol_load

SAVES = 200
ROUNDS = 3
ITEMS = 45


def amended_protocol() -> None:
    from tests.capture.conftest import numeric_form

    definition = yaml.safe_load(DEFAULT_PATH.read_text())
    definition["forms"].append(numeric_form("P45", ITEMS))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p45.yaml"
        path.write_text(yaml.safe_dump(definition, allow_unicode=True))
        protocol_load(path=path)


def a_visit() -> tuple[object, object]:
    from tests.factories import enrolled, make_user

    site = Site.objects.get(number=1)
    user = make_user("bench-coordinator", {site: Role.COORDINATOR})
    visit = enrolled(user, site, days_ago=100).visits.get(definition__code="M3")
    return user, visit


def service_rate(user: object, visit: object, start: int) -> float:
    version = FormInstance.objects.filter(visit=visit, definition__code="P45").values_list("version", flat=True)
    version = version.first() or 0
    began = time.perf_counter()
    for n in range(SAVES):
        values = {f"X{i:02d}": str(10 + (start + n + i) % 900) for i in range(ITEMS)}
        version = form_save(user=user, visit_id=visit.pk, form_code="P45", version=version, values=values).form.version
    return SAVES / (time.perf_counter() - began)


# The raw baseline does what form_save must do, in the service's lock order (trial/locking.py), with the same
# statements' shapes: lock the participant and the visit in one statement and the visit's form instances (FOR NO KEY
# UPDATE), check the version, read the visit's stored values, compare and flag in Python, upsert the changed values
# in one statement, raise the form's version, recount the summary counters, then take the audit chain
# (transaction-level advisory lock, the last hash) and append one HMAC-chained record per changed item and one for
# the form.
RAW_LOCK_VISIT = """
SELECT v.id, v.participant_id, p.site_id FROM trial_visit v JOIN trial_participant p ON p.id = v.participant_id
WHERE v.id = %s FOR NO KEY UPDATE
"""
RAW_LOCK_FORMS = (
    "SELECT id, definition_id, version, state FROM capture_forminstance WHERE visit_id = %s FOR NO KEY UPDATE"
)
RAW_STORED = """
SELECT item_id, number, text, date, missing_reason, flags, verified_at FROM capture_itemvalue WHERE visit_id = %s
"""
RAW_UPSERT = """
INSERT INTO capture_itemvalue (visit_id, item_id, number, text, date, missing_reason, flags, updated_at,
    verified_at, verified_by_id, changed_since_verification)
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::numeric[], %s::text[], %s::date[], %s::text[], %s::jsonb[],
    %s::timestamptz[], %s::timestamptz[], %s::integer[], %s::boolean[])
ON CONFLICT (visit_id, item_id) DO UPDATE SET number = EXCLUDED.number, text = EXCLUDED.text, date = EXCLUDED.date,
    missing_reason = EXCLUDED.missing_reason, flags = EXCLUDED.flags, updated_at = EXCLUDED.updated_at,
    verified_at = EXCLUDED.verified_at, verified_by_id = EXCLUDED.verified_by_id,
    changed_since_verification = EXCLUDED.changed_since_verification
"""
RAW_FORM = "UPDATE capture_forminstance SET version = version + 1, updated_at = %s, updated_by_id = %s WHERE id = %s"
RAW_AUDIT = """
INSERT INTO trial_auditrecord (at, user_id, username, site_id, participant_id, object_type, object_id, action,
    form_code, item_code, old_value, new_value, reason, previous_hash, hash, key_id)
SELECT * FROM unnest(%s::timestamptz[], %s::integer[], %s::text[], %s::bigint[], %s::bigint[], %s::text[],
    %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
    %s::text[])
"""
# The summary counters (capture/summaries.py) are rows the service writes in every save, so the baseline writes
# them too, with the service's one statement: the visit's forms' and the participant's counts recounted (a few
# hundred values, by index), the site's moved by the difference. Plain SQL text, run through psycopg.
RAW_SUMMARIES = summaries._pg_statement(with_forms=True)
_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False)


class StaleVersion(Exception):
    pass


def _chain(previous: str, content: dict, key_id: str, key: bytes) -> str:
    payload = dict(content, at=content["at"].isoformat(), key_id=key_id)
    return hmac.new(key, (previous + _ENCODER.encode(payload)).encode(), hashlib.sha256).hexdigest()


def raw_save(cursor: object, *, user: object, visit_id: int, items: list, version: int, values: dict) -> int:
    """One save with the service's semantics in plain SQL; returns the new version."""
    cursor.execute(RAW_LOCK_VISIT, [visit_id])
    _, participant_id, site_id = cursor.fetchone()
    cursor.execute(RAW_LOCK_FORMS, [visit_id])
    form = next(row for row in cursor.fetchall() if row[1] == items[0][2])
    if form[2] != version:
        raise StaleVersion(form[2])
    cursor.execute(RAW_STORED, [visit_id])
    stored = {row[0]: row for row in cursor.fetchall()}
    now = datetime.datetime.now(datetime.UTC)
    changed = []
    for pk, code, _, low, high in items:
        number = Decimal(values[code])
        before = stored.get(pk)
        if before is None or before[1] != number:
            flags = ["high"] if number > high else ["low"] if number < low else []
            changed.append((pk, code, number, json.dumps(flags), before))
    cursor.execute(
        RAW_UPSERT,
        [
            [visit_id] * len(changed),
            [pk for pk, *_ in changed],
            [number for _, _, number, _, _ in changed],
            [""] * len(changed),
            [None] * len(changed),
            [""] * len(changed),
            [flags for *_, flags, _ in changed],
            [now] * len(changed),
            [None] * len(changed),
            [None] * len(changed),
            [before is not None and before[6] is not None for *_, before in changed],
        ],
    )
    cursor.execute(RAW_FORM, [now, user.pk, form[0]])
    summary = {"participant": participant_id, "site": site_id, "visit": visit_id}
    cursor.execute(RAW_SUMMARIES, summary)
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [7_357_001])
    cursor.execute("SELECT hash FROM trial_auditrecord ORDER BY id DESC LIMIT 1")
    head = cursor.fetchone()
    previous = head[0] if head else "0" * 64
    key_id = settings.AUDIT_HMAC_KEY_ID
    key = settings.AUDIT_HMAC_KEYRING[key_id]
    common = {"at": now, "user_id": user.pk, "username": user.get_username(), "site_id": site_id}
    common["participant_id"] = participant_id
    rows = []
    entries = [
        ("form", str(form[0]), "update", code, "" if before is None else str(before[1]), str(number))
        for _, code, number, _, before in changed
    ] + [("form", str(form[0]), "state", "", form[3], form[3])]
    for object_type, object_id, action, item_code, old, new in entries:
        content = {
            **common,
            "object_type": object_type,
            "object_id": object_id,
            "action": action,
            "form_code": "P45",
            "item_code": item_code,
            "old_value": old,
            "new_value": new,
            "reason": "",
        }
        digest = _chain(previous, content, key_id, key)
        rows.append([*content.values(), previous, digest, key_id])
        previous = digest
    cursor.execute(RAW_AUDIT, [list(column) for column in zip(*rows, strict=True)])
    return version + 1


def raw_rate(user: object, visit: object, start: int) -> float:
    import psycopg

    settings_dict = connection.settings_dict
    items = [
        (pk, code, form_id, low, high)
        for pk, code, form_id, low, high in ItemDefinition.objects.filter(
            form__code="P45", form__protocol=visit.participant.protocol
        )
        .order_by("order")
        .values_list("pk", "code", "form_id", "reference_low", "reference_high")
    ]
    with psycopg.connect(
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"] or None,
        dbname=settings_dict["NAME"],
    ) as raw:
        version = FormInstance.objects.get(visit=visit, definition__code="P45").version
        began = time.perf_counter()
        for n in range(SAVES):
            values = {f"X{i:02d}": str(10 + (start + n + i) % 900) for i in range(ITEMS)}
            with raw.transaction(), raw.cursor() as cursor:
                version = raw_save(cursor, user=user, visit_id=visit.pk, items=items, version=version, values=values)
        return SAVES / (time.perf_counter() - began)


def statements_per_save(user: object, visit: object) -> int:
    version = FormInstance.objects.get(visit=visit, definition__code="P45").version
    with CaptureQueriesContext(connection) as queries:
        form_save(
            user=user,
            visit_id=visit.pk,
            form_code="P45",
            version=version,
            values={f"X{i:02d}": str(7 + i) for i in range(ITEMS)},
        )
    return len(queries)


def main() -> None:
    with test_database() as name:
        if connection.vendor != "postgresql":
            raise SystemExit("bench/capture_save.py compares with raw psycopg: set DATABASE_URL=postgres://...")
        protocol_load()
        amended_protocol()
        user, visit = a_visit()
        service, raw = [], []
        for round_ in range(ROUNDS):  # alternate, so drifts of a shared machine hit both alike
            service.append(service_rate(user, visit, start=1000 * round_))
            raw.append(raw_rate(user, visit, start=1000 * round_ + 500))
        service_median, raw_median = statistics.median(service), statistics.median(raw)
        print(f"database: {connection.vendor} ({name}); {ITEMS}-item panel, {SAVES} saves x {ROUNDS} rounds")
        print(f"form_save (service):        {service_median:8.1f} saves/s   rounds: {[round(r) for r in service]}")
        print(f"raw psycopg, same semantics:    {raw_median:8.1f} saves/s   rounds: {[round(r) for r in raw]}")
        print(f"ratio service / raw:        {service_median / raw_median:8.2f}   (target >= 0.5)")
        print(f"SQL statements per save:    {statements_per_save(user, visit):8d}   (BEGIN and COMMIT included)")


if __name__ == "__main__":
    main()
