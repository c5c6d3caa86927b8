"""The REST API of captured data: the forms of a visit, and one form's item values, read and saved.

A thin door to the same service as the pages: serializers only parse and present, every visit is reached
through `trial.access`, and a save is `capture.services.form_save`, whose domain errors `trial.api_errors`
turns into HTTP statuses (InvalidInput 400 keyed by item code, StaleVersionError 409).

A form reads as `values` (entered items, as strings: numbers without trailing zeros, dates ISO, yes/no as
"true"/"false"), `missing` (the reason an item has no value), `flags` and `derived` (computed items, never
sent back). `values` and `missing` are exactly what a PUT takes, so a client can read, change and send back.
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Protocol

from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from capture.checks import Typed
from capture.definitions import FormSpec
from capture.models import Flag, FormState, MissingReason
from capture.selectors import FormSummary, form_current, visit_form_summaries
from capture.services import FormSaveResult, display, form_save_locked, visit_for_entry
from capture.visits import form_or_404, visit_or_404
from trial.locking import atomic_with_retry
from trial.models import ItemDefinition, Visit
from trial.validators import TEXT_MAX, InputSerializer


class ItemState(Protocol):
    """What a read (`CurrentValue`) and a save (`ItemResult`) both tell of one item."""

    item: ItemDefinition
    value: Typed
    flags: tuple[str, ...]


# --- Serializers: output -----------------------------------------------------------------------------------


# A component of its own: drf-spectacular names an inline enum after its property, and "state" already names
# the visit's (another choice set).
@extend_schema_field({"type": "string", "enum": FormState.values}, component_name="FormStateEnum")
class FormStateField(serializers.ChoiceField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(choices=FormState.choices, **kwargs)


class FormSummarySerializer(InputSerializer):
    code = serializers.CharField(source="spec.code")
    name = serializers.CharField(source="spec.definition.name")
    name_zh = serializers.CharField(source="spec.definition.name_zh")
    state = FormStateField()
    version = serializers.IntegerField(help_text="Send it back with a save; 0 before the first.")
    open_queries = serializers.IntegerField(help_text="Open and answered queries on the form's items.")
    url = serializers.SerializerMethodField(help_text="The form's values: GET to read, PUT to save.")

    def get_url(self, summary: FormSummary) -> str:
        return self.context["request"].build_absolute_uri(form_url(self.context["visit_id"], summary.spec.code))


class ChoiceOptionSerializer(InputSerializer):
    code = serializers.CharField()
    label = serializers.CharField()
    label_zh = serializers.CharField()


NUMBER = {"max_digits": 20, "decimal_places": 6, "normalize_output": True}


class ItemMetadataSerializer(serializers.ModelSerializer):
    """An item as the protocol defines it. Ranges are inclusive; a value outside the hard range is refused,
    one outside the reference range is saved and flagged."""

    formula = serializers.CharField(source="derived", help_text="How a derived item is computed; empty if typed.")
    derived = serializers.SerializerMethodField(help_text="Computed from other items, never sent in a save.")
    choices = serializers.SerializerMethodField()

    class Meta:
        model = ItemDefinition
        fields = [
            "code",
            "label",
            "label_zh",
            "group",
            "data_type",
            "unit",
            "decimals",
            "reference_low",
            "reference_high",
            "hard_min",
            "hard_max",
            "required",
            "derived",
            "formula",
            "in_window",
            "choices",
        ]
        read_only_fields = fields
        extra_kwargs = {name: NUMBER for name in ("reference_low", "reference_high", "hard_min", "hard_max")}

    def get_derived(self, item: ItemDefinition) -> bool:
        return bool(item.derived)

    @extend_schema_field(ChoiceOptionSerializer(many=True))
    def get_choices(self, item: ItemDefinition) -> list[dict[str, str]]:
        return [dict(zip(("code", "label", "label_zh"), choice, strict=False)) for choice in item.choices]


class FormSerializer(InputSerializer):
    visit = serializers.IntegerField()
    form = serializers.CharField(help_text="Form code.")
    name = serializers.CharField()
    name_zh = serializers.CharField()
    state = FormStateField()
    version = serializers.IntegerField(help_text="Send it back with the next save.")
    values = serializers.DictField(
        child=serializers.CharField(), help_text="{item code: value} of the entered items that have a value."
    )
    missing = serializers.DictField(
        child=serializers.ChoiceField(choices=MissingReason.choices),
        help_text="{item code: reason} of the items recorded as missing.",
    )
    flags = serializers.DictField(
        child=serializers.ListField(child=serializers.ChoiceField(choices=Flag.choices)),
        help_text="{item code: [flag]} of the items with flags (high, low, rule, window), derived ones included.",
    )
    derived = serializers.DictField(
        child=serializers.CharField(), help_text="{item code: value} of the derived items that have a value."
    )
    items = ItemMetadataSerializer(many=True, help_text="Every item of the form, in protocol order.")

    def to_representation(self, instance: dict) -> dict:
        # The items are the protocol version's, which never changes: shown once per process, then reused.
        data = super().to_representation({**instance, "items": ()})
        data["items"] = item_metadata(instance["items"])
        return data


# {item ids: those items as ItemMetadataSerializer shows them}
_item_metadata: dict[tuple[int, ...], list[dict]] = {}


def item_metadata(items: Sequence[ItemDefinition]) -> list[dict]:
    """The form's items as `ItemMetadataSerializer` shows them, worked out once per process (read, never changed)."""
    key = tuple(item.pk for item in items)
    if key not in _item_metadata:
        _item_metadata[key] = [dict(item) for item in ItemMetadataSerializer(items, many=True).data]
    return _item_metadata[key]


