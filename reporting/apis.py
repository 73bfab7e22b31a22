"""Reports, retention manifest and legal holds (CONTRACT section 10, extended).

POST /api/v1/reports/ -> 202 {"id","status"}; GET /api/v1/reports/{id}/ ->
{"status","sha256","seq","download_url", ...}; GET .../download/ streams the
file. Lists go through the selectors (viewers and above read every report)."""

from __future__ import annotations

import posixpath
from datetime import UTC
from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdmin, IsComplianceOfficer, IsViewer, request_person
from audit.models import MAX_SEQ

from .models import LegalHold, Report
from .periods import period_of
from .regulators import REGULATORS
from .selectors import legal_hold_list_for_user, report_get_for_user, report_list_for_user
from .services.render import CONTENT_TYPES
from .services.reports import report_request
from .services.retention import (
    legal_hold_place,
    legal_hold_release,
    retention_manifest,
    retention_purge_by,
    retention_purge_preview,
)

MAX_LIST = 500


def _limit(request: Request) -> int:
    try:
        return max(1, min(int(request.query_params.get("limit", 100)), MAX_LIST))
    except ValueError:
        return 100


class ReportOutSerializer(serializers.ModelSerializer):
    period = serializers.CharField(source="period_label")
    requested_by = serializers.CharField(source="requested_by.username", default=None)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = [
            "id",
            "kind",
            "format",
            "regulator",
            "period",
            "period_start",
            "period_end",
            "status",
            "sha256",
            "seq",
            "from_seq",
            "to_seq",
            "record_count",
            "size",
            "scheduled",
            "requested_by",
            "requested_at",
            "finished_at",
            "error",
            "provisional",
            "download_url",
        ]
        read_only_fields = fields

    def get_download_url(self, obj: Report) -> str | None:
        if obj.status != Report.Status.DONE:
            return None
        path = reverse("reporting:report-download", args=[obj.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class ReportRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Report.Kind.values)
    format = serializers.ChoiceField(choices=Report.Format.values)
    regulator = serializers.ChoiceField(
        choices=["", *REGULATORS], required=False, allow_null=True, default=""
    )
    date = serializers.DateField(required=False)
    start = serializers.DateTimeField(required=False, default_timezone=UTC)
    end = serializers.DateTimeField(required=False, default_timezone=UTC)
    year = serializers.IntegerField(required=False, min_value=1970, max_value=9998)
    quarter = serializers.IntegerField(required=False, min_value=1, max_value=4)
    provisional = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["period"] = period_of(
                kind=attrs["kind"],
                date=attrs.get("date"),
                start=attrs.get("start"),
                end=attrs.get("end"),
                year=attrs.get("year"),
                quarter_no=attrs.get("quarter"),
            )
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        attrs["regulator"] = attrs.get("regulator") or ""
        return attrs


class ReportsApi(APIView):
    def get_permissions(self) -> list[BasePermission]:
        return [IsComplianceOfficer()] if self.request.method == "POST" else [IsViewer()]

    @extend_schema(responses=ReportOutSerializer(many=True))
    def get(self, request: Request) -> Response:
        reports = report_list_for_user(
            user=request.user,
            kind=request.query_params.get("kind"),
            status=request.query_params.get("status"),
        )[: _limit(request)]
        return Response(ReportOutSerializer(reports, many=True, context={"request": request}).data)

    @extend_schema(request=ReportRequestSerializer, responses={202: None})
    def post(self, request: Request) -> Response:
        data = ReportRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        report, created = report_request(
            kind=v["kind"],
            period=v["period"],
            fmt=v["format"],
            regulator=v["regulator"],
            acting_user=request_person(request),
            provisional=v["provisional"],
        )
        report.refresh_from_db()
        return Response(
            {"id": report.pk, "status": report.status, "created": created},
            status=status.HTTP_202_ACCEPTED,
        )


class ReportDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=ReportOutSerializer)
    def get(self, request: Request, report_id: int) -> Response:
        report = report_get_for_user(user=request.user, report_id=report_id)
        if report is None:
            raise Http404
        return Response(ReportOutSerializer(report, context={"request": request}).data)


class ReportDownloadApi(APIView):
    """The stored file, streamed; its SHA-256 is in the X-Report-SHA256 header
    and in the REPORT_GENERATED record at `seq`."""

    permission_classes = [IsViewer]

    @extend_schema(
        responses={
            (200, media_type): OpenApiTypes.OBJECT if media_type == "application/json" else bytes
            for media_type in sorted(set(CONTENT_TYPES.values()))
        }
    )
    def get(self, request: Request, report_id: int) -> FileResponse:
        return report_file_response(user=request.user, report_id=report_id)


