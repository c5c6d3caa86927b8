"""The export endpoints: the ODM file and the CSV zip, streamed, for the roles that may export (data managers and
the sponsor), covering only the sites where they hold that right. Every download is recorded in the audit trail
before it starts.

The browser page (reports/views.py) links to these same endpoints: session authentication serves both doors.
"""

import json
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from reports import selectors
from reports.exports.csv_export import csv_export
from reports.exports.odm import odm_export
from reports.selectors import ExportScope
from reports.services import export_record
from trial.validators import InputSerializer


class ExportParametersSerializer(InputSerializer):
    site = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Export this site only (its number; one where you may export). Without it, all of yours.",
    )


class OdmParametersSerializer(ExportParametersSerializer):
    audit = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Add the audit trail of every item value (who, where, when, why); the file is then Transactional.",
    )


class _DownloadRenderer(BaseRenderer):
    """Names a download's media type, so that a client asking for it by Accept is served; the view streams the
    body itself. A refusal (a dict of messages) is written as JSON."""

    charset = None
    render_style = "binary"

    def render(
        self, data: object, accepted_media_type: str | None = None, renderer_context: dict | None = None
    ) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class XmlRenderer(_DownloadRenderer):
    media_type = "application/xml"
    format = "xml"


class ZipRenderer(_DownloadRenderer):
    media_type = "application/zip"
    format = "zip"


# DRF's ?format= override exists because two renderers do; Accept is the way to ask, so it stays undocumented.
NO_FORMAT = OpenApiParameter("format", exclude=True)
REFUSALS = {
    (400, "application/json"): OpenApiResponse(
        OpenApiTypes.OBJECT, description="A `site` where you may not export: {site: [message]}."
    ),
    403: OpenApiResponse(
        description="Not authenticated, or your role may export nowhere (only data managers and the sponsor may)."
    ),
}


class _ExportView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    kind = ""
    parameters = ExportParametersSerializer

    def _scope(self, request: Request) -> tuple[ExportScope, dict]:
        parameters = self.parameters(data=request.query_params)
        parameters.is_valid(raise_exception=True)
        chosen = parameters.validated_data
        return selectors.export_scope(request.user, chosen.get("site")), chosen

    def _download(
        self,
        request: Request,
        scope: ExportScope,
        chunks: Iterator[bytes],
        *,
        media_type: str,
        suffix: str,
        **params: object,
    ) -> StreamingHttpResponse:
        export_record(
            user=request.user,
            kind=self.kind,
            params={"sites": [site.number for site in scope.sites], **params},
            site=scope.sites[0] if scope.single_site else None,
        )
        response = StreamingHttpResponse(chunks, content_type=media_type)
        response["Content-Disposition"] = f'attachment; filename="{_file_name(scope, self.kind, suffix)}"'
        response["Cache-Control"] = "no-store"  # trial data stay out of shared caches
        return response


def _file_name(scope: ExportScope, kind: str, suffix: str) -> str:
    sites = (
        f"site-{scope.sites[0].number:02d}"
        if scope.single_site
        else "sites-" + "-".join(f"{site.number:02d}" for site in scope.sites)
    )
    return f"NCT01573923_{kind}_{sites}_{timezone.now():%Y%m%dT%H%M%SZ}.{suffix}"


@extend_schema(tags=["exports"])
class OdmExportView(_ExportView):
    renderer_classes = [JSONRenderer, XmlRenderer]
    kind = "odm"
    parameters = OdmParametersSerializer

    @extend_schema(
        summary="CDISC ODM 1.3.2 export",
        description=(
            "One XML file with the study metadata (events, forms, item groups, items with units, ranges and code "
            "lists, one MetaDataVersion per protocol version), the sites (AdminData) and the clinical data of every "
            "participant of your sites (or of `site`): screening and enrolment, then each visit's forms. A missing "
            'value is `IsNull="Yes"` with its reason as a Flag (code list CL.MISSING_REASON). With `audit=true` '
            "the file is Transactional: the history of every item value with its AuditRecord, then the current "
            "state. Streamed; valid against the CDISC ODM 1.3.2 schema; the download is recorded in the audit trail."
        ),
        parameters=[OdmParametersSerializer, NO_FORMAT],
        responses={
            (200, "application/xml"): OpenApiResponse(OpenApiTypes.BINARY, description="The ODM file."),
            **REFUSALS,
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        scope, chosen = self._scope(request)
        audit = chosen["audit"]
        chunks = odm_export(scope=scope, audit=audit, exported_by=request.user.get_username())
        return self._download(request, scope, chunks, media_type="application/xml", suffix="xml", audit=audit)


@extend_schema(tags=["exports"])
class CsvExportView(_ExportView):
    renderer_classes = [JSONRenderer, ZipRenderer]
    kind = "csv"

    @extend_schema(
        summary="CSV datasets (zip)",
        description=(
            "A zip of UTF-8 CSV files (with a byte order mark, so Excel reads Chinese text): one wide dataset per "
            "form (a row per participant and visit), SCREEN and ENROL (a row per participant), LAB_LONG (a row per "
            "laboratory value, with unit, reference range and flags) and data_dictionary.csv. Your sites, or "
            "`site`. Streamed; the download is recorded in the audit trail."
        ),
        parameters=[ExportParametersSerializer, NO_FORMAT],
        responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The zip."), **REFUSALS},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        scope, _chosen = self._scope(request)
        return self._download(request, scope, csv_export(scope=scope), media_type="application/zip", suffix="zip")
