"""verify_audit on a long audit trail: time and peak memory of the full walk (and of the beat's minute check) at
the sizes given, default 10,000 and 1,000,000 keyed records. Memory must stay flat: the walk reads keyset pages.

Runs in a throw-away test database on PostgreSQL; the records are written with COPY, their HMAC chain computed
by the same function the app uses:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc_bench .venv/bin/python bench/audit_verify.py 10000 1000000
"""

import datetime
import os
import sys
import threading
import time

from django.conf import settings
from django.db import connection
from harness import test_database

from trial.audit import _COLUMNS, _CONTENT_FIELDS, GENESIS_HASH, _content_hash, audit_verify, audit_verify_since

SIZES = (10_000, 1_000_000)
BATCH = 20_000


def grow_to(target: int, state: dict) -> None:
    """Append keyed records until there are `target`, a batch at a time, continuing the chain in `state`."""
    key_id = settings.AUDIT_HMAC_KEY_ID
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    while state["count"] < target:
        rows = []
        for n in range(state["count"], min(target, state["count"] + BATCH)):
            content = {
                "at": start + datetime.timedelta(seconds=n),
                "user_id": None,
                "username": f"coordinator{n % 6 + 1}",
                "site_id": None,
                "participant_id": None,
                "object_type": "form",
                "object_id": str(n // 45),
                "action": "change",
                "form_code": "LIVER",
                "item_code": "ALT",
                "old_value": f"{n % 300}.0",
                "new_value": f"{(n + 7) % 300}.0",
                "reason": "transcription error" if n % 10 == 0 else "",
            }
            digest = _content_hash(state["hash"], content, key_id)
            rows.append([*(content[field] for field in _CONTENT_FIELDS), state["hash"], digest, key_id])
            state["hash"] = digest
        _copy(rows)
        state["count"] += len(rows)


def _copy(rows: list[list]) -> None:
    with connection.cursor() as cursor:
        columns = ", ".join(_COLUMNS)
        with cursor.cursor.copy(f"COPY trial_auditrecord ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def measure(size: int) -> None:
    before = _rss_mb()
    with _PeakRss() as peak:
        started = time.perf_counter()
        report = audit_verify()
        walked = time.perf_counter() - started
    assert report.intact and report.head.count == size, report
    started = time.perf_counter()
    assert audit_verify_since(report.head).intact
    minute_check = time.perf_counter() - started
    print(
        f"{size:>9,} records: verify {walked:6.1f} s ({walked / size * 1e6:.0f} us/record), "
        f"RSS {before:.0f} MB before, peak {peak.mb:.0f} MB during; beat minute check {minute_check:.2f} s"
    )


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _PeakRss:
    """The process's resident memory sampled every 20 ms (no tracing overhead on the walk being timed)."""

    def __enter__(self) -> "_PeakRss":
        self.mb, self._done = _rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.mb = max(self.mb, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.mb = max(self.mb, _rss_mb())


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Run on PostgreSQL: DATABASE_URL=postgres://...")
    sizes = [int(arg) for arg in sys.argv[1:]] or list(SIZES)
    with test_database():
        state = {"count": 0, "hash": GENESIS_HASH}
        for size in sorted(sizes):
            started = time.perf_counter()
            grow_to(size, state)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE trial_auditrecord")
            print(f"built {size:,} records in {time.perf_counter() - started:.1f} s")
            measure(size)


if __name__ == "__main__":
    main()