def report_file_response(*, user: Any, report_id: int) -> FileResponse:
    """The finished report the user may see, streamed, with its SHA-256 and the
    seq of its REPORT_GENERATED record in headers (API and admin alike)."""
    report = report_get_for_user(user=user, report_id=report_id)
    if report is None or report.status != Report.Status.DONE:
        raise Http404
    response = FileResponse(
        default_storage.open(report.file, "rb"),
        as_attachment=True,
        filename=posixpath.basename(report.file),
        content_type=CONTENT_TYPES[report.format],
    )
    response["X-Report-SHA256"] = report.sha256
    response["X-Report-Seq"] = str(report.seq)
    return response


class RetentionManifestApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=None)
    def get(self, request: Request) -> Response:
        return Response(retention_manifest())


class PurgePreviewSerializer(serializers.Serializer):
    """What a purge started now would clear (documentation shape)."""

    as_of = serializers.DateTimeField()
    retention_days = serializers.IntegerField()
    count = serializers.IntegerField()
    from_seq = serializers.IntegerField(allow_null=True)
    to_seq = serializers.IntegerField(allow_null=True)
    by_event_type = serializers.DictField(child=serializers.IntegerField())
    active_holds = serializers.ListField(child=serializers.IntegerField())


class PurgeSummarySerializer(serializers.Serializer):
    """What a purge cleared, and the DATA_PURGED records that say so."""

    count = serializers.IntegerField()
    batches = serializers.IntegerField()
    from_seq = serializers.IntegerField(allow_null=True)
    to_seq = serializers.IntegerField(allow_null=True)
    data_purged_seqs = serializers.ListField(child=serializers.IntegerField())


class RetentionPurgeApi(APIView):
    """GET /api/v1/retention/purge/: what a purge would clear now. POST
    {"reason"}: purge it now (admins), recorded as DATA_PURGED with the
    caller and the reason. Beat's scheduled purge is unchanged."""

    permission_classes = [IsAdmin]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=4000)

    @extend_schema(responses=PurgePreviewSerializer)
    def get(self, request: Request) -> Response:
        return Response(retention_purge_preview().as_dict())

    @extend_schema(request=InputSerializer, responses=PurgeSummarySerializer)
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        summary = retention_purge_by(
            acting_user=request_person(request), reason=data.validated_data["reason"]
        )
        return Response(summary.as_dict())


class LegalHoldOutSerializer(serializers.ModelSerializer):
    placed_by = serializers.CharField(source="placed_by.username")
    released_by = serializers.CharField(source="released_by.username", default=None)
    active = serializers.BooleanField(source="is_active")

    class Meta:
        model = LegalHold
        fields = [
            "id",
            "active",
            "reason",
            "from_seq",
            "to_seq",
            "agent_id",
            "event_types",
            "placed_by",
            "placed_at",
            "placed_seq",
            "released_by",
            "released_at",
            "release_reason",
            "released_seq",
        ]
        read_only_fields = fields


class LegalHoldsApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=4000)
        from_seq = serializers.IntegerField(
            required=False, allow_null=True, min_value=0, max_value=MAX_SEQ
        )
        to_seq = serializers.IntegerField(
            required=False, allow_null=True, min_value=0, max_value=MAX_SEQ
        )
        agent_id = serializers.SlugField(
            required=False, allow_blank=True, max_length=64, default=""
        )
        event_types = serializers.ListField(
            child=serializers.CharField(max_length=64), required=False, default=list, max_length=100
        )

    def get_permissions(self) -> list[BasePermission]:
        return [IsAdmin()] if self.request.method == "POST" else [IsComplianceOfficer()]

    @extend_schema(responses=LegalHoldOutSerializer(many=True))
    def get(self, request: Request) -> Response:
        active = request.query_params.get("active")
        holds = legal_hold_list_for_user(
            user=request.user,
            active=None if active is None else active.lower() in ("1", "true", "yes"),
        )[: _limit(request)]
        return Response(LegalHoldOutSerializer(holds, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: LegalHoldOutSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hold = legal_hold_place(acting_user=request_person(request), **data.validated_data)
        return Response(LegalHoldOutSerializer(hold).data, status=status.HTTP_201_CREATED)


class LegalHoldReleaseApi(APIView):
    permission_classes = [IsAdmin]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=4000)

    @extend_schema(request=InputSerializer, responses=LegalHoldOutSerializer)
    def post(self, request: Request, hold_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hold = legal_hold_release(
            hold_id=hold_id,
            reason=data.validated_data["reason"],
            acting_user=request_person(request),
        )
        return Response(LegalHoldOutSerializer(hold).data)
