"""The REST API of data review: queries and their threads, source data verification, signatures and locks.

A thin door to `capture.review`: serializers only parse and present, each write is one review service, which
reaches every object through `trial.access` (another site's object is 404, a role without the action 403) and
whose domain errors `trial.api_errors` turns into HTTP statuses (QueryTransitionError and InvalidInput 400,
OpenQueriesError 409 with `open_queries`, LockedError 423).
"""

import datetime

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from capture import inbox_selectors, records, review
from capture.models import Lock, Query, QueryEvent, QueryEventKind, QueryOrigin, QueryState, Signature
from capture.tallies import LOCKS, SIGNATURES
from trial import access
from trial.access import Action
from trial.api import TrialAccessPermission
from trial.tallies import Source, Tally
from trial.validators import MAX_DAYS, TEXT_MAX, InputSerializer

# --- Fields with schema components of their own --------------------------------------------------------------
# drf-spectacular names an inline enum after its property; "state" and "kind" already name the visit's.


@extend_schema_field({"type": "string", "enum": QueryState.values}, component_name="QueryStateEnum")
class QueryStateField(serializers.ChoiceField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(choices=QueryState.choices, **kwargs)


@extend_schema_field({"type": "string", "enum": QueryEventKind.values}, component_name="QueryEventKindEnum")
class QueryEventKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(choices=QueryEventKind.choices, **kwargs)


def username(source: str, help_text: str) -> serializers.CharField:
    return serializers.CharField(source=f"{source}.username", read_only=True, allow_null=True, help_text=help_text)


# --- Serializers: output -----------------------------------------------------------------------------------


class QueryEventSerializer(serializers.ModelSerializer):
    kind = QueryEventKindField(read_only=True)
    author = username("author", "Username; null for a step the edit checks took.")
    state_after = QueryStateField(read_only=True, help_text="The query's state after this step.")

    class Meta:
        model = QueryEvent
        fields = ["kind", "author", "at", "text", "state_after"]
        read_only_fields = fields


class QueryListSerializer(serializers.ListSerializer):
    def to_representation(self, data: object) -> list:
        # The records' labels of the whole list in one read per kind of record, not one per query.
        return super().to_representation(records.describe(data.all() if isinstance(data, QuerySet) else data))


class QuerySerializer(serializers.ModelSerializer):
    visit_code = serializers.CharField(
        source="visit.definition.code", read_only=True, allow_null=True, help_text="Null for a query on a record."
    )
    participant = serializers.CharField(
        source="participant.subject_id", read_only=True, help_text="The participant's subject ID."
    )
    site = serializers.IntegerField(source="participant.site.number", read_only=True, help_text="Site number.")
    form = serializers.CharField(
        source="form.code", read_only=True, allow_null=True, help_text="Form code; null for a query on a visit."
    )
    item = serializers.CharField(
        source="item.code", read_only=True, allow_null=True, help_text="Item code; null for a form or visit query."
    )
    state = QueryStateField(read_only=True)
    created_by = username("created_by", "Username; null for a query raised by an edit check.")
    closed_by = username("closed_by", "Username; null while open, or if a correction closed it.")
    record_label = serializers.SerializerMethodField(help_text="What the record is, as a person reads it.")
    events = QueryEventSerializer(many=True, read_only=True, help_text="The thread, oldest step first.")

    class Meta:
        model = Query
        list_serializer_class = QueryListSerializer
        fields = [
            "id",
            "visit",
            "visit_code",
            "participant",
            "site",
            "form",
            "item",
            "record_type",
            "record_id",
            "field_code",
            "record_label",
            "origin",
            "check_code",
            "state",
            "message",
            "created_at",
            "created_by",
            "closed_at",
            "closed_by",
            "events",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "visit": {"help_text": "Null for a query on a record."},
            "record_type": {"help_text": "The kind of record (as `adverse_event`) of a query not on a visit; else ''."},
            "record_id": {"help_text": "The record's id; null for a query on a visit."},
            "field_code": {"help_text": "The record's field the query is about; '' for the whole record or a visit."},
        }

    @extend_schema_field({"type": "string", "nullable": True})
    def get_record_label(self, query: Query) -> str | None:
        if not query.on_record:
            return None
        if not hasattr(query, "record_label"):
            records.describe([query])
        return query.record_label


class SignatureSerializer(serializers.ModelSerializer):
    subject_id = serializers.CharField(source="participant.subject_id", read_only=True)
    visit_code = serializers.CharField(
        source="visit.definition.code", read_only=True, allow_null=True, help_text="Null for the casebook."
    )
    signed_by = username("signed_by", "Username of the investigator.")

    class Meta:
        model = Signature
        fields = [
            "id",
            "participant",
            "subject_id",
            "visit",
            "visit_code",
            "signed_by",
            "signed_at",
            "meaning",
            "voided_at",
            "void_reason",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "visit": {"help_text": "The signed visit; null for a signature of the whole casebook."},
            "voided_at": {"help_text": "When a later change of the signed data voided it; null while valid."},
        }


class LockSerializer(serializers.ModelSerializer):
    subject_id = serializers.CharField(source="participant.subject_id", read_only=True)
    visit_code = serializers.CharField(source="visit.definition.code", read_only=True, allow_null=True)
    form = serializers.CharField(source="form.code", read_only=True, allow_null=True, help_text="Form code.")
    locked_by = username("locked_by", "Username of the data manager.")
    released_by = username("released_by", "Username; null while the lock holds.")

    class Meta:
        model = Lock
        fields = [
            "id",
            "participant",
            "subject_id",
            "visit",
            "visit_code",
            "form",
            "locked_by",
            "locked_at",
            "reason",
            "released_at",
            "released_by",
            "release_reason",
        ]
        read_only_fields = fields
        extra_kwargs = {"visit": {"help_text": "Null for a lock of the whole participant."}}


class VerifiedSerializer(InputSerializer):
    verified = serializers.IntegerField(help_text="Item values this request marked verified (not those already).")


# --- Serializers: input (types only; the services hold the rules) -------------------------------------------


class QueryFilterSerializer(InputSerializer):
    site = serializers.IntegerField(required=False, min_value=1, help_text="Site number.")
    state = serializers.ChoiceField(choices=QueryState.choices, required=False)
    participant = serializers.CharField(required=False, help_text="Subject ID.")
    visit = serializers.IntegerField(required=False, min_value=1, help_text="Visit id.")
    form = serializers.CharField(required=False, help_text="Form code.")
    item = serializers.CharField(required=False, help_text="Item code.")
    record_type = serializers.CharField(required=False, help_text="Kind of record, as `adverse_event`.")
    record_id = serializers.IntegerField(required=False, min_value=1, help_text="Record id (with `record_type`).")
    origin = serializers.ChoiceField(choices=QueryOrigin.choices, required=False)
    older_than_days = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_DAYS,
        help_text="Only queries raised more than this many days ago (at most a century).",
    )


