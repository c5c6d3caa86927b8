"""Examples and responses of the safety API's OpenAPI schema."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    inline_serializer,
)
from rest_framework import serializers

from capture.review_api import NOT_FOUND, forbidden
from safety.api.serializers import (
    AdverseEventDetailSerializer,
)

# --- Examples for the schema ---------------------------------------------------------------------------------

REPORT_FIELDS = {
    "term": "Fever after infusion",
    "body_system": "general",
    "onset_date": "2026-02-19",
    "end_date": "2026-02-20",
    "grade": 1,
    "relationship": "probable",
    "action_taken": "medication",
    "outcome": "recovered",
    "serious": False,
    "serious_criteria": [],
    "description": "38.4 C six hours after the second infusion; paracetamol.",
}
CREATE_EXAMPLE = OpenApiExample("Report", request_only=True, value={"participant": 3, **REPORT_FIELDS})
EVENT_EXAMPLE = OpenApiExample(
    "Reported",
    response_only=True,
    status_codes=["201", "200"],
    value={
        "id": 17,
        "label": "AE-002",
        "participant": 3,
        "subject_id": "01-003",
        "site": 1,
        "status": "reported",
        "source": "site",
        **REPORT_FIELDS,
        "expedited": False,
        "expedited_at": None,
        "notice_state": "",
        "lab_visit": None,
        "lab_visit_code": None,
        "lab_item_code": "",
        "lab_value": None,
        "ctcae_term": "",
        "ctcae_grade": None,
        "ctcae_criterion": "",
        "verified": False,
        "changed_since_verification": False,
        "signed": False,
        "version": 1,
        "created_at": "2026-02-20T02:14:09Z",
        "updated_at": "2026-02-20T02:14:09Z",
        "created_by": "coordinator1",
        "updated_by": "coordinator1",
        "decided_at": None,
        "decided_by": None,
        "dismiss_reason": "",
        "verified_at": None,
        "verified_by": None,
        "signed_at": None,
        "signed_by": None,
        "notifications": [],
    },
)
SERIOUS_EXAMPLE = OpenApiExample(
    "Mark serious",
    summary="Hospitalised: the event becomes serious and its expedited notices are queued",
    request_only=True,
    value={
        "version": 1,
        "serious": True,
        "serious_criteria": ["hospitalisation"],
        "action_taken": "hospitalisation",
        "reason": "Admitted on day 2 for observation",
    },
)
CONFIRM_EXAMPLE = OpenApiExample(
    "Confirm",
    summary="Assess the proposal; the term, body system and onset stay as proposed",
    request_only=True,
    value={"version": 1, "grade": 2, "relationship": "unlikely", "action_taken": "none", "outcome": "recovering"},
)
DISMISS_EXAMPLE = OpenApiExample(
    "Dismiss", request_only=True, value={"version": 1, "reason": "Unchanged from the cirrhosis at baseline"}
)
FIELD_ERRORS_EXAMPLE = OpenApiExample(
    "Broken rules",
    summary="Every broken rule of the AE form, keyed by field; nothing saved",
    response_only=True,
    status_codes=["400"],
    value={
        "outcome": ["This field is required."],
        "end_date": ["The end date cannot precede the onset date."],
        "serious_criteria": ["A serious event meets at least one criterion."],
    },
)
CONFLICT_EXAMPLE = OpenApiExample(
    "Stale version",
    response_only=True,
    status_codes=["409"],
    value={
        "detail": "Someone changed this adverse event after you opened it (version 2, yours 1). Nothing was "
        "saved: review it and enter your changes again.",
        "current_version": 2,
    },
)
SURVIVAL_EXAMPLE = OpenApiExample(
    "Censored",
    response_only=True,
    status_codes=["200"],
    value={
        "participant": 3,
        "subject_id": "01-003",
        "site": 1,
        "arm": "MSC",
        "start": "2025-11-20",
        "end": "2026-05-21",
        "days": 182,
        "months": 5.98,
        "died": False,
        "censored": True,
        "vital_status": "alive",
        "death_report_missing": False,
    },
)
DEATH_EXAMPLE = OpenApiExample(
    "Report a death",
    request_only=True,
    value={"death_date": "2026-04-02", "cause": "Variceal bleeding", "relationship": "unrelated", "autopsy": False},
)

FIELD_ERRORS = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Refused input: {field: [messages]}, with `non_field_errors` for what concerns no one field.",
)
CONFLICT = OpenApiResponse(
    response=inline_serializer(
        "AdverseEventConflict",
        fields={"detail": serializers.CharField(), "current_version": serializers.IntegerField()},
    ),
    description="The event changed since `version`; nothing was saved.",
)
LOCKED = OpenApiResponse(description="The participant's data are locked by the data manager.")


def write_responses(ok: int, what: str, *, conflict: bool = True, locked: bool = True) -> dict:
    responses = {ok: AdverseEventDetailSerializer, 400: FIELD_ERRORS, 403: forbidden(what), 404: NOT_FOUND}
    if conflict:
        responses[409] = CONFLICT
    if locked:
        responses[423] = LOCKED
    return responses
