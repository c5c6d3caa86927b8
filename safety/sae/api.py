"""The SAE report's API: a thin door to safety.sae.services, beside the adverse event API.

GET/PUT `adverse-events/{id}/sae/` reads and completes the report (PUT carries the `version` read, 0 before the
first save); POST `.../sae/reports/` sends the next version (`sequence` as read, `final`); POST
`.../sae/sponsor-causality/` records the sponsor's physician's assessment (data manager). Another site's event is
404, a role without the action 403, bad input 400 keyed by field, a stale version 409, locked data 423.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from capture.review_api import NOT_FOUND, forbidden
from safety.api.schema import FIELD_ERRORS, LOCKED
from safety.api.serializers import RelationshipField, code_field
from safety.models import ChallengeResult, SaeReport, SeriousAdverseEvent
from safety.sae import services
from safety.sae.rules import MAX_LONG, SaeDetailsInput
from safety.sae.selectors import sae_panel
from safety.services import adverse_event_or_404
from trial.access import Action
from trial.errors import InvalidInput

ChallengeField = code_field(ChallengeResult, "ChallengeResultEnum")
CONFLICT = OpenApiResponse(description="The SAE report changed since it was read: `current_version` says to what.")


class MedicationSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    dose = serializers.CharField(max_length=200, required=False, allow_blank=True)
    route = serializers.CharField(max_length=200, required=False, allow_blank=True)
    indication = serializers.CharField(max_length=200, required=False, allow_blank=True)
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True)
    log_form_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="A row of the participant's medication log (form CM)."
    )


class SaeDetailsSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=0, write_only=True)
    admission_date = serializers.DateField(required=False, allow_null=True)
    discharge_date = serializers.DateField(required=False, allow_null=True)
    narrative = serializers.CharField(required=False, allow_blank=True, max_length=MAX_LONG)
    relevant_tests = serializers.CharField(required=False, allow_blank=True, max_length=MAX_LONG)
    relevant_history = serializers.CharField(required=False, allow_blank=True, max_length=MAX_LONG)
    suspect_medications = MedicationSerializer(many=True, required=False, max_length=30)
    concomitant_medications = MedicationSerializer(many=True, required=False, max_length=30)
    dechallenge = ChallengeField(required=False, allow_blank=True)
    rechallenge = ChallengeField(required=False, allow_blank=True)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300, write_only=True)

    def details_input(self) -> SaeDetailsInput:
        data = dict(self.validated_data)
        for name in ("suspect_medications", "concomitant_medications"):
            data[name] = [
                {key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in entry.items()}
                for entry in data.get(name, [])
            ]
        return SaeDetailsInput(**{name: data[name] for name in SaeDetailsInput.field_names() if name in data})


class SaeReportSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)

    class Meta:
        model = SaeReport
        fields = ["sequence", "kind", "label", "submitted_at", "snapshot"]


class SaeSerializer(serializers.ModelSerializer):
    dechallenge = ChallengeField(read_only=True)
    rechallenge = ChallengeField(read_only=True)
    sponsor_relationship = RelationshipField(read_only=True)

    class Meta:
        model = SeriousAdverseEvent
        fields = [
            "version",
            "admission_date",
            "discharge_date",
            "narrative",
            "relevant_tests",
            "relevant_history",
            "suspect_medications",
            "concomitant_medications",
            "dechallenge",
            "rechallenge",
            "sponsor_relationship",
            "sponsor_assessor",
            "sponsor_comment",
            "sponsor_assessed_at",
        ]


class SaeOutputSerializer(serializers.Serializer):
    details = SaeSerializer(allow_null=True)
    reports = SaeReportSerializer(many=True)
    next_sequence = serializers.IntegerField()


class SubmitSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(min_value=0, help_text="The next report number as read (0 is the initial).")
    final = serializers.BooleanField(default=False)


class SponsorCausalitySerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=0)
    relationship = RelationshipField()
    assessor = serializers.CharField(max_length=200)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=MAX_LONG)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300)


def _present(user: object, pk: int) -> Response:
    event = adverse_event_or_404(user, pk)
    panel = sae_panel(event)
    if panel is None:
        raise InvalidInput(_("Only a serious adverse event has an SAE report."))
    body = {"details": panel.row, "reports": panel.reports, "next_sequence": panel.next_sequence}
    return Response(SaeOutputSerializer(body).data)


def _parsed(serializer_class: type[serializers.Serializer], data: object) -> serializers.Serializer:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer


class SaeView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        tags=["adverse-events"],
        summary="An SAE's report: its details and the versions sent",
        responses={200: SaeOutputSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        return _present(request.user, pk)

    @extend_schema(
        tags=["adverse-events"],
        summary="Complete an SAE's report",
        request=SaeDetailsSerializer,
        responses={
            200: SaeOutputSerializer,
            400: FIELD_ERRORS,
            403: forbidden("enter data"),
            404: NOT_FOUND,
            409: CONFLICT,
            423: LOCKED,
        },
    )
    def put(self, request: Request, pk: int) -> Response:
        adverse_event_or_404(request.user, pk, Action.ENTER_DATA)
        serializer = _parsed(SaeDetailsSerializer, request.data)
        services.sae_details_save(
            user=request.user,
            event_id=pk,
            version=serializer.validated_data["version"],
            data=serializer.details_input(),
            reason=serializer.validated_data.get("reason", ""),
        )
        return _present(request.user, pk)


class SaeReportSubmitView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        tags=["adverse-events"],
        summary="Send the next version of an SAE's report (follow-up or final)",
        request=SubmitSerializer,
        responses={201: SaeReportSerializer, 400: FIELD_ERRORS, 403: forbidden("assess safety"), 404: NOT_FOUND},
    )
    def post(self, request: Request, pk: int) -> Response:
        adverse_event_or_404(request.user, pk, Action.ASSESS_SAFETY)
        data = _parsed(SubmitSerializer, request.data).validated_data
        report = services.sae_report_submit(user=request.user, event_id=pk, **data)
        return Response(SaeReportSerializer(report).data, status=status.HTTP_201_CREATED)


class SponsorCausalityView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        tags=["adverse-events"],
        summary="Record the sponsor's causality of an SAE (data manager)",
        request=SponsorCausalitySerializer,
        responses={
            200: SaeOutputSerializer,
            400: FIELD_ERRORS,
            403: forbidden("record the sponsor's causality"),
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        adverse_event_or_404(request.user, pk, Action.SPONSOR_CAUSALITY)
        data = _parsed(SponsorCausalitySerializer, request.data).validated_data
        services.sae_sponsor_causality_record(user=request.user, event_id=pk, **data)
        return _present(request.user, pk)