class ParticipantFilterSerializer(InputSerializer):
    participant = serializers.IntegerField(required=False, min_value=1, help_text="Participant id.")


class QueryRaiseSerializer(InputSerializer):
    """A query on a visit's data (`visit`, `form`, `item`) or on a record (`record_type`, `record_id`,
    `field_code`): one or the other."""

    visit = serializers.IntegerField(
        required=False, min_value=1, help_text="Id of the visit (one of your sites'); leave out for a record."
    )
    form = serializers.CharField(default="", allow_blank=True, help_text="Form code; leave out for the whole visit.")
    item = serializers.CharField(
        default="", allow_blank=True, help_text="Item code (needs `form`); leave out for it all."
    )
    record_type = serializers.CharField(
        default="",
        allow_blank=True,
        max_length=32,
        help_text="Instead of `visit`: the kind of record, as `adverse_event` (needs `record_id`).",
    )
    record_id = serializers.IntegerField(required=False, min_value=1, help_text="The record's id.")
    field_code = serializers.CharField(
        default="", allow_blank=True, max_length=32, help_text="The record's field; leave out for the whole record."
    )
    message = serializers.CharField(allow_blank=True, max_length=TEXT_MAX, help_text="The question to the site.")

    def validate(self, attrs: dict) -> dict:
        # Which service to call: the rules of each target are the services'.
        on_record = bool(attrs["record_type"] or attrs.get("record_id") or attrs["field_code"])
        if not on_record:
            if "visit" not in attrs:
                raise serializers.ValidationError({"visit": [_("Name the visit, or the record.")]})
            return attrs
        errors = {}
        if "visit" in attrs or attrs["form"] or attrs["item"]:
            errors["non_field_errors"] = [_("A query is on a visit's data or on a record, not both.")]
        if not attrs["record_type"]:
            errors["record_type"] = [_("Name the kind of record.")]
        if not attrs.get("record_id"):
            errors["record_id"] = [_("Name the record.")]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class QueryMessageSerializer(InputSerializer):
    message = serializers.CharField(allow_blank=True, max_length=TEXT_MAX, help_text="Required.")


