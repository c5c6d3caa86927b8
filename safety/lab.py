"""Grading saved lab forms against CTCAE v5.0 and proposing adverse events from the grades.

`form_grade` is what the Celery task calls: it reads one lab form as it is now, stores the grade of each graded
value, and turns a grade that is new or worse than the participant's previous one into a proposed adverse event
for the investigator. It is safe to run any number of times: a form already graded at its current version is left
alone, and the proposals are unique per visit, term and grade.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from capture.definitions import FormSpec, protocol_forms
from capture.models import FormInstance, ItemValue
from safety import grading
from safety.display import criterion_text
from safety.models import AdverseEvent, AdverseEventSource, AdverseEventStatus, BodySystem, FormGrading, LabGrading
from safety.services import OBJECT_TYPE, next_number
from trial.audit import AuditEntry, audit_write
from trial.background import enqueue_after_commit
from trial.display import item_number
from trial.locking import atomic_with_retry, lock_participant
from trial.models import ItemDefinition, Protocol, Visit

FLAGGED_LEVEL = Decimal("0.5")  # a flagged value (hyperglycemia) ranks above "normal" and below grade 1
BASELINE_VISIT_DAY = 0


@dataclass(frozen=True)
class GradeOutcome:
    form_id: int
    graded: int  # values graded
    proposed: tuple[int, ...]  # adverse events proposed or raised by this run
    withdrawn: tuple[int, ...]  # proposals a correction no longer supports
    skipped: bool = False  # already graded at this version


def graded_items() -> set[str]:
    return grading.trial_rules().graded_items()


@functools.lru_cache(maxsize=8)
def _graded_forms(protocol_id: int, protocol_version: int) -> frozenset[str]:
    forms = protocol_forms(Protocol.objects.get(pk=protocol_id))
    codes = graded_items()
    return frozenset(code for code, spec in forms.items() if any(item.code in codes for item in spec.items))


def graded_form_codes(protocol: Protocol) -> frozenset[str]:
    """The forms holding at least one value CTCAE grades (LIVER, KIDNEY, LIPGLU)."""
    return _graded_forms(protocol.pk, protocol.version)


def forms_due(*, older_than: datetime.timedelta, limit: int = 500) -> list[int]:
    """Lab forms saved since they were last graded: a task was lost, or the broker was down at the save."""
    cutoff = timezone.now() - older_than
    due = FormInstance.objects.filter(version__gt=0, updated_at__lte=cutoff).filter(
        Q(grading__isnull=True) | Q(grading__graded_version__lt=F("version"))
    )
    ids = []
    for form_id, protocol_id, protocol_version, code in due.values_list(
        "pk", "visit__participant__protocol_id", "visit__participant__protocol__version", "definition__code"
    ).order_by("updated_at")[: limit * 4]:
        if code in _graded_forms(protocol_id, protocol_version):
            ids.append(form_id)
    return ids[:limit]


@atomic_with_retry
def form_grade(*, form_id: int) -> GradeOutcome:
    """Grade the lab form as it stands and propose adverse events; idempotent."""
    instance = FormInstance.objects.select_related("visit", "definition").filter(pk=form_id).first()
    if instance is None:
        return GradeOutcome(form_id, 0, (), (), skipped=True)
    # The lock order's first step (trial/locking.py): one grading, or other write, of a participant at a time.
    participant = lock_participant(instance.visit.participant_id)
    instance = FormInstance.objects.select_related("visit__definition", "definition").get(pk=form_id)
    done = FormGrading.objects.filter(form=instance).first()
    if done is not None and done.graded_version >= instance.version:
        return GradeOutcome(form_id, 0, (), (), skipped=True)
    spec = protocol_forms(participant.protocol)[instance.definition.code]
    gradings = _grade_values(instance, spec, participant.pk)
    _store(instance, gradings)
    run = _Proposals(instance, participant)
    run.settle(gradings)
    now = timezone.now()
    FormGrading.objects.update_or_create(form=instance, defaults={"graded_version": instance.version, "graded_at": now})
    if instance.visit.definition.day == BASELINE_VISIT_DAY:
        _regrade_later(instance)
    audit_write(user=None, participant=participant, entries=run.entries)
    return GradeOutcome(form_id, len(gradings), tuple(run.proposed), tuple(run.withdrawn))


@dataclass(frozen=True)
class _Graded:
    item_code: str
    term: str
    value: Decimal
    uln: Decimal | None
    lln: Decimal | None
    baseline: Decimal | None
    result: grading.Grading
    item: ItemDefinition | None = None

    @property
    def level(self) -> Decimal:
        if self.result.grade:
            return Decimal(self.result.grade)
        return FLAGGED_LEVEL if self.result.flag else Decimal(0)

    @property
    def ctcae_grade(self) -> int:
        return self.result.grade or 0


def _grade_values(instance: FormInstance, spec: FormSpec, participant_id: int) -> list[_Graded]:
    codes = graded_items()
    items = {item.pk: item for item in spec.items if item.code in codes}
    values = ItemValue.objects.filter(visit=instance.visit, item_id__in=items, number__isnull=False)
    baselines = _baselines(participant_id, list(items))
    graded = []
    for value in values:
        item = items[value.item_id]
        uln, lln = item.reference_high, item.reference_low
        baseline = baselines.get(item.pk)
        for result in _results(item.code, value.number, uln, lln, baseline):
            graded.append(_Graded(item.code, result.term, value.number, uln, lln, baseline, result, item))
    return graded


def _results(code: str, value: Decimal, uln: Decimal | None, lln: Decimal | None, baseline: Decimal | None) -> list:
    """The worst grading per CTCAE term of one value (glucose has two terms: hypoglycemia, hyperglycemia)."""
    gradings = (book.grade(item_code=code, value=value, uln=uln, lln=lln, baseline=baseline) for book in _books(code))
    return [result for result in gradings if result is not None]


@functools.lru_cache(maxsize=64)
def _books(code: str) -> tuple[grading.RuleBook, ...]:
    """One rule book per CTCAE term of an item, built once per process rather than per graded value."""
    book = grading.trial_rules()
    terms = sorted({rule.term for rule in book.rules if rule.item_code == code} | _flag_terms(book, code))
    return tuple(
        grading.RuleBook(
            rules=tuple(r for r in book.rules if r.term == term), flags=tuple(f for f in book.flags if f.term == term)
        )
        for term in terms
    )


def _flag_terms(book: grading.RuleBook, code: str) -> set[str]:
    return {flag.term for flag in book.flags if flag.item_code == code}


def _baselines(participant_id: int, item_ids: list[int]) -> dict[int, Decimal]:
    """The participant's baseline (month 0) value of each item."""
    return dict(
        ItemValue.objects.filter(
            visit__participant_id=participant_id,
            visit__definition__day=BASELINE_VISIT_DAY,
            item_id__in=item_ids,
            number__isnull=False,
        ).values_list("item_id", "number")
    )


