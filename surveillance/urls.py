from django.urls import path

from .apis import AgentRiskLimitsApi, ConfigApi, KillSwitchApi, OrderDetailApi, OrdersApi

app_name = "surveillance"

urlpatterns = [
    path("orders/", OrdersApi.as_view(), name="order-submit"),
    path("orders/<str:order_id>/", OrderDetailApi.as_view(), name="order-detail"),
    path("config/", ConfigApi.as_view(), name="config"),
    path("kill-switch/", KillSwitchApi.as_view(), name="kill-switch"),
    path("agents/<slug:agent_id>/risk-limits/", AgentRiskLimitsApi.as_view(), name="agent-risk-limits"),
]
