"""The REST API of report runs: list them, ask for one, follow its progress, download its PDF, retry a failed one.

A thin door to `reports.runs`, the same services as the pages: a role that may report nowhere is 403 on every
endpoint, a run covering a site the user may not report on is 404, and the services' domain errors become HTTP
statuses through `trial.api_errors` (InvalidInput 400 keyed by field, ReportNotAvailable 409).
"""

from django.db.models import QuerySet
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from capture.review_api import NOT_FOUND, parsed
from reports import runs
from reports.models import ReportKind, ReportRun, RunState
from trial.validators import InputSerializer

# --- Fields with schema components of their own --------------------------------------------------------------
# drf-spectacular names an inline enum after its property; "state" and "kind" already name other choice sets.


@extend_schema_field({"type": "string", "enum": ReportKind.values}, component_name="ReportKindEnum")
class ReportKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(choices=ReportKind.choices, **kwargs)


@extend_schema_field({"type": "string", "enum": RunState.values}, component_name="ReportRunStateEnum")
class RunStateField(serializers.ChoiceField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(choices=RunState.choices, **kwargs)


# --- Serializers -------------------------------------------------------------------------------------------------


class ReportRunSerializer(serializers.ModelSerializer):
    kind = ReportKindField(read_only=True)
    state = RunStateField(read_only=True)
    sites = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="number", help_text="Numbers of the sites the report covers."
    )
    requested_by = serializers.CharField(
        source="requested_by.username", read_only=True, allow_null=True, help_text="Username; null when scheduled."
    )
    download_url = serializers.SerializerMethodField(help_text="Where to get the PDF once the run is done.")

    class Meta:
        model = ReportRun
        fields = [
            "id",
            "kind",
            "state",
            "progress",
            "step",
            "sites",
            "parameters",
            "cutoff",
            "requested_by",
            "requested_at",
            "started_at",
            "finished_at",
            "size",
            "sha256",
            "error",
            "attempts",
            "download_url",
        ]
        read_only_fields = fields

    def get_download_url(self, run: ReportRun) -> str | None:
        if run.state != RunState.DONE:
            return None
        return reverse("reports_api:report-download", args=[run.pk])


class ReportRequestSerializer(InputSerializer):
    kind = ReportKindField()
    sites = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        default=list,
        help_text="Site numbers; leave out for every site the user may report on.",
    )
    cutoff = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Data cut-off; leave out for now. Never in the future."
    )


# --- Examples ---------------------------------------------------------------------------------------------------

RUN_EXAMPLE_VALUE = {
    "id": 12,
    "kind": "trial_summary",
    "state": "running",
    "progress": 40,
    "step": "Visit completion",
    "sites": [1, 2, 3, 4, 5, 6],
    "parameters": {"sites": [], "language": "en"},
    "cutoff": "2026-03-02T01:00:00Z",
    "requested_by": "sponsor",
    "requested_at": "2026-03-02T01:00:00Z",
    "started_at": "2026-03-02T01:00:01Z",
    "finished_at": None,
    "size": None,
    "sha256": "",
    "error": "",
    "attempts": 1,
    "download_url": None,
}
REQUEST_EXAMPLE = OpenApiExample("Ask for the trial summary", request_only=True, value={"kind": "trial_summary"})
REQUEST_SITES_EXAMPLE = OpenApiExample(
    "Ask for a safety report of two sites", request_only=True, value={"kind": "safety", "sites": [1, 2]}
)
RUNNING_EXAMPLE = OpenApiExample(
    "Running", response_only=True, status_codes=["200"], value=RUN_EXAMPLE_VALUE, summary="A run being generated"
)
DONE_EXAMPLE = OpenApiExample(
    "Done",
    response_only=True,
    status_codes=["200"],
    summary="A finished run",
    value={
        **RUN_EXAMPLE_VALUE,
        "state": "done",
        "progress": 100,
        "step": "Trial summary",
        "finished_at": "2026-03-02T01:00:09Z",
        "size": 48213,
        "sha256": "9f2c4e0b5d3a1f7e6c8b2a4d0e9f1c3b5a7d9e2f4c6b8a0d1e3f5a7c9b2d4e6f",
        "download_url": "/api/v1/reports/12/download/",
    },
)
FORBIDDEN = OpenApiResponse(description="The user's role allows reports at no site.")
NOT_AVAILABLE = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="No file to give: the run is not done, or its file is missing or no longer matches its SHA-256.",
)


