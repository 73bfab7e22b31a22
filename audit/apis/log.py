"""The transparency endpoints: log key, checkpoints, proofs, verification (CONTRACT section 9)."""

from __future__ import annotations

import base64
from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsActiveAgent, IsComplianceOfficer, IsViewer, is_agent
from compliance_client import merkle

from .. import log_key
from ..models import Checkpoint, LogExport
from ..selectors import record_is_agents
from ..services.checkpoints import CheckpointError, checkpoint_create
from ..services.export import ExportError, export_as_dict, export_request
from ..services.log import DEFAULT_LOG, Actor
from ..services.tree import ProofRequestError, consistency_proof, inclusion_proof
from ..services.verify import verify_and_record


def checkpoint_dict(cp: Checkpoint, origin: str) -> dict[str, Any]:
    return {
        "origin": origin,
        "tree_size": cp.tree_size,
        "root_hash": bytes(cp.root_hash).hex(),
        "timestamp_us": cp.timestamp_us,
        "note": cp.note,
    }


def _origin() -> str:
    from django.conf import settings

    return str(settings.COMPLIANCE_LOG_ORIGIN)


def _bad_request(detail: str, code: str = "invalid_proof_request") -> Response:
    return Response({"code": code, "detail": detail}, status=status.HTTP_400_BAD_REQUEST)


class PublicKeyApi(APIView):
    # Bots too: the SDK verifies checkpoints to prove its own events are logged.
    permission_classes = [IsViewer | IsActiveAgent]

    def get(self, request: Request) -> Response:
        return Response(
            {
                "key_name": log_key.key_name(),
                "algorithm": "ed25519",
                "public_key": base64.b64encode(log_key.public_key_raw()).decode(),
            }
        )


class CheckpointListApi(APIView):
    def get_permissions(self):  # type: ignore[no-untyped-def]
        return [IsComplianceOfficer()] if self.request.method == "POST" else [IsViewer()]

    @extend_schema(parameters=[OpenApiParameter("limit", int, required=False)])
    def get(self, request: Request) -> Response:
        try:
            limit = min(max(int(request.query_params.get("limit", 100)), 1), 1000)
        except ValueError:
            return _bad_request("limit must be an integer", "invalid")
        rows = Checkpoint.objects.filter(log__name=DEFAULT_LOG).order_by("-timestamp_us")[:limit]
        origin = _origin()
        return Response([checkpoint_dict(cp, origin) for cp in rows])

    @extend_schema(request=None)
    def post(self, request: Request) -> Response:
        try:
            cp = checkpoint_create(force=True)
        except CheckpointError as exc:
            return Response(
                {"code": "checkpoint_refused", "detail": str(exc)}, status=status.HTTP_409_CONFLICT
            )
        assert cp is not None
        return Response(checkpoint_dict(cp, _origin()), status=status.HTTP_201_CREATED)


class CheckpointLatestApi(APIView):
    permission_classes = [IsViewer | IsActiveAgent]

    def get(self, request: Request) -> Response:
        cp = Checkpoint.objects.filter(log__name=DEFAULT_LOG).order_by("-timestamp_us").first()
        if cp is None:
            raise Http404
        return Response(checkpoint_dict(cp, _origin()))


def _int_params(
    request: Request, params: type[serializers.Serializer], minimums: dict[str, int]
) -> list[int]:
    """The named query parameters as ints. Plain digits at or above their
    minimum are taken as they are (on the proof endpoints' hot path the
    serializer cost 0.18 ms, this 0.01 ms); anything else goes through the
    `params` serializer, which gives the error or the value, as before."""
    query = request.query_params
    values = []
    for name, minimum in minimums.items():
        raw = query.get(name, "")
        if not (raw.isascii() and raw.isdigit() and len(raw) < 20 and int(raw) >= minimum):
            checked = params(data=query)
            checked.is_valid(raise_exception=True)
            return [checked.validated_data[n] for n in minimums]
        values.append(int(raw))
    return values