def _store(instance: FormInstance, gradings: list[_Graded]) -> None:
    now = timezone.now()
    codes = [item.code for item in protocol_forms(instance.visit.participant.protocol)[instance.definition.code].items]
    LabGrading.objects.filter(visit=instance.visit, item_code__in=codes).delete()
    LabGrading.objects.bulk_create(
        LabGrading(
            participant_id=instance.visit.participant_id,
            visit=instance.visit,
            item_code=entry.item_code,
            term=entry.term,
            value=entry.value,
            uln=entry.uln,
            lln=entry.lln,
            baseline=entry.baseline,
            grade=entry.ctcae_grade,
            flagged=bool(entry.result.flag),
            criterion=_criterion(entry)[:200],
            form_version=instance.version,
            graded_at=now,
        )
        for entry in gradings
    )


def _criterion(entry: _Graded) -> str:
    return criterion_text(entry.result)  # language-neutral; safety/display.py reads it back as a sentence


def _regrade_later(instance: FormInstance) -> None:
    """A new baseline changes the grades of every later visit: their forms become due again."""
    later = FormInstance.objects.filter(
        visit__participant_id=instance.visit.participant_id, definition=instance.definition, version__gt=0
    ).exclude(pk=instance.pk)
    stale = FormGrading.objects.filter(form__in=later)
    ids = list(stale.values_list("form_id", flat=True))
    stale.update(graded_version=0)
    for form_id in ids:
        enqueue_after_commit("safety.tasks.lab_grade_task", form_id)


