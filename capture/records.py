"""Records of a participant that are not items of a visit (an adverse event), as data review sees them.

Queries may be raised on such records, with the thread, audit, inboxes and site scoping of visit queries, while
capture knows nothing of the app that owns them: that app registers each kind of record once, from its
AppConfig.ready(), with the few functions capture needs. Dependencies still point one way:

    register("adverse_event", label=..., url=..., participant_for=..., fields=..., labels=...)
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

from trial.access import Action
from trial.errors import InvalidInput
from trial.models import Participant

# The audit trail keeps the record type in its 16-character form code column, beside the field in the item code.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")


@dataclass(frozen=True)
class RecordType:
    """How capture reaches one kind of record. Every function takes the record's id.

    - `label(id)`: what a person reads for the record ("AE 12: ascites, grade 2").
    - `url(id)`: the page that shows the record; built without reading the database (reverse()).
    - `participant_for(user, id, action)`: the participant the record belongs to, after checking, through
      trial.access, that the user may see the record (else Http404) and may do `action` at its site (else
      AccessDenied), as capture.visits.visit_or_404 does for a visit.
    - `fields()`: {field code: label} of the fields a query may name; no database read.
    - `labels(ids)`: optional, {id: label} of many records in one read; lists use it so a page of queries costs
      the same whatever its number of records. Without it, lists call `label` once per record.
    """

    name: str
    label: Callable[[int], str]
    url: Callable[[int], str]
    participant_for: Callable[[object, int, Action], Participant]
    fields: Callable[[], dict[str, str]]
    labels: Callable[[list[int]], dict[int, str]] | None = None

    def labels_of(self, ids: list[int]) -> dict[int, str]:
        if self.labels is not None:
            return self.labels(ids)
        return {record_id: self.label(record_id) for record_id in ids}

    def field_label(self, field_code: str) -> str:
        return str(self.fields().get(field_code, field_code)) if field_code else ""


_registry: dict[str, RecordType] = {}


def register(
    record_type: str,
    *,
    label: Callable[[int], str],
    url: Callable[[int], str],
    participant_for: Callable[[object, int, Action], Participant],
    fields: Callable[[], dict[str, str]],
    labels: Callable[[list[int]], dict[int, str]] | None = None,
) -> RecordType:
    """Make a kind of record queryable. Called once per kind, from the owning app's AppConfig.ready()."""
    if not _NAME.fullmatch(record_type):
        raise ImproperlyConfigured(
            f"Record type {record_type!r}: lower-case letters, digits and underscores, at most 16 characters."
        )
    if record_type in _registry:
        raise ImproperlyConfigured(f"Record type {record_type!r} is already registered.")
    kind = RecordType(record_type, label, url, participant_for, fields, labels)
    _registry[record_type] = kind
    return kind


def unregister(record_type: str) -> None:
    """Forget a kind of record (for tests that register one of their own)."""
    _registry.pop(record_type, None)


def registered() -> list[str]:
    return sorted(_registry)


def find(name: str) -> RecordType | None:
    """The registered kind of record of that name, if any."""
    return _registry.get(name)


def record_type_or_invalid(name: str) -> RecordType:
    """For services: a kind of record nobody registered is a field error on `record_type`."""
    kind = _registry.get(name)
    if kind is None:
        raise InvalidInput(errors={"record_type": [_("%(type)s is not a kind of record.") % {"type": name}]})
    return kind


def field_or_invalid(kind: RecordType, field_code: str) -> str:
    """For services: the field must be one of the record's; blank stands for the whole record."""
    if field_code and field_code not in kind.fields():
        raise InvalidInput(
            errors={"field_code": [_("%(field)s is not a field of this record.") % {"field": field_code}]}
        )
    return field_code


def describe(queries: Iterable[object]) -> list[object]:
    """Set `record_label`, `record_url` and `record_field` on each query on a record, with one `labels` call per
    kind of record whatever the number of queries; queries on visits get empty ones. Returns the queries.

    A kind no longer registered is named by its type and id, without a link.
    """
    queries = list(queries)
    wanted: dict[str, set[int]] = {}
    for query in queries:
        if query.record_type:
            wanted.setdefault(query.record_type, set()).add(query.record_id)
    labels = {name: _labels(name, sorted(ids)) for name, ids in wanted.items()}
    for query in queries:
        kind = _registry.get(query.record_type)
        query.record_label = labels.get(query.record_type, {}).get(query.record_id, "")
        query.record_url = kind.url(query.record_id) if kind and query.record_type else ""
        query.record_field = kind.field_label(query.field_code) if kind else query.field_code
    return queries


def _labels(name: str, ids: list[int]) -> dict[int, str]:
    kind = _registry.get(name)
    found = kind.labels_of(ids) if kind else {}
    return {record_id: str(found.get(record_id) or f"{name} {record_id}") for record_id in ids}