# --- Views ------------------------------------------------------------------------------------------------------


class PDFRenderer(BaseRenderer):
    """Lets a client ask for `application/pdf`; the download answers the file itself, an error its JSON."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(
        self, data: object, accepted_media_type: str | None = None, renderer_context: dict | None = None
    ) -> bytes:
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return JSONRenderer().render(data)


class ReportPermission(permissions.BasePermission):
    """Every endpoint needs a role that may report somewhere; the queryset then scopes the runs."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        runs.require_reporter(request.user)  # 403 with the reason
        return True


@extend_schema(tags=["reports"])
@extend_schema_view(
    list=extend_schema(
        summary="Report runs the user may see",
        description=(
            "Newest first: the runs whose every site the user may report on (the sponsor and data managers). "
            "Paginated (`limit`, `offset`). Any other role is 403."
        ),
        responses={200: ReportRunSerializer(many=True), 403: FORBIDDEN},
    ),
    retrieve=extend_schema(
        summary="A report run: its state and progress",
        description="Poll it while `state` is `queued` or `running`; `progress` goes from 0 to 100.",
        responses={200: ReportRunSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
        examples=[RUNNING_EXAMPLE, DONE_EXAMPLE],
    ),
)
class ReportRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ReportRunSerializer
    permission_classes = [ReportPermission]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[ReportRun]:
        return runs.runs_listed(self.request.user)

    def present(self, run: ReportRun, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=run.pk)).data, status=status_code)

    @extend_schema(
        summary="Ask for a report",
        description=(
            "A worker generates the PDF; follow it at the run's URL. The report covers the sites named (site "
            "numbers), or every site the user may report on, as the data stood at `cutoff` (now if left out). A "
            "site the user may not report on is 403; an unknown `kind` or a future `cutoff` 400."
        ),
        request=ReportRequestSerializer,
        responses={202: ReportRunSerializer, 400: OpenApiTypes.OBJECT, 403: FORBIDDEN},
        examples=[REQUEST_EXAMPLE, REQUEST_SITES_EXAMPLE],
    )
    def create(self, request: Request) -> Response:
        data = parsed(ReportRequestSerializer, request.data)
        run = runs.report_request(
            user=request.user, kind=data["kind"], site_numbers=data["sites"], cutoff=data.get("cutoff")
        )
        return self.present(run, status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Download a report's PDF",
        description=(
            "The file as generated (its SHA-256 is the run's `sha256`). Each download is written to the audit "
            "trail: who, which report, when. A run that is not done, or whose file is missing or altered, is 409."
        ),
        responses={
            (200, "application/pdf"): OpenApiResponse(response=OpenApiTypes.BINARY, description="The PDF."),
            403: FORBIDDEN,
            404: NOT_FOUND,
            (409, "application/json"): NOT_AVAILABLE,
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PDFRenderer])
    def download(self, request: Request, pk: str) -> HttpResponse:
        run, content = runs.report_download(user=request.user, run_id=int(pk))
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{run.filename}"'
        return response

    @extend_schema(
        summary="Retry a failed report run",
        description=(
            "Generates it again with the same sites and cut-off. Only a failed run (or one whose worker was lost) "
            "may be retried: any other is 400."
        ),
        request=None,
        responses={202: ReportRunSerializer, 400: OpenApiTypes.OBJECT, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        return self.present(runs.report_retry(user=request.user, run_id=int(pk)), status.HTTP_202_ACCEPTED)
