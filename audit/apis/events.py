"""POST /api/v1/events/ (bots) and GET /api/v1/events/ (humans), CONTRACT sections 6 and 9."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.http import Http404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsActiveAgent, IsViewer, request_agent
from compliance_site.exceptions import Invalid, ServiceError, TooLarge
from compliance_site.metrics import EVENTS_INGESTED, EVENTS_REFUSED, count, count_each
from compliance_site.openapi import ErrorSerializer, RecordSerializer, SignedItemSerializer
from compliance_site.parsers import SafeJSONParser

from ..models import MAX_SEQ
from ..selectors import RecordFilter, record_get_for_user, record_list_for_user
from ..services.ingest import (
    MAX_BATCH,
    BatchRejected,
    ingest_events,
    parse_float,
)


class StrictJSONParser(SafeJSONParser):
    """The API's parser (NUL, depth and size refused) whose floats become
    FloatToken, so that each item can be refused with float_not_allowed."""

    # a plain function, not a method (SafeJSONParser reads it from the class)
    parse_float = staticmethod(parse_float)


def parse_time_us(value: str, name: str) -> int:
    """Integer microseconds, or an ISO 8601 timestamp (naive means UTC)."""
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise exceptions.ValidationError(
            {name: "expected microseconds or an ISO 8601 timestamp"}
        ) from exc
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


class EventFilterSerializer(serializers.Serializer):
    event_type = serializers.CharField(required=False, max_length=64)
    agent_id = serializers.CharField(required=False, max_length=64)
    from_seq = serializers.IntegerField(required=False, min_value=0, max_value=MAX_SEQ)
    to_seq = serializers.IntegerField(required=False, min_value=0, max_value=MAX_SEQ)
    start = serializers.CharField(required=False)
    end = serializers.CharField(required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)


EVENT_PAGE = inline_serializer(
    "RecordPage",
    {"results": RecordSerializer(many=True), "next": serializers.URLField(allow_null=True)},
)
EVENT_BATCH = inline_serializer(
    "EventBatch", {"events": SignedItemSerializer(many=True, help_text="1 to 500 items")}
)
EVENT_RESULTS = inline_serializer(
    "EventResults",
    {
        "results": inline_serializer(
            "EventResult",
            {
                "event_id": serializers.CharField(),
                "seq": serializers.IntegerField(),
                "leaf_hash": serializers.CharField(),
                "status": serializers.ChoiceField(choices=["created", "duplicate"]),
            },
            many=True,
        )
    },
)
BATCH_ERRORS = inline_serializer(
    "BatchErrors",
    {
        "code": serializers.CharField(),
        "detail": serializers.CharField(),
        "errors": inline_serializer(
            "BatchItemError",
            {
                "index": serializers.IntegerField(),
                "code": serializers.CharField(),
                "detail": serializers.CharField(),
            },
            many=True,
            required=False,
        ),
    },
)


def _bot_types() -> str:
    from ..event_types import CORE_TYPES, Channel

    return ", ".join(
        f"`{name}` {sorted(spec.versions[spec.latest]['properties'])}"
        for name, spec in CORE_TYPES.items()
        if spec.channel == Channel.BOT
    )


_EVENTS_POST_DESCRIPTION = (
    'Report signed lifecycle events: `{"events": [item, ...]}`, 1 to 500 items, all or '
    "nothing (CONTRACT 6). Bot event types and their payload fields: "
    + _bot_types()
    + ". `VENUE_REJECTED` (CONTRACT 12): the venue refused an order the gate accepted; "
    "the order becomes `rejected` and its reserved exposure is released. Events that "
    "contradict the gate (a fill or cancel for an order it never accepted, an overfill, a "
    "fill under a kill switch or in a restricted market) are stored (201 `created`) and "
    "raise a critical `gate_bypass` alert. Error codes: `invalid_signature`, `unknown_key`, "
    "`revoked_key`, `agent_mismatch`, `unknown_event_type`, `schema_violation`, "
    "`float_not_allowed`, `server_only_event_type`."
)


class EventsApi(APIView):
    parser_classes = [StrictJSONParser]

    def get_permissions(self) -> list[BasePermission]:
        return [IsActiveAgent()] if self.request.method == "POST" else [IsViewer()]

    @extend_schema(
        parameters=[
            OpenApiParameter(name, str, required=False)
            for name in ("event_type", "agent_id", "from_seq", "to_seq", "start", "end", "limit")
        ],
        responses=EVENT_PAGE,
        operation_id="v1_events_list",
    )
    def get(self, request: Request) -> Response:
        params = EventFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        v = params.validated_data
        filters = RecordFilter(
            event_type=v.get("event_type"),
            agent_id=v.get("agent_id"),
            from_seq=v.get("from_seq"),
            to_seq=v.get("to_seq"),
            start_us=parse_time_us(v["start"], "start") if v.get("start") else None,
            end_us=parse_time_us(v["end"], "end") if v.get("end") else None,
        )
        limit = v["limit"]
        rows = list(record_list_for_user(user=request.user, filters=filters)[: limit + 1])
        next_url = None
        if len(rows) > limit:
            rows = rows[:limit]
            query = {k: val for k, val in request.query_params.items() if k != "from_seq"}
            query["from_seq"] = str(rows[-1].seq + 1)
            next_url = request.build_absolute_uri(request.path + "?" + urlencode(query))
        return Response({"results": [r.as_dict() for r in rows], "next": next_url})

    @extend_schema(
        request=EVENT_BATCH,
        description=_EVENTS_POST_DESCRIPTION,
        responses={
            201: EVENT_RESULTS,
            400: OpenApiResponse(BATCH_ERRORS, description="Nothing stored: the bad items."),
            409: OpenApiResponse(
                ErrorSerializer, description="An event_id reused with other content."
            ),
            413: OpenApiResponse(ErrorSerializer, description="Over 500 items, or too large."),
        },
    )
    def post(self, request: Request) -> Response:
        body = request.data
        try:
            results = ingest_events(request_agent(request), _batch(body))
        except BatchRejected as exc:
            count_each(EVENTS_REFUSED, (error.code for error in exc.errors))
            raise
        except ServiceError as exc:
            count(EVENTS_REFUSED, exc.code)
            raise
        count_each(EVENTS_INGESTED, (result.status for result in results))
        return Response({"results": [r.as_dict() for r in results]}, status=status.HTTP_201_CREATED)


def _batch(body: Any) -> list[Any]:
    """The items of a batch body, or the refusal of its shape."""
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise Invalid("invalid_body", 'Body must be {"events": [item, ...]}.')
    items: list[Any] = body["events"]
    if len(items) > MAX_BATCH:
        raise TooLarge("batch_too_large", f"At most {MAX_BATCH} events per request.")
    if not items:
        raise Invalid("empty_batch", "Send at least one event.")
    return items


class EventDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=RecordSerializer)
    def get(self, request: Request, seq: int) -> Response:
        record = record_get_for_user(user=request.user, seq=seq)
        if record is None:
            raise Http404
        return Response(record.as_dict())
