"""Demo visit data: the past visits of the demo participants, filled through form_save as coordinators would.

Values are what a Child-Pugh B/C cirrhosis population looks like (many outside the reference range), drifting
towards normal in the MSC arm; a few values are missing with a reason, a few corrected with a reason after
completion; some visits are overdue or missed, due and future visits stay empty.
"""

import datetime
import random
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from capture.definitions import visit_forms
from capture.models import FormInstance, Query, QueryEvent, QueryOrigin, QueryState
from capture.services import form_save
from trial.models import Participant, ParticipantStatus, Visit, VisitKind
from trial.services import visit_missed

# (low, high, decimals) of a plausible value at baseline; MSC participants improve by `drift` per visit.
LAB_RANGES: dict[str, tuple[float, float, int]] = {
    "ALT": (20, 120, 0),
    "AST": (30, 150, 0),
    "ALB": (25, 36, 1),
    "PREALB": (60, 190, 0),
    "BILI": (22, 70, 1),
    "BUN": (3, 9.5, 2),
    "URATE": (200, 460, 0),
    "CREAT": (50, 130, 0),
    "SODIUM": (126, 142, 1),  # hyponatraemia is common in decompensated cirrhosis: MELD-Na differs from MELD
    "CHOL": (2.6, 5.2, 2),
    "LDL": (1.0, 3.0, 2),
    "VLDL": (0.2, 0.8, 2),
    "TRIG": (0.5, 2.0, 2),
    "GLUC": (4.0, 9.0, 2),
    "IL1B": (1, 8, 2),
    "IL4": (1, 5, 2),
    "IL6": (3, 25, 2),
    "IL8": (10, 80, 2),
    "IL10": (2, 15, 2),
    "IL12P40": (50, 300, 2),
    "IL15": (2, 10, 2),
    "IL17A": (5, 30, 2),
    "TNFA": (5, 20, 2),
    "TNFB": (20, 200, 2),
    "IFNG": (2, 15, 2),
    "CCL5": (10000, 60000, 0),
    "TGFB1": (15000, 50000, 0),
    "XCL1": (20, 150, 2),
    "CRP": (1, 20, 1),
    "HBVDNA": (0, 100000, 0),
    "WEIGHT": (48, 82, 1),
    "INR": (1.2, 2.1, 2),
}
DRIFT = {"ALB": 0.9, "BILI": -3.0, "ALT": -6.0, "AST": -7.0, "PREALB": 8.0, "INR": -0.04, "IL6": -1.2}
CHOICES = {
    "ASCITES": ["none", "mild", "mild", "moderate_severe"],
    "HEPENC": ["none", "none", "none", "grade_1_2"],
    "ABDDIST": ["none", "mild", "mild", "moderate"],
    "APPETITE": ["normal", "reduced", "reduced", "poor"],
    "DEBIL": ["none", "mild", "moderate"],
    "LLEDEMA": ["none", "none", "mild", "moderate"],
    "HBSAG": ["positive"] * 4 + ["negative"],
    "HBSAB": ["negative"],
    "HBEAG": ["negative", "negative", "positive"],
    "HBEAB": ["positive", "positive", "negative"],
    "HBCAB": ["positive"],
    "HCVAB": ["negative"] * 9 + ["positive"],
    "VITAL": ["alive"],
}
CORRECTION_REASON = "Transcription error corrected against the laboratory report"
MISSED_REASONS = (
    "Participant could not travel to the hospital.",
    "Participant was admitted to another hospital during the visit window.",
    "Participant declined the visit; contacted by telephone, no new symptoms.",
)


