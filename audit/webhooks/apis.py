"""Webhooks API (CONTRACT section 10): register a receiver, list receivers,
and see every delivery attempt. Thin views over audit.webhooks.services."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsComplianceOfficer, IsViewer, request_person

from ..models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .services import (
    webhook_deliveries_for_user,
    webhook_endpoint_create,
    webhook_endpoint_enable,
    webhook_endpoint_list_for_user,
)


class WebhookInSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000)  # the SSRF guard in the service judges it
    # notice types, '*', any record event type or 'records:*': the service judges them
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=50
    )
    description = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )


class WebhookCreatedSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "secret", "url", "event_types"]
        read_only_fields = fields


class WebhookOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "event_types",
            "description",
            "is_active",
            "consecutive_failures",
            "failing_since",
            "disabled_at",
            "disabled_reason",
            "created_at",
        ]
        read_only_fields = fields


class AttemptOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "started_at",
            "duration_ms",
            "webhook_timestamp",
            "status_code",
            "outcome",
            "error",
            "response_excerpt",
        ]
        read_only_fields = fields


class DeliveryOutSerializer(serializers.ModelSerializer):
    webhook_id = serializers.CharField(source="message.msg_id")
    event_type = serializers.CharField(source="message.event_type")
    seq = serializers.IntegerField(source="message.seq", allow_null=True)
    attempt_log = AttemptOutSerializer(many=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook_id",
            "event_type",
            "seq",
            "status",
            "attempts",
            "next_attempt_at",
            "delivered_at",
            "last_status_code",
            "last_error",
            "created_at",
            "attempt_log",
        ]
        read_only_fields = fields


class WebhookListCreateApi(APIView):
    """GET (viewers+): the receivers, without secrets. POST (compliance
    officers+): register one; the answer holds its secret, shown this once."""

    def get_permissions(self) -> list[Any]:
        return [IsComplianceOfficer()] if self.request.method == "POST" else [IsViewer()]

    @extend_schema(responses=WebhookOutSerializer(many=True))
    def get(self, request: Request) -> Response:
        endpoints = webhook_endpoint_list_for_user(user=request.user)
        return Response(WebhookOutSerializer(endpoints, many=True).data)

    @extend_schema(request=WebhookInSerializer, responses={201: WebhookCreatedSerializer})
    def post(self, request: Request) -> Response:
        data = WebhookInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_create(
            url=data.validated_data["url"],
            event_types=data.validated_data["event_types"],
            description=data.validated_data["description"],
            acting_user=request_person(request),
        )
        return Response(WebhookCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookEnableApi(APIView):
    """POST (compliance officers+): enable a disabled receiver again."""

    permission_classes = [IsComplianceOfficer]

    @extend_schema(request=None, responses=WebhookOutSerializer)
    def post(self, request: Request, endpoint_id: int) -> Response:
        if not webhook_endpoint_list_for_user(user=request.user).filter(pk=endpoint_id).exists():
            raise Http404
        endpoint = webhook_endpoint_enable(
            endpoint_id=endpoint_id, acting_user=request_person(request)
        )
        return Response(WebhookOutSerializer(endpoint).data)


class WebhookDeliveriesApi(APIView):
    """GET (viewers+): every delivery to a receiver, newest first, each with
    every attempt made."""

    permission_classes = [IsViewer]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)
        limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=WebhookDelivery.Status.values),
            OpenApiParameter("limit", int, description="at most this many (1..1000, default 100)"),
        ],
        responses=DeliveryOutSerializer(many=True),
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        deliveries = webhook_deliveries_for_user(user=request.user, endpoint_id=endpoint_id)
        if deliveries is None:
            raise Http404
        if filters.validated_data.get("status"):
            deliveries = deliveries.filter(status=filters.validated_data["status"])
        rows = deliveries[: filters.validated_data["limit"]]
        return Response(DeliveryOutSerializer(rows, many=True).data)
