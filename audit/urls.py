from django.urls import path

from .apis.agents import AgentKeyRevokeApi, AgentKeysApi, AgentListCreateApi, AgentStatusApi
from .apis.events import EventDetailApi, EventsApi, LogVerifyApi

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
]