def fill(*, users_by_site: dict[int, object], seed: int = 1573923) -> int:
    """Fill the demo participants' past visits; returns the number of forms saved."""
    rng = random.Random(seed)
    today = timezone.localdate()
    saved = 0
    participants = Participant.objects.filter(status=ParticipantStatus.ENROLLED).select_related("site", "arm")
    for participant in participants.order_by("pk"):
        user = users_by_site[participant.site.number]
        visits = participant.visits.select_related("participant__protocol", "participant__arm", "definition")
        scheduled = list(visits.filter(definition__kind=VisitKind.VISIT).order_by("target_date"))
        closed = [visit for visit in scheduled if visit.window_end < today]
        for visit in scheduled:
            forms = _visit(rng, user, visit, today, latest_closed=bool(closed) and visit == closed[-1])
            if forms is None:
                break  # left overdue: the participant has not come back since, so later visits hold nothing
            saved += forms
        for visit in visits.filter(definition__kind=VisitKind.FOLLOW_UP, window_end__lt=today):
            saved += _contact(rng, user, visit)
    return saved


def _contact(rng: random.Random, user: object, visit: Visit) -> int:
    """A survival contact by telephone: alive, and the clinical symptoms asked (from month 18 on)."""
    forms = [spec for spec in visit_forms(visit) if spec.code in ("SYMPT", "SURV")]
    for spec in forms:
        values, missing = _form_values(rng, spec, visit, visit.target_date)
        values.pop("DTHDAT", None)  # alive
        form_save(
            user=user, visit_id=visit.pk, form_code=spec.code, version=0, values=values, missing=missing, complete=True
        )
    return len(forms)


def _visit(rng: random.Random, user: object, visit: Visit, today: datetime.date, *, latest_closed: bool) -> int | None:
    """The forms saved for the visit, or None when it is left overdue."""
    if visit.window_start > today:
        return 0
    window_closed = visit.window_end < today
    fate = rng.random()
    if not window_closed and fate < 0.5:
        return 0  # due: the participant has not come yet
    if latest_closed and fate < 0.12:
        return None  # overdue: the latest visit whose window closed, not entered yet (a later one would be missed)
    if window_closed and fate < 0.09:
        visit_missed(user=user, visit=visit, reason=rng.choice(MISSED_REASONS))
        return 0
    late = rng.random() < 0.04  # now and then a visit takes place after its window: a protocol deviation
    offset = rng.randint(15, 20) if late else rng.randint(-5, 7)
    day = min(max(visit.target_date + datetime.timedelta(days=offset), visit.window_start), today)
    forms = visit_forms(visit)
    if not window_closed:
        forms = forms[: rng.randint(1, len(forms))]  # under way: some forms entered, not yet complete
    for spec in forms:
        values, missing = _form_values(rng, spec, visit, day)
        result = form_save(
            user=user,
            visit_id=visit.pk,
            form_code=spec.code,
            version=0,
            values=values,
            missing=missing,
            complete=window_closed,
        )
        if window_closed and spec.code == "LIVER" and rng.random() < 0.15:
            _correct(user, visit, spec, values, missing, result.form)
    return len(forms)


def _correct(user: object, visit: Visit, spec: object, values: dict, missing: dict, form: FormInstance) -> None:
    corrected = dict(values, ALT=str(int(Decimal(values["ALT"])) + 10))
    form_save(
        user=user,
        visit_id=visit.pk,
        form_code=spec.code,
        version=form.version,
        values=corrected,
        missing=missing,
        reason=CORRECTION_REASON,
        complete=True,
    )


def _form_values(rng: random.Random, spec: object, visit: Visit, day: datetime.date) -> tuple[dict, dict]:
    step = visit.definition.order if visit.participant.arm.code == "MSC" else 0
    values: dict[str, str] = {}
    missing: dict[str, str] = {}
    for item in spec.entered:
        if item.data_type == "date":
            values[item.code] = day.isoformat()
        elif item.code in LAB_RANGES:
            if item.code == "PREALB" and rng.random() < 0.08:
                missing[item.code] = "not_done"
                continue
            values[item.code] = _number(rng, item.code, step)
        elif item.code in CHOICES:
            values[item.code] = rng.choice(CHOICES[item.code])
        elif item.code == "HCVRNA":
            values[item.code] = "0"
        else:
            _special(rng, item.code, values, missing)
    _consistent(rng, values)
    return values, missing


