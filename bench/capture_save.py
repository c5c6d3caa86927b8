"""Saving a 45-item lab panel: form saves per second through capture.services.form_save, against plain psycopg
writing the same rows (45 item values upserted, 45 audit rows, the form's version) in one transaction per save.

Target (../shared/PERFORMANCE.md): the service reaches at least 1/3 of the raw throughput. Run on PostgreSQL:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc_bench .venv/bin/python bench/capture_save.py
"""

import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext
from harness import test_database

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


RAW_UPSERT = """
INSERT INTO capture_itemvalue (visit_id, item_id, number, text, date, missing_reason, flags, updated_at,
    verified_at, verified_by_id, changed_since_verification)
VALUES (%s, %s, %s, '', NULL, '', '[]', now(), NULL, NULL, false)
ON CONFLICT (visit_id, item_id) DO UPDATE SET number = EXCLUDED.number, updated_at = EXCLUDED.updated_at
"""
RAW_AUDIT = """
INSERT INTO trial_auditrecord (at, user_id, username, site_id, participant_id, object_type, object_id, action,
    form_code, item_code, old_value, new_value, reason, previous_hash, hash)
VALUES (now(), %s, 'raw', %s, %s, 'form', %s, 'update', 'P45', %s, %s, %s, '', %s, %s)
"""


def raw_rate(user: object, visit: object, start: int) -> float:
    import psycopg

    settings = connection.settings_dict
    items = list(
        ItemDefinition.objects.filter(form__code="P45", form__protocol=visit.participant.protocol)
        .order_by("order")
        .values_list("pk", "code")
    )
    form = FormInstance.objects.get(visit=visit, definition__code="P45")
    with psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    ) as raw:
        began = time.perf_counter()
        for n in range(SAVES):
            with raw.transaction(), raw.cursor() as cursor:
                cursor.executemany(RAW_UPSERT, [(visit.pk, pk, start + n + i) for i, (pk, _) in enumerate(items)])
                cursor.executemany(
                    RAW_AUDIT,
                    [
                        (
                            user.pk,
                            visit.participant.site_id,
                            visit.participant_id,
                            form.pk,
                            code,
                            "0",
                            str(10 + (start + n + i) % 900),
                            "0" * 64,
                            hashlib.sha256(f"raw{start}-{n}-{i}".encode()).hexdigest(),
                        )
                        for i, (_, code) in enumerate(items)
                    ],
                )
                cursor.execute("UPDATE capture_forminstance SET version = version + 1 WHERE id = %s", [form.pk])
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
        print(f"raw psycopg executemany:    {raw_median:8.1f} saves/s   rounds: {[round(r) for r in raw]}")
        print(f"ratio service / raw:        {service_median / raw_median:8.2f}   (target >= 0.33)")
        print(f"SQL statements per save:    {statements_per_save(user, visit):8d}   (BEGIN and COMMIT included)")


if __name__ == "__main__":
    main()
