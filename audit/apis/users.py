"""Users and their roles (CONTRACT section 12): admins only. Each change is a
USER_ROLE_CHANGED record; the rules are the service's (audit.services.users)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ROLE_ORDER, User
from accounts.permissions import IsAdmin
from accounts.roles import user_role

from ..services.users import user_create, user_role_set


class UserOutSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["username", "role", "is_active", "is_superuser", "is_staff", "date_joined"]

    def get_role(self, obj: User) -> str | None:
        return user_role(obj) if obj.is_active else None


def _user(username: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        raise Http404
    return user


class UserListCreateApi(APIView):
    """GET /api/v1/users/ and POST /api/v1/users/ {"username","password","role","reason"?}."""

    permission_classes = [IsAdmin]

    class InputSerializer(serializers.Serializer):
        username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)
        role = serializers.ChoiceField(choices=ROLE_ORDER)
        email = serializers.EmailField(required=False, default="")
        reason = serializers.CharField(max_length=2000, required=False, default="created")

    @extend_schema(responses=UserOutSerializer(many=True))
    def get(self, request: Request) -> Response:
        users = User.objects.order_by("username").prefetch_related("groups")
        return Response(UserOutSerializer(users, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: UserOutSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v: dict[str, Any] = data.validated_data
        user = user_create(
            username=v["username"],
            role=v["role"],
            password=v["password"],
            email=v["email"],
            reason=v["reason"],
            acting_user=request.user,
        )
        return Response(UserOutSerializer(user).data, status=status.HTTP_201_CREATED)


class UserRoleApi(APIView):
    """POST /api/v1/users/{username}/role/ {"role","reason"}."""

    permission_classes = [IsAdmin]

    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=ROLE_ORDER)
        reason = serializers.CharField(max_length=2000)

    @extend_schema(request=InputSerializer, responses=UserOutSerializer)
    def post(self, request: Request, username: str) -> Response:
        user = _user(username)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_role_set(
            user=user,
            role=data.validated_data["role"],
            reason=data.validated_data["reason"],
            acting_user=request.user,
        )
        return Response(UserOutSerializer(User.objects.get(pk=user.pk)).data)
