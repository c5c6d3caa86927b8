"""The REST API of log forms: a participant's log rows (medications, medical history, protocol deviations),
listed, added, read, corrected and removed as entered in error.

A thin door to capture.logs.services, as capture/api.py is to form_save: a row reads as `values`, `missing` and
`flags` keyed by item code, exactly what a save takes back. Another site's participant is 404.
"""

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from capture.api import CaptureView, FormSaveInputSerializer, FormStateField, ItemMetadataSerializer
from capture.definitions import FormSpec
from capture.logs.selectors import log_form_or_404, row_values, rows_with_values, typed
from capture.logs.services import LogRowSaveResult, log_row_create, log_row_remove, log_row_update
from capture.models import Flag, LogRow, MissingReason
from capture.services import display
from trial import access
from trial.access import Action
from trial.models import Participant
from trial.validators import InputSerializer

# --- Serializers -------------------------------------------------------------------------------------------


class LogRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    form = serializers.CharField(help_text="Log form code (CM, MH, DV).")
    repeat_key = serializers.IntegerField(help_text="The row's number in the participant's log, from 1; never reused.")
    state = FormStateField()
    version = serializers.IntegerField(help_text="Send it back with the next correction.")
    removed = serializers.BooleanField(help_text="Removed as entered in error: kept, but out of listings and exports.")
    removed_reason = serializers.CharField()
    values = serializers.DictField(child=serializers.CharField(), help_text="{item code: value} of items with one.")
    missing = serializers.DictField(
        child=serializers.ChoiceField(choices=MissingReason.choices), help_text="{item code: reason it is missing}."
    )
    flags = serializers.DictField(
        child=serializers.ListField(child=serializers.ChoiceField(choices=Flag.choices)),
        help_text="{item code: [flag]}: high/low against the reference range, rule for a broken edit check.",
    )


class LogRowSaveResultSerializer(LogRowSerializer):
    changed = serializers.ListField(child=serializers.CharField(), help_text="Items whose value this save changed.")
    queries_opened = serializers.IntegerField(help_text="Automatic queries this save raised.")
    queries_closed = serializers.IntegerField(help_text="Automatic queries this save's corrections closed.")


class LogFormSerializer(serializers.Serializer):
    form = serializers.CharField()
    name = serializers.CharField()
    name_zh = serializers.CharField()
    items = ItemMetadataSerializer(many=True, help_text="Every item of the log form, in protocol order.")
    rows = LogRowSerializer(many=True, help_text="Every row, removed ones included (marked), in repeat-key order.")


class LogRowCreateSerializer(FormSaveInputSerializer):
    version = None
    reason = None
    complete = None


class LogRowUpdateSerializer(FormSaveInputSerializer):
    complete = None
    partial = serializers.BooleanField(default=False, help_text="Keep the items left out of `values` and `missing`.")


class LogRowRemoveSerializer(InputSerializer):
    version = serializers.IntegerField(min_value=0)
    reason = serializers.CharField(max_length=300, help_text="Why the row was entered in error.")


# --- Presentation ------------------------------------------------------------------------------------------


def row_payload(row: LogRow) -> dict:
    """A row whose values were prefetched (rows_with_values), as LogRowSerializer shows it."""
    values = row_values(row)
    payload = {"values": {}, "missing": {}, "flags": {}}
    for code, value in values.items():
        if value.flags:
            payload["flags"][code] = list(value.flags)
        if value.missing_reason:
            payload["missing"][code] = value.missing_reason
        elif typed(value).has_value:
            payload["values"][code] = display(typed(value))
    return {
        "id": row.pk,
        "form": row.definition.code,
        "repeat_key": row.repeat_key,
        "state": row.state,
        "version": row.version,
        "removed": row.removed,
        "removed_reason": row.removed_reason,
        **payload,
    }


def saved_payload(result: LogRowSaveResult) -> dict:
    payload = {"values": {}, "missing": {}, "flags": {}}
    for code, value in result.values.items():
        if result.flags.get(code):
            payload["flags"][code] = list(result.flags[code])
        if value.missing_reason:
            payload["missing"][code] = value.missing_reason
        elif value.has_value:
            payload["values"][code] = display(value)
    row = result.row
    return {
        "id": row.pk,
        "form": row.definition.code,
        "repeat_key": row.repeat_key,
        "state": row.state,
        "version": row.version,
        "removed": row.removed,
        "removed_reason": row.removed_reason,
        **payload,
        "changed": list(result.changed),
        "queries_opened": result.queries_opened,
        "queries_closed": result.queries_closed,
    }


def _rows(participant: Participant, spec: FormSpec) -> QuerySet[LogRow]:
    return rows_with_values(LogRow.objects.filter(participant=participant, definition=spec.definition))


def _row_or_404(participant: Participant, spec: FormSpec, repeat_key: int) -> LogRow:
    return access.get_or_404(_rows(participant, spec), repeat_key=repeat_key)


# --- Examples ----------------------------------------------------------------------------------------------

