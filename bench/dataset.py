"""Benchmark datasets with the data a real trial holds at that size, kept between runs in their own databases.

Every past visit has its forms complete with every item's value (typed, inside the hard range, choices from the
item's list, derived items computed as the service computes them; about 310 values per participant), queries in
every state and age, adverse events graded 1-4 (some serious, with their SAE record and notices), lab grading
proposals (and dismissed ones), source data verification (some values changed since), investigator signatures
(some voided), data locks, and an audit chain (one record per screening and enrolment, HMAC-chained as
`trial.audit` chains it, so `verify_audit` passes).

Rows are generated in Python, one participant at a time (each table's rows are derived again from the participant's
index, so nothing is held for another table), and streamed into PostgreSQL COPY; the loaded tables lose their
secondary indexes, unique and foreign key constraints during the load and get them back after it; then the summary
counts are rebuilt (`manage.py rebuild_summaries`, when the project has it) and the database VACUUMed and ANALYZEd.

A database is reused while its migrations, its size and this builder's version match (the build writes them into
the database's comment); one that only lacks newer migrations is migrated forward (the migrations that add a
counter count it from the data); `--rebuild` forces a new one:

    .venv/bin/python bench/dataset.py 100 10000 100000 [--rebuild]

Databases: edc_bench_100, edc_bench_10k, edc_bench_100k on the server of DATABASE_URL (default 127.0.0.1:5432);
EDC_BENCH_PREFIX replaces `edc_bench` (a branch with other migrations keeps its own datasets).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import django
from django.apps import apps

if not apps.ready:  # run as a script (or imported by another benchmark): Django on the PostgreSQL server
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/edc_bench_100")
    django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection  # noqa: E402

BUILDER_VERSION = 2
VARIANTS = 16  # value sets per form: enough variety for pages and flags, cheap to pick from
PASSWORD = "bench-password-1"
UTC = datetime.UTC
FAILED_IN4 = '["IN4"]'
HOSPITALISATION = '["hospitalisation"]'


def label_of(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)


def db_name(size: int) -> str:
    return f"{os.environ.get('EDC_BENCH_PREFIX', 'edc_bench')}_{label_of(size)}"


# --- Definitions read back from the migrated database ----------------------------------------------------------


@dataclass
class Item:
    id: int
    code: str
    data_type: str
    decimals: int | None
    hard_min: Decimal | None
    hard_max: Decimal | None
    low: Decimal | None
    high: Decimal | None
    required: bool
    choices: list
    derived: str
    model: object  # the ItemDefinition, for capture.derive


@dataclass
class Form:
    id: int
    code: str
    visit_codes: list
    arm_codes: list
    items: list[Item] = field(default_factory=list)


@dataclass
class Definitions:
    protocol_id: int
    child_pugh_table: dict
    arms: dict[str, int]  # code -> id
    sites: dict[int, int]  # number -> id
    visits: list[tuple[int, str, int, int, int]]  # (id, code, day, window_before, window_after)
    forms: list[Form]
    users: dict[str, int]


def read_definitions() -> Definitions:
    from trial.models import Arm, FormDefinition, ItemDefinition, Site, VisitDefinition
    from trial.services import protocol_current

    protocol = protocol_current()
    forms = []
    for form in FormDefinition.objects.filter(protocol=protocol, repeating=False).exclude(visit_codes=[]):
        entry = Form(form.pk, form.code, form.visit_codes, form.arm_codes)
        for item in ItemDefinition.objects.filter(form=form).order_by("order"):
            entry.items.append(
                Item(
                    item.pk,
                    item.code,
                    item.data_type,
                    item.decimals,
                    item.hard_min,
                    item.hard_max,
                    item.reference_low,
                    item.reference_high,
                    item.required,
                    item.choices,
                    item.derived,
                    item,
                )
            )
        forms.append(entry)
    visits = list(
        VisitDefinition.objects.filter(protocol=protocol)
        .order_by("order")
        .values_list("pk", "code", "day", "window_before", "window_after")
    )
    return Definitions(
        protocol_id=protocol.pk,
        child_pugh_table=protocol.child_pugh_table,
        arms=dict(Arm.objects.filter(protocol=protocol).values_list("code", "pk")),
        sites=dict(Site.objects.values_list("number", "pk")),
        visits=visits,
        forms=forms,
        users={},
    )


# --- Users --------------------------------------------------------------------------------------------------------

ROLES_BY_USER = {
    **{f"bench-coordinator{n}": ("coordinator", (n,)) for n in range(1, 7)},
    **{f"bench-investigator{n}": ("investigator", (n,)) for n in range(1, 7)},
    "bench-monitor": ("monitor", (1, 2, 3, 4, 5, 6)),
    "bench-datamanager": ("data_manager", (1, 2, 3, 4, 5, 6)),
    "bench-sponsor": ("sponsor", (1, 2, 3, 4, 5, 6)),
}


def ensure_users(definitions: Definitions) -> None:
    from django.contrib.auth import get_user_model

    from trial.models import SiteMembership

    User = get_user_model()
    hashed = make_password(PASSWORD)
    for username, (role, numbers) in ROLES_BY_USER.items():
        user, _ = User.objects.get_or_create(username=username, defaults={"password": hashed})
        for number in numbers:
            SiteMembership.objects.get_or_create(user=user, site_id=definitions.sites[number], defaults={"role": role})
        definitions.users[username] = user.pk


# --- Values -------------------------------------------------------------------------------------------------------


def _number_text(value: Decimal, decimals: int | None) -> str:
    return f"{value:.{decimals or 0}f}"


def _pick_number(rng: random.Random, item: Item, out_of_range: bool) -> Decimal:
    low = item.low if item.low is not None else (item.hard_min or Decimal(0))
    high = item.high if item.high is not None else low + Decimal(50)
    if high <= low:
        high = low + 1
    span = float(high - low)
    value = float(low) + span * (rng.uniform(1.05, 1.6) if out_of_range else rng.uniform(0.05, 0.95))
    if item.hard_max is not None:
        value = min(value, float(item.hard_max))
    if item.hard_min is not None:
        value = max(value, float(item.hard_min))
    return Decimal(f"{value:.{item.decimals or 0}f}")


# Pairs an edit check relates: the second must stay below the first, as the form's checks require.
_BELOW = {("LIVER", "BILDIR"): ("LIVER", "BILI"), ("LIPGLU", "HDL"): ("LIPGLU", "CHOL")}
_INFUSION = {
    "SYSBPPRE": Decimal(122),
    "DIABPPRE": Decimal(78),
    "SYSBPPOST": Decimal(118),
    "DIABPPOST": Decimal(76),
    "TEMPPRE": Decimal("36.6"),
    "TEMPPOST": Decimal("36.8"),
}


def _variant_values(rng: random.Random, definitions: Definitions) -> dict[tuple[str, str], object]:
    """One consistent set of typed values across every form (derived items need values of other forms)."""
    values: dict[tuple[str, str], object] = {}
    for form in definitions.forms:
        for item in form.items:
            key = (form.code, item.code)
            if item.derived:
                continue
            if item.data_type in ("decimal", "integer"):
                if form.code == "INFUS" and item.code in _INFUSION:
                    values[key] = _INFUSION[item.code] + rng.randint(-3, 3) * (1 if "TEMP" not in item.code else 0)
                else:
                    values[key] = _pick_number(rng, item, out_of_range=rng.random() < 0.12)
            elif item.data_type == "choice":
                values[key] = _choice(rng, form.code, item)
            elif item.data_type == "boolean":
                values[key] = "false"
            elif item.data_type == "text":
                values[key] = f"MSC-{rng.randint(2021, 2025)}-{rng.randint(1, 400):03d}" if item.code == "LOT" else ""
            else:
                values[key] = "DATE"
    for low, high in _BELOW.items():
        if low in values and high in values and values[low] >= values[high]:
            values[low] = (values[high] / 3).quantize(Decimal("0.1"))
    return values


def _choice(rng: random.Random, form_code: str, item: Item) -> str:
    codes = [choice[0] for choice in item.choices]
    if item.code in ("VITAL",):
        return "alive"
    if item.code == "EOSREAS":
        return "completed"
    # Mostly the first (normal) answer, sometimes another, as real visits go.
    return codes[0] if rng.random() < 0.7 else rng.choice(codes)


def _flags(item: Item, number: Decimal | None) -> str:
    if number is None:
        return "[]"
    if item.high is not None and number > item.high:
        return '["high"]'
    if item.low is not None and number < item.low:
        return '["low"]'
    return "[]"


def value_templates(definitions: Definitions, seed: int) -> dict[str, list[list[tuple[int, str | None]]]]:
    """For each form, VARIANTS lists of (item id, the COPY columns number..flags, or None for the visit date)."""
    from capture.derive import compute

    rng = random.Random(seed)
    templates: dict[str, list[list[tuple[int, str | None]]]] = {form.code: [] for form in definitions.forms}
    for _ in range(VARIANTS):
        values = _variant_values(rng, definitions)
        for form in definitions.forms:
            rows: list[tuple[int, str | None]] = []
            for item in form.items:
                key = (form.code, item.code)
                if item.derived:
                    derived = compute(item.model, form.code, values, definitions.child_pugh_table)
                    if derived is None:
                        continue
                    values[key] = derived
                value = values[key]
                if value == "" and not item.required:
                    continue  # an optional item left empty is not stored
                if value == "DATE":
                    rows.append((item.id, None))
                elif isinstance(value, Decimal):
                    if item.code == "SODIUM" and rng.random() < 0.05:
                        rows.append((item.id, "\\N\t\t\\N\tnot_done\t[]"))
                        continue
                    rows.append((item.id, f"{_number_text(value, item.decimals)}\t\t\\N\t\t{_flags(item, value)}"))
                else:
                    rows.append((item.id, f"\\N\t{value}\t\\N\t\t[]"))
            templates[form.code].append(rows)
    return templates


# --- The participants' plan: everything derived from the participant's index, so every table's generator can
# recompute it without holding the rows of another table -------------------------------------------------------


@dataclass(slots=True)
class VisitPlan:
    index: int  # in the visit definitions
    id: int
    target: datetime.date
    state: str  # not_started, complete, missed
    visit_date: datetime.date | None
    forms: list[tuple[int, Form]]  # (form instance id, form)
    verified: bool
    signed: bool


@dataclass(slots=True)
class ParticipantPlan:
    index: int
    id: int
    site_number: int
    arm: str
    screen_failed: bool
    enrolment: datetime.date | None
    status: str
    visits: list[VisitPlan]
    locked: bool

    @property
    def complete_visits(self) -> list[VisitPlan]:
        return [visit for visit in self.visits if visit.state == "complete"]

    @property
    def sequence(self) -> int:
        return self.index // 6 + 1

    @property
    def subject_id(self) -> str | None:
        return None if self.screen_failed else f"{self.site_number:02d}-{self.sequence:05d}"


def _mix(n: int) -> int:
    return (n * 2654435761) & 0xFFFFFFFF


@dataclass
class Ids:
    participant: int
    visit: int
    form: int
    other: dict[str, int] = field(default_factory=dict)


def plans(definitions: Definitions, size: int, ids: Ids, today: datetime.date) -> Iterator[ParticipantPlan]:
    form_id = ids.form
    per_participant = len(definitions.visits)
    applicable = {
        (arm, k): [
            form
            for form in definitions.forms
            if code in form.visit_codes and (not form.arm_codes or arm in form.arm_codes)
        ]
        for arm in ("MSC", "CONV")
        for k, (_, code, _, _, _) in enumerate(definitions.visits)
    }
    signable = [code.startswith("M") for _, code, _, _, _ in definitions.visits]
    days = [datetime.timedelta(days=day) for _, _, day, _, _ in definitions.visits]
    shifts = [datetime.timedelta(days=n - 3) for n in range(7)]
    last_past, verified_before = today - datetime.timedelta(days=3), today - datetime.timedelta(days=30)
    for index in range(size):
        h = _mix(index + 1)
        screen_failed = index % 20 == 19
        arm = "MSC" if (index // 6) % 2 == 0 else "CONV"
        days_ago = 1115 + h % 380 if h % 100 < 82 else (h >> 8) % 1100  # most have the whole schedule behind them
        enrolment = None if screen_failed else today - datetime.timedelta(days=days_ago)
        withdrawn = not screen_failed and index % 50 == 7
        visits = []
        all_done = not screen_failed
        if not screen_failed:
            base = ids.visit + index * per_participant
            for k in range(per_participant):
                target = enrolment + days[k]
                if target > last_past:
                    all_done = False
                    visits.append(VisitPlan(k, base + k, target, "not_started", None, [], False, False))
                elif (index * 9 + k) % 97 == 0 or (withdrawn and k > 2):
                    visits.append(VisitPlan(k, base + k, target, "missed", None, [], False, False))
                else:
                    visit_date = target + shifts[(index + k) % 7]
                    forms = applicable[arm, k]
                    visits.append(
                        VisitPlan(
                            k,
                            base + k,
                            target,
                            "complete",
                            visit_date,
                            list(zip(range(form_id, form_id + len(forms)), forms, strict=True)),
                            verified=index % 3 != 0 and visit_date < verified_before,
                            signed=index % 4 != 3 and signable[k],
                        )
                    )
                    form_id += len(forms)
        status = (
            "screen_failed" if screen_failed else "withdrawn" if withdrawn else "completed" if all_done else "enrolled"
        )
        yield ParticipantPlan(
            index,
            ids.participant + index,
            index % 6 + 1,
            arm,
            screen_failed,
            enrolment,
            status,
            visits,
            locked=status == "completed" and index % 3 == 0,
        )


# --- COPY ---------------------------------------------------------------------------------------------------------


def _ts(day: datetime.date, hour: int = 10) -> str:
    return f"{day.isoformat()} {hour:02d}:00:00+00"


def _n(value: object) -> str:
    return "\\N" if value is None else str(value)


class Copier:
    """One COPY FROM STDIN in text format, fed by lines in chunks of about a megabyte."""

    def __init__(self, cursor: object, table: str, columns: str) -> None:
        self.cursor, self.table, self.columns = cursor, table, columns
        self.rows = 0

    def run(self, lines: Iterator[str]) -> int:
        with self.cursor.copy(f"COPY {self.table} ({self.columns}) FROM STDIN") as copy:
            buffer = io.StringIO()
            size = 0
            for line in lines:
                buffer.write(line)
                size += len(line)
                self.rows += 1
                if size > 1 << 20:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
                    size = 0
            copy.write(buffer.getvalue())
        return self.rows


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


@dataclass
class Context:
    definitions: Definitions
    size: int
    ids: Ids
    today: datetime.date
    now: datetime.datetime
    templates: dict
    audit_head: str

    def plans(self) -> Iterator[ParticipantPlan]:
        return plans(self.definitions, self.size, self.ids, self.today)

    def user(self, role: str, site_number: int) -> int:
        return self.definitions.users[f"bench-{role}{site_number}"]

    def role_user(self, name: str) -> int:
        return self.definitions.users[f"bench-{name}"]


def participant_lines(ctx: Context) -> Iterator[str]:
    d = ctx.definitions
    for p in ctx.plans():
        coordinator = ctx.user("coordinator", p.site_number)
        screening_day = (p.enrolment or ctx.today - datetime.timedelta(days=p.index % 900)) - datetime.timedelta(7)
        yield (
            f"{p.id}\tS{p.site_number:02d}-{p.sequence:05d}\t{_n(p.subject_id)}\t"
            f"{'ZWLCYH'[p.index % 6]}{'MJSXGH'[p.index % 5]}\t"
            f"{'MF'[p.index % 3 == 0]}\t{datetime.date(1950 + p.index % 20, 1 + p.index % 12, 1 + p.index % 28)}\t"
            f"{p.status}\t{FAILED_IN4 if p.screen_failed else '[]'}\t{_n(p.enrolment)}\t"
            f"{_ts(p.enrolment) if p.enrolment else chr(92) + 'N'}\t{_ts(screening_day)}\t"
            f"{chr(92) + 'N' if p.screen_failed else d.arms[p.arm]}\t{coordinator}\t"
            f"{chr(92) + 'N' if p.screen_failed else coordinator}\t{d.protocol_id}\t{d.sites[p.site_number]}\t"
            f"\\N\t{screening_day}\tV1.0\n"
        )


PARTICIPANT_COLUMNS = (
    "id, screening_number, subject_id, initials, sex, date_of_birth, status, screen_failure_reasons, enrolment_date, "
    "enrolled_at, created_at, arm_id, created_by_id, enrolled_by_id, protocol_id, site_id, death_date, icf_date, "
    "icf_version"
)


def screening_lines(ctx: Context) -> Iterator[str]:
    for p in ctx.plans():
        day = (p.enrolment or ctx.today - datetime.timedelta(days=p.index % 900)) - datetime.timedelta(7)
        eligible = not p.screen_failed
        failed = FAILED_IN4 if p.screen_failed else "[]"
        yield (
            f"{ctx.ids.other['screening'] + p.index}\t{day}\t{day}\tdecompensated\t{30 + p.index % 40}.0\t"
            f"{28 + p.index % 6}.0\t1.{40 + p.index % 30}\tmild\tnone\t{{}}\t{8 + p.index % 3}\tB\t"
            f"{'t' if eligible else 'f'}\t{failed}\t{_ts(day)}\t{p.id}\t"
            f"{ctx.user('coordinator', p.site_number)}\tV1.0\n"
        )


SCREENING_COLUMNS = (
    "id, screening_date, consent_date, diagnosis, total_bilirubin, albumin, inr, ascites, encephalopathy, answers, "
    "child_pugh_points, child_pugh_class, eligible, failed_criteria, screened_at, participant_id, screened_by_id, "
    "icf_version"
)


def consent_lines(ctx: Context) -> Iterator[str]:
    for p in ctx.plans():
        day = (p.enrolment or ctx.today - datetime.timedelta(days=p.index % 900)) - datetime.timedelta(7)
        coordinator = ctx.user("coordinator", p.site_number)
        yield f"{ctx.ids.other['consentrecord'] + p.index}\tinitial\tV1.0\t{day}\t{_ts(day)}\t{p.id}\t{coordinator}\n"


CONSENT_COLUMNS = "id, kind, icf_version, consent_date, recorded_at, participant_id, recorded_by_id"


def visit_lines(ctx: Context) -> Iterator[str]:
    definitions = ctx.definitions.visits
    for p in ctx.plans():
        for v in p.visits:
            vid, _, _, before, after = definitions[v.index]
            progress = v.state
            yield (
                f"{v.id}\t{v.target}\t{v.target - datetime.timedelta(before)}\t{v.target + datetime.timedelta(after)}\t"
                f"{_n(v.visit_date)}\t{progress}\t{p.id}\t{vid}\n"
            )


VISIT_COLUMNS = "id, target_date, window_start, window_end, visit_date, progress, participant_id, definition_id"


def form_lines(ctx: Context) -> Iterator[str]:
    for p in ctx.plans():
        coordinator = ctx.user("coordinator", p.site_number)
        for v in p.complete_visits:
            done = _ts(v.visit_date + datetime.timedelta(1))
            for form_id, form in v.forms:
                version = 1 + (form_id % 5 == 0)
                yield (
                    f"{form_id}\tcomplete\t{version}\t{done}\t{done}\t{form.id}\t{coordinator}\t{v.id}\t"
                    f"{'t' if p.locked else 'f'}\t{'t' if v.signed else 'f'}\t0\t0\t0\t0\n"
                )


# The SDV and query counters start at 0: `rebuild_summaries` counts them (and every summary) once the load is done.
FORM_COLUMNS = (
    "id, state, version, first_completed_at, updated_at, definition_id, updated_by_id, visit_id, locked, signed, "
    "sdv_entered, sdv_verified, sdv_changed, queries_unresolved"
)


def item_value_lines(ctx: Context) -> Iterator[str]:
    templates = ctx.templates
    monitor = ctx.role_user("monitor")
    value_id = ctx.ids.other["itemvalue"]
    for p in ctx.plans():
        for v in p.complete_visits:
            variant = (p.index * 7 + v.index * 3) % VARIANTS
            day = v.visit_date.isoformat()
            updated = _ts(v.visit_date + datetime.timedelta(1))
            date_middle = f"\\N\t\t{day}\t\t[]"
            if v.verified:
                verified = f"{_ts(v.visit_date + datetime.timedelta(30))}\t{monitor}"
            else:
                verified = "\\N\t\\N"
            lines = []
            for _, form in v.forms:
                for item_id, middle in templates[form.code][variant]:
                    changed = "t" if v.verified and value_id % 211 == 0 else "f"
                    lines.append(
                        f"{value_id}\t{v.id}\t{item_id}\t{middle or date_middle}\t{updated}\t{verified}\t{changed}\n"
                    )
                    value_id += 1
            yield "".join(lines)


ITEM_VALUE_COLUMNS = (
    "id, visit_id, item_id, number, text, date, missing_reason, flags, updated_at, verified_at, verified_by_id, "
    "changed_since_verification"
)


# --- Review: queries, signatures, locks -------------------------------------------------------------------------


@dataclass
class QueryPlan:
    id: int
    participant: ParticipantPlan
    visit: VisitPlan
    item: Item
    form: Form
    state: str
    origin: str
    created: datetime.datetime
    answered: datetime.datetime | None
    closed: datetime.datetime | None


QUERY_STATES = ("open", "open", "open", "open", "answered", "answered", "closed", "closed", "closed", "closed")


def _first_item(form: Form) -> Item:
    return next(item for item in form.items if not item.derived and item.data_type in ("decimal", "integer", "choice"))


def _clamp(moment: datetime.datetime, now: datetime.datetime) -> datetime.datetime:
    return min(moment, now - datetime.timedelta(hours=1))


def query_plans(ctx: Context) -> Iterator[QueryPlan]:
    query_id = ctx.ids.other["query"]
    for p in ctx.plans():
        done = p.complete_visits
        if not done:
            continue
        for j in range(p.index % 5):  # 0-4 queries, 2 on average
            visit = done[(p.index + j) % len(done)]
            _, form = visit.forms[(p.index + 3 * j) % len(visit.forms)]
            state = QUERY_STATES[(p.index + j) % 10]
            # Ages spread over months: raised from a few days to more than a year after the visit.
            start = datetime.datetime.combine(visit.visit_date, datetime.time(9), UTC)
            created = _clamp(start + datetime.timedelta(days=2 + _mix(p.index * 7 + j) % 420), ctx.now)
            answered = _clamp(created + datetime.timedelta(days=3), ctx.now) if state != "open" else None
            closed = _clamp(created + datetime.timedelta(days=9), ctx.now) if state == "closed" else None
            origin = "automatic" if state == "closed" and j % 2 == 0 else "manual"
            yield QueryPlan(query_id, p, visit, _first_item(form), form, state, origin, created, answered, closed)
            query_id += 1


def query_lines(ctx: Context) -> Iterator[str]:
    monitor, manager = ctx.role_user("monitor"), ctx.role_user("datamanager")
    for q in query_plans(ctx):
        automatic = q.origin == "automatic"
        check = f"WINDOW_{ctx.definitions.visits[q.visit.index][1]}" if automatic else ""
        message = "Outside the visit window" if automatic else f"Please confirm {q.item.code} against the source."
        author = "\\N" if automatic else (monitor if q.id % 2 else manager)
        closer = "\\N" if q.closed is None else (author if not automatic else "\\N")
        yield (
            f"{q.id}\t{q.origin}\t{check}\t{q.state}\t{message}\t{q.created.isoformat()}\t"
            f"{_n(q.closed and q.closed.isoformat())}\t{author}\t{q.item.id}\t{q.visit.id}\t{closer}\t{q.form.id}\t"
            f"{q.participant.id}\t\t\\N\t\n"
        )


QUERY_COLUMNS = (
    "id, origin, check_code, state, message, created_at, closed_at, created_by_id, item_id, visit_id, closed_by_id, "
    "form_id, participant_id, record_type, record_id, field_code"
)


def query_event_lines(ctx: Context) -> Iterator[str]:
    event_id = ctx.ids.other["queryevent"]
    monitor = ctx.role_user("monitor")
    for q in query_plans(ctx):
        coordinator = ctx.user("coordinator", q.participant.site_number)
        author = "\\N" if q.origin == "automatic" else monitor
        events = [("raised", author, q.created, "Please check.", "open")]
        if q.answered:
            events.append(("answered", coordinator, q.answered, "Checked against the source: correct.", "answered"))
        if q.closed:
            kind = "auto_closed" if q.origin == "automatic" else "closed"
            events.append((kind, author, q.closed, "", "closed"))
        for kind, who, at, text, after in events:
            yield f"{event_id}\t{kind}\t{at.isoformat()}\t{text}\t{after}\t{who}\t{q.id}\n"
            event_id += 1


QUERY_EVENT_COLUMNS = "id, kind, at, text, state_after, author_id, query_id"


def signature_lines(ctx: Context) -> Iterator[str]:
    signature_id = ctx.ids.other["signature"]
    for p in ctx.plans():
        investigator = ctx.user("investigator", p.site_number)
        for v in p.complete_visits:
            if not v.signed:
                continue
            at = _ts(v.visit_date + datetime.timedelta(20))
            yield f"{signature_id}\t{at}\tI confirm the data of this visit\t\\N\t\t{p.id}\t{investigator}\t{v.id}\n"
            signature_id += 1
        done = p.complete_visits
        if done and p.index % 11 == 5:  # a signature voided by a later correction, kept visibly
            v = done[0]
            yield (
                f"{signature_id}\t{_ts(v.visit_date + datetime.timedelta(5))}\tI confirm the data of this visit\t"
                f"{_ts(v.visit_date + datetime.timedelta(9))}\tData changed after signature\t{p.id}\t{investigator}\t"
                f"{v.id}\n"
            )
            signature_id += 1


SIGNATURE_COLUMNS = "id, signed_at, meaning, voided_at, void_reason, participant_id, signed_by_id, visit_id"


def lock_lines(ctx: Context) -> Iterator[str]:
    lock_id = ctx.ids.other["lock"]
    manager = ctx.role_user("datamanager")
    for p in ctx.plans():
        if p.locked:
            last = p.complete_visits[-1].visit_date if p.complete_visits else ctx.today
            at = _ts(last + datetime.timedelta(40))
            yield f"{lock_id}\t{at}\tDatabase lock of the casebook\t\\N\t\t\\N\t{manager}\t{p.id}\t\\N\t\\N\n"
            lock_id += 1


LOCK_COLUMNS = (
    "id, locked_at, reason, released_at, release_reason, form_id, locked_by_id, participant_id, released_by_id, "
    "visit_id"
)


# --- Safety: adverse events, SAE records, lab gradings, notices ----------------------------------------------------

AE_TERMS = (
    ("Abdominal pain", "gastrointestinal"),
    ("Fever", "general"),
    ("Fatigue", "general"),
    ("Ascites worsening", "gastrointestinal"),
    ("Upper respiratory tract infection", "infections"),
    ("Rash", "skin"),
    ("Headache", "nervous"),
    ("Hepatic encephalopathy", "nervous"),
)
LAB_TERMS = (
    ("ALT", "Alanine aminotransferase increased", "LIVER"),
    ("AST", "Aspartate aminotransferase increased", "LIVER"),
    ("BILI", "Blood bilirubin increased", "LIVER"),
    ("CREAT", "Creatinine increased", "KIDNEY"),
)
RELATIONSHIPS = ("unrelated", "unlikely", "possible", "probable", "definite")
OUTCOMES = ("recovered", "recovering", "not_recovered", "sequelae", "unknown")


@dataclass
class AdversePlan:
    id: int
    participant: ParticipantPlan
    number: int
    kind: str  # proposed, dismissed, reported
    visit: VisitPlan
    grade: int
    serious: bool
    term: tuple


def adverse_plans(ctx: Context) -> Iterator[AdversePlan]:
    ae_id = ctx.ids.other["adverseevent"]
    for p in ctx.plans():
        done = [v for v in p.complete_visits if v.index < 5]
        if not done:
            continue
        for m in range((0, 0, 1, 0, 1, 2)[p.index % 6]):
            visit = done[(p.index + m) % len(done)]
            selector = (p.index // 6 + m) % 10
            kind = "proposed" if selector < 2 else "dismissed" if selector == 2 else "reported"
            grade = 1 + (p.index + m) % 4
            serious = kind == "reported" and grade >= 3 and (p.index + m) % 3 == 0
            term = LAB_TERMS[(p.index + m) % 4] if kind != "reported" else AE_TERMS[(p.index + m) % len(AE_TERMS)]
            yield AdversePlan(ae_id, p, m + 1, kind, visit, grade, serious, term)
            ae_id += 1


def adverse_event_lines(ctx: Context) -> Iterator[str]:
    for a in adverse_plans(ctx):
        p, v = a.participant, a.visit
        coordinator, investigator = ctx.user("coordinator", p.site_number), ctx.user("investigator", p.site_number)
        onset = v.visit_date + datetime.timedelta(2)
        created = _ts(onset + datetime.timedelta(1))
        if a.kind == "reported":
            term, system = a.term
            end = _n(onset + datetime.timedelta(14) if a.id % 3 else None)
            expedited = created if a.serious or a.grade == 4 else "\\N"
            yield (
                f"{a.id}\t{a.number}\treported\tsite\t{term}\t{system}\t{onset}\t{end}\t{a.grade}\t"
                f"{RELATIONSHIPS[a.id % 5]}\t{'hospitalisation' if a.serious else 'none'}\t{OUTCOMES[a.id % 5]}\t"
                f"{'t' if a.serious else 'f'}\t{HOSPITALISATION if a.serious else '[]'}\t\t{expedited}\t"
                f"\t\\N\t\t\\N\t\t\\N\t\t1\t{created}\t{created}\t\\N\tf\t\\N\t{coordinator}\t\\N\t\\N\t{p.id}\t\\N\t"
                f"{coordinator}\t\\N\t{p.subject_id}\n"
            )
        else:
            code, term, _ = a.term
            decided = created if a.kind == "dismissed" else "\\N"
            decider = investigator if a.kind == "dismissed" else "\\N"
            reason = "Known baseline value, clinically not significant" if a.kind == "dismissed" else ""
            grade = min(a.grade, 3)
            yield (
                f"{a.id}\t{a.number}\t{a.kind}\tlab\t{term}\tinvestigations\t{onset}\t\\N\t\\N\t\t\t\tf\t[]\t\t\\N\t"
                f"{code}\t{120 + a.id % 300}\t{term}\t{grade}\t>{grade}.0 x ULN\t{decided}\t{reason}\t1\t{created}\t"
                f"{created}\t\\N\tf\t\\N\t\\N\t{decider}\t{v.id}\t{p.id}\t\\N\t\\N\t\\N\t{p.subject_id}\n"
            )


ADVERSE_EVENT_COLUMNS = (
    "id, number, status, source, term, body_system, onset_date, end_date, grade, relationship, action_taken, "
    "outcome, serious, serious_criteria, description, expedited_at, lab_item_code, lab_value, ctcae_term, "
    "ctcae_grade, ctcae_criterion, decided_at, dismiss_reason, version, created_at, updated_at, verified_at, "
    "changed_since_verification, signed_at, created_by_id, decided_by_id, lab_visit_id, participant_id, "
    "signed_by_id, updated_by_id, verified_by_id, subject_id"
)


def sae_lines(ctx: Context) -> Iterator[str]:
    sae_id = ctx.ids.other["seriousadverseevent"]
    for a in adverse_plans(ctx):
        if a.serious:
            onset = a.visit.visit_date + datetime.timedelta(2)
            yield (
                f"{sae_id}\t{onset}\t{onset + datetime.timedelta(6)}\tAdmitted for observation; recovered.\t\t\t"
                "[]\t[]\t"
                f"\t\t\t\t\t\\N\t1\t{_ts(onset + datetime.timedelta(1))}\t{a.id}\t\\N\t"
                f"{ctx.user('coordinator', a.participant.site_number)}\n"
            )
            sae_id += 1


SAE_COLUMNS = (
    "id, admission_date, discharge_date, narrative, relevant_tests, relevant_history, suspect_medications, "
    "concomitant_medications, dechallenge, rechallenge, sponsor_relationship, sponsor_assessor, sponsor_comment, "
    "sponsor_assessed_at, version, updated_at, adverse_event_id, sponsor_recorded_by_id, updated_by_id"
)


def lab_grading_lines(ctx: Context) -> Iterator[str]:
    grading_id = ctx.ids.other["labgrading"]
    for a in adverse_plans(ctx):
        if a.kind == "reported":
            continue
        code, term, _ = a.term
        grade = min(a.grade, 3)
        yield (
            f"{grading_id}\t{code}\t{term}\t{120 + a.id % 300}\t40\t\\N\t\\N\t{grade}\tf\t>{grade}.0 x ULN\t1\t"
            f"{_ts(a.visit.visit_date + datetime.timedelta(1), 11)}\t{a.participant.id}\t{a.visit.id}\n"
        )
        grading_id += 1


LAB_GRADING_COLUMNS = (
    "id, item_code, term, value, uln, lln, baseline, grade, flagged, criterion, form_version, graded_at, "
    "participant_id, visit_id"
)


def notification_lines(ctx: Context) -> Iterator[str]:
    notification_id = ctx.ids.other["notification"]
    manager = ctx.role_user("datamanager")
    for a in adverse_plans(ctx):
        if a.kind == "reported" and (a.serious or a.grade == 4):
            at = _ts(a.visit.visit_date + datetime.timedelta(3))
            read = "\\N" if a.id % 4 == 0 else _ts(a.visit.visit_date + datetime.timedelta(4))
            text = f"Expedited adverse event {a.participant.index}: AE-{a.number:03d}"
            for user in (manager, ctx.user("investigator", a.participant.site_number)):
                yield f"{notification_id}\t{text}\t{at}\t{read}\t{a.id}\t{user}\n"
                notification_id += 1


NOTIFICATION_COLUMNS = "id, text, created_at, read_at, adverse_event_id, user_id"

GRADED_FORMS = ("LIVER", "KIDNEY", "LIPGLU")


def form_grading_lines(ctx: Context) -> Iterator[str]:
    grading_id = ctx.ids.other["formgrading"]
    for p in ctx.plans():
        for v in p.complete_visits:
            for form_id, form in v.forms:
                if form.code in GRADED_FORMS:
                    version = 1 + (form_id % 5 == 0)
                    yield f"{grading_id}\t{version}\t{_ts(v.visit_date + datetime.timedelta(1), 11)}\t{form_id}\n"
                    grading_id += 1


FORM_GRADING_COLUMNS = "id, graded_version, graded_at, form_id"


# --- The audit chain ----------------------------------------------------------------------------------------------


def audit_lines(ctx: Context) -> Iterator[str]:
    """One record per screening and enrolment, chained with the HMAC trial.audit writes (a record costs an HMAC
    in Python: the item-level trail of every save would cost more than the rest of the build)."""
    from trial.audit import _CONTENT_FIELDS, _content_hash

    key_id = settings.AUDIT_HMAC_KEY_ID
    previous = ctx.audit_head
    record_id = ctx.ids.other["auditrecord"]
    names = {pk: name for name, pk in ctx.definitions.users.items()}
    for p in ctx.plans():
        coordinator = ctx.user("coordinator", p.site_number)
        site = ctx.definitions.sites[p.site_number]
        day = (p.enrolment or ctx.today - datetime.timedelta(days=p.index % 900)) - datetime.timedelta(7)
        entries = [(datetime.datetime.combine(day, datetime.time(9), UTC), "participant", p.id, "screen", "", "")]
        if p.enrolment:
            enrolled = datetime.datetime.combine(p.enrolment, datetime.time(9, 30), UTC)
            entries.append((enrolled, "participant", p.id, "enrol", "", f"{p.arm}"))
        for at, object_type, object_id, action, form_code, new in entries:
            content = {
                "at": at,
                "user_id": coordinator,
                "username": names[coordinator],
                "site_id": site,
                "participant_id": p.id,
                "object_type": object_type,
                "object_id": str(object_id),
                "action": action,
                "form_code": form_code,
                "item_code": "",
                "old_value": "",
                "new_value": new,
                "reason": "",
            }
            digest = _content_hash(previous, content, key_id)
            values = [content[name] for name in _CONTENT_FIELDS]
            values[0] = at.isoformat()
            yield "\t".join([str(record_id), *map(str, values), previous, digest, key_id]) + "\n"
            previous = digest
            record_id += 1


AUDIT_COLUMNS = (
    "id, at, user_id, username, site_id, participant_id, object_type, object_id, action, form_code, item_code, "
    "old_value, new_value, reason, previous_hash, hash, key_id"
)


# --- Loading --------------------------------------------------------------------------------------------------------

# (table, columns, lines, the key of ctx.ids.other it numbers from, or None)
TABLES = (
    ("trial_participant", PARTICIPANT_COLUMNS, participant_lines),
    ("trial_screening", SCREENING_COLUMNS, screening_lines),
    ("trial_consentrecord", CONSENT_COLUMNS, consent_lines),
    ("trial_visit", VISIT_COLUMNS, visit_lines),
    ("capture_forminstance", FORM_COLUMNS, form_lines),
    ("capture_itemvalue", ITEM_VALUE_COLUMNS, item_value_lines),
    ("capture_query", QUERY_COLUMNS, query_lines),
    ("capture_queryevent", QUERY_EVENT_COLUMNS, query_event_lines),
    ("capture_signature", SIGNATURE_COLUMNS, signature_lines),
    ("capture_lock", LOCK_COLUMNS, lock_lines),
    ("safety_adverseevent", ADVERSE_EVENT_COLUMNS, adverse_event_lines),
    ("safety_seriousadverseevent", SAE_COLUMNS, sae_lines),
    ("safety_labgrading", LAB_GRADING_COLUMNS, lab_grading_lines),
    ("safety_notification", NOTIFICATION_COLUMNS, notification_lines),
    ("safety_formgrading", FORM_GRADING_COLUMNS, form_grading_lines),
    ("trial_auditrecord", AUDIT_COLUMNS, audit_lines),
)


def _next_id(cursor: object, table: str) -> int:
    cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
    return cursor.fetchone()[0]


def _strip(cursor: object, table: str) -> list[str]:
    """Drop the table's secondary indexes, unique and foreign key constraints; return the SQL that restores them."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY contype DESC",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [table, table],
    )
    indexes = cursor.fetchall()
    restore = [definition for _, definition in indexes]
    restore += [f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}" for name, definition, _ in constraints]
    for name, _, _ in constraints:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    return restore


