"""An SAE report's data as they stand: what a report version keeps, and what its CIOMS I form prints.

Codes, not labels, so a version prints in the reader's language; dates as ISO text, so it is JSON.
"""

from __future__ import annotations

import datetime

from capture.models import ItemValue
from safety.models import AdverseEvent, SeriousAdverseEvent

COUNTRY = "China"
INFUSION_FORM = "INFUS"
MSC_ARM = "MSC"
# The study's cell product: the suspect product of every MSC-arm participant, from the infusion forms.
STUDY_PRODUCT = "Umbilical cord mesenchymal stem cells (UC-MSC)"
STUDY_ROUTE = "Intravenous infusion"
STUDY_INDICATION = "Liver cirrhosis"
EVENT_FIELDS = (
    "term",
    "body_system",
    "onset_date",
    "end_date",
    "grade",
    "relationship",
    "action_taken",
    "outcome",
    "serious",
    "serious_criteria",
    "description",
)
SAE_FIELDS = (
    "admission_date",
    "discharge_date",
    "narrative",
    "relevant_tests",
    "relevant_history",
    "dechallenge",
    "rechallenge",
    "sponsor_relationship",
    "sponsor_assessor",
    "sponsor_comment",
    "sponsor_assessed_at",
)


def _plain(value: object) -> object:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value


def build(event: AdverseEvent, *, protocol_definition: dict) -> dict:
    """The whole report of `event` as plain JSON."""
    participant = event.participant
    sae = SeriousAdverseEvent.objects.filter(adverse_event_id=event.pk).first()
    onset = event.onset_date
    return {
        "protocol": {
            "code": protocol_definition.get("code", ""),
            "title": protocol_definition.get("title", ""),
            "sponsor": protocol_definition.get("sponsor", ""),
            "other_ids": list(protocol_definition.get("other_ids", [])),
        },
        "participant": {
            "subject_id": participant.subject_id or participant.screening_number,
            "initials": participant.initials,
            "sex": participant.sex,
            "date_of_birth": participant.date_of_birth.isoformat(),
            "age_at_onset": participant.age_on(onset) if onset else None,
            "country": COUNTRY,
            "site_number": participant.site.number,
            "site_name": participant.site.name,
            "investigator": participant.site.principal_investigator,
            "arm": participant.arm.code if participant.arm_id else "",
            "enrolment_date": _plain(participant.enrolment_date),
        },
        "event": {"label": event.label, **{name: _plain(getattr(event, name)) for name in EVENT_FIELDS}},
        "sae": {name: _plain(getattr(sae or SeriousAdverseEvent(), name)) for name in SAE_FIELDS},
        "suspect": _study_product(event) + (list(sae.suspect_medications) if sae else []),
        "concomitant": list(sae.concomitant_medications) if sae else [],
    }


def _study_product(event: AdverseEvent) -> list[dict]:
    """The UC-MSC infusions the participant received (MSC arm): dates and cell doses from the infusion forms."""
    participant = event.participant
    if not participant.arm_id or participant.arm.code != MSC_ARM:
        return []
    rows = ItemValue.objects.filter(
        visit__participant_id=participant.pk, item__form__code=INFUSION_FORM, item__code__in=["INFDAT", "CELLDOSE"]
    ).values_list("visit_id", "item__code", "date", "number")
    infusions: dict[int, dict] = {}
    for visit_id, code, day, number in rows:
        infusions.setdefault(visit_id, {})[code] = day if code == "INFDAT" else number
    given = sorted((row["INFDAT"], row.get("CELLDOSE")) for row in infusions.values() if row.get("INFDAT"))
    doses = sorted({f"{dose:.2f}" for _day, dose in given if dose is not None})
    return [
        {
            "name": STUDY_PRODUCT,
            "dose": " / ".join(f"{dose} x10^7 cells" for dose in doses),
            "route": STUDY_ROUTE,
            "indication": STUDY_INDICATION,
            "start_date": given[0][0].isoformat() if given else "",
            "end_date": given[-1][0].isoformat() if given else "",
            "infusions": [day.isoformat() for day, _dose in given],
            "log_form_id": None,
            "study_product": True,
        }
    ]