CREATE_EXAMPLE = OpenApiExample(
    "Add a medication",
    summary="Entecavir for hepatitis B, ongoing",
    request_only=True,
    value={
        "values": {
            "CMTRT": "Entecavir",
            "CMCLAS": "antiviral",
            "CMINDC": "Chronic hepatitis B",
            "CMDOSE": "0.5",
            "CMDOSU": "mg",
            "CMROUTE": "PO",
            "CMDOSFRQ": "QD",
            "CMSTDAT": "2024-03-01",
            "CMONGO": True,
        },
        "missing": {},
    },
)
UPDATE_EXAMPLE = OpenApiExample(
    "Correct a dose",
    summary="A correction of a saved row needs the reason",
    request_only=True,
    value={"version": 1, "values": {"CMDOSE": "1"}, "partial": True, "reason": "Dose misread from the prescription"},
)
NOT_FOUND = OpenApiResponse(description="No such participant among the user's sites, log form or row.")
REFUSED = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Refused entries: {item code: [messages]}, or `reason`, `participant`, `row`; nothing saved.",
)
CONFLICT = OpenApiResponse(
    response=inline_serializer(
        "LogRowConflict", fields={"detail": serializers.CharField(), "current_version": serializers.IntegerField()}
    ),
    description="The row was saved by someone else since `version`; nothing was saved.",
)


# --- Views -------------------------------------------------------------------------------------------------


@extend_schema(tags=["logs"])
class LogRowListView(CaptureView):
    @extend_schema(
        summary="A participant's log: its item definitions and rows",
        operation_id="log_rows_list",
        description="Log forms repeat per participant, not per visit: CM (concomitant medications, the "
        "conventional therapy of both arms included), MH (medical history), DV (protocol deviations).",
        responses={200: LogFormSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, participant_id: int, form_code: str) -> Response:
        participant = access.participant_or_404(request.user, participant_id)
        spec = log_form_or_404(participant, form_code)
        rows = [row_payload(row) for row in _rows(participant, spec).order_by("repeat_key")]
        payload = {
            "form": spec.code,
            "name": spec.definition.name,
            "name_zh": spec.definition.name_zh,
            "items": spec.items,
            "rows": rows,
        }
        return Response(LogFormSerializer(payload).data)

    @extend_schema(
        summary="Add a row to a participant's log",
        operation_id="log_rows_create",
        description="Every required item needs a value or the reason it is missing. A broken edit check (a stop "
        "date before the start date, an ongoing medication with a stop date, a deviation before the consent) is "
        "saved, flagged `rule` and raises an automatic query on the row. A role that may not enter data is 403.",
        request=LogRowCreateSerializer,
        responses={201: LogRowSaveResultSerializer, 400: REFUSED, 403: OpenApiResponse(), 404: NOT_FOUND},
        examples=[CREATE_EXAMPLE],
    )
    def post(self, request: Request, participant_id: int, form_code: str) -> Response:
        participant = access.participant_or_404(request.user, participant_id, Action.ENTER_DATA)
        spec = log_form_or_404(participant, form_code)
        entries = LogRowCreateSerializer(data=request.data)
        entries.is_valid(raise_exception=True)
        result = log_row_create(
            user=request.user,
            participant_id=participant.pk,
            form_code=spec.code,
            values=entries.validated_data["values"],
            missing=entries.validated_data["missing"],
        )
        return Response(LogRowSaveResultSerializer(saved_payload(result)).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["logs"])
class LogRowView(CaptureView):
    @extend_schema(
        summary="One row of a participant's log",
        operation_id="log_row_retrieve",
        responses={200: LogRowSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, participant_id: int, form_code: str, repeat_key: int) -> Response:
        participant = access.participant_or_404(request.user, participant_id)
        row = _row_or_404(participant, log_form_or_404(participant, form_code), repeat_key)
        return Response(LogRowSerializer(row_payload(row)).data)

    @extend_schema(
        summary="Correct a row",
        operation_id="log_row_update",
        description="Every change of a saved row needs `reason`. Without `partial`, an item given in neither "
        "`values` nor `missing` is emptied. A correction built on an older `version` is 409.",
        request=LogRowUpdateSerializer,
        responses={
            200: LogRowSaveResultSerializer,
            400: REFUSED,
            403: OpenApiResponse(),
            404: NOT_FOUND,
            409: CONFLICT,
        },
        examples=[UPDATE_EXAMPLE],
    )
    def put(self, request: Request, participant_id: int, form_code: str, repeat_key: int) -> Response:
        participant = access.participant_or_404(request.user, participant_id, Action.ENTER_DATA)
        row = _row_or_404(participant, log_form_or_404(participant, form_code), repeat_key)
        entries = LogRowUpdateSerializer(data=request.data)
        entries.is_valid(raise_exception=True)
        result = log_row_update(user=request.user, row_id=row.pk, **entries.validated_data)
        return Response(LogRowSaveResultSerializer(saved_payload(result)).data)


@extend_schema(tags=["logs"])
class LogRowRemoveView(CaptureView):
    @extend_schema(
        summary="Remove a row entered in error",
        operation_id="log_row_remove",
        description="Nothing is deleted: the row is kept, marked removed with the reason, and audited.",
        request=LogRowRemoveSerializer,
        responses={200: LogRowSerializer, 400: REFUSED, 403: OpenApiResponse(), 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, participant_id: int, form_code: str, repeat_key: int) -> Response:
        participant = access.participant_or_404(request.user, participant_id, Action.ENTER_DATA)
        spec = log_form_or_404(participant, form_code)
        row = _row_or_404(participant, spec, repeat_key)
        entries = LogRowRemoveSerializer(data=request.data)
        entries.is_valid(raise_exception=True)
        log_row_remove(user=request.user, row_id=row.pk, **entries.validated_data)
        return Response(LogRowSerializer(row_payload(_row_or_404(participant, spec, repeat_key))).data)