class QueryCloseSerializer(InputSerializer):
    message = serializers.CharField(default="", allow_blank=True, max_length=TEXT_MAX, help_text="Optional.")


class VerifySerializer(InputSerializer):
    items = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Item codes; leave out for every item of the form."
    )


class SignSerializer(InputSerializer):
    password = serializers.CharField(
        allow_blank=True, trim_whitespace=False, style={"input_type": "password"}, help_text="The signer's password."
    )

    def validate(self, attrs: dict) -> dict:
        # The meaning is fixed on the server (the statement the page shows); a client may not write its own.
        sent = self.initial_data.get("meaning") if hasattr(self.initial_data, "get") else None
        if sent is not None and sent != review.SIGNATURE_MEANING:
            message = _("The meaning of a signature is fixed: %(meaning)s") % {"meaning": review.SIGNATURE_MEANING}
            raise serializers.ValidationError({"meaning": [message]})
        return attrs


class LockInputSerializer(InputSerializer):
    participant = serializers.IntegerField(min_value=1, help_text="Participant id.")
    visit = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="Visit id; leave out to lock every visit."
    )
    form = serializers.CharField(default="", allow_blank=True, help_text="Form code (needs `visit`).")
    reason = serializers.CharField(default="", allow_blank=True, max_length=300)
    confirm_open_queries = serializers.BooleanField(
        default=False, help_text="Lock even though queries on the data are still open."
    )

    def validate(self, attrs: dict) -> dict:
        # The form to lock is looked up among the visit's forms, so a form alone is a lock of nothing.
        if attrs["form"] and not attrs.get("visit"):
            raise serializers.ValidationError({"visit": [_("Name the visit of the form to lock.")]})
        return attrs


class ReleaseSerializer(InputSerializer):
    reason = serializers.CharField(allow_blank=True, max_length=300, help_text="Why the data become editable again.")


def parsed(serializer_class: type[serializers.Serializer], data: object) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- Examples for the schema ---------------------------------------------------------------------------------