def populate(raw: object, definitions: Definitions, size: int, *, seed: int = 1573923, strip: bool = True) -> dict:
    """Load `size` participants with their data through COPY on the psycopg connection `raw`; returns rows per
    table. `strip`: drop the loaded tables' secondary indexes and foreign keys for the load (a fresh database)."""
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    with raw.cursor() as cursor:
        ids = Ids(
            _next_id(cursor, "trial_participant"),
            _next_id(cursor, "trial_visit"),
            _next_id(cursor, "capture_forminstance"),
        )
        for table, _, _ in TABLES:
            ids.other[table.split("_", 1)[1]] = _next_id(cursor, table)
        cursor.execute("SELECT hash FROM trial_auditrecord ORDER BY id DESC LIMIT 1")
        head = cursor.fetchone()
        ctx = Context(
            definitions, size, ids, now.date(), now, value_templates(definitions, seed), head[0] if head else "0" * 64
        )
        restore: list[str] = []
        if strip:
            for table, _, _ in TABLES:
                restore += _strip(cursor, table)
            # The site tallies' triggers (trial/tallies.py) would add a delta per loaded row: off for the load (the
            # foreign keys are dropped anyway), and `rebuild_summaries` counts the tallies once it is done.
            cursor.execute("SET session_replication_role = replica")
        counts = {}
        for table, columns, lines in TABLES:
            began = time.perf_counter()
            Copier(cursor, table, columns).run(lines(ctx))
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
            if strip:
                print(f"  {table:<28} {counts[table]:>11,} rows  {time.perf_counter() - began:7.1f} s", flush=True)
        began = time.perf_counter()
        if strip:
            cursor.execute("RESET session_replication_role")
            cursor.execute("SET maintenance_work_mem = '512MB'")
        for statement in restore:
            cursor.execute(statement)
        if strip:
            print(f"  indexes and constraints      {time.perf_counter() - began:7.1f} s", flush=True)
        for table, _, _ in TABLES:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"
            )
    return counts


