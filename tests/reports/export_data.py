"""A small trial for the export tests, entered through the services as coordinators would enter it: a participant
of site 1 in the MSC arm with the M0 liver panel, infusion (Chinese free text with every character XML and CSV
must escape) and clinical assessment, one value missing and one corrected; a participant of site 2 likewise."""

import datetime
import io
import zipfile
from dataclasses import dataclass

from capture.models import ItemValue
from capture.services import display, form_save, typed_of
from tests.factories import enrolled
from trial.models import Participant, Site, Visit

# Free text a site really writes, and the characters that break XML attributes and CSV fields.
REACTION = '轻度发热、寒战，30分钟后缓解\n第二行: "引号" & <尖括号>, 逗号'
LOT = 'UC-2026-001 "A" & <B>'


@dataclass(frozen=True)
class Entered:
    participant: Participant
    m0: Visit


def liver(day: datetime.date, **changes: str) -> dict[str, str]:
    return {"LBDAT": day.isoformat(), "ALT": "300", "AST": "35", "ALB": "42.5", "BILI": "15", "BILDIR": "5", **changes}


def enter_participant(user: object, site: Site, *, arm: str = "MSC", alt: str = "300") -> Entered:
    """Enrolled 100 days ago; M0 with the liver panel (prealbumin not done), the clinical assessment and, in the
    MSC arm, the infusion."""
    participant = enrolled(user, site, arm=arm, days_ago=100)
    m0 = participant.visits.select_related("definition").get(definition__code="M0")
    day = m0.target_date
    form_save(
        user=user,
        visit_id=m0.pk,
        form_code="LIVER",
        version=0,
        values=liver(day, ALT=alt),
        missing={"PREALB": "not_done"},
        complete=True,
    )
    clinical = {"VISDAT": day.isoformat(), "WEIGHT": "61.5", "INR": "1.5", "ASCITES": "mild", "HEPENC": "none"}
    form_save(user=user, visit_id=m0.pk, form_code="CLIN", version=0, values=clinical, complete=True)
    if arm == "MSC":
        infusion = {
            "INFDAT": day.isoformat(),
            "CELLDOSE": "4.05",
            "VOLUME": "40",
            "LOT": LOT,
            "REACT": "true",
            "REACTDSC": REACTION,
            "REACTGR": "1",
            **{"TEMPPRE": "36.6", "TEMPPOST": "37.9", "PULSEPRE": "76", "PULSEPOST": "88"},
            **{"SYSBPPRE": "118", "SYSBPPOST": "122", "DIABPPRE": "74", "DIABPPOST": "78"},
        }
        form_save(user=user, visit_id=m0.pk, form_code="INFUS", version=0, values=infusion, complete=True)
    return Entered(participant=participant, m0=m0)


def correct_alt(user: object, entered: Entered, alt: str, reason: str) -> None:
    """A correction of a completed form: it needs a reason, and the audit trail keeps both values."""
    day = entered.m0.target_date
    form_save(
        user=user,
        visit_id=entered.m0.pk,
        form_code="LIVER",
        version=1,
        values=liver(day, ALT=alt),
        missing={"PREALB": "not_done"},
        reason=reason,
        complete=True,
    )


def stored(participant: Participant) -> dict[tuple[str, str, str], str]:
    """{(visit, form, item): value as the exports write it, or "<reason>" when missing} from the database."""
    values = ItemValue.objects.filter(visit__participant=participant).select_related("visit__definition", "item__form")
    return {
        (value.visit.definition.code, value.item.form.code, value.item.code): display(typed_of(value))
        for value in values
        if not typed_of(value).is_empty
    }


def read_zip(content: bytes) -> dict[str, str]:
    """{member name: text} of a zip, decoded as the CSV files are written (UTF-8 with a byte order mark)."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name).decode("utf-8-sig") for name in archive.namelist()}
