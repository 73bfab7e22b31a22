from django.urls import path

from .apis import (
    AgentRiskLimitsApi,
    ConfigApi,
    KillSwitchApi,
    OrderCancelApi,
    OrderDetailApi,
    OrdersApi,
    PositionsApi,
)
from .apis_alerts import (
    AlertAssignApi,
    AlertDetailApi,
    AlertEscalateApi,
    AlertHistoryApi,
    AlertListApi,
    AlertNoteApi,
    AlertReopenApi,
    AlertResolveApi,
    SurveillanceRunApi,
)

app_name = "surveillance"

urlpatterns = [
    path("orders/", OrdersApi.as_view(), name="order-submit"),
    path("orders/<str:order_id>/", OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<str:order_id>/cancel/", OrderCancelApi.as_view(), name="order-cancel"),
    path("positions/", PositionsApi.as_view(), name="position-list"),
    path("config/", ConfigApi.as_view(), name="config"),
    path("kill-switch/", KillSwitchApi.as_view(), name="kill-switch"),
    path(
        "agents/<slug:agent_id>/risk-limits/",
        AgentRiskLimitsApi.as_view(),
        name="agent-risk-limits",
    ),
    path("alerts/", AlertListApi.as_view(), name="alert-list"),
    path("alerts/<int:alert_id>/", AlertDetailApi.as_view(), name="alert-detail"),
    path("alerts/<int:alert_id>/assign/", AlertAssignApi.as_view(), name="alert-assign"),
    path("alerts/<int:alert_id>/escalate/", AlertEscalateApi.as_view(), name="alert-escalate"),
    path("alerts/<int:alert_id>/resolve/", AlertResolveApi.as_view(), name="alert-resolve"),
    path("alerts/<int:alert_id>/notes/", AlertNoteApi.as_view(), name="alert-note"),
    path("alerts/<int:alert_id>/reopen/", AlertReopenApi.as_view(), name="alert-reopen"),
    path("alerts/<int:alert_id>/history/", AlertHistoryApi.as_view(), name="alert-history"),
    path("surveillance/run/", SurveillanceRunApi.as_view(), name="surveillance-run"),
]
