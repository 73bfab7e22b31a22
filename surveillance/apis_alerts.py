"""Alerts API (CONTRACT section 8) and the run-now endpoint. Thin views: the
rules live in surveillance.services.alerts and .cycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.permissions import IsComplianceOfficer, IsViewer, request_person
from compliance_site.exceptions import Invalid

from .detectors import DETECTOR_NAMES
from .models import Alert
from .selectors import alert_get_for_user, alert_history, alert_list_for_user
from .services.alerts import (
    ESCALATION_ROLES,
    MAX_NOTE_CHARS,
    alert_assign,
    alert_escalate,
    alert_note_add,
    alert_reopen,
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


def _named(username: str | None) -> User | None:
    """The person a body names, or None when it names nobody (refused if unknown)."""
    if not username:
        return None
    user = User.objects.filter(username=username).first()
    if user is None:
        raise Invalid("invalid_assignee", f"no user {username!r}")
    return user


class _AlertActionApi(APIView):
    permission_classes = [IsComplianceOfficer]

    def _visible(self, request: Request, alert_id: int) -> None:
        if alert_get_for_user(user=request.user, alert_id=alert_id) is None:
            raise Http404

    def _done(self, alert: Alert) -> Response:
        return Response(AlertDetailOutSerializer(alert).data)

    def _run(
        self,
        request: Request,
        alert_id: int,
        form: type[serializers.Serializer],
        act: Callable[[dict[str, Any]], Alert],
        status: int = 200,
    ) -> Response:
        """Validate the body, check the alert is visible, call the service."""
        data = form(data=request.data)
        data.is_valid(raise_exception=True)
        self._visible(request, alert_id)
        alert = act(dict(data.validated_data))
        return Response(AlertDetailOutSerializer(alert).data, status=status)


class AlertAssignApi(_AlertActionApi):
    """POST {"assignee"?: username} (compliance officers+): assign to someone,
    or to the caller when no assignee is named."""

    class InputSerializer(serializers.Serializer):
        assignee = serializers.CharField(max_length=150, required=False, allow_null=True)

    @extend_schema(request=InputSerializer, responses=AlertDetailOutSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        return self._run(
            request,
            alert_id,
            self.InputSerializer,
            lambda v: alert_assign(
                alert_id=alert_id,
                acting_user=request_person(request),
                assignee=_named(v.get("assignee")),
            ),
        )


class NoteInSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=MAX_NOTE_CHARS)


class EscalateInSerializer(NoteInSerializer):
    to_user = serializers.CharField(
        max_length=150, required=False, allow_blank=True, help_text="a person's username"
    )
    to_role = serializers.ChoiceField(
        choices=[("", ""), *[(r, r) for r in ESCALATION_ROLES]], required=False
    )


class AlertEscalateApi(_AlertActionApi):
    """POST {"note", "to_user"?, "to_role"?} (the assignee, or an admin): the note
    is the reason; a named person then holds the case."""

    @extend_schema(request=EscalateInSerializer, responses=AlertDetailOutSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        return self._run(
            request,
            alert_id,
            EscalateInSerializer,
            lambda v: alert_escalate(
                alert_id=alert_id,
                acting_user=request_person(request),
                note=v["note"],
                to_user=_named(v.get("to_user")),
                to_role=v.get("to_role") or "",
            ),
        )


class AlertNoteApi(_AlertActionApi):
    """POST {"note"} (compliance officers+): a note on the case, open or closed,
    recorded in the log as ALERT_UPDATED (action "note")."""

    @extend_schema(request=NoteInSerializer, responses={201: AlertDetailOutSerializer})
    def post(self, request: Request, alert_id: int) -> Response:
        return self._run(
            request,
            alert_id,
            NoteInSerializer,
            lambda v: alert_note_add(
                alert_id=alert_id, acting_user=request_person(request), note=v["note"]
            ),
            status=201,
        )


class ReopenInSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_NOTE_CHARS)


class AlertReopenApi(_AlertActionApi):
    """POST {"reason"} (compliance officers+): reopen a closed case; the caller
    holds it, due again by its severity's SLA."""

    @extend_schema(request=ReopenInSerializer, responses=AlertDetailOutSerializer)
    def post(self, request: Request, alert_id: int) -> Response:
        return self._run(
            request,
            alert_id,
            ReopenInSerializer,
            lambda v: alert_reopen(
                alert_id=alert_id, acting_user=request_person(request), reason=v["reason"]
            ),
        )


class HistoryEntrySerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    recorded_at_us = serializers.IntegerField()
    event_type = serializers.CharField()
    actor = serializers.CharField()
    action = serializers.CharField()
    from_status = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    note = serializers.CharField(allow_blank=True)


class AlertHistoryApi(APIView):
    """GET (viewers+): the case's history, read from its records in log order."""

    permission_classes = [IsViewer]

    @extend_schema(responses=HistoryEntrySerializer(many=True))
    def get(self, request: Request, alert_id: int) -> Response:
        alert = alert_get_for_user(user=request.user, alert_id=alert_id)
        if alert is None:
            raise Http404
        return Response(HistoryEntrySerializer(alert_history(alert=alert), many=True).data)


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
        alert = alert_resolve(
            alert_id=alert_id,
            acting_user=request_person(request),
            disposition=data.validated_data["disposition"],
            note=data.validated_data["note"],
        )
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
