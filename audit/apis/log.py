"""The transparency endpoints: log key, checkpoints, proofs, verification (CONTRACT section 9)."""

from __future__ import annotations

import base64
from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
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

from accounts.permissions import (
    IsActiveAgent,
    IsComplianceOfficer,
    IsViewer,
    SeesWholeFirm,
    is_agent,
    request_agent,
    request_person,
)
from compliance_client import merkle
from compliance_site.exceptions import Inconsistent, Invalid
from compliance_site.openapi import CheckpointSerializer, ErrorSerializer

from .. import log_key
from ..models import MAX_SEQ, Checkpoint, LogExport, LogVerification
from ..selectors import export_list_for_user, record_is_agents
from ..services.checkpoints import checkpoint_create
from ..services.export import export_as_dict, export_request
from ..services.log import DEFAULT_LOG
from ..services.tree import ProofRequestError, consistency_proof, inclusion_proof
from ..services.verify import verification_as_dict, verification_request
from ..services.witnesses import latest_checkpoint, note_with_cosignatures


def checkpoint_dict(cp: Checkpoint, origin: str) -> dict[str, Any]:
    return {
        "origin": origin,
        "tree_size": cp.tree_size,
        "root_hash": bytes(cp.root_hash).hex(),
        "timestamp_us": cp.timestamp_us,
        "note": cp.note,
    }


class IsPublicOrViewer(BasePermission):
    """Public by nature (a witness needs it): anyone, unless the operator set
    COMPLIANCE_PUBLIC_TRANSPARENCY off; then viewers and up."""

    message = IsViewer.message

    def has_permission(self, request: Any, view: Any) -> bool:
        from django.conf import settings

        if settings.COMPLIANCE_PUBLIC_TRANSPARENCY:
            return True
        return IsViewer().has_permission(request, view)


def _origin() -> str:
    from django.conf import settings

    return str(settings.COMPLIANCE_LOG_ORIGIN)


PUBLIC_KEY = inline_serializer(
    "LogPublicKey",
    {
        "key_name": serializers.CharField(),
        "algorithm": serializers.ChoiceField(choices=["ed25519"]),
        "public_key": serializers.CharField(help_text="base64 of the raw 32 bytes"),
    },
)
INCLUSION = inline_serializer(
    "InclusionProof",
    {
        "seq": serializers.IntegerField(),
        "tree_size": serializers.IntegerField(),
        "leaf_hash": serializers.CharField(),
        "hashes": serializers.ListField(child=serializers.CharField()),
    },
)
CONSISTENCY = inline_serializer(
    "ConsistencyProof",
    {
        "first": serializers.IntegerField(),
        "second": serializers.IntegerField(),
        "hashes": serializers.ListField(child=serializers.CharField()),
    },
)
VERIFICATION = inline_serializer(
    "Verification",
    {
        "id": serializers.UUIDField(),
        "status": serializers.ChoiceField(choices=LogVerification.Status.choices),
        "ok": serializers.BooleanField(allow_null=True),
        "checked": serializers.IntegerField(allow_null=True),
        "first_bad_seq": serializers.IntegerField(allow_null=True),
        "detail": serializers.CharField(allow_null=True),
        "seq": serializers.IntegerField(allow_null=True, help_text="its AUDIT_VERIFIED record"),
        "created_at": serializers.DateTimeField(),
        "finished_at": serializers.DateTimeField(allow_null=True),
    },
)
VERIFICATION_QUEUED = inline_serializer(
    "VerificationQueued",
    {
        "id": serializers.UUIDField(),
        "status": serializers.ChoiceField(choices=LogVerification.Status.choices),
    },
)
EXPORT = inline_serializer(
    "EvidenceExport",
    {
        "id": serializers.UUIDField(),
        "status": serializers.ChoiceField(choices=LogExport.Status.choices),
        "sha256": serializers.CharField(allow_null=True),
        "download_url": serializers.URLField(allow_null=True),
        "from_seq": serializers.IntegerField(allow_null=True),
        "to_seq": serializers.IntegerField(allow_null=True),
        "records": serializers.IntegerField(allow_null=True),
        "size_bytes": serializers.IntegerField(allow_null=True),
        "error": serializers.CharField(allow_null=True),
        "created_at": serializers.DateTimeField(),
        "finished_at": serializers.DateTimeField(allow_null=True),
    },
)


