"""Witness keys and cosignatures (C2SP tlog-witness / tlog-cosignature)."""

from __future__ import annotations

import base64
from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsAdmin, IsViewer, request_person
from compliance_client.note import witness_vkey
from compliance_site.openapi import ErrorSerializer

from ..models import Witness
from ..services.witnesses import (
    checkpoints_of_size,
    cosignature_add,
    is_published,
    witness_register,
    witness_revoke,
)
from .log import IsPublicOrViewer


class WitnessOutSerializer(serializers.Serializer):
    """A witness key the firm registered (documentation shape)."""

    name = serializers.CharField()
    public_key = serializers.CharField(help_text="base64 of the raw 32-byte Ed25519 key")
    vkey = serializers.CharField(help_text="the C2SP verifier key: name+keyid+base64")
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class CosignatureOutSerializer(serializers.Serializer):
    witness = serializers.CharField()
    timestamp = serializers.IntegerField(help_text="seconds since the epoch, as signed")
    line = serializers.CharField(help_text="the signed note's cosignature line")


class CheckpointCosignaturesSerializer(serializers.Serializer):
    tree_size = serializers.IntegerField()
    timestamp_us = serializers.IntegerField()
    published = serializers.BooleanField()
    cosignatures = CosignatureOutSerializer(many=True)


class CosignatureCreatedSerializer(CosignatureOutSerializer):
    tree_size = serializers.IntegerField()
    checkpoint_timestamp_us = serializers.IntegerField()


def witness_dict(w: Witness) -> dict[str, Any]:
    raw = bytes(w.public_key)
    return {
        "name": w.name,
        "public_key": base64.b64encode(raw).decode(),
        "vkey": witness_vkey(w.name, raw),
        "description": w.description,
        "created_at": w.created_at,
        "revoked_at": w.revoked_at,
    }


class WitnessListCreateApi(APIView):
    """GET: viewers and up. POST: admins (the quorum rests on whom the firm trusts)."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        public_key = serializers.CharField(max_length=100)
        description = serializers.CharField(max_length=200, required=False, default="")

    def get_permissions(self) -> list[BasePermission]:
        return [IsAdmin()] if self.request.method == "POST" else [IsViewer()]

    @extend_schema(responses=WitnessOutSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response([witness_dict(w) for w in Witness.objects.order_by("name")])

    @extend_schema(
        request=InputSerializer,
        responses={201: WitnessOutSerializer, 409: ErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        witness = witness_register(acting_user=request_person(request), **data.validated_data)
        return Response(witness_dict(witness), status=status.HTTP_201_CREATED)


class WitnessRevokeApi(APIView):
    permission_classes = [IsAdmin]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=4000, required=False, default="")

    @extend_schema(request=InputSerializer, responses=WitnessOutSerializer)
    def post(self, request: Request, name: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        witness = witness_revoke(
            name=name, acting_user=request_person(request), reason=data.validated_data["reason"]
        )
        return Response(witness_dict(witness))


class CosignatureCreateApi(APIView):
    """POST: a witness hands in its cosignature. No account needed: the Ed25519
    cosignature by a registered witness key is the authentication.
    GET: the checkpoints of that size, each with its cosignatures and whether
    it counts as published (public, like the checkpoints themselves)."""

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()] if self.request.method == "POST" else [IsPublicOrViewer()]

    @extend_schema(responses=CheckpointCosignaturesSerializer(many=True))
    def get(self, request: Request, tree_size: int) -> Response:
        rows = checkpoints_of_size(tree_size)
        if not rows:
            raise Http404
        return Response(
            [
                {
                    "tree_size": cp.tree_size,
                    "timestamp_us": cp.timestamp_us,
                    "published": is_published(cp),
                    "cosignatures": [
                        {"witness": c.witness.name, "timestamp": c.timestamp, "line": c.line}
                        for c in cp.cosignatures.all()
                    ],
                }
                for cp in rows
            ]
        )

    class InputSerializer(serializers.Serializer):
        witness = serializers.CharField(max_length=200)
        cosignature = serializers.CharField(max_length=1000)

    @extend_schema(
        request=InputSerializer,
        responses={201: CosignatureCreatedSerializer, 409: ErrorSerializer},
        auth=[],
    )
    def post(self, request: Request, tree_size: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cosig = cosignature_add(tree_size=tree_size, **data.validated_data)
        return Response(
            {
                "tree_size": tree_size,
                "checkpoint_timestamp_us": cosig.checkpoint.timestamp_us,
                "witness": cosig.witness.name,
                "timestamp": cosig.timestamp,
                "line": cosig.line,
            },
            status=status.HTTP_201_CREATED,
        )