class InclusionProofApi(APIView):
    """Humans from viewer up: any seq. A bot: the seqs of its own records
    (404 otherwise), so it can prove its events are in the log."""

    permission_classes = [IsViewer | IsActiveAgent]

    class Params(serializers.Serializer):
        seq = serializers.IntegerField(min_value=0)
        tree_size = serializers.IntegerField(min_value=1)

    @extend_schema(parameters=[OpenApiParameter("seq", int), OpenApiParameter("tree_size", int)])
    def get(self, request: Request) -> Response:
        seq, size = _int_params(request, self.Params, {"seq": 0, "tree_size": 1})
        if is_agent(request) and not record_is_agents(
            seq=seq, agent_id=request.user.agent.agent_id
        ):
            raise Http404
        try:
            leaf, path = inclusion_proof(seq=seq, tree_size=size)
        except (ProofRequestError, ValueError) as exc:
            return _bad_request(str(exc))
        return Response(
            {
                "seq": seq,
                "tree_size": size,
                "leaf_hash": leaf.hex(),
                "hashes": [h.hex() for h in path],
            }
        )


class ConsistencyProofApi(APIView):
    permission_classes = [IsViewer]

    class Params(serializers.Serializer):
        first = serializers.IntegerField(min_value=0)
        second = serializers.IntegerField(min_value=0)

    @extend_schema(parameters=[OpenApiParameter("first", int), OpenApiParameter("second", int)])
    def get(self, request: Request) -> Response:
        first, second = _int_params(request, self.Params, {"first": 0, "second": 0})
        try:
            path = consistency_proof(first=first, second=second)
        except (ProofRequestError, ValueError) as exc:
            return _bad_request(str(exc))
        except merkle.MissingNodeError as exc:  # pragma: no cover - store inconsistent
            return Response({"code": "store_inconsistent", "detail": str(exc)}, status=500)
        return Response({"first": first, "second": second, "hashes": [h.hex() for h in path]})


class LogVerifyApi(APIView):
    permission_classes = [IsComplianceOfficer]

    @extend_schema(request=None)
    def post(self, request: Request) -> Response:
        result = verify_and_record(actor=Actor.for_user(request.user))
        return Response(result.as_dict())


class ExportListCreateApi(APIView):
    """POST (compliance officers+) queues an evidence bundle; GET lists them (viewers+)."""

    class InputSerializer(serializers.Serializer):
        from_seq = serializers.IntegerField(required=False, allow_null=True, min_value=0)
        to_seq = serializers.IntegerField(required=False, allow_null=True, min_value=0)

    def get_permissions(self):  # type: ignore[no-untyped-def]
        return [IsComplianceOfficer()] if self.request.method == "POST" else [IsViewer()]

    def get(self, request: Request) -> Response:
        rows = LogExport.objects.order_by("-created_at")[:100]
        return Response([export_as_dict(e, _download_url(request, e)) for e in rows])

    @extend_schema(request=InputSerializer)
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            export = export_request(
                acting_user=request.user,
                from_seq=data.validated_data.get("from_seq"),
                to_seq=data.validated_data.get("to_seq"),
            )
        except ExportError as exc:
            return _bad_request(str(exc), "invalid_export_range")
        return Response(
            {"id": str(export.pk), "status": export.status}, status=status.HTTP_202_ACCEPTED
        )


def _download_url(request: Request, export: LogExport) -> str:
    return request.build_absolute_uri(reverse("audit:export-download", args=[export.pk]))


class ExportDetailApi(APIView):
    permission_classes = [IsViewer]

    def get(self, request: Request, export_id: str) -> Response:
        export = LogExport.objects.filter(pk=export_id).first()
        if export is None:
            raise Http404
        return Response(export_as_dict(export, _download_url(request, export)))


class ExportDownloadApi(APIView):
    permission_classes = [IsViewer]

    def get(self, request: Request, export_id: str) -> FileResponse:
        export = LogExport.objects.filter(pk=export_id, status=LogExport.Status.DONE).first()
        if export is None:
            raise Http404
        return FileResponse(
            default_storage.open(export.file_name, "rb"),
            as_attachment=True,
            filename=f"evidence-{export.pk}.zip",
            content_type="application/zip",
        )
