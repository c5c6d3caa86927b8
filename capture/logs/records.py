"""The log row as a record data review can raise queries on (capture/records.py): a query on a medication, a
condition or a protocol deviation has the thread, inboxes, audit and site scoping of any other query."""

from functools import cache

from django.urls import reverse

from capture import records
from capture.forms import in_language
from capture.logs.selectors import log_row_or_404
from capture.logs.services import RECORD_TYPE
from capture.models import LogRow
from trial import protocol_file
from trial.access import Action
from trial.models import Participant


def _label(row: LogRow) -> str:
    return f"{row.participant} {row.definition.code} #{row.repeat_key}"


def label(row_id: int) -> str:
    row = LogRow.objects.select_related("participant", "definition").filter(pk=row_id).first()
    return _label(row) if row else f"{RECORD_TYPE} {row_id}"


def labels(row_ids: list[int]) -> dict[int, str]:
    rows = LogRow.objects.select_related("participant", "definition").filter(pk__in=row_ids)
    return {row.pk: _label(row) for row in rows}


def url(row_id: int) -> str:
    return reverse("capture:log_row", args=[row_id])


def participant_for(user: object, row_id: int, action: Action) -> Participant:
    return log_row_or_404(user, row_id, action).participant


@cache
def _items() -> dict[str, tuple[str, str]]:
    """{item code: (label, label_zh)} of every log form's items, read from the protocol file once (no database read)."""
    definition, _sha = protocol_file.read(protocol_file.DEFAULT_PATH)
    return {
        item["code"]: (item["label"], item.get("label_zh", ""))
        for form in definition.get("log_forms") or []
        for item in form["items"]
    }


def fields() -> dict[str, str]:
    """{item code: label} of every log form's items, in the page's language."""
    return {code: in_language(label, label_zh) for code, (label, label_zh) in _items().items()}


def register() -> None:
    records.register(RECORD_TYPE, label=label, url=url, participant_for=participant_for, fields=fields, labels=labels)
