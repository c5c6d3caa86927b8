"""The exports at 320, 3,200 and 32,000 participants with full data: item values per second of the ODM and CSV
exports against PostgreSQL's COPY of the same values, and each export's peak Python memory (tracemalloc).

Target (../shared/PERFORMANCE.md): both exports reach at least 50% of COPY's rows per second, and their peak
memory stays flat from 320 to 32,000 participants. PostgreSQL only; the sizes can be given as arguments:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc_bench .venv/bin/python bench/reports.py [320 3200 32000]

"Rows" are the trial's item values, each counted once: the CSV export writes the laboratory values twice (in
their wide dataset and in the long one) and is still measured against one COPY of them.
The reference is COPY of the item values in the ODM file's order, a row per value (the same joins, scope and
order as the exports; `reports.selectors.value_queryset`); also printed: COPY of the ODM export's own query (the
same values, a row per visit, each visit's values in arrays: the database groups them for the reader), COPY of the
CSV export's query (a row per value, with the values' flags, each visit's values in no order), and a plain COPY of
the item value table (no join, no order: the floor of what reading the rows costs). The reference is the same for
both exports, and the one of them that does not depend on how an export chose to read.
"""

import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator

from django.contrib.auth import get_user_model
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext
from harness import test_database
from report_data import grow_to

from capture.models import ItemValue
from reports import selectors
from reports.exports.csv_export import csv_export, csv_value_query
from reports.exports.odm import odm_export
from trial.models import Role, Site, SiteMembership
from trial.services import protocol_current, protocol_load

SIZES = (320, 3_200, 32_000)
ROUNDS = 3

# The sponsor summary PDF (the other half of reports/) adds its own measurement here: a function of the number of
# participants that returns {label: seconds}. main() prints whatever each one returns, at every size.
EXTRA_MEASURES: list[Callable[[int], dict[str, float]]] = []


def summary_pdf(size: int) -> dict[str, float]:
    """The sponsor's trial summary PDF over the same data: build time (median of 3) and peak memory."""
    from report_pdf import measure as measure_pdf

    user = get_user_model().objects.get(username="bench-datamanager")
    figures = measure_pdf(user, protocol_current(), repeats=3)
    return {"summary PDF build": figures["seconds"], "summary PDF peak MiB": figures["peak_mib"]}


EXTRA_MEASURES.append(summary_pdf)


def copy_seconds(sql: str, params: Iterable[object]) -> float:
    """Time for PostgreSQL to send a query's rows with COPY ... TO STDOUT, and for psycopg to receive them."""
    began = time.perf_counter()
    with connection.connection.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT", list(params)) as copy:
        for _block in copy:
            pass
    return time.perf_counter() - began


def export_seconds(chunks: Iterator[bytes]) -> tuple[float, int]:
    began = time.perf_counter()
    size = sum(len(chunk) for chunk in chunks)
    return time.perf_counter() - began, size


def peak_memory(make: Callable[[], Iterator[bytes]]) -> int:
    """The most Python memory held at once while the whole export is read and thrown away."""
    reset_queries()
    tracemalloc.start()
    try:
        for _chunk in make():
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def statements(make: Callable[[], Iterator[bytes]]) -> int:
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        for _chunk in make():
            pass
    return len(queries)


def measure(size: int, scope: selectors.ExportScope) -> dict[str, object]:
    protocol_id = selectors.protocols()[-1].pk
    exports = {
        "odm": lambda: odm_export(scope=scope, exported_by="bench"),
        "csv": lambda: csv_export(scope=scope),
    }
    queries = {
        "copy": selectors.value_queryset(scope, protocol_id=protocol_id).query.sql_with_params(),
        "copy_odm": selectors.visit_values_queryset(scope, protocol_id=protocol_id).query.sql_with_params(),
        "copy_csv": csv_value_query(scope).query.sql_with_params(),
        "copy_plain": ("SELECT * FROM capture_itemvalue", []),
    }
    timings: dict[str, list[float]] = {name: [] for name in (*queries, *exports)}
    sizes = {}
    for _round in range(ROUNDS):  # interleaved, so a busy moment of a shared machine hits all alike
        for name, (sql, params) in queries.items():
            timings[name].append(copy_seconds(sql, params))
        for name, make in exports.items():
            seconds, sizes[name] = export_seconds(make())
            timings[name].append(seconds)
    values = ItemValue.objects.count()
    result = {"values": values, "bytes": sizes}
    result["rate"] = {name: values / statistics.median(times) for name, times in timings.items()}
    result["memory"] = {name: peak_memory(make) for name, make in exports.items()}
    result["statements"] = {name: statements(make) for name, make in exports.items()}
    for extra in EXTRA_MEASURES:
        result.setdefault("extra", {}).update(extra(size))
    return result


def report(size: int, result: dict) -> None:
    rate, memory = result["rate"], result["memory"]
    print(f"\n{size:,} participants, {result['values']:,} item values", flush=True)
    print(f"  COPY of the values           {rate['copy']:>12,.0f} rows/s   (the reference below)")
    print(f"  COPY of ODM's query          {rate['copy_odm']:>12,.0f} rows/s   (a row per visit)")
    print(f"  COPY of the CSV's query      {rate['copy_csv']:>12,.0f} rows/s")
    print(f"  COPY of the table, plain     {rate['copy_plain']:>12,.0f} rows/s")
    for name in ("odm", "csv"):
        own = f"; {rate[name] / rate['copy_' + name]:4.0%} of its own query's"
        print(
            f"  {name.upper()} export                   {rate[name]:>12,.0f} rows/s   "
            f"{rate[name] / rate['copy']:4.0%} of COPY (target >= 50%){own}   "
            f"peak {memory[name] / 2**20:6.2f} MiB   {result['bytes'][name] / 2**20:8.1f} MiB out   "
            f"{result['statements'][name]} SQL statements",
            flush=True,
        )
    for label, value in result.get("extra", {}).items():
        unit = "" if label.endswith("MiB") else " s"
        print(f"  {label:<28} {value:>12.2f}{unit}")


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or list(SIZES)
    with test_database() as name:
        if connection.vendor != "postgresql":
            raise SystemExit("bench/reports.py compares with PostgreSQL's COPY: set DATABASE_URL=postgres://...")
        protocol, _ = protocol_load()
        user = get_user_model().objects.create_user("bench-datamanager", password="bench-password-1")
        SiteMembership.objects.bulk_create(
            SiteMembership(user=user, site=site, role=Role.DATA_MANAGER) for site in Site.objects.all()
        )
        scope = selectors.export_scope(user)
        print(f"database: {connection.vendor} ({name}); medians of {ROUNDS} interleaved rounds")
        memory = {}
        for size in sizes:
            began = time.perf_counter()
            grow_to(size, protocol, user)
            print(f"\n(data for {size:,} participants made in {time.perf_counter() - began:.0f} s)", flush=True)
            result = measure(size, scope)
            report(size, result)
            memory[size] = result["memory"]
        if len(sizes) > 1:
            first, last = sizes[0], sizes[-1]
            for name in ("odm", "csv"):
                growth = memory[last][name] / memory[first][name]
                print(f"peak memory of {name.upper()}, {last:,} vs {first:,} participants: x{growth:.2f} (flat: ~1)")


if __name__ == "__main__":
    main()