# --- Databases kept between runs --------------------------------------------------------------------------------


def migrations_fingerprint() -> str:
    import hashlib

    from django.db.migrations.loader import MigrationLoader

    names = sorted(f"{app}.{name}" for app, name in MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def _server(dbname: str = "postgres") -> object:
    import psycopg

    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        user=s["USER"] or "postgres",
        password=s["PASSWORD"] or None,
        dbname=dbname,
        autocommit=True,
    )


def stored_state(name: str) -> dict | None:
    with _server() as server:
        row = server.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
    if row is None or not row[0]:
        return None
    try:
        return json.loads(row[0])
    except ValueError:
        return None


def expected_state(size: int) -> dict:
    return {"builder": BUILDER_VERSION, "size": size, "migrations": migrations_fingerprint()}


def use_database(name: str) -> None:
    """Point Django's default connection at `name` (the process's DATABASE_URL names the server)."""
    connection.close()
    connection.settings_dict["NAME"] = name


def summaries_command() -> str | None:
    from django.core.management import get_commands

    return "rebuild_summaries" if "rebuild_summaries" in get_commands() else None


def ensure(size: int, *, rebuild: bool = False) -> str:
    """The kept database of `size` participants: reused when its state matches, else built anew."""
    name = db_name(size)
    stored = stored_state(name)
    if (
        not rebuild
        and stored is not None
        and {k: stored.get(k) for k in ("builder", "size", "migrations")} == (expected_state(size))
    ):
        print(f"{name}: kept (built {stored.get('built_at')}, {stored.get('seconds')} s)")
        return name
    if not rebuild and stored is not None and (stored.get("builder"), stored.get("size")) == (BUILDER_VERSION, size):
        if migrate_forward(name, stored):
            return name
    build(size)
    return name