RAISE_EXAMPLE = OpenApiExample(
    "Raise",
    summary="Ask the site about one item value",
    request_only=True,
    value={"visit": 12, "form": "LIVER", "item": "ALT", "message": "ALT 300 U/L: please confirm against the report."},
)
RAISE_ON_RECORD_EXAMPLE = OpenApiExample(
    "Raise on a record",
    summary="Ask the site about one field of an adverse event",
    request_only=True,
    value={
        "record_type": "adverse_event",
        "record_id": 7,
        "field_code": "onset_date",
        "message": "The onset date is after the date the event resolved: please check.",
    },
)
QUERY_EXAMPLE_VALUE = {
    "id": 41,
    "visit": 12,
    "visit_code": "M3",
    "participant": "01-003",
    "site": 1,
    "form": "LIVER",
    "item": "ALT",
    "record_type": "",
    "record_id": None,
    "field_code": "",
    "record_label": None,
    "origin": "manual",
    "check_code": "",
    "state": "open",
    "message": "ALT 300 U/L: please confirm against the report.",
    "created_at": "2026-02-20T02:14:09Z",
    "created_by": "monitor",
    "closed_at": None,
    "closed_by": None,
    "events": [
        {
            "kind": "raised",
            "author": "monitor",
            "at": "2026-02-20T02:14:09Z",
            "text": "ALT 300 U/L: please confirm against the report.",
            "state_after": "open",
        }
    ],
}
RAISED_EXAMPLE = OpenApiExample(
    "Raised", response_only=True, status_codes=["201"], value=QUERY_EXAMPLE_VALUE, summary="The new open query"
)
RAISED_ON_RECORD_EXAMPLE = OpenApiExample(
    "Raised on a record",
    summary="The new open query on an adverse event",
    response_only=True,
    status_codes=["201"],
    value={
        **QUERY_EXAMPLE_VALUE,
        "id": 42,
        "visit": None,
        "visit_code": None,
        "form": None,
        "item": None,
        "record_type": "adverse_event",
        "record_id": 7,
        "field_code": "onset_date",
        "record_label": "AE 7: ascites, grade 2",
        "message": "The onset date is after the date the event resolved: please check.",
        "events": [
            {
                "kind": "raised",
                "author": "monitor",
                "at": "2026-02-20T02:14:09Z",
                "text": "The onset date is after the date the event resolved: please check.",
                "state_after": "open",
            }
        ],
    },
)
ANSWER_EXAMPLE = OpenApiExample(
    "Answer", request_only=True, value={"message": "Checked: the report says 30; corrected on the form."}
)
ANSWERED_EXAMPLE = OpenApiExample(
    "Answered",
    summary="The query, answered, with its thread",
    response_only=True,
    status_codes=["200"],
    value={
        **QUERY_EXAMPLE_VALUE,
        "state": "answered",
        "events": [
            *QUERY_EXAMPLE_VALUE["events"],
            {
                "kind": "answered",
                "author": "coordinator1",
                "at": "2026-02-21T06:40:00Z",
                "text": "Checked: the report says 30; corrected on the form.",
                "state_after": "answered",
            },
        ],
    },
)
TRANSITION_ERROR_EXAMPLE = OpenApiExample(
    "Illegal step",
    response_only=True,
    status_codes=["400"],
    value={"non_field_errors": ["A query that is closed cannot be answered."]},
)
VERIFY_EXAMPLE = OpenApiExample("Verify two items", request_only=True, value={"items": ["ALT", "AST"]})
VERIFY_ALL_EXAMPLE = OpenApiExample("Verify the whole form", request_only=True, value={})
VERIFIED_EXAMPLE = OpenApiExample("Verified", response_only=True, status_codes=["200"], value={"verified": 2})
SIGN_EXAMPLE = OpenApiExample("Sign", request_only=True, value={"password": "my-password"})
SIGNED_EXAMPLE = OpenApiExample(
    "Signed",
    response_only=True,
    status_codes=["201"],
    value={
        "id": 7,
        "participant": 3,
        "subject_id": "01-003",
        "visit": 12,
        "visit_code": "M3",
        "signed_by": "investigator1",
        "signed_at": "2026-02-22T08:00:00Z",
        "meaning": review.SIGNATURE_MEANING,
        "voided_at": None,
        "void_reason": "",
    },
)
WRONG_PASSWORD_EXAMPLE = OpenApiExample(
    "Wrong password",
    response_only=True,
    status_codes=["400"],
    value={"password": ["The password is not correct: the signature was not recorded."]},
)
LOCK_EXAMPLE = OpenApiExample(
    "Lock a form",
    request_only=True,
    value={"participant": 3, "visit": 12, "form": "LIVER", "reason": "Interim analysis", "confirm_open_queries": False},
)
LOCKED_EXAMPLE = OpenApiExample(
    "Locked",
    response_only=True,
    status_codes=["201"],
    value={
        "id": 5,
        "participant": 3,
        "subject_id": "01-003",
        "visit": 12,
        "visit_code": "M3",
        "form": "LIVER",
        "locked_by": "datamanager",
        "locked_at": "2026-03-01T01:00:00Z",
        "reason": "Interim analysis",
        "released_at": None,
        "released_by": None,
        "release_reason": "",
    },
)
OPEN_QUERIES_EXAMPLE = OpenApiExample(
    "Open queries",
    summary="Queries are open on these data; send again with confirm_open_queries to lock anyway",
    response_only=True,
    status_codes=["409"],
    value={"detail": "1 queries are still open on these data: confirm to lock them anyway.", "open_queries": 1},
)
RELEASE_EXAMPLE = OpenApiExample("Release", request_only=True, value={"reason": "Interim analysis done"})

