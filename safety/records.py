"""The adverse event as a record capture's data review can raise queries on (capture.records)."""

from django.urls import reverse

from capture import records
from safety.models import AdverseEvent
from safety.rules import AdverseEventInput
from safety.services import adverse_event_or_404
from trial.access import Action
from trial.models import Participant

RECORD_TYPE = "adverse_event"


def _label(event: AdverseEvent) -> str:
    return f"{event.participant.subject_id} {event.label}: {event.term}"


def label(event_id: int) -> str:
    event = AdverseEvent.objects.select_related("participant").filter(pk=event_id).first()
    return _label(event) if event else f"AE {event_id}"


def labels(event_ids: list[int]) -> dict[int, str]:
    events = AdverseEvent.objects.select_related("participant").filter(pk__in=event_ids)
    return {event.pk: _label(event) for event in events}


def url(event_id: int) -> str:
    return reverse("safety:adverse_event", args=[event_id])


def participant_for(user: object, event_id: int, action: Action) -> Participant:
    return adverse_event_or_404(user, event_id, action).participant


def fields() -> dict[str, str]:
    """The fields of the AE form a query may name, labelled as on the form."""
    from safety.forms import AdverseEventForm

    form_fields = AdverseEventForm.base_fields
    return {
        name: str(form_fields[name].label or name) for name in AdverseEventInput.field_names() if name in form_fields
    }


def register() -> None:
    records.register(RECORD_TYPE, label=label, url=url, participant_for=participant_for, fields=fields, labels=labels)