def _number(rng: random.Random, code: str, step: int) -> str:
    low, high, decimals = LAB_RANGES[code]
    value = rng.uniform(low, high) + DRIFT.get(code, 0) * step
    value = max(value, 0)
    return f"{value:.{decimals}f}"


def _special(rng: random.Random, code: str, values: dict, missing: dict) -> None:
    infusion = {
        "CELLDOSE": f"{rng.uniform(3.8, 4.2):.2f}",
        "VOLUME": str(rng.choice([40, 40, 40, 39, 41])),
        "LOT": f"UCMSC-2026-{rng.randint(1, 60):03d}",
    }
    if code in infusion:
        values[code] = infusion[code]
    elif code == "REACT":
        values[code] = "true" if rng.random() < 0.15 else "false"
    elif code in {"REACTDSC", "REACTGR"} and values.get("REACT") == "true":
        values[code] = "Transient fever, resolved within 24 hours" if code == "REACTDSC" else "1"
    elif code in {"REACTDSC", "REACTGR"}:
        missing[code] = "not_applicable"


def _consistent(rng: random.Random, values: dict) -> None:
    """Keep the cross-item checks true for most visits, as real lab reports are."""
    if "BILI" in values:
        values["BILDIR"] = f"{Decimal(values['BILI']) * Decimal(str(rng.uniform(0.3, 0.6))):.1f}"
        if rng.random() < 0.05:  # total and direct swapped on entry: the edit check raises a query
            values["BILI"], values["BILDIR"] = values["BILDIR"], values["BILI"]
    if "CHOL" in values:
        values["HDL"] = f"{Decimal(values['CHOL']) * Decimal(str(rng.uniform(0.15, 0.35))):.2f}"
    if "REACT" in values:
        values.update(_infusion_vitals(rng, reaction=values["REACT"] == "true"))


def _infusion_vitals(rng: random.Random, *, reaction: bool) -> dict[str, str]:
    """Vital signs around an infusion: a reaction is a fever; now and then a fever is entered as "no reaction"
    (the edit check queries it)."""
    before = rng.uniform(36.2, 37.0)
    fever = reaction or rng.random() < 0.04
    after = before + (rng.uniform(1.0, 1.8) if fever else rng.uniform(-0.2, 0.5))
    systolic, diastolic, pulse = rng.randint(100, 135), rng.randint(62, 85), rng.randint(64, 92)
    return {
        "TEMPPRE": f"{before:.1f}",
        "TEMPPOST": f"{after:.1f}",
        "PULSEPRE": str(pulse),
        "PULSEPOST": str(pulse + rng.randint(0, 14 if fever else 6)),
        "SYSBPPRE": str(systolic),
        "SYSBPPOST": str(systolic + rng.randint(-8, 8)),
        "DIABPPRE": str(diastolic),
        "DIABPPOST": str(diastolic + rng.randint(-5, 5)),
    }


