"""Bench data for bench/reports.py: enrolled participants with every visit done and every form filled.

Participants and visits go through bulk_create; the item values (about 350 per participant) through one
INSERT ... SELECT per batch, since building 11 million rows in Python would take longer than the exports
measured on them. PostgreSQL only (the comparison is with COPY anyway).
"""

import datetime

from django.db import connection
from django.db.models import prefetch_related_objects
from django.utils import timezone

from trial.models import Participant, ParticipantStatus, Screening, Site, Visit
from trial.services import schedule

# Values: inside the hard range, mostly inside the reference range, some above it (flagged high), about one
# in 50 missing with a reason, Chinese free text on text items, the first code on choice items.
FILL_SQL = """
INSERT INTO capture_itemvalue (visit_id, item_id, number, text, date, missing_reason, flags, updated_at,
    verified_at, verified_by_id, changed_since_verification)
SELECT v.id, i.id,
    CASE WHEN m.missing OR i.data_type NOT IN ('decimal', 'integer') THEN NULL
        ELSE round(m.number::numeric, COALESCE(i.decimals, 0)) END,
    CASE WHEN m.missing THEN ''
        WHEN i.data_type = 'choice' THEN i.choices -> 0 ->> 0
        WHEN i.data_type = 'boolean' THEN 'false'
        WHEN i.data_type = 'text' AND i.derived <> '' THEN 'B'
        WHEN i.data_type = 'text' THEN '批号 UC-' || v.id || ' 输注顺利，无不适'
        ELSE '' END,
    CASE WHEN NOT m.missing AND i.data_type = 'date' THEN v.target_date END,
    CASE WHEN m.missing THEN 'not_done' ELSE '' END,
    CASE WHEN NOT m.missing AND i.data_type IN ('decimal', 'integer') AND m.number > i.reference_high
        THEN '["high"]'::jsonb ELSE '[]'::jsonb END,
    now(), NULL, NULL, false
FROM trial_visit v
JOIN trial_participant p ON p.id = v.participant_id
JOIN trial_arm a ON a.id = p.arm_id
JOIN trial_visitdefinition vd ON vd.id = v.definition_id
JOIN trial_formdefinition f ON f.protocol_id = vd.protocol_id AND f.visit_codes ? vd.code
    AND (jsonb_array_length(f.arm_codes) = 0 OR f.arm_codes ? a.code)
JOIN trial_itemdefinition i ON i.form_id = f.id
CROSS JOIN LATERAL (
    SELECT abs(hashtext(v.id || '-' || i.id)) %% 50 = 0 AND NOT i.required AS missing,
        COALESCE(i.reference_low, i.hard_min, 0)
        + (abs(hashtext(i.id || '-' || v.id)) %% 1000) / 1000.0
        * (COALESCE(i.reference_high, i.hard_max, 100) - COALESCE(i.reference_low, i.hard_min, 0)) * 1.2 AS number
) m
WHERE p.id >= %s
"""
VISITS_DONE = "UPDATE trial_visit SET visit_date = target_date, progress = 'complete' WHERE participant_id >= %s"
# 3 years and a bit: every visit of the schedule (to 36 months) lies in the past.
ENROLLED_DAYS_AGO = 1200


def grow_to(target: int, protocol: object, user: object) -> None:
    """Add enrolled participants with full data until there are `target`."""
    have = Participant.objects.count()
    if have >= target:
        return
    sites = list(Site.objects.order_by("number"))
    arms = list(protocol.arms.all())
    first_new = _participants(have, target, protocol, sites, arms, user)
    with connection.cursor() as cursor:
        cursor.execute(VISITS_DONE, [first_new])
        cursor.execute(FILL_SQL, [first_new])
        cursor.execute("ANALYZE")


def _participants(have: int, target: int, protocol: object, sites: list, arms: list, user: object) -> int:
    today = timezone.localdate()
    batch = []
    for n in range(have, target):
        site = sites[n % len(sites)]
        enrolment = today - datetime.timedelta(days=ENROLLED_DAYS_AGO + n % 300)
        batch.append(
            Participant(
                site=site,
                protocol=protocol,
                screening_number=f"S{site.number:02d}-{n:05d}",
                subject_id=f"{site.number:02d}-{n:05d}",
                initials="ZW",
                sex="MF"[n % 2],
                date_of_birth=datetime.date(1960 + n % 25, 1 + n % 12, 1 + n % 28),
                status=ParticipantStatus.ENROLLED,
                arm=arms[(n // 6) % 2],  # both arms at every site
                enrolment_date=enrolment,
                enrolled_at=timezone.now(),
                enrolled_by=user,
                created_by=user,
            )
        )
    created = Participant.objects.bulk_create(batch, batch_size=2000)
    prefetch_related_objects([protocol], "visit_definitions")  # schedule() reads them once, not per participant
    Screening.objects.bulk_create((_screening(p, user) for p in created), batch_size=2000)
    Visit.objects.bulk_create((v for p in created for v in schedule(p)), batch_size=5000)
    return min(p.pk for p in created)


def _screening(participant: Participant, user: object) -> Screening:
    day = participant.enrolment_date - datetime.timedelta(days=7)
    return Screening(
        participant=participant,
        screening_date=day,
        consent_date=day,
        diagnosis="decompensated",
        total_bilirubin=40,
        albumin=30,
        inr=1.5,
        ascites="mild",
        encephalopathy="none",
        answers={},
        child_pugh_points=8,
        child_pugh_class="B",
        eligible=True,
        screened_by=user,
    )