class PublicKeyApi(APIView):
    # Bots too, even when the log is not public: the SDK verifies checkpoints
    # to prove its own events are logged.
    permission_classes = [IsPublicOrViewer | IsActiveAgent]

    @extend_schema(responses=PUBLIC_KEY)
    def get(self, request: Request) -> Response:
        return Response(
            {
                "key_name": log_key.key_name(),
                "algorithm": "ed25519",
                "public_key": base64.b64encode(log_key.public_key_raw()).decode(),
            }
        )


class CheckpointListApi(APIView):
    def get_permissions(self) -> list[BasePermission]:
        return [IsComplianceOfficer()] if self.request.method == "POST" else [IsViewer()]

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, required=False)],
        responses=CheckpointSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        try:
            limit = min(max(int(request.query_params.get("limit", 100)), 1), 1000)
        except ValueError:
            raise Invalid("invalid", "limit must be an integer") from None
        rows = (
            Checkpoint.objects.filter(log__name=DEFAULT_LOG)
            .order_by("-timestamp_us")
            .prefetch_related("cosignatures")[:limit]
        )
        origin = _origin()
        return Response(
            [{**checkpoint_dict(cp, origin), "note": note_with_cosignatures(cp)} for cp in rows]
        )

    @extend_schema(
        request=None,
        responses={
            201: CheckpointSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The log's key is unavailable."),
        },
    )
    def post(self, request: Request) -> Response:
        cp = checkpoint_create(force=True)
        assert cp is not None
        return Response(checkpoint_dict(cp, _origin()), status=status.HTTP_201_CREATED)


class CheckpointLatestApi(APIView):
    """The latest published checkpoint, its note carrying every cosignature.
    `include_unpublished=1` (what witnesses ask for) gives the newest one even
    before it has the k cosignatures that make it count."""

    permission_classes = [IsPublicOrViewer | IsActiveAgent]

    @extend_schema(
        parameters=[OpenApiParameter("include_unpublished", bool, required=False)],
        responses=CheckpointSerializer,
    )
    def get(self, request: Request) -> Response:
        flag = request.query_params.get("include_unpublished", "")
        cp = latest_checkpoint(include_unpublished=flag.lower() in ("1", "true", "yes"))
        if cp is None:
            raise Http404
        return Response({**checkpoint_dict(cp, _origin()), "note": note_with_cosignatures(cp)})


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
        seq = serializers.IntegerField(min_value=0, max_value=MAX_SEQ)
        tree_size = serializers.IntegerField(min_value=1, max_value=MAX_SEQ)

    @extend_schema(
        parameters=[OpenApiParameter("seq", int), OpenApiParameter("tree_size", int)],
        responses=INCLUSION,
    )
    def get(self, request: Request) -> Response:
        seq, size = _int_params(request, self.Params, {"seq": 0, "tree_size": 1})
        if is_agent(request) and not record_is_agents(
            seq=seq, agent_id=request_agent(request).agent_id
        ):
            raise Http404
        try:
            leaf, path = inclusion_proof(seq=seq, tree_size=size)
        except ValueError as exc:  # merkle's own bounds, as the service's own refusal
            raise ProofRequestError(str(exc)) from exc
        return Response(
            {
                "seq": seq,
                "tree_size": size,
                "leaf_hash": leaf.hex(),
                "hashes": [h.hex() for h in path],
            }
        )


class ConsistencyProofApi(APIView):
    permission_classes = [IsPublicOrViewer]

    class Params(serializers.Serializer):
        first = serializers.IntegerField(min_value=0, max_value=MAX_SEQ)
        second = serializers.IntegerField(min_value=0, max_value=MAX_SEQ)

    @extend_schema(
        parameters=[OpenApiParameter("first", int), OpenApiParameter("second", int)],
        responses=CONSISTENCY,
    )
    def get(self, request: Request) -> Response:
        first, second = _int_params(request, self.Params, {"first": 0, "second": 0})
        try:
            path = consistency_proof(first=first, second=second)
        except ValueError as exc:  # merkle's own bounds, as the service's own refusal
            raise ProofRequestError(str(exc)) from exc
        except merkle.MissingNodeError as exc:  # pragma: no cover - store inconsistent
            raise Inconsistent("store_inconsistent", str(exc)) from exc
        return Response({"first": first, "second": second, "hashes": [h.hex() for h in path]})


