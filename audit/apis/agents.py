"""Agents and their signing keys (CONTRACT section 4)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Agent, AgentKey, User
from accounts.permissions import IsRiskManager, IsViewer, request_person
from accounts.selectors import agent_get_for_user, agent_keys, agent_list_for_user
from compliance_site.exceptions import Invalid

from ..services.agents import (
    agent_key_add,
    agent_key_revoke,
    agent_register,
    agent_set_status,
)


class AgentOutSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", default=None, allow_null=True)

    class Meta:
        model = Agent
        fields = ["agent_id", "name", "owner", "status", "created_at"]


class AgentKeyOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentKey
        fields = ["key_id", "public_key", "created_at", "revoked_at"]


class PublicKeyInSerializer(serializers.Serializer):
    public_key = serializers.CharField(max_length=64)


REGISTERED = inline_serializer(
    "AgentRegistered",
    {
        "agent_id": serializers.CharField(),
        "key_id": serializers.CharField(),
        "api_key": serializers.CharField(help_text="shown once; stored hashed"),
    },
)


class AgentListCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        agent_id = serializers.SlugField(max_length=64)
        name = serializers.CharField(max_length=200)
        public_key = serializers.CharField(max_length=64)
        owner = serializers.CharField(max_length=150, required=False, allow_null=True)

    def get_permissions(self) -> list[BasePermission]:
        return [IsRiskManager()] if self.request.method == "POST" else [IsViewer()]

    @extend_schema(responses=AgentOutSerializer(many=True))
    def get(self, request: Request) -> Response:
        agents = agent_list_for_user(user=request.user).select_related("owner")
        return Response(AgentOutSerializer(agents, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: REGISTERED})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        owner = None
        if data.validated_data.get("owner"):
            owner = User.objects.filter(
                username=data.validated_data["owner"], is_active=True
            ).first()
            if owner is None:
                raise Invalid("unknown_owner", "owner is not an active user")
        agent, key, api_key = agent_register(
            agent_id=data.validated_data["agent_id"],
            name=data.validated_data["name"],
            public_key=data.validated_data["public_key"],
            owner=owner,
            acting_user=request_person(request),
        )
        return Response(
            {"agent_id": agent.agent_id, "key_id": key.key_id, "api_key": api_key},
            status=status.HTTP_201_CREATED,
        )


class AgentKeysApi(APIView):
    def get_permissions(self) -> list[BasePermission]:
        return [IsRiskManager()] if self.request.method == "POST" else [IsViewer()]

    def _agent(self, request: Request, agent_id: str) -> Agent:
        agent = agent_get_for_user(user=request.user, agent_id=agent_id)
        if agent is None:
            raise Http404
        return agent

    @extend_schema(responses=AgentKeyOutSerializer(many=True))
    def get(self, request: Request, agent_id: str) -> Response:
        agent = self._agent(request, agent_id)
        return Response(AgentKeyOutSerializer(agent_keys(agent=agent), many=True).data)

    @extend_schema(
        request=PublicKeyInSerializer,
        responses={201: inline_serializer("KeyAdded", {"key_id": serializers.CharField()})},
    )
    def post(self, request: Request, agent_id: str) -> Response:
        agent = self._agent(request, agent_id)
        data = PublicKeyInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = agent_key_add(
            agent=agent,
            public_key=data.validated_data["public_key"],
            acting_user=request_person(request),
        )
        return Response({"key_id": key.key_id}, status=status.HTTP_201_CREATED)


class AgentKeyRevokeApi(APIView):
    permission_classes = [IsRiskManager]

    @extend_schema(request=None, responses=AgentKeyOutSerializer)
    def post(self, request: Request, agent_id: str, key_id: str) -> Response:
        agent = agent_get_for_user(user=request.user, agent_id=agent_id)
        if agent is None:
            raise Http404
        key = agent_key_revoke(agent=agent, key_id=key_id, acting_user=request_person(request))
        return Response(AgentKeyOutSerializer(key).data)


class AgentStatusApi(APIView):
    """POST /api/v1/agents/{agent_id}/status/ {"status": "active"|"suspended", "reason"}."""

    permission_classes = [IsRiskManager]

    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Agent.Status.values)
        reason = serializers.CharField(max_length=2000)

    @extend_schema(request=InputSerializer, responses=AgentOutSerializer)
    def post(self, request: Request, agent_id: str) -> Response:
        agent = agent_get_for_user(user=request.user, agent_id=agent_id)
        if agent is None:
            raise Http404
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agent = agent_set_status(
            agent=agent,
            status=data.validated_data["status"],
            reason=data.validated_data["reason"],
            acting_user=request_person(request),
        )
        return Response(AgentOutSerializer(agent).data)