class _Proposals:
    """Turns the gradings of one form into proposed adverse events, and withdraws those a correction undid."""

    def __init__(self, instance: FormInstance, participant: object) -> None:
        self.instance = instance
        self.visit: Visit = instance.visit
        self.participant = participant
        self.entries: list[AuditEntry] = []
        self.proposed: list[int] = []
        self.withdrawn: list[int] = []
        self.previous = self._previous_levels()
        self.existing = list(
            AdverseEvent.objects.filter(source=AdverseEventSource.LAB, lab_visit=self.visit).order_by("pk")
        )

    def _previous_levels(self) -> dict[str, Decimal]:
        """Per term, the level of the latest earlier visit graded for it: what "new or worse" compares with."""
        earlier = LabGrading.objects.filter(
            participant_id=self.visit.participant_id, visit__target_date__lt=self.visit.target_date
        )
        latest = earlier.filter(term=OuterRef("term")).order_by("-visit__target_date").values("visit__target_date")[:1]
        rows = earlier.filter(visit__target_date=Subquery(latest)).values("term", "grade", "flagged")
        levels: dict[str, Decimal] = {}
        for row in rows:
            level = Decimal(row["grade"]) if row["grade"] else (FLAGGED_LEVEL if row["flagged"] else Decimal(0))
            levels[row["term"]] = max(level, levels.get(row["term"], Decimal(0)))
        return levels

    def settle(self, gradings: list[_Graded]) -> None:
        """Bring this visit's proposals in line with its grades, term by term."""
        current = {entry.term: entry for entry in gradings}
        for term in sorted(set(current) | {event.ctcae_term for event in self.existing}):
            self._settle(term, current.get(term))

    def _due(self, entry: _Graded | None) -> bool:
        if entry is None or self.visit.definition.day == BASELINE_VISIT_DAY:
            return False  # before the first infusion an abnormal value is medical history, not an adverse event
        return entry.level > 0 and entry.level > self.previous.get(entry.term, Decimal(0))

    def _settle(self, term: str, entry: _Graded | None) -> None:
        same_term = [event for event in self.existing if event.ctcae_term == term]
        proposal = next((e for e in same_term if e.status == AdverseEventStatus.PROPOSED), None)
        decided = [
            e for e in same_term if e.status == AdverseEventStatus.REPORTED or (e.decided_by_id and e is not proposal)
        ]
        if not self._due(entry) or any(e.ctcae_grade >= entry.ctcae_grade for e in decided):
            if proposal is not None:
                self._withdraw(proposal, entry)
            return
        if proposal is None:
            self._propose(entry)
        elif proposal.ctcae_grade != entry.ctcae_grade or proposal.lab_value != entry.value:
            self._regrade(proposal, entry)

    def _propose(self, entry: _Graded) -> None:
        now = timezone.now()
        event = AdverseEvent.objects.create(
            participant=self.participant,
            subject_id=self.participant.subject_id,
            number=next_number(self.participant),
            status=AdverseEventStatus.PROPOSED,
            source=AdverseEventSource.LAB,
            term=entry.term,
            body_system=_body_system(entry.result),
            onset_date=self._lab_date(),
            lab_visit=self.visit,
            lab_item_code=entry.item_code,
            lab_value=entry.value,
            ctcae_term=entry.term,
            ctcae_grade=entry.ctcae_grade,
            ctcae_criterion=_criterion(entry)[:200],
            created_at=now,
            updated_at=now,
        )
        self.existing.append(event)
        self.proposed.append(event.pk)
        self.entries.append(
            AuditEntry(
                OBJECT_TYPE,
                str(event.pk),
                "propose",
                "AE",
                entry.item_code,
                "",
                f"{entry.term} CTCAE grade {entry.ctcae_grade}",
                f"CTCAE v5.0 lab grading of {self.visit.definition.code} {entry.item_code} = "
                f"{item_number(entry.value, entry.item)}",
            )
        )

    def _regrade(self, event: AdverseEvent, entry: _Graded) -> None:
        old = event.ctcae_grade
        event.ctcae_grade = entry.ctcae_grade
        event.lab_value = entry.value
        event.ctcae_criterion = _criterion(entry)[:200]
        event.version += 1
        event.updated_at = timezone.now()
        event.save(update_fields=["ctcae_grade", "lab_value", "ctcae_criterion", "version", "updated_at"])
        self.proposed.append(event.pk)
        self.entries.append(
            AuditEntry(OBJECT_TYPE, str(event.pk), "regrade", "AE", "ctcae_grade", str(old), str(entry.ctcae_grade))
        )

    def _withdraw(self, event: AdverseEvent, entry: _Graded | None) -> None:
        now_grade = f"grade {entry.ctcae_grade}" if entry is not None else "no value"
        event.status = AdverseEventStatus.DISMISSED
        event.dismiss_reason = f"Lab value corrected: now {now_grade}"
        event.decided_at = timezone.now()
        event.version += 1
        event.updated_at = event.decided_at
        event.save(update_fields=["status", "dismiss_reason", "decided_at", "version", "updated_at"])
        self.withdrawn.append(event.pk)
        self.entries.append(
            AuditEntry(
                OBJECT_TYPE, str(event.pk), "withdraw", "AE", "status", "proposed", "dismissed", event.dismiss_reason
            )
        )

    def _lab_date(self) -> datetime.date:
        sampled = (
            ItemValue.objects.filter(visit=self.visit, item__form=self.instance.definition, item__code="LBDAT")
            .values_list("date", flat=True)
            .first()
        )
        return sampled or self.visit.visit_date or timezone.localdate()


def _body_system(result: grading.Grading) -> str:
    return BodySystem.METABOLISM if "Metabolism" in result.rule.source else BodySystem.INVESTIGATIONS