class LogVerifyApi(APIView):
    """POST: queue a verification of the whole log (a job: 202 {"id"}); a worker
    runs it and records AUDIT_VERIFIED (CONTRACT section 12)."""

    permission_classes = [IsComplianceOfficer]

    @extend_schema(request=None, responses={202: VERIFICATION_QUEUED})
    def post(self, request: Request) -> Response:
        job = verification_request(acting_user=request_person(request))
        return Response({"id": str(job.pk), "status": job.status}, status=status.HTTP_202_ACCEPTED)


class VerificationDetailApi(APIView):
    """GET: a verification's progress and result (compliance officers and above)."""

    permission_classes = [IsComplianceOfficer]

    @extend_schema(responses=VERIFICATION)
    def get(self, request: Request, verification_id: str) -> Response:
        job = LogVerification.objects.filter(pk=verification_id).first()
        if job is None:
            raise Http404
        return Response(verification_as_dict(job))


class ExportListCreateApi(APIView):
    """POST queues an evidence bundle, GET lists them: viewers (auditors) and up,
    who may request the bundles they download; not traders, whose scope is
    their own desk while a bundle spans every desk."""

    def get_permissions(self) -> list[BasePermission]:
        # a trader's list is empty (audit.selectors.export_list_for_user); a request, refused
        return [IsViewer(), SeesWholeFirm()] if self.request.method == "POST" else [IsViewer()]

    class InputSerializer(serializers.Serializer):
        from_seq = serializers.IntegerField(
            required=False, allow_null=True, min_value=0, max_value=MAX_SEQ
        )
        to_seq = serializers.IntegerField(
            required=False, allow_null=True, min_value=0, max_value=MAX_SEQ
        )
        format = serializers.ChoiceField(
            choices=LogExport.Format.values, required=False, default=LogExport.Format.BUNDLE
        )

    @extend_schema(responses=EXPORT.__class__(many=True))
    def get(self, request: Request) -> Response:
        rows = export_list_for_user(user=request.user)[:100]
        return Response([export_as_dict(e, _download_url(request, e)) for e in rows])

    @extend_schema(
        request=InputSerializer,
        responses={
            202: inline_serializer(
                "ExportQueued",
                {
                    "id": serializers.UUIDField(),
                    "status": serializers.ChoiceField(choices=LogExport.Status.choices),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        export = export_request(
            acting_user=request_person(request),
            from_seq=data.validated_data.get("from_seq"),
            to_seq=data.validated_data.get("to_seq"),
            fmt=data.validated_data["format"],
        )
        return Response(
            {"id": str(export.pk), "status": export.status}, status=status.HTTP_202_ACCEPTED
        )


def _download_url(request: Request, export: LogExport) -> str:
    return request.build_absolute_uri(reverse("audit:export-download", args=[export.pk]))


class ExportDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=EXPORT)
    def get(self, request: Request, export_id: str) -> Response:
        export = export_list_for_user(user=request.user).filter(pk=export_id).first()
        if export is None:
            raise Http404
        return Response(export_as_dict(export, _download_url(request, export)))


class ExportDownloadApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The evidence bundle (docs/records.md)."
            )
        }
    )
    def get(self, request: Request, export_id: str) -> FileResponse:
        export = (
            export_list_for_user(user=request.user)
            .filter(pk=export_id, status=LogExport.Status.DONE)
            .first()
        )
        if export is None:
            raise Http404
        return FileResponse(
            default_storage.open(export.file_name, "rb"),
            as_attachment=True,
            filename=f"{'vcp' if export.format == LogExport.Format.VCP else 'evidence'}"
            f"-{export.pk}.zip",
            content_type="application/zip",
        )