def migrate_forward(name: str, stored: dict) -> bool:
    """Bring a kept database up to the migrations on disk when it only lacks newer ones (an index, a counter whose
    migration counts it from the data): the data stays what the builder made, in a few minutes instead of a
    rebuild. False (and nothing done) when a migration it applied is no longer on disk (renamed or removed)."""
    from django.core.management import call_command
    from django.db.migrations.loader import MigrationLoader

    on_disk = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    use_database(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations")
        applied = {(app, migration) for app, migration in cursor.fetchall()}
    ours = {key for key in applied if key[0] in {app for app, _ in on_disk}}
    if not ours <= on_disk:
        connection.close()
        return False
    began = time.perf_counter()
    print(f"{name}: migrating forward {len(on_disk - ours)} migration(s)", flush=True)
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    seconds = round(time.perf_counter() - began, 1)
    _write_state(
        name, {**stored, "migrations": migrations_fingerprint(), "migrated_at": _now(), "migrate_seconds": seconds}
    )
    print(f"{name}: migrated in {seconds:.1f} s", flush=True)
    return True


def _write_state(name: str, state: dict) -> None:
    """Record what the database holds in its comment (read back by `stored_state`), and let go of it."""
    with _server() as server:
        server.execute(f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(state)}'")
    connection.close()


def _now() -> str:
    return datetime.datetime.now(UTC).isoformat(timespec="seconds")


def build(size: int) -> float:
    from django.core.management import call_command

    from trial.services import protocol_load

    name = db_name(size)
    began = time.perf_counter()
    print(f"{name}: building {size:,} participants (load average {os.getloadavg()[0]:.2f})", flush=True)
    with _server() as server:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.execute(f'CREATE DATABASE "{name}"')
    use_database(name)
    call_command("migrate", verbosity=0)
    protocol_load()
    definitions = read_definitions()
    ensure_users(definitions)
    connection.ensure_connection()
    populate(connection.connection, definitions, size)
    command = summaries_command()
    if command:
        step = time.perf_counter()
        call_command(command)
        print(f"  {command:<28} {time.perf_counter() - step:7.1f} s", flush=True)
    step = time.perf_counter()
    with connection.cursor() as cursor:
        # VACUUM too: rows just COPYed have no visibility map yet, so an index-only scan would still read the heap
        # for each of them, which a live database (kept vacuumed by autovacuum) does not.
        cursor.execute("VACUUM (ANALYZE)")
    print(f"  VACUUM (ANALYZE)             {time.perf_counter() - step:7.1f} s", flush=True)
    seconds = round(time.perf_counter() - began, 1)
    _write_state(name, {**expected_state(size), "built_at": _now(), "seconds": seconds})
    print(f"{name}: built in {seconds:.1f} s (load average {os.getloadavg()[0]:.2f})", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100, 10_000])
    parser.add_argument("--rebuild", action="store_true", help="build even when the kept database matches")
    arguments = parser.parse_args()
    for size in arguments.sizes:
        ensure(size, rebuild=arguments.rebuild)


if __name__ == "__main__":
    main()