def review(*, users: dict[str, object], seed: int = 1573923) -> dict[str, int]:
    """A monitor's visits to sites 1-3: queries in every state, partly verified forms, a signed and a locked visit."""
    from capture.review import items_verify, lock_set, query_answer, query_close, query_raise, visit_sign

    rng = random.Random(seed)
    monitor, investigator, datamanager = users["monitor"], users["investigator1"], users["datamanager"]
    done = Visit.objects.filter(
        participant__site__number__in=(1, 2, 3), progress="complete", definition__kind=VisitKind.VISIT
    ).select_related("participant__site", "definition")
    visits = list(done.order_by("participant__site__number", "participant_id", "target_date"))
    counts = {"queries": 0, "verified_forms": 0}
    for index, visit in enumerate(visits):
        coordinator = users[f"coordinator{visit.participant.site.number}"]
        if index % 3 == 0:
            query = query_raise(
                user=monitor,
                visit_id=visit.pk,
                form_code="LIVER",
                item_code="ALT",
                message="The value differs from the laboratory report on file: please check.",
            )
            counts["queries"] += 1
            fate = rng.random()
            if fate < 0.6:
                query_answer(user=coordinator, query_id=query.pk, message="Checked against the report: correct.")
            if fate < 0.3:
                query_close(user=monitor, query_id=query.pk, message="Confirmed on source.")
        if index % 2 == 0:
            codes = None if index % 4 == 0 else ["ALT", "AST", "BILI"]
            items_verify(user=monitor, visit_id=visit.pk, form_code="LIVER", item_codes=codes)
            counts["verified_forms"] += 1
    by_participant: dict[int, list[Visit]] = {}
    for visit in visits:
        if visit.participant.site.number == 1:
            by_participant.setdefault(visit.participant_id, []).append(visit)
    queried = done.filter(queries__state__in=[QueryState.OPEN, QueryState.ANSWERED])
    unqueried = set(done.exclude(pk__in=queried).values_list("pk", flat=True))
    chosen = [pair for pair in by_participant.values() if len(pair) >= 2 and pair[0].pk in unqueried][:3]
    for first, *_later in chosen:  # every form verified, then signed by the investigator: ready to lock
        for spec in visit_forms(first):
            items_verify(user=monitor, visit_id=first.pk, form_code=spec.code)
        visit_sign(user=investigator, visit_id=first.pk, password=settings.DEMO_PASSWORD)
    if chosen:  # the next visit of the first one locked by the data manager
        lock_set(
            user=datamanager,
            participant_id=chosen[0][1].participant_id,
            visit_id=chosen[0][1].pk,
            reason="Reviewed and cleaned for the interim analysis",
            confirm_open_queries=True,
        )
    counts["aged"] = history(seed=seed)
    return counts


# How long ago the monitor raised the queries, in turn: within the week, within the month, before (the buckets of
# the query ageing), never before the visit took place.
QUERY_AGES = ((1, 7), (8, 30), (31, 150))


def history(*, seed: int = 1573923) -> int:
    """Give the demo's queries the past they would have: the seed raises, answers and closes them in one minute,
    and would show every query 0 days old.

    Only the queries' and their threads' own dates move back (raised, answered, closed, in that order, between
    the visit and now); the audit trail keeps when the seed wrote them, as it must (it is append-only and
    chained), so `verify_audit` is unaffected. Returns the number of queries dated back.
    """
    rng = random.Random(seed)
    now = timezone.now()
    today = timezone.localdate()
    queries = list(
        Query.objects.filter(visit__isnull=False).select_related("visit").prefetch_related("events").order_by("pk")
    )
    events = []
    for index, query in enumerate(queries):
        held = query.visit.visit_date or query.visit.target_date
        room = max((today - held).days - 1, 0)  # days between the visit and today
        if query.origin == QueryOrigin.AUTOMATIC:
            age = max(room - rng.randint(0, 3), 0)  # raised by the edit check when the data were entered
        else:
            age = min(rng.randint(*QUERY_AGES[index % len(QUERY_AGES)]), room)
        query.created_at = now - datetime.timedelta(days=age, hours=rng.randint(1, 8))
        thread = sorted(query.events.all(), key=lambda event: (event.at, event.pk))
        for step, event in enumerate(thread):
            event.at = query.created_at + (now - query.created_at) * (step / (len(thread) + 1))
            events.append(event)
        if query.closed_at is not None:
            query.closed_at = thread[-1].at if thread else query.created_at
    Query.objects.bulk_update(queries, ["created_at", "closed_at"], batch_size=500)
    QueryEvent.objects.bulk_update(events, ["at"], batch_size=500)
    return len(queries)
