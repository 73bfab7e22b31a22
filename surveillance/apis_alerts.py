"""Alerts API (CONTRACT section 8) and the run-now endpoint. Thin views: the
rules live in surveillance.services.alerts and .cycle."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.permissions import IsComplianceOfficer, IsViewer

from .detectors import DETECTOR_NAMES
from .models import Alert
from .services.alerts import (
    MAX_NOTE_CHARS,
    AlertError,
    alert_assign,
    alert_escalate,
    alert_get_for_user,
    alert_list_for_user,
    alert_resolve,
)
from .services.cycle import surveillance_cycle


class AlertOutSerializer(serializers.ModelSerializer):
    """An alert in a list: exactly the fields of CONTRACT section 8."""

    agent_id = serializers.SerializerMethodField()
    market = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id",
            "detector",
            "severity",
            "agent_id",
            "market",
            "status",
            "created_at",
            "evidence",
            "detail",
        ]
        read_only_fields = fields

    def get_agent_id(self, obj: Alert) -> str | None:
        return obj.agent_id or None

    def get_market(self, obj: Alert) -> str | None:
        return obj.market or None


class AlertDetailOutSerializer(AlertOutSerializer):
    """One alert with its case: the list fields and the workflow's."""

    assigned_to = serializers.CharField(source="assigned_to.username", default=None)
    escalated_by = serializers.CharField(source="escalated_by.username", default=None)
    closed_by = serializers.CharField(source="closed_by.username", default=None)

    class Meta(AlertOutSerializer.Meta):
        fields = [
            *AlertOutSerializer.Meta.fields,
            "fingerprint",
            "facts",
            "seq",
            "occurred_at_us",
            "config_hash",
            "assigned_to",
            "assigned_at",
            "escalated_by",
            "escalated_at",
            "closed_by",
            "closed_at",
            "disposition",
            "note",
        ]
        read_only_fields = fields


def _error(exc: AlertError) -> Response:
    return Response({"code": exc.code, "detail": exc.detail}, status=exc.http_status)


class AlertListApi(APIView):
    """GET (viewers+): alerts, active first, most severe and oldest first."""

    permission_classes = [IsViewer]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Alert.Status.choices, required=False)
        detector = serializers.ChoiceField(choices=DETECTOR_NAMES, required=False)
        severity = serializers.ChoiceField(choices=Alert.Severity.choices, required=False)
        agent_id = serializers.CharField(max_length=64, required=False)
        limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=Alert.Status.values),
            OpenApiParameter("detector", str, enum=DETECTOR_NAMES),
            OpenApiParameter("severity", str, enum=Alert.Severity.values),
            OpenApiParameter("agent_id", str),
            OpenApiParameter("limit", int, description="at most this many (1..1000, default 100)"),
        ],
        responses=AlertOutSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        v = filters.validated_data
        alerts = alert_list_for_user(
            user=request.user,
            status=v.get("status"),
            detector=v.get("detector"),
            severity=v.get("severity"),
            agent_id=v.get("agent_id"),
        )[: v["limit"]]
        return Response(AlertOutSerializer(alerts, many=True).data)


class AlertDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=AlertDetailOutSerializer)
    def get(self, request: Request, alert_id: int) -> Response:
        alert = alert_get_for_user(user=request.user, alert_id=alert_id)
        if alert is None:
            raise Http404
        return Response(AlertDetailOutSerializer(alert).data)


class _AlertActionApi(APIView):
    permission_classes = [IsComplianceOfficer]

    def _visible(self, request: Request, alert_id: int) -> None:
        if alert_get_for_user(user=request.user, alert_id=alert_id) is None:
            raise Http404

    def _done(self, alert: Alert) -> Response:
        return Response(AlertDetailOutSerializer(alert).data)


class AlertAssignApi(_AlertActionApi):
    """POST {"assignee"?: username} (compliance officers+): assign to someone,
    or to the caller when no assignee is named."""

    class InputSerializer(serializers.Serializer):
        assignee = serializers.CharField(max_length=150, required=False, allow_null=True)

    @extend_schema(request=InputSerializer, responses=AlertDetailOutSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        self._visible(request, alert_id)
        assignee: User | None = None
        name = data.validated_data.get("assignee")
        if name:
            assignee = User.objects.filter(username=name).first()
            if assignee is None:
                return Response(
                    {"code": "invalid_assignee", "detail": f"no user {name!r}"}, status=400
                )
        try:
            alert = alert_assign(alert_id=alert_id, acting_user=request.user, assignee=assignee)
        except AlertError as exc:
            return _error(exc)
        return self._done(alert)


class NoteInSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=MAX_NOTE_CHARS)


class AlertEscalateApi(_AlertActionApi):
    """POST {"note"} (the assignee, or an admin)."""

    @extend_schema(request=NoteInSerializer, responses=AlertDetailOutSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        data = NoteInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        self._visible(request, alert_id)
        try:
            alert = alert_escalate(
                alert_id=alert_id, acting_user=request.user, note=data.validated_data["note"]
            )
        except AlertError as exc:
            return _error(exc)
        return self._done(alert)


class AlertResolveApi(_AlertActionApi):
    """POST {"disposition", "note"} (compliance officers+; the assignee once assigned)."""

    class InputSerializer(serializers.Serializer):
        disposition = serializers.ChoiceField(choices=Alert.Disposition.choices)
        note = serializers.CharField(max_length=MAX_NOTE_CHARS)

    @extend_schema(request=InputSerializer, responses=AlertDetailOutSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        self._visible(request, alert_id)
        try:
            alert = alert_resolve(
                alert_id=alert_id,
                acting_user=request.user,
                disposition=data.validated_data["disposition"],
                note=data.validated_data["note"],
            )
        except AlertError as exc:
            return _error(exc)
        return self._done(alert)


class CycleOutSerializer(serializers.Serializer):
    processed = serializers.IntegerField()
    events = serializers.IntegerField()
    alerts = serializers.ListField(child=serializers.IntegerField())
    cursor = serializers.IntegerField()
    chunks = serializers.IntegerField()
    skipped = serializers.CharField(allow_null=True)


class SurveillanceRunApi(APIView):
    """POST (compliance officers+): run one surveillance cycle now."""

    permission_classes = [IsComplianceOfficer]

    @extend_schema(request=None, responses=CycleOutSerializer)
    def post(self, request: Request) -> Response:
        result: dict[str, Any] = surveillance_cycle().as_dict()
        return Response(CycleOutSerializer(result).data)