FIELD_ERRORS = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Refused input: {field: [messages]}, with `non_field_errors` for what concerns no one field.",
)
NOT_FOUND = OpenApiResponse(description="No such object among the user's sites.")


def forbidden(what: str) -> OpenApiResponse:
    return OpenApiResponse(description=f"The user's role may not {what} at this site.")


# --- Views -------------------------------------------------------------------------------------------------


class ReviewViewSet(viewsets.GenericViewSet):
    permission_classes = [TrialAccessPermission]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    lookup_value_regex = r"\d+"
    # {viewset action: the trial Action it needs}; a write not named here is refused.
    write_actions: dict[str, Action] = {}

    def query_filters(self, serializer_class: type[serializers.Serializer]) -> dict:
        return parsed(serializer_class, self.request.query_params)

    def present(self, obj: object, status_code: int = status.HTTP_200_OK) -> Response:
        """The object as a read shows it, read again with what the serializer needs."""
        fresh = self.get_queryset().get(pk=obj.pk)
        return Response(self.get_serializer(fresh).data, status=status_code)


@extend_schema(tags=["queries"])
@extend_schema_view(
    list=extend_schema(
        summary="Queries at the user's sites",
        description="Oldest first, each with its thread. Paginated (`limit`, `offset`).",
        parameters=[QueryFilterSerializer],
    ),
    retrieve=extend_schema(summary="A query with its thread", responses={200: QuerySerializer, 404: NOT_FOUND}),
)
class QueryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ReviewViewSet):
    """Queries (discrepancy notes) on the visits, and on other records (adverse events), of the participants of the
    user's sites: the monitor raises, the site answers, the monitor closes or re-opens. Another site's query does
    not exist (404)."""

    serializer_class = QuerySerializer
    write_actions = {
        "create": Action.RAISE_QUERY,
        "answer": Action.ENTER_DATA,
        "close": Action.RAISE_QUERY,
        "reopen": Action.RAISE_QUERY,
    }

    def get_queryset(self) -> QuerySet[Query]:
        queryset = (
            review.queries_visible(self.request.user)
            .select_related("visit__definition", "participant__site", "form", "item", "created_by", "closed_by")
            .prefetch_related(Prefetch("events", queryset=QueryEvent.objects.select_related("author")))
            .order_by("created_at", "id")
        )
        return self._filtered(queryset) if self.action == "list" else queryset

    def tally_count(self) -> int | None:
        """The list's total from the sites' summaries (capture/summaries.py) when only the site and the state
        narrow it; any other filter counts the list."""
        filters = self.query_filters(QueryFilterSerializer)
        if set(filters) - {"site", "state"}:
            return None
        return inbox_selectors.queries_total(
            access.site_ids(self.request.user), site_number=filters.get("site"), state=filters.get("state")
        )

    def _filtered(self, queryset: QuerySet[Query]) -> QuerySet[Query]:
        filters = self.query_filters(QueryFilterSerializer)
        lookups = {
            "site": "participant__site__number",
            "state": "state",
            "participant": "participant__subject_id",
            "visit": "visit_id",
            "form": "form__code",
            "item": "item__code",
            "record_type": "record_type",
            "record_id": "record_id",
            "origin": "origin",
        }
        queryset = queryset.filter(**{lookups[name]: value for name, value in filters.items() if name in lookups})
        if "older_than_days" in filters:
            queryset = queryset.filter(
                created_at__lt=timezone.now() - datetime.timedelta(days=filters["older_than_days"])
            )
        return queryset

    @extend_schema(
        summary="Raise a query",
        description=(
            "A monitor or data manager asks the site about an item value (`form` and `item`), a whole form "
            "(`form`) or the visit (neither). A visit not among the user's sites is 404; a role that may not "
            "raise queries (coordinator, investigator, sponsor) 403; a form or item not collected at the visit, "
            "or an empty message, 400 keyed `form`, `item` or `message`.\n\n"
            "**On a record** that is not an item of a visit (an adverse event): send `record_type` and "
            "`record_id`, and `field_code` for one of its fields, instead of `visit`, `form` and `item`. The "
            "query then has the same thread, inboxes and site scoping. A record not among the user's sites is "
            "404; an unknown kind of record, a field not of the record, or both a visit and a record, 400 keyed "
            "`record_type`, `field_code` or `non_field_errors`."
        ),
        request=QueryRaiseSerializer,
        responses={201: QuerySerializer, 400: FIELD_ERRORS, 403: forbidden("raise queries"), 404: NOT_FOUND},
        examples=[RAISE_EXAMPLE, RAISE_ON_RECORD_EXAMPLE, RAISED_EXAMPLE, RAISED_ON_RECORD_EXAMPLE],
    )
    def create(self, request: Request) -> Response:
        data = parsed(QueryRaiseSerializer, request.data)
        if data["record_type"]:
            query = review.query_raise_on_record(
                user=request.user,
                record_type=data["record_type"],
                record_id=data["record_id"],
                field_code=data["field_code"],
                message=data["message"],
            )
        else:
            query = review.query_raise(
                user=request.user,
                visit_id=data["visit"],
                form_code=data["form"],
                item_code=data["item"],
                message=data["message"],
            )
        return self.present(query, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Answer a query",
        description=(
            "The site (coordinator or investigator) replies, often after correcting the value; an answered query "
            "may be answered again. A closed query is 400, as is an empty message (keyed `message`)."
        ),
        request=QueryMessageSerializer,
        responses={200: QuerySerializer, 400: FIELD_ERRORS, 403: forbidden("answer queries"), 404: NOT_FOUND},
        examples=[ANSWER_EXAMPLE, ANSWERED_EXAMPLE, TRANSITION_ERROR_EXAMPLE],
    )
    @action(detail=True, methods=["post"])
    def answer(self, request: Request, pk: str) -> Response:
        data = parsed(QueryMessageSerializer, request.data)
        return self.present(review.query_answer(user=request.user, query_id=int(pk), message=data["message"]))

    @extend_schema(
        summary="Close a query",
        description="The monitor or data manager accepts the answer (or the data). A closed query is 400.",
        request=QueryCloseSerializer,
        responses={200: QuerySerializer, 400: FIELD_ERRORS, 403: forbidden("close queries"), 404: NOT_FOUND},
        examples=[TRANSITION_ERROR_EXAMPLE],
    )
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        data = parsed(QueryCloseSerializer, request.data)
        return self.present(review.query_close(user=request.user, query_id=int(pk), message=data["message"]))

    @extend_schema(
        summary="Re-open a query",
        description=(
            "The answer does not resolve the discrepancy: the query goes back to the site, open. An open query "
            "is 400, as is an empty message (keyed `message`)."
        ),
        request=QueryMessageSerializer,
        responses={200: QuerySerializer, 400: FIELD_ERRORS, 403: forbidden("re-open queries"), 404: NOT_FOUND},
        examples=[TRANSITION_ERROR_EXAMPLE],
    )
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str) -> Response:
        data = parsed(QueryMessageSerializer, request.data)
        return self.present(review.query_reopen(user=request.user, query_id=int(pk), message=data["message"]))


