"""Gate, orders, config, kill switch and per-agent limits (CONTRACT sections 7 and 8)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Agent
from accounts.permissions import (
    IsActiveAgent,
    IsComplianceOfficer,
    IsRiskManager,
    IsTrader,
    IsViewer,
    is_agent,
    request_agent,
    request_person,
)
from accounts.roles import has_role
from accounts.selectors import agent_get_for_user
from audit.apis.events import StrictJSONParser
from compliance_site.decimals import decimal_text
from compliance_site.exceptions import Invalid
from compliance_site.metrics import GATE_REFUSED, count, gate_decided
from compliance_site.openapi import ErrorSerializer, SignedItemSerializer

from .config import ComplianceConfigSerializer, DecimalText
from .models import KillSwitch, Order
from .selectors import kill_switch_active, order_get, positions_for_user
from .services.config import agent_limits_dict, agent_limits_set, config_current, config_update
from .services.gate import OrderConflict, OrderNotFound, OrderRejected, order_submit
from .services.kill_switch import (
    kill_switch_activate,
    kill_switch_check_role,
    kill_switch_deactivate,
)
from .services.orders import order_cancel_request, order_submit_manual


class OrderOutSerializer(serializers.ModelSerializer):
    agent_id = serializers.CharField(source="agent.agent_id")
    quantity = serializers.SerializerMethodField()
    price = serializers.SerializerMethodField()
    filled_quantity = serializers.SerializerMethodField()
    cancel_requested = serializers.SerializerMethodField()
    submitted_by = serializers.CharField(source="submitted_by.username", default=None)

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
            "cancel_requested",
            "cancel_requested_seq",
            "submitted_by",
        ]

    def get_cancel_requested(self, obj: Order) -> bool:
        return obj.cancel_requested_at_us is not None

    def get_quantity(self, obj: Order) -> str:
        return decimal_text(obj.quantity)

    def get_price(self, obj: Order) -> str:
        return decimal_text(obj.price)

    def get_filled_quantity(self, obj: Order) -> str:
        return decimal_text(obj.filled_quantity)


def _agent_for(request: Request, agent_id: Any) -> Agent:
    """The agent a person names, if they may see it (a trader: only their own);
    400 when the body names none."""
    if not isinstance(agent_id, str) or not agent_id:
        raise Invalid("agent_id_required", "Name the agent (agent_id) the order is for.")
    agent = agent_get_for_user(user=request.user, agent_id=agent_id)
    if agent is None:
        raise Http404
    return agent


_REASON = inline_serializer(
    "DecisionReason",
    many=True,
    fields={
        "code": serializers.CharField(),
        "limit": serializers.CharField(allow_null=True),
        "value": serializers.CharField(allow_null=True),
        "detail": serializers.CharField(),
    },
)
DECISION = inline_serializer(
    "GateDecision",
    {
        "decision": serializers.ChoiceField(choices=["accepted", "rejected", "held"]),
        "order_id": serializers.CharField(),
        "status": serializers.ChoiceField(choices=Order.Status.values),
        "reasons": _REASON,
        "seq": serializers.IntegerField(),
        "config_hash": serializers.CharField(),
        "approval": inline_serializer(
            "HeldApproval",
            {"id": serializers.IntegerField(), "expires_at": serializers.DateTimeField()},
            allow_null=True,
        ),
        "cancel_all": serializers.BooleanField(),
        "cancel_orders": serializers.ListField(child=serializers.CharField()),
    },
)
ITEM_ERRORS = inline_serializer(
    "ItemErrors",
    {
        "code": serializers.CharField(),
        "detail": serializers.CharField(),
        "errors": inline_serializer(
            "ItemError",
            {
                "index": serializers.IntegerField(),
                "code": serializers.CharField(),
                "detail": serializers.CharField(),
            },
            many=True,
            required=False,  # a manual order's refusal names no item
        ),
    },
)
CONFIG = inline_serializer(
    "ConfigVersion",
    {
        "version": serializers.IntegerField(),
        "hash": serializers.CharField(),
        "config": serializers.DictField(),
    },
)


class OrdersApi(APIView):
    """POST /api/v1/orders/: a bot asks before every order (one signed item);
    a trader (person) submits a manual order for an agent they own, through
    the same gate (body: the order's fields plus `agent_id`, unsigned)."""

    parser_classes = [StrictJSONParser]

    def get_permissions(self) -> list[BasePermission]:
        return [IsActiveAgent()] if is_agent(self.request) else [IsTrader()]

    @extend_schema(
        request=SignedItemSerializer,
        responses={
            201: DECISION,
            200: OpenApiResponse(
                DECISION, description="The same envelope sent again: the original decision."
            ),
            400: ITEM_ERRORS,
            404: OpenApiResponse(ErrorSerializer, description="An amendment of an unknown order."),
            409: OpenApiResponse(
                ErrorSerializer,
                description="The same event_id with different content, or an order id used before.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        item = request.data
        if not isinstance(item, dict):
            raise Invalid("invalid_body", "Body must be one JSON object.")
        try:
            if is_agent(request):
                result = order_submit(agent=request_agent(request), item=item)
            else:
                order = dict(item)
                agent = _agent_for(request, order.pop("agent_id", None))
                result = order_submit_manual(
                    agent=agent, order=order, acting_user=request_person(request)
                )
        except (OrderRejected, OrderConflict, OrderNotFound) as exc:
            count(GATE_REFUSED, exc.code)
            raise
        if not result.replayed:
            gate_decided(result.decision, result.reasons)
        return Response(
            result.as_dict(),
            status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED,
        )


class OrderCancelApi(APIView):
    """POST /api/v1/orders/{order_id}/cancel/ {"agent_id","reason"}: a trader
    asks the bot to cancel an open order of an agent they own (risk managers
    and above: any agent). Recorded as CANCEL_REQUESTED; the bot learns it
    from its next gate answer (`cancel_orders`)."""

    permission_classes = [IsTrader]

    class InputSerializer(serializers.Serializer):
        agent_id = serializers.CharField(max_length=64)
        reason = serializers.CharField(max_length=2000)

    @extend_schema(request=InputSerializer, responses=OrderOutSerializer)
    def post(self, request: Request, order_id: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agent = _agent_for(request, data.validated_data["agent_id"])
        order = order_cancel_request(
            agent=agent,
            order_id=order_id,
            reason=data.validated_data["reason"],
            acting_user=request_person(request),
        )
        return Response(OrderOutSerializer(order).data)


class PositionsApi(APIView):
    """GET /api/v1/positions/?agent_id=&market=: each agent's position and
    resting orders per market, for the agents the caller may see (a trader:
    their own), and the firm-wide figures per market for callers who see
    every agent (viewers and risk managers and above; null for a trader)."""

    permission_classes = [IsViewer]

    @extend_schema(
        parameters=[
            OpenApiParameter("agent_id", str, required=False),
            OpenApiParameter("market", str, required=False),
        ],
        responses=None,
    )
    def get(self, request: Request) -> Response:
        agent_id = request.query_params.get("agent_id")
        agent = _agent_for(request, agent_id) if agent_id else None
        view = positions_for_user(
            user=request.user, agent=agent, market=request.query_params.get("market")
        )
        return Response(
            {
                "results": [
                    {
                        "agent_id": row.agent.agent_id,
                        "market": row.market,
                        "position": decimal_text(row.position),
                        "open_buy": decimal_text(row.open_buy),
                        "open_sell": decimal_text(row.open_sell),
                    }
                    for row in view.agents
                ],
                "firm": None
                if view.firm is None
                else [
                    {
                        "market": row.market,
                        "position": decimal_text(row.position),
                        "open_buy": decimal_text(row.open_buy),
                        "open_sell": decimal_text(row.open_sell),
                        "mark_price": None
                        if row.mark_price is None
                        else decimal_text(row.mark_price),
                    }
                    for row in view.firm
                ],
            }
        )


class OrderDetailApi(APIView):
    """GET /api/v1/orders/{order_id}/: a bot sees its own; humans add ?agent_id=."""

    def get_permissions(self) -> list[BasePermission]:
        return [IsActiveAgent()] if is_agent(self.request) else [IsViewer()]

    @extend_schema(
        parameters=[OpenApiParameter("agent_id", str, required=False)], responses=OrderOutSerializer
    )
    def get(self, request: Request, order_id: str) -> Response:
        agent: Agent | None
        if is_agent(request):
            agent = request_agent(request)
        else:
            agent_id = request.query_params.get("agent_id")
            if not agent_id:
                raise Invalid("agent_id_required", "Add ?agent_id= to look up an order.")
            agent = agent_get_for_user(user=request.user, agent_id=agent_id)
            if agent is None:
                raise Http404
        order = order_get(agent=agent, order_id=order_id)
        if order is None:
            raise Http404
        return Response(OrderOutSerializer(order).data)


class ConfigApi(APIView):
    def get_permissions(self) -> list[BasePermission]:
        return [IsComplianceOfficer()] if self.request.method == "PUT" else [IsViewer()]

    @extend_schema(responses=CONFIG)
    def get(self, request: Request) -> Response:
        row = config_current()
        return Response({"version": row.version, "hash": row.hash, "config": row.config})

    @extend_schema(request=ComplianceConfigSerializer, responses=CONFIG)
    def put(self, request: Request) -> Response:
        # Validated by the service (the same rules for every caller); a refusal
        # is an Invalid, answered 400 with its code by the exception handler.
        row = config_update(config=request.data, acting_user=request_person(request))
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


ACTIVE_SWITCHES = inline_serializer(
    "ActiveKillSwitches", {"active": KillSwitchOutSerializer(many=True)}
)
LIMITS = inline_serializer(
    "AgentRiskLimits",
    {
        "max_position": serializers.CharField(allow_null=True),
        "max_order_notional": serializers.CharField(allow_null=True),
        "max_daily_notional": serializers.CharField(allow_null=True),
        "max_orders_per_minute": serializers.IntegerField(allow_null=True),
    },
)


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

    def get_permissions(self) -> list[BasePermission]:
        return [IsViewer()]

    def _active(self) -> list[dict[str, Any]]:
        return list(KillSwitchOutSerializer(kill_switch_active(), many=True).data)

    @extend_schema(responses=ACTIVE_SWITCHES)
    def get(self, request: Request) -> Response:
        return Response({"active": self._active()})

    @extend_schema(
        request=InputSerializer,
        responses={
            200: ACTIVE_SWITCHES,
            409: OpenApiResponse(ErrorSerializer, description="Already active, or not active."),
        },
    )
    def post(self, request: Request) -> Response:
        # the role first: a caller who may not use the switch learns nothing more
        kill_switch_check_role(request_person(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        action = kill_switch_activate if v["action"] == "activate" else kill_switch_deactivate
        action(
            scope=v["scope"],
            target=v.get("target"),
            reason=v["reason"],
            acting_user=request_person(request),
        )
        return Response({"active": self._active()})


class AgentRiskLimitsApi(APIView):
    class InputSerializer(serializers.Serializer):
        max_position = DecimalText(allow_null=True)
        max_order_notional = DecimalText(allow_null=True)
        max_daily_notional = DecimalText(allow_null=True)
        max_orders_per_minute = serializers.IntegerField(allow_null=True, min_value=1)

    def get_permissions(self) -> list[BasePermission]:
        return [IsRiskManager()] if self.request.method == "PUT" else [IsViewer()]

    @extend_schema(responses=LIMITS)
    def get(self, request: Request, agent_id: str) -> Response:
        agent = agent_get_for_user(user=request.user, agent_id=agent_id)
        if agent is None:
            raise Http404
        return Response(agent_limits_dict(getattr(agent, "risk_limit", None)))

    @extend_schema(request=InputSerializer, responses=LIMITS)
    def put(self, request: Request, agent_id: str) -> Response:
        agent = agent_get_for_user(user=request.user, agent_id=agent_id)
        if agent is None or not has_role(request.user, "risk_manager"):
            raise Http404
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = agent_limits_set(
            agent=agent, limits=dict(data.validated_data), acting_user=request_person(request)
        )
        return Response(agent_limits_dict(row))
