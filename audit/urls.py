from django.urls import include, path

from .apis.agents import AgentKeyRevokeApi, AgentKeysApi, AgentListCreateApi, AgentStatusApi
from .apis.events import EventDetailApi, EventsApi
from .apis.log import (
    CheckpointLatestApi,
    CheckpointListApi,
    ConsistencyProofApi,
    ExportDetailApi,
    ExportDownloadApi,
    ExportListCreateApi,
    InclusionProofApi,
    LogVerifyApi,
    PublicKeyApi,
    VerificationDetailApi,
)
from .apis.users import UserListCreateApi, UserRoleApi
from .apis.witnesses import CosignatureCreateApi, WitnessListCreateApi, WitnessRevokeApi

app_name = "audit"

urlpatterns = [
    path("agents/", AgentListCreateApi.as_view(), name="agent-list"),
    path("agents/<slug:agent_id>/keys/", AgentKeysApi.as_view(), name="agent-keys"),
    path(
        "agents/<slug:agent_id>/keys/<str:key_id>/revoke/",
        AgentKeyRevokeApi.as_view(),
        name="agent-key-revoke",
    ),
    path("agents/<slug:agent_id>/status/", AgentStatusApi.as_view(), name="agent-status"),
    path("events/", EventsApi.as_view(), name="event-list"),
    path("events/<int:seq>/", EventDetailApi.as_view(), name="event-detail"),
    path("log/verify/", LogVerifyApi.as_view(), name="log-verify"),
    path(
        "log/verifications/<uuid:verification_id>/",
        VerificationDetailApi.as_view(),
        name="verification-detail",
    ),
    path("log/exports/", ExportListCreateApi.as_view(), name="export-list"),
    path("log/exports/<uuid:export_id>/", ExportDetailApi.as_view(), name="export-detail"),
    path(
        "log/exports/<uuid:export_id>/download/",
        ExportDownloadApi.as_view(),
        name="export-download",
    ),
    path("log/public-key/", PublicKeyApi.as_view(), name="log-public-key"),
    path("log/checkpoints/", CheckpointListApi.as_view(), name="checkpoint-list"),
    path("log/checkpoints/latest/", CheckpointLatestApi.as_view(), name="checkpoint-latest"),
    path(
        "log/checkpoints/<int:tree_size>/cosignatures/",
        CosignatureCreateApi.as_view(),
        name="checkpoint-cosignatures",
    ),
    path("log/witnesses/", WitnessListCreateApi.as_view(), name="witness-list"),
    path("log/witnesses/<path:name>/revoke/", WitnessRevokeApi.as_view(), name="witness-revoke"),
    path("log/proofs/inclusion/", InclusionProofApi.as_view(), name="proof-inclusion"),
    path("log/proofs/consistency/", ConsistencyProofApi.as_view(), name="proof-consistency"),
    path("users/", UserListCreateApi.as_view(), name="user-list"),
    path("users/<str:username>/role/", UserRoleApi.as_view(), name="user-role"),
    path("", include("audit.webhooks.urls")),
]