@extend_schema(tags=["signatures"])
@extend_schema_view(
    list=extend_schema(
        summary="Investigator signatures",
        description="Of the participants at the user's sites, newest first; a voided one shows when and why.",
        parameters=[ParticipantFilterSerializer],
    )
)
class SignatureViewSet(mixins.ListModelMixin, ReviewViewSet):
    serializer_class = SignatureSerializer

    def get_queryset(self) -> QuerySet[Signature]:
        queryset = (
            Signature.objects.filter(participant__in=access.participants(self.request.user))
            .select_related("participant", "visit__definition", "signed_by")
            .order_by("-signed_at", "-id")
        )
        return participant_filtered(queryset, self.query_filters(ParticipantFilterSerializer))

    def tally_count(self) -> int | None:
        return tallied(self, SIGNATURES)


@extend_schema(tags=["locks"])
@extend_schema_view(
    list=extend_schema(
        summary="Locks",
        description="Of the participants at the user's sites, active and released, newest first.",
        parameters=[ParticipantFilterSerializer],
    )
)
class LockViewSet(mixins.ListModelMixin, ReviewViewSet):
    serializer_class = LockSerializer
    write_actions = {"create": Action.LOCK, "release": Action.LOCK}

    def get_queryset(self) -> QuerySet[Lock]:
        queryset = (
            Lock.objects.filter(participant__in=access.participants(self.request.user))
            .select_related("participant", "visit__definition", "form", "locked_by", "released_by")
            .order_by("-locked_at", "-id")
        )
        if self.action == "list":
            return participant_filtered(queryset, self.query_filters(ParticipantFilterSerializer))
        return queryset

    def tally_count(self) -> int | None:
        return tallied(self, LOCKS)

    @extend_schema(
        summary="Lock a participant's data, a visit's or one form's",
        description=(
            "Nobody may change locked data until the lock is released: a form save answers 423. With queries "
            "still open on the data the answer is **409** with their count in `open_queries`, and nothing is "
            "locked; send again with `confirm_open_queries: true` to lock anyway. A participant or visit not "
            "among the user's sites is 404; any role but the data manager's 403."
        ),
        request=LockInputSerializer,
        responses={
            201: LockSerializer,
            400: FIELD_ERRORS,
            403: forbidden("lock data"),
            404: NOT_FOUND,
            409: OpenApiResponse(
                response=inline_serializer(
                    "LockOpenQueries",
                    fields={"detail": serializers.CharField(), "open_queries": serializers.IntegerField()},
                ),
                description="Queries are still open on the data; nothing was locked.",
            ),
        },
        examples=[LOCK_EXAMPLE, LOCKED_EXAMPLE, OPEN_QUERIES_EXAMPLE],
    )
    def create(self, request: Request) -> Response:
        data = parsed(LockInputSerializer, request.data)
        lock = review.lock_set(
            user=request.user,
            participant_id=data["participant"],
            visit_id=data.get("visit"),
            form_code=data["form"],
            reason=data["reason"],
            confirm_open_queries=data["confirm_open_queries"],
        )
        return self.present(lock, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Release a lock",
        description=(
            "The data become editable again, unless another lock still covers them. The reason is required "
            "(400 keyed `reason`); a lock already released is 400."
        ),
        request=ReleaseSerializer,
        responses={200: LockSerializer, 400: FIELD_ERRORS, 403: forbidden("release locks"), 404: NOT_FOUND},
        examples=[RELEASE_EXAMPLE],
    )
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str) -> Response:
        data = parsed(ReleaseSerializer, request.data)
        return self.present(review.lock_release(user=request.user, lock_id=int(pk), reason=data["reason"]))


