"""Report subscriptions: who is emailed which scheduled report (compliance officers)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsComplianceOfficer, request_person

from .models import ReportSubscription
from .services.delivery import (
    subscription_create,
    subscription_deactivate,
    subscription_list_for_user,
)


class SubscriptionOutSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = ReportSubscription
        fields = [
            "id",
            "kind",
            "format",
            "regulator",
            "recipients",
            "is_active",
            "created_by",
            "created_at",
            "deactivated_at",
        ]
        read_only_fields = fields


class SubscriptionsApi(APIView):
    permission_classes = [IsComplianceOfficer]

    class InputSerializer(serializers.Serializer):
        kind = serializers.CharField(max_length=32)
        format = serializers.CharField(max_length=8)
        regulator = serializers.CharField(
            max_length=32, required=False, allow_blank=True, default=""
        )
        recipients = serializers.ListField(child=serializers.JSONField(), max_length=100)

    @extend_schema(responses=SubscriptionOutSerializer(many=True))
    def get(self, request: Request) -> Response:
        subs = subscription_list_for_user(user=request.user)
        return Response(SubscriptionOutSerializer(subs, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: SubscriptionOutSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        sub = subscription_create(
            kind=v["kind"],
            fmt=v["format"],
            regulator=v["regulator"],
            recipients=v["recipients"],
            acting_user=request_person(request),
        )
        return Response(SubscriptionOutSerializer(sub).data, status=status.HTTP_201_CREATED)


class SubscriptionDeactivateApi(APIView):
    permission_classes = [IsComplianceOfficer]

    @extend_schema(request=None, responses=SubscriptionOutSerializer)
    def post(self, request: Request, subscription_id: int) -> Response:
        sub = subscription_deactivate(
            subscription_id=subscription_id, acting_user=request_person(request)
        )
        return Response(SubscriptionOutSerializer(sub).data)
