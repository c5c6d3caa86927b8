"""Demo log rows, entered through the log services as coordinators would: the conventional therapy of every
enrolled participant (both arms receive it), their medical history with the aetiology of the cirrhosis, and a
few protocol deviations found by the sites and the monitor.

The aetiology follows the participant's hepatitis serology at M0 where it was entered (HBsAg or anti-HCV
positive), else what a Chinese cirrhosis population holds: hepatitis B most often, then alcohol.
"""

import datetime
import random

from django.utils import timezone

from capture.logs.services import log_row_create, log_row_remove, log_row_update
from capture.models import ItemValue
from trial.models import Participant, ParticipantStatus, Visit, VisitProgress

# (name, class, indication, dose, unit, route, frequency) of the regimens the sites prescribe.
ENTECAVIR = ("Entecavir", "antiviral", "Chronic hepatitis B", "0.5", "mg", "PO", "QD")
TENOFOVIR = ("Tenofovir disoproxil fumarate", "antiviral", "Chronic hepatitis B", "300", "mg", "PO", "QD")
SOFOSBUVIR = ("Sofosbuvir/velpatasvir", "antiviral", "Chronic hepatitis C", "1", "tablet", "PO", "QD")
SPIRONOLACTONE = ("Spironolactone", "diuretic", "Ascites", "40", "mg", "PO", "QD")
FUROSEMIDE = ("Furosemide", "diuretic", "Ascites", "20", "mg", "PO", "QD")
PROPRANOLOL = ("Propranolol", "beta_blocker", "Prophylaxis of variceal bleeding", "10", "mg", "PO", "BID")
ALBUMIN = ("Human albumin 20%", "albumin", "Hypoalbuminaemia", "10", "g", "IV", "QW")
LACTULOSE = ("Lactulose", "lactulose", "Prevention of hepatic encephalopathy", "15", "mL", "PO", "BID")
POLYENE = ("Polyene phosphatidylcholine", "hepatoprotective", "Liver protection", "456", "mg", "PO", "TID")
COMORBIDITIES = ["Type 2 diabetes mellitus", "Essential hypertension", "Oesophageal varices", "Cholecystolithiasis"]
DEVIATIONS = [
    ("VISIT_WINDOW", "Visit held 3 days after the end of its window", "SITE", False, "RETRAINED"),
    ("MISSED_LAB", "Cytokine panel not drawn at the visit: sample tube unavailable", "MONITOR", False, "NONE"),
    ("MISSED_VISIT", "Visit missed: participant could not travel to the hospital", "SITE", False, "NONE"),
    ("CONSENT", "Consent form page 3 not initialled by the participant", "MONITOR", True, "REPORTED"),
    (
        "DOSING",
        "Infusion started 25 minutes later than the cell product's release window",
        "MONITOR",
        True,
        "RETRAINED",
    ),
]
CORRECTION_REASON = "Dose corrected against the prescription"


def fill(*, users_by_site: dict[int, object], seed: int = 1573923) -> dict[str, int]:
    """The logs of every enrolled demo participant; returns how many rows of each log were added."""
    rng = random.Random(seed)
    counts = {"CM": 0, "MH": 0, "DV": 0}
    participants = Participant.objects.filter(status=ParticipantStatus.ENROLLED).select_related(
        "site", "arm", "screening"
    )
    for participant in participants.order_by("pk"):
        user = users_by_site[participant.site.number]
        aetiology = _aetiology(rng, participant)
        counts["MH"] += _history(rng, user, participant, aetiology)
        counts["CM"] += _medications(rng, user, participant, aetiology)
        counts["DV"] += _deviations(rng, user, participant)
    return counts


def _aetiology(rng: random.Random, participant: Participant) -> str:
    serology = dict(
        ItemValue.objects.filter(
            visit__participant=participant, visit__definition__code="M0", item__code__in=("HBSAG", "HCVAB")
        ).values_list("item__code", "text")
    )
    if serology.get("HBSAG") == "positive":
        return "HBV"
    if serology.get("HCVAB") == "positive":
        return "HCV"
    return rng.choice(["HBV", "HBV", "HBV", "ALCOHOL", "ALCOHOL", "HCV", "AUTOIMMUNE", "CRYPTOGENIC"])


def _add(user: object, participant: Participant, form: str, values: dict) -> object:
    return log_row_create(user=user, participant_id=participant.pk, form_code=form, values=values).row


def _years_before(rng: random.Random, day: datetime.date, low: int, high: int) -> datetime.date:
    return day - datetime.timedelta(days=rng.randint(low * 365, high * 365))


_CONDITIONS = {
    "HBV": "Chronic hepatitis B",
    "HCV": "Chronic hepatitis C",
    "ALCOHOL": "Alcohol use disorder",
    "AUTOIMMUNE": "Autoimmune hepatitis",
}


