from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from compliance_site.exceptions import Unauthenticated
from compliance_site.proxies import client_ip

from .services import token_issue


class TokenThrottle(AnonRateThrottle):
    """Per client address, where the address believes X-Forwarded-For only from
    COMPLIANCE_TRUSTED_PROXIES (DRF's own ident takes the header from anyone)."""

    rate = "30/min"

    def get_ident(self, request: Any) -> str:
        return client_ip(request)


class TokenObtainApi(APIView):
    """POST /api/v1/auth/token/: exchange a username and password for an expiring bearer token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [TokenThrottle]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: inline_serializer(
                "TokenOut",
                {"token": serializers.CharField(), "expires_at": serializers.DateTimeField()},
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The HttpRequest itself: django-axes marks a locked-out login on it, and
        # its middleware answers with 429 login_locked_out.
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None or not user.is_active:
            raise Unauthenticated(
                "invalid_credentials", "Unable to log in with the given credentials."
            )
        token, expires_at = token_issue(user=user)
        return Response({"token": token, "expires_at": expires_at}, status=status.HTTP_201_CREATED)
