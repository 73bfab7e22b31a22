"""What the OpenAPI schema needs beyond the views themselves.

* `ComplianceAutoSchema`: a serializer nested in a view (`OrdersApi.InputSerializer`)
  is named after its view (`OrdersInput`), so two views' "Input" never collide.
* Bearer authentication (people's tokens and bots' API keys) as a security scheme.
* `add_error_responses`, a postprocessing hook: every operation documents the
  error answers every endpoint can give (401, 403; 400 where it takes input;
  404 where it names an object) with the one error body, unless the view
  documented them itself.
* Shapes the contract defines and several apps answer with (an error, a signed
  item, a record, a checkpoint), as serializers used only for documentation.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class ComplianceAutoSchema(AutoSchema):
    def _get_serializer_name(
        self, serializer: Any, direction: str, bypass_extensions: bool = False
    ) -> str:
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        owner = type(serializer).__qualname__.split(".")
        if len(owner) > 1 and not getattr(getattr(serializer, "Meta", None), "ref_name", None):
            view = owner[-2].removesuffix("Api").removesuffix("View")
            return f"{view}{name}"
        return name


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A person's token (POST /api/v1/auth/token/) or a bot's API key.",
        }


# --- shapes for the documentation -----------------------------------------------------


# A refusal's detail: a sentence, or for invalid input the messages per field
# ({"field": ["message", ...]}), as DRF's validation gives them.
ERROR_DETAIL_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "string"},
        {"type": "object", "additionalProperties": True},
        {"type": "array", "items": {}},
    ],
    "description": "a sentence, or the messages per field of invalid input",
}


@extend_schema_field(ERROR_DETAIL_SCHEMA)
class ErrorDetailField(serializers.JSONField):
    pass


class ErrorSerializer(serializers.Serializer):
    """Every refusal: a machine-readable code and a sentence (or, for invalid
    input, the messages per field)."""

    code = serializers.CharField()
    detail = ErrorDetailField()


class EnvelopeSerializer(serializers.Serializer):
    """What a bot signs (RFC 8785 canonical JSON, Ed25519)."""

    agent_id = serializers.CharField()
    event_id = serializers.CharField(help_text="unique per agent; the idempotency key")
    event_type = serializers.CharField()
    occurred_at_us = serializers.IntegerField(help_text="microseconds since the epoch, UTC")
    payload = serializers.DictField(help_text="decimal strings for money and quantities")


class SignedItemSerializer(EnvelopeSerializer):
    """An envelope with its key id and signature (those two are not signed)."""

    key_id = serializers.CharField()
    signature = serializers.CharField(help_text="base64 Ed25519 over JCS(envelope)")


class ActorSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["agent", "user", "system"])
    id = serializers.CharField()


class RecordSerializer(serializers.Serializer):
    """A record of the log with its two hashes (docs/records.md)."""

    seq = serializers.IntegerField()
    recorded_at_us = serializers.IntegerField()
    event_type = serializers.CharField()
    actor = ActorSerializer(required=False)
    source = serializers.DictField(allow_null=True, required=False)  # type: ignore[assignment]
    data = serializers.DictField(required=False)  # type: ignore[assignment]
    purged = serializers.BooleanField(required=False)
    leaf_hash = serializers.CharField()
    chain_hash = serializers.CharField()


class CheckpointSerializer(serializers.Serializer):
    origin = serializers.CharField()
    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField()
    timestamp_us = serializers.IntegerField()
    note = serializers.CharField(help_text="a C2SP signed note")


ERROR_DESCRIPTIONS = {
    "400": "Bad input: nothing was stored.",
    "401": "No or bad credentials.",
    "403": "The caller's role is too low.",
    "404": "No such object in the caller's scope.",
}


def add_error_responses(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: the error answers of every operation (see the module doc)."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(
        "Error",
        {
            "type": "object",
            "properties": {"code": {"type": "string"}, "detail": ERROR_DETAIL_SCHEMA},
            "required": ["code", "detail"],
        },
    )
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            wanted = []
            if operation.get("security") != [{}]:
                wanted += ["401", "403"]
            if method in {"post", "put", "patch"} or operation.get("parameters"):
                wanted.append("400")
            if "{" in path:
                wanted.append("404")
            for code in wanted:
                operation["responses"].setdefault(
                    code, {"description": ERROR_DESCRIPTIONS[code], "content": error}
                )
    return result