def _history(rng: random.Random, user: object, participant: Participant, aetiology: str) -> int:
    screening = participant.screening.screening_date
    cirrhosis_since = _years_before(rng, screening, 1, 6)
    rows = [("Liver cirrhosis", aetiology, cirrhosis_since)]
    if aetiology in _CONDITIONS:
        rows.append((_CONDITIONS[aetiology], aetiology, _years_before(rng, cirrhosis_since, 3, 15)))
    for condition in rng.sample(COMORBIDITIES, rng.choice([0, 1, 1, 2])):
        rows.append((condition, "NA", _years_before(rng, screening, 1, 10)))
    for term, cause, since in rows:
        values = {"MHTERM": term, "MHETIOL": cause, "MHSTDAT": since.isoformat(), "MHONGO": "true"}
        _add(user, participant, "MH", values)
    return len(rows)


def _medication(drug: tuple, start: datetime.date, stop: datetime.date | None) -> dict[str, str]:
    name, klass, indication, dose, unit, route, frequency = drug
    today = timezone.localdate()
    ended = stop is not None and stop <= today
    return {
        "CMTRT": name,
        "CMCLAS": klass,
        "CMINDC": indication,
        "CMDOSE": dose,
        "CMDOSU": unit,
        "CMROUTE": route,
        "CMDOSFRQ": frequency,
        "CMSTDAT": start.isoformat(),
        "CMENDAT": stop.isoformat() if ended else "",
        "CMONGO": "false" if ended else "true",
    }


def _regimen(rng: random.Random, participant: Participant, aetiology: str) -> list[tuple]:
    """(drug, start, stop) of the conventional therapy: antivirals for viral cirrhosis, diuretics for ascites,
    a beta blocker for varices, albumin when it is low, lactulose after encephalopathy."""
    screening = participant.screening
    day0 = participant.enrolment_date
    regimen = []
    if aetiology == "HBV":
        regimen.append((rng.choice([ENTECAVIR, ENTECAVIR, TENOFOVIR]), _years_before(rng, day0, 1, 5), None))
    if aetiology == "HCV":
        regimen.append((SOFOSBUVIR, day0 + datetime.timedelta(days=7), day0 + datetime.timedelta(days=90)))
    if screening.ascites != "none":
        since = day0 - datetime.timedelta(days=rng.randint(30, 400))
        regimen += [(SPIRONOLACTONE, since, None), (FUROSEMIDE, since, None)]
    if rng.random() < 0.5:
        regimen.append((PROPRANOLOL, _years_before(rng, day0, 0, 2), None))
    if screening.albumin < 30:
        regimen.append((ALBUMIN, day0, day0 + datetime.timedelta(days=28)))
    if screening.encephalopathy != "none" or rng.random() < 0.2:
        regimen.append((LACTULOSE, day0 - datetime.timedelta(days=rng.randint(10, 200)), None))
    if rng.random() < 0.4:
        regimen.append((POLYENE, day0, day0 + datetime.timedelta(days=rng.choice([60, 90, 180]))))
    return regimen


def _medications(rng: random.Random, user: object, participant: Participant, aetiology: str) -> int:
    rows = [_add(user, participant, "CM", _medication(*entry)) for entry in _regimen(rng, participant, aetiology)]
    # A few rows show the review trail: a dose corrected with a reason, a row removed as entered in error.
    furosemide = next((row for row in rows if row.values.filter(text="Furosemide").exists()), None)
    if furosemide is not None and rng.random() < 0.3:
        log_row_update(
            user=user, row_id=furosemide.pk, version=1, values={"CMDOSE": "40"}, partial=True, reason=CORRECTION_REASON
        )
    if rows and rng.random() < 0.1:
        extra = _add(user, participant, "CM", _medication(POLYENE, participant.enrolment_date, None))
        log_row_remove(user=user, row_id=extra.pk, version=1, reason="Duplicate of another row, entered in error")
    return len(rows)


def _deviations(rng: random.Random, user: object, participant: Participant) -> int:
    visits = list(
        Visit.objects.filter(participant=participant)
        .exclude(progress=VisitProgress.NOT_STARTED)
        .select_related("definition")
        .order_by("target_date")
    )
    if not visits or rng.random() < 0.6:
        return 0
    added = 0
    for _ in range(rng.choice([1, 1, 2])):
        category, text, found_by, important, action = rng.choice(DEVIATIONS)
        if category == "DOSING" and participant.arm.code != "MSC":
            continue
        visit = rng.choice(visits)
        day = visit.visit_date or visit.window_end
        if visit.progress == VisitProgress.MISSED:
            category, text = "MISSED_VISIT", DEVIATIONS[2][1]
        values = {
            "DVDAT": day.isoformat(),
            "DVCAT": category,
            "DVTERM": f"{visit.definition.code}: {text}",
            "DVIDBY": found_by,
            "DVIMPT": "true" if important else "false",
            "DVACT": action,
        }
        _add(user, participant, "DV", values)
        added += 1
    return added
