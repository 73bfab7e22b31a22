"""Approvals API (CONTRACT section 8): list and read (permission-filtered),
approve and deny. Thin views: the rules live in approvals.services."""

from __future__ import annotations

from typing import cast

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.permissions import IsActiveAgent, IsComplianceOfficer, IsViewer

from .models import ApprovalRequest
from .selectors import approval_get_for_user, approval_list_for_user
from .services import (
    MAX_REASON_CHARS,
    approval_deny,
    approval_grant,
)


class ApprovalOutSerializer(serializers.ModelSerializer):
    agent_id = serializers.CharField(source="requested_by_agent.agent_id", default=None)
    requested_by = serializers.CharField(source="requested_by_user.username", default=None)
    decided_by = serializers.CharField(source="decided_by.username", default=None)
    status = serializers.CharField(source="effective_status")

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "kind",
            "subject_id",
            "summary",
            "status",
            "agent_id",
            "requested_by",
            "requested_at",
            "expires_at",
            "decided_by",
            "decided_at",
            "reason",
        ]
        read_only_fields = fields


class ApprovalListApi(APIView):
    """Humans from viewer up see every request; a bot sees its own (to poll its
    held orders)."""

    permission_classes = [IsViewer | IsActiveAgent]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=ApprovalRequest.Status.choices, required=False)
        limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=ApprovalRequest.Status.values),
            OpenApiParameter("limit", int, description="at most this many (1..1000, default 100)"),
        ],
        responses=ApprovalOutSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        approvals = approval_list_for_user(
            user=request.user, status=filters.validated_data.get("status")
        )[: filters.validated_data["limit"]]
        return Response(ApprovalOutSerializer(approvals, many=True).data)


class ApprovalDetailApi(APIView):
    permission_classes = [IsViewer | IsActiveAgent]

    @extend_schema(responses=ApprovalOutSerializer)
    def get(self, request: Request, approval_id: int) -> Response:
        approval = approval_get_for_user(user=request.user, approval_id=approval_id)
        if approval is None:
            raise Http404
        return Response(ApprovalOutSerializer(approval).data)


class ReasonInSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_REASON_CHARS, allow_blank=False)


class RecheckReasonSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="a gate reason code, e.g. kill_switch, max_position")
    limit = serializers.JSONField()
    value = serializers.JSONField()
    detail = serializers.CharField()


class DecideErrorSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="permission_denied, four_eyes_requester, four_eyes_owner, not_found, "
        "expired, already_decided, or recheck_failed (a grant only)"
    )
    detail = serializers.CharField()
    reasons = RecheckReasonSerializer(
        many=True, required=False, help_text="with recheck_failed: every check that fails now"
    )


_DECIDE_RESPONSES = {
    200: ApprovalOutSerializer,
    403: DecideErrorSerializer,
    404: DecideErrorSerializer,
    409: OpenApiResponse(
        DecideErrorSerializer,
        description="expired or already decided; or, for a grant, `recheck_failed`: the "
        "kill switch or a hard limit fails against the state now (CONTRACT 12). Nothing "
        "changed and the request stays pending.",
    ),
}


class _DecideApi(APIView):
    permission_classes = [IsComplianceOfficer]
    decide = staticmethod(approval_grant)

    @extend_schema(request=ReasonInSerializer, responses=_DECIDE_RESPONSES)
    def post(self, request: Request, approval_id: int) -> Response:
        data = ReasonInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = self.decide(
            request_id=approval_id,
            # IsComplianceOfficer admits only humans; the service re-checks.
            acting_user=cast(User, request.user),
            reason=data.validated_data["reason"],
        )
        return Response(ApprovalOutSerializer(approval).data)


class ApprovalApproveApi(_DecideApi):
    decide = staticmethod(approval_grant)


class ApprovalDenyApi(_DecideApi):
    decide = staticmethod(approval_deny)