def participant_filtered(queryset: QuerySet, filters: dict) -> QuerySet:
    return queryset.filter(participant_id=filters["participant"]) if "participant" in filters else queryset


def tallied(view: ReviewViewSet, source: Source) -> int | None:
    """Every row of `source` at the user's sites: their site tallies' total (trial/tallies.py); one participant's
    rows are counted."""
    if "participant" in view.query_filters(ParticipantFilterSerializer):
        return None
    return Tally(access.site_ids(view.request.user)).total(source.name)


class ReviewView(APIView):
    """A write on one visit or participant; the service finds it among the user's sites and checks the role."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]


def signature_response(signature: Signature) -> Response:
    signature = Signature.objects.select_related("participant", "visit__definition", "signed_by").get(pk=signature.pk)
    return Response(SignatureSerializer(signature).data, status=status.HTTP_201_CREATED)


SIGN_RESPONSES = {
    201: SignatureSerializer,
    400: OpenApiResponse(
        response=OpenApiTypes.OBJECT,
        description="A wrong password (keyed `password`), or forms not yet complete (`non_field_errors`).",
    ),
    403: forbidden("sign"),
    404: NOT_FOUND,
}


@extend_schema(tags=["forms"])
class VisitFormVerifyView(ReviewView):
    @extend_schema(
        summary="Verify a form's item values against the source",
        description=(
            "Source data verification by the monitor: the named items, or every entered item of the form when "
            "`items` is left out. Items without a value or already verified are skipped; a later change clears "
            "the verification. An item not of the form, or a form not collected at the visit, is 400 keyed by "
            "its code or `form`; another site's visit 404; any role but the monitor's 403."
        ),
        request=VerifySerializer,
        responses={200: VerifiedSerializer, 400: FIELD_ERRORS, 403: forbidden("verify data"), 404: NOT_FOUND},
        examples=[VERIFY_EXAMPLE, VERIFY_ALL_EXAMPLE, VERIFIED_EXAMPLE],
    )
    def post(self, request: Request, visit_id: int, form_code: str) -> Response:
        data = parsed(VerifySerializer, request.data)
        verified = review.items_verify(
            user=request.user, visit_id=visit_id, form_code=form_code, item_codes=data.get("items")
        )
        return Response(VerifiedSerializer({"verified": verified}).data)


@extend_schema(tags=["signatures"])
class VisitSignView(ReviewView):
    @extend_schema(
        summary="Sign a visit",
        description=(
            "The investigator signs the visit's data, entering their password again (21 CFR 11.200); every form "
            "of the visit must be complete. A later change of the data voids the signature. Any role but the "
            "investigator's is 403; another site's visit 404."
        ),
        request=SignSerializer,
        responses=SIGN_RESPONSES,
        examples=[SIGN_EXAMPLE, SIGNED_EXAMPLE, WRONG_PASSWORD_EXAMPLE],
    )
    def post(self, request: Request, visit_id: int) -> Response:
        data = parsed(SignSerializer, request.data)
        return signature_response(review.visit_sign(user=request.user, visit_id=visit_id, request=request, **data))


@extend_schema(tags=["signatures"])
class CasebookSignView(ReviewView):
    @extend_schema(
        summary="Sign a participant's casebook",
        description=(
            "The investigator signs the whole casebook as it stands, entering their password again. New or "
            "changed data on any visit void the signature. Any role but the investigator's is 403; another "
            "site's participant 404."
        ),
        request=SignSerializer,
        responses=SIGN_RESPONSES,
        examples=[SIGN_EXAMPLE, WRONG_PASSWORD_EXAMPLE],
    )
    def post(self, request: Request, participant_id: int) -> Response:
        data = parsed(SignSerializer, request.data)
        return signature_response(
            review.casebook_sign(user=request.user, participant_id=participant_id, request=request, **data)
        )