class FormSaveResultSerializer(FormSerializer):
    changed = serializers.ListField(
        child=serializers.CharField(), help_text="Codes of the form's items whose value or flags this save changed."
    )
    queries_opened = serializers.IntegerField(help_text="Automatic queries this save raised.")
    queries_closed = serializers.IntegerField(help_text="Automatic queries this save's corrections closed.")


# --- Serializers: input (types only; the service parses each entry against its item) ------------------------


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}], "nullable": True})
class EntryField(serializers.Field):
    """An entry as JSON gives it; `FormSaveInputSerializer.validate` reads it, so its errors key by item code."""

    def to_internal_value(self, data: object) -> object:
        return data


@extend_schema_field({"type": "string", "enum": MissingReason.values})
class MissingEntryField(EntryField):
    pass


def entry_text(raw: object) -> str | None:
    """The text the service parses from a JSON string, number, true/false or null (empty); None if not one."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        return f"{Decimal(str(raw)):f}"  # 1e-05 as 0.00001: nobody types an exponent, so the parser takes none
    if isinstance(raw, str):
        return raw
    return None


class FormSaveInputSerializer(InputSerializer):
    # An entry's text is checked by the parser of its item (capture.checks.parse), so the 400 names the item.
    service_checked_fields = frozenset({"values"})

    version = serializers.IntegerField(min_value=0, help_text="The form's version the entries were made on.")
    values = serializers.DictField(
        child=EntryField(allow_null=True),
        default=dict,
        help_text="{item code: entry}: a string as typed, a number, true/false for yes/no items, null for empty. "
        "An entered item left out of both `values` and `missing` is emptied.",
    )
    missing = serializers.DictField(
        child=MissingEntryField(allow_null=True),
        default=dict,
        help_text="{item code: reason} for items without a value.",
    )
    reason = serializers.CharField(
        default="",
        allow_blank=True,
        max_length=TEXT_MAX,
        help_text="Reason for the change; required once the form was completed.",
    )
    complete = serializers.BooleanField(
        default=False, help_text="Mark the form complete: every required item then needs a value or a reason."
    )

    def validate(self, attrs: dict) -> dict:
        errors: dict[str, list[str]] = {}
        values = {}
        for code, raw in attrs["values"].items():
            text = entry_text(raw)
            if text is None:
                errors.setdefault(code, []).append(_("Give a string, a number, true/false or null."))
            else:
                values[code] = text
        for code, reason in attrs["missing"].items():
            if not isinstance(reason, str):
                errors.setdefault(code, []).append(_("Give the reason the value is missing as a string."))
        if errors:
            raise serializers.ValidationError(errors)
        return {**attrs, "values": values}


# --- Presentation --------------------------------------------------------------------------------------------


def form_url(visit_id: int, form_code: str) -> str:
    return reverse("capture_api:visit-form", kwargs={"visit_id": visit_id, "form_code": form_code})


def form_payload(*, visit_id: int, spec: FormSpec, state: str, version: int, items: Mapping[str, ItemState]) -> dict:
    """The form as `FormSerializer` shows it, from the state of each item (as read, or as just saved)."""
    payload = {"values": {}, "missing": {}, "flags": {}, "derived": {}}
    for code, current in items.items():
        if current.flags:
            payload["flags"][code] = list(current.flags)
        if current.value.missing_reason:
            payload["missing"][code] = current.value.missing_reason
        elif current.value.has_value:
            payload["derived" if current.item.derived else "values"][code] = display(current.value)
    return {
        "visit": visit_id,
        "form": spec.code,
        "name": spec.definition.name,
        "name_zh": spec.definition.name_zh,
        "state": state,
        "version": version,
        **payload,
        "items": spec.items,
    }


def saved_payload(*, visit_id: int, spec: FormSpec, result: FormSaveResult) -> dict:
    form = form_payload(
        visit_id=visit_id, spec=spec, state=result.form.state, version=result.form.version, items=result.items
    )
    return {
        **form,
        "changed": list(result.changed),
        "queries_opened": result.queries_opened,
        "queries_closed": result.queries_closed,
    }


# --- Lookups through trial.access -------------------------------------------------------------------------------


# --- Examples for the schema ---------------------------------------------------------------------------------

SAVE_REQUEST_EXAMPLE = OpenApiExample(
    "Save",
    summary="Save and complete the liver panel; prealbumin was not done",
    request_only=True,
    value={
        "version": 0,
        "values": {"LBDAT": "2026-02-18", "ALT": "300", "AST": 35, "ALB": "42.5", "BILI": "15", "BILDIR": "20"},
        "missing": {"PREALB": "not_done"},
        "reason": "",
        "complete": True,
    },
)
SAVE_RESPONSE_EXAMPLE = OpenApiExample(
    "Saved",
    summary="Saved: ALT flagged high; direct bilirubin above total is flagged and raised a query",
    response_only=True,
    status_codes=["200"],
    value={
        "visit": 12,
        "form": "LIVER",
        "name": "Liver function",
        "name_zh": "肝功能",
        "state": "complete",
        "version": 1,
        "values": {"LBDAT": "2026-02-18", "ALT": "300", "AST": "35", "ALB": "42.5", "BILI": "15", "BILDIR": "20"},
        "missing": {"PREALB": "not_done"},
        "flags": {"ALT": ["high"], "BILDIR": ["high", "rule"]},
        "derived": {},
        "items": [
            {
                "code": "ALT",
                "label": "Alanine aminotransferase (ALT)",
                "label_zh": "丙氨酸氨基转移酶",
                "group": "Enzymes",
                "data_type": "decimal",
                "unit": "U/L",
                "decimals": 0,
                "reference_low": "9",
                "reference_high": "50",
                "hard_min": "0",
                "hard_max": "10000",
                "required": True,
                "derived": False,
                "formula": "",
                "in_window": False,
                "choices": [],
            }
        ],
        "changed": ["LBDAT", "ALT", "AST", "ALB", "PREALB", "BILI", "BILDIR"],
        "queries_opened": 1,
        "queries_closed": 0,
    },
)
ITEM_ERRORS_EXAMPLE = OpenApiExample(
    "Refused entries",
    summary="Entries outside the hard range or not a number, keyed by item code; nothing saved",
    response_only=True,
    status_codes=["400"],
    value={
        "ALT": ["Alanine aminotransferase (ALT): -1 U/L is outside the allowed range 0-10000 U/L."],
        "ALB": ["Albumin (ALB): enter a number such as 48 or 48.5, not 'abc'."],
    },
)
CONFLICT_EXAMPLE = OpenApiExample(
    "Stale version",
    summary="Someone saved the form since version 0; nothing saved",
    response_only=True,
    status_codes=["409"],
    value={
        "detail": "Someone saved this form after you opened it (version 1, yours 0). Nothing was saved: review the "
        "current values and enter your changes again.",
        "current_version": 1,
    },
)
NOT_FOUND = OpenApiResponse(description="No such visit among the user's sites, or the form is not collected there.")


# --- Views ---------------------------------------------------------------------------------------------------


class CaptureView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]


@extend_schema(tags=["forms"])
class VisitFormListView(CaptureView):
    @extend_schema(
        summary="The forms of a visit",
        description="The forms collected at the visit for the participant's arm, in protocol order.",
        responses={200: FormSummarySerializer(many=True), 404: NOT_FOUND},
    )
    def get(self, request: Request, visit_id: int) -> Response:
        visit = visit_or_404(request.user, visit_id)
        context = {"request": request, "visit_id": visit.pk}
        return Response(FormSummarySerializer(visit_form_summaries(visit), many=True, context=context).data)


@extend_schema(tags=["forms"])
class VisitFormView(CaptureView):
    @extend_schema(
        summary="A form's values, flags and item definitions",
        description="A form not collected at this visit (the infusion form in the conventional arm or at M12) is "
        "404, as is another site's visit.",
        responses={200: FormSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, visit_id: int, form_code: str) -> Response:
        visit = visit_or_404(request.user, visit_id)
        spec = form_or_404(visit, form_code)
        instance, current = form_current(visit, spec)
        state, version = (instance.state, instance.version) if instance else (FormState.NOT_STARTED, 0)
        payload = form_payload(visit_id=visit.pk, spec=spec, state=state, version=version, items=current)
        return Response(FormSerializer(payload).data)

    @extend_schema(
        summary="Save a form",
        description=(
            "Saves every item of the form at once, as typed from the source; an entered item given in neither "
            "`values` nor `missing` is emptied. Values outside the reference range are saved and flagged; a "
            "broken cross-item check or a date outside the visit window is saved, flagged and raises an automatic "
            "query. An entry that breaks a type or a hard range is **400 keyed by item code** and nothing is "
            "saved; so is a change without `reason` once the form was completed (keyed `reason`). A save built "
            "on an older `version` is **409** with the `current_version`: reload, re-enter, send again. A role "
            "that may not enter data (monitor, data manager, sponsor) is 403."
        ),
        request=FormSaveInputSerializer,
        responses={
            200: FormSaveResultSerializer,
            400: OpenApiResponse(
                response=OpenApiTypes.OBJECT,
                description="Refused entries: {item code: [messages]}, or `reason`, `version`, `non_field_errors`.",
            ),
            403: OpenApiResponse(description="The user's role may not enter data at this visit's site."),
            404: NOT_FOUND,
            409: OpenApiResponse(
                response=inline_serializer(
                    "FormConflict",
                    fields={"detail": serializers.CharField(), "current_version": serializers.IntegerField()},
                ),
                description="The form was saved by someone else since `version`; nothing was saved.",
            ),
        },
        examples=[SAVE_REQUEST_EXAMPLE, SAVE_RESPONSE_EXAMPLE, ITEM_ERRORS_EXAMPLE, CONFLICT_EXAMPLE],
    )
    def put(self, request: Request, visit_id: int, form_code: str) -> Response:
        visit, spec, result = _save_locked(request, visit_id, form_code)
        return Response(FormSaveResultSerializer(saved_payload(visit_id=visit.pk, spec=spec, result=result)).data)


@atomic_with_retry
def _save_locked(request: Request, visit_id: int, form_code: str) -> tuple[Visit, FormSpec, FormSaveResult]:
    # The visit is locked, and refused (404, 403) before the body is read, then handed to the service, which need
    # not read it again nor take a savepoint of its own. A refusal leaves this outermost transaction, which rolls
    # back whole, and is answered after it.
    visit = visit_for_entry(user=request.user, visit_id=visit_id)
    spec = form_or_404(visit, form_code)
    entries = FormSaveInputSerializer(data=request.data)
    entries.is_valid(raise_exception=True)
    result = form_save_locked(user=request.user, visit=visit, form_code=spec.code, **entries.validated_data)
    return visit, spec, result
