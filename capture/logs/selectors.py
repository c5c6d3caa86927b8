"""Reading log forms and their rows, always through trial/access.py."""

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from capture.checks import Typed
from capture.definitions import FormSpec, protocol_forms
from capture.models import LogRow, LogValue
from capture.selectors import CurrentValue
from trial import access
from trial.access import Action
from trial.locking import lock_participant, lock_records
from trial.models import Participant, Protocol
from trial.services import protocol_current


def log_forms(protocol: Protocol) -> list[FormSpec]:
    """The log forms of a protocol version, in protocol order (no query once the version is cached)."""
    return [spec for spec in protocol_forms(protocol).values() if spec.definition.repeating]


def log_protocol(participant: Participant) -> Protocol:
    """The protocol version whose log forms a participant's logs follow: their own, or, for a participant
    enrolled before an amendment declared log forms, the current version (a log is not tied to a visit)."""
    if log_forms(participant.protocol):
        return participant.protocol
    return protocol_current(participant.protocol.code)


def log_form(participant: Participant, form_code: str) -> FormSpec | None:
    spec = protocol_forms(log_protocol(participant)).get(form_code)
    return spec if spec is not None and spec.definition.repeating else None


def log_form_or_404(participant: Participant, form_code: str) -> FormSpec:
    spec = log_form(participant, form_code)
    if spec is None:
        raise Http404(_("%(form)s is not a log form of this protocol.") % {"form": form_code})
    return spec


def rows_with_values(rows: QuerySet[LogRow]) -> QuerySet[LogRow]:
    """Rows with their values and who saved them, in three queries whatever their number."""
    return rows.select_related("updated_by", "definition").prefetch_related(
        Prefetch("values", queryset=LogValue.objects.select_related("item"))
    )


def log_rows(participant: Participant | int, form_code: str, *, removed: bool = False) -> QuerySet[LogRow]:
    """The rows of one log of a participant, in repeat-key order, with their values: e.g. the medication log
    (`log_rows(participant, "CM")`) for an SAE report's suspect and concomitant medications. Rows removed as
    entered in error are left out unless `removed`. The caller has checked that the user may see the participant.
    """
    participant_id = participant if isinstance(participant, int) else participant.pk
    rows = LogRow.objects.filter(participant_id=participant_id, definition__code=form_code)
    if not removed:
        rows = rows.filter(removed_at__isnull=True)
    return rows_with_values(rows).order_by("repeat_key")


def log_row_or_404(user: object, row_id: int, action: Action = Action.VIEW, *, lock: bool = False) -> LogRow:
    """The row if the user may see its participant (else 404) and may do `action` at its site (else 403)."""
    rows = (
        LogRow.objects.filter(participant__site_id__in=access.site_ids(user))
        .select_related("definition", "participant__protocol", "participant__site", "participant__arm")
        .defer("participant__protocol__definition")
    )
    row = access.get_or_404(rows, pk=row_id)
    if lock:
        # The lock order (trial/locking.py): the participant, then the row.
        lock_participant(row.participant_id)
        row = lock_records(rows).get(pk=row_id)
    if action != Action.VIEW:
        access.require(user, action, row.participant.site_id)
    return row


def row_values(row: LogRow) -> dict[str, LogValue]:
    """{item code: value} of a row whose values were prefetched (rows_with_values)."""
    return {value.item.code: value for value in row.values.all()}


def row_current(row: LogRow, spec: FormSpec) -> list[CurrentValue]:
    """The row's value of every entered item, in protocol order, as the pages show a value (values prefetched)."""
    values = row_values(row)
    return [
        CurrentValue(item, typed(values.get(item.code)), tuple(values[item.code].flags) if item.code in values else ())
        for item in spec.entered
    ]


def typed(value: LogValue | None) -> Typed:
    if value is None:
        return Typed()
    return Typed(number=value.number, text=value.text, date=value.date, missing_reason=value.missing_reason)


@dataclass(frozen=True)
class ParticipantLog:
    """One log of a participant as its page shows it: the form and its rows (removed ones included, marked)."""

    spec: FormSpec
    rows: list[LogRow]


def participant_logs(participant: Participant) -> list[ParticipantLog]:
    """Every log of the participant with its rows, in a constant number of queries whatever the rows."""
    specs = log_forms(log_protocol(participant))
    rows = list(rows_with_values(LogRow.objects.filter(participant=participant)).order_by("definition", "repeat_key"))
    return [ParticipantLog(spec, [row for row in rows if row.definition_id == spec.definition.pk]) for spec in specs]
