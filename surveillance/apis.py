"""Gate, orders, config, kill switch and per-agent limits (CONTRACT sections 7 and 8)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import (
    IsActiveAgent,
    IsComplianceOfficer,
    IsRiskManager,
    IsViewer,
    is_agent,
)
from accounts.roles import has_role
from accounts.selectors import agent_get_for_user
from audit.apis.events import StrictJSONParser
from audit.services.ingest import BatchRejected

from .config import ComplianceConfigSerializer, DecimalText, plain
from .models import KillSwitch, Order
from .services.config import agent_limits_dict, agent_limits_set, config_current, config_update
from .services.gate import OrderConflict, OrderNotFound, order_get, order_submit
from .services.kill_switch import (
    KillSwitchError,
    kill_switch_activate,
    kill_switch_active,
    kill_switch_check_role,
    kill_switch_deactivate,
)


def _d(value: Any) -> str:
    return format(value.normalize(), "f")


class OrderOutSerializer(serializers.ModelSerializer):
    agent_id = serializers.CharField(source="agent.agent_id")
    quantity = serializers.SerializerMethodField()
    price = serializers.SerializerMethodField()
    filled_quantity = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "agent_id",
            "order_id",
            "market",
            "side",
            "order_type",
            "venue",
            "quantity",
            "price",
            "filled_quantity",
            "status",
            "decision",
            "reasons",
            "config_hash",
            "approval_id",
            "seq",
            "created_at_us",
            "updated_at_us",
        ]

    def get_quantity(self, obj: Order) -> str:
        return _d(obj.quantity)

    def get_price(self, obj: Order) -> str:
        return _d(obj.price)

    def get_filled_quantity(self, obj: Order) -> str:
        return _d(obj.filled_quantity)


class OrdersApi(APIView):
    """POST /api/v1/orders/: a bot asks before every order."""

    permission_classes = [IsActiveAgent]
    parser_classes = [StrictJSONParser]

    @extend_schema(request=None, responses=None)
    def post(self, request: Request) -> Response:
        item = request.data
        if not isinstance(item, dict):
            return Response(
                {"code": "invalid_body", "detail": "Body must be one signed item."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            result = order_submit(agent=request.user.agent, item=item)
        except BatchRejected as exc:
            error = exc.errors[0]
            return Response(
                {
                    "code": error.code,
                    "detail": error.detail,
                    "errors": [e.as_dict() for e in exc.errors],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        except OrderConflict as exc:
            return Response(
                {"code": exc.code, "detail": exc.detail}, status=status.HTTP_409_CONFLICT
            )
        except OrderNotFound as exc:
            return Response(
                {"code": "order_not_found", "detail": f"no order {exc.args[0]!r} for this agent"},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response(
            result.as_dict(),
            status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED,
        )


class OrderDetailApi(APIView):
    """GET /api/v1/orders/{order_id}/: a bot sees its own; humans add ?agent_id=."""

    def get_permissions(self):  # type: ignore[no-untyped-def]
        return [IsActiveAgent()] if is_agent(self.request) else [IsViewer()]

    @extend_schema(
        parameters=[OpenApiParameter("agent_id", str, required=False)], responses=OrderOutSerializer
    )
    def get(self, request: Request, order_id: str) -> Response:
        if is_agent(request):
            agent = request.user.agent
        else:
            agent_id = request.query_params.get("agent_id")
            if not agent_id:
                return Response(
                    {"code": "agent_id_required", "detail": "Add ?agent_id= to look up an order."},
                    status=status.HTTP_400_BAD_REQUEST,
                )
            agent = agent_get_for_user(user=request.user, agent_id=agent_id)
            if agent is None:
                raise Http404
        order = order_get(agent=agent, order_id=order_id)
        if order is None:
            raise Http404
        return Response(OrderOutSerializer(order).data)


class ConfigApi(APIView):
    def get_permissions(self):  # type: ignore[no-untyped-def]
        return [IsComplianceOfficer()] if self.request.method == "PUT" else [IsViewer()]

    def get(self, request: Request) -> Response:
        row = config_current()
        return Response({"version": row.version, "hash": row.hash, "config": row.config})

    @extend_schema(request=ComplianceConfigSerializer)
    def put(self, request: Request) -> Response:
        data = ComplianceConfigSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = config_update(config=plain(data.validated_data), acting_user=request.user)
        return Response({"version": row.version, "hash": row.hash, "config": row.config})


class KillSwitchOutSerializer(serializers.ModelSerializer):
    activated_by = serializers.CharField(source="activated_by.username")
    target = serializers.SerializerMethodField()

    class Meta:
        model = KillSwitch
        fields = [
            "scope",
            "target",
            "reason",
            "activated_by",
            "activated_at",
            "activated_seq",
            "snapshot",
        ]

    def get_target(self, obj: KillSwitch) -> str | None:
        return obj.target or None


class KillSwitchApi(APIView):
    """Role >= kill_switch_requires_role for POST (checked in the service, since
    the role comes from the config); viewers+ read."""

    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=["activate", "deactivate"])
        scope = serializers.ChoiceField(choices=KillSwitch.Scope.values)
        target = serializers.CharField(
            max_length=64, required=False, allow_null=True, allow_blank=True
        )
        reason = serializers.CharField(max_length=2000)

    def get_permissions(self):  # type: ignore[no-untyped-def]
        return [IsViewer()]

    def _active(self) -> list[dict[str, Any]]:
        return list(KillSwitchOutSerializer(kill_switch_active(), many=True).data)

    def get(self, request: Request) -> Response:
        return Response({"active": self._active()})

    @extend_schema(request=InputSerializer)
    def post(self, request: Request) -> Response:
        try:  # the role first: a caller who may not use the switch learns nothing more
            kill_switch_check_role(request.user)
        except KillSwitchError as exc:
            return Response({"code": exc.code, "detail": exc.detail}, status=exc.status)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        action = kill_switch_activate if v["action"] == "activate" else kill_switch_deactivate
        try:
            action(
                scope=v["scope"],
                target=v.get("target"),
                reason=v["reason"],
                acting_user=request.user,
            )
        except KillSwitchError as exc:
            return Response({"code": exc.code, "detail": exc.detail}, status=exc.status)
        return Response({"active": self._active()})


class AgentRiskLimitsApi(APIView):
    class InputSerializer(serializers.Serializer):
        max_position = DecimalText(allow_null=True)
        max_order_notional = DecimalText(allow_null=True)
        max_daily_notional = DecimalText(allow_null=True)
        max_orders_per_minute = serializers.IntegerField(allow_null=True, min_value=1)

    def get_permissions(self):  # type: ignore[no-untyped-def]
        return [IsRiskManager()] if self.request.method == "PUT" else [IsViewer()]

    def get(self, request: Request, agent_id: str) -> Response:
        agent = agent_get_for_user(user=request.user, agent_id=agent_id)
        if agent is None:
            raise Http404
        return Response(agent_limits_dict(getattr(agent, "risk_limit", None)))

    @extend_schema(request=InputSerializer)
    def put(self, request: Request, agent_id: str) -> Response:
        agent = agent_get_for_user(user=request.user, agent_id=agent_id)
        if agent is None or not has_role(request.user, "risk_manager"):
            raise Http404
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = agent_limits_set(
            agent=agent, limits=dict(data.validated_data), acting_user=request.user
        )
        return Response(agent_limits_dict(row))
